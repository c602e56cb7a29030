#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// kscaler's validated configuration (schema: YAML keys, each also settable as `KSCALER_<PATH>`).
///
/// Units, everywhere in KScalerCore: durations are `TimeInterval` seconds; thresholds are
/// fractions 0…1 (configured in percent); CPU is in cores; memory in bytes.
/// Build one with `KScalerConfig.parse(_:)`, which applies the defaults and reports every problem.
package struct KScalerConfig: Sendable, Equatable {
    /// `[a-z0-9-]`, 1…40 characters; tags managed instances `kscaler:cluster=<id>`.
    package var clusterID: String
    /// AWS region; `nil` leaves it to the AWS configuration chain.
    package var region: String?
    /// DynamoDB table holding the lease, the state item and history events.
    package var table: String
    package var prometheus: PrometheusSettings
    package var utilization: UtilizationMode
    /// PromQL overrides by signal; signals not listed use `DefaultQueries`.
    package var signalQueries: [Signal: String]
    package var nodes: NodeBounds
    package var scaleUp: ScaleUpPolicy
    package var scaleDown: ScaleDownPolicy
    /// An instance launched less than this long ago and not Ready yet is booting capacity.
    package var bootGrace: TimeInterval
    /// An instance with no registered node after this long is a failed boot.
    package var provisionTimeout: TimeInterval
    /// How long a capacity-error or failed-boot (instance type, subnet) is skipped.
    package var unavailableFor: TimeInterval
    package var health: HealthGate
    package var victims: VictimPolicy
    package var workers: WorkerSettings
    package var lease: LeaseSettings
    /// How long history events are kept (DynamoDB TTL).
    package var historyRetention: TimeInterval
    /// Pushgateway to push run metrics to; `nil` when not configured.
    package var pushgatewayURL: String?
    /// How kscaler reaches the Kubernetes API, and what it does to Node objects.
    package var kubernetes: KubernetesSettings
    /// How a scale-down drains its node first (with the Kubernetes API).
    package var drain: DrainPolicy
    /// `pools:`, by name; nil when the configuration has `workers:` (one pool, `workers.pool`).
    package var pools: [String: PoolSettings]?
    /// Which pool grows for pods several pools can take.
    package var expander: Expander
    /// `schedules:`, in the order written.
    package var schedules: [ScheduleWindow]
    /// Spare requested capacity kept free on the workers; with `pools:`, each pool's default.
    package var headroom: Headroom?
    /// `fleet.backend`: where the workers run (EC2 unless said otherwise).
    package var backend: FleetBackend = .ec2

    package init(
        clusterID: String,
        region: String? = nil,
        table: String,
        prometheus: PrometheusSettings,
        utilization: UtilizationMode = .requests,
        signalQueries: [Signal: String] = [:],
        nodes: NodeBounds = NodeBounds(),
        scaleUp: ScaleUpPolicy = ScaleUpPolicy(),
        scaleDown: ScaleDownPolicy = ScaleDownPolicy(),
        bootGrace: TimeInterval = Defaults.bootGrace,
        provisionTimeout: TimeInterval = Defaults.provisionTimeout,
        unavailableFor: TimeInterval = Defaults.unavailableFor,
        health: HealthGate = HealthGate(),
        victims: VictimPolicy = VictimPolicy(),
        workers: WorkerSettings,
        lease: LeaseSettings = LeaseSettings(),
        historyRetention: TimeInterval = Defaults.historyRetention,
        pushgatewayURL: String? = nil,
        kubernetes: KubernetesSettings = KubernetesSettings(),
        drain: DrainPolicy = DrainPolicy(),
        pools: [String: PoolSettings]? = nil,
        expander: Expander = .priority,
        schedules: [ScheduleWindow] = [],
        headroom: Headroom? = nil
    ) {
        self.clusterID = clusterID
        self.region = region
        self.table = table
        self.prometheus = prometheus
        self.utilization = utilization
        self.signalQueries = signalQueries
        self.nodes = nodes
        self.scaleUp = scaleUp
        self.scaleDown = scaleDown
        self.bootGrace = bootGrace
        self.provisionTimeout = provisionTimeout
        self.unavailableFor = unavailableFor
        self.health = health
        self.victims = victims
        self.workers = workers
        self.lease = lease
        self.historyRetention = historyRetention
        self.pushgatewayURL = pushgatewayURL
        self.kubernetes = kubernetes
        self.drain = drain
        self.pools = pools
        self.expander = expander
        self.schedules = schedules
        self.headroom = headroom
    }

    /// The pools kscaler launches into, highest priority first (ties by name): `pools:`, or
    /// `workers:` as the one pool it always was.
    package var workerPools: [PoolSettings] {
        guard let pools else {
            return [PoolSettings(workers: workers, nodes: nodes, scaleUp: scaleUp, scaleDown: scaleDown, headroom: headroom)]
        }
        return pools.values.sorted { ($1.priority, $0.name) < ($0.priority, $1.name) }
    }

    /// This configuration as one pool sees it: `workers` is the pool's (what its user data and
    /// launches are made from).
    package func scoped(to pool: PoolSettings) -> KScalerConfig {
        var config = self
        config.workers = pool.workers
        return config
    }

    /// The pool pods are assumed to fit when kscaler cannot read their constraints (no
    /// Kubernetes API): the one named `default`, else the first by priority.
    package var defaultPool: PoolSettings? {
        workerPools.first { $0.name == "default" } ?? workerPools.first
    }

    /// Schema defaults that are not inside a nested settings type.
    package enum Defaults {
        package static let bootGrace: TimeInterval = 5 * 60
        package static let provisionTimeout: TimeInterval = 15 * 60
        package static let unavailableFor: TimeInterval = 30 * 60
        package static let historyRetention: TimeInterval = 7 * 24 * 3600
    }

    /// The PromQL to run for every signal: the configured override, else the default for the
    /// utilisation mode and stabilization window.
    package func queries(workerNodes: String) -> [Signal: String] {
        let windowSeconds = max(1, Int(scaleDown.stabilizationWindow.rounded()))
        var result: [Signal: String] = [:]
        for signal in Signal.allCases {
            result[signal] = signalQueries[signal]
                ?? DefaultQueries.query(for: signal, mode: utilization, windowSeconds: windowSeconds, workerNodes: workerNodes)
        }
        return result
    }

    /// `drain.*`, with the grace for an orphaned taint tied to the lease: no run can still be
    /// between writing its drain and tainting the node once a lease TTL has passed.
    private var drainPolicy: DrainPolicy {
        var policy = drain
        policy.orphanTaintGrace = max(policy.orphanTaintGrace, TimeInterval(lease.ttl))
        return policy
    }

    /// The part of the configuration `decide` needs.
    package var policy: Policy {
        Policy(
            nodes: nodes,
            scaleUp: scaleUp,
            scaleDown: scaleDown,
            bootGrace: bootGrace,
            provisionTimeout: provisionTimeout,
            unavailableFor: unavailableFor,
            health: health,
            victims: victims,
            maxClockSkew: lease.maxClockSkew,
            drain: drainPolicy,
            capacity: WorkerCapacity(
                machineTypes: workers.instanceTypes,
                placements: workers.subnets,
                sizes: workers.sizes
            ),
            pools: pools == nil ? nil : workerPools.map(\.policy),
            defaultPool: defaultPool?.name,
            expander: expander,
            schedules: schedules,
            headroom: pools == nil ? headroom : nil
        )
    }
}

package struct PrometheusSettings: Sendable, Equatable {
    /// `http` or `https` base URL, without credentials.
    package var url: String
    package var auth: PrometheusAuth
    /// Per-query HTTP timeout.
    package var timeout: TimeInterval
    /// A sample older than this is stale (no action).
    package var staleness: TimeInterval

    package init(url: String, auth: PrometheusAuth = .none, timeout: TimeInterval = 5, staleness: TimeInterval = 5 * 60) {
        self.url = url
        self.auth = auth
        self.timeout = timeout
        self.staleness = staleness
    }
}

/// How kscaler authenticates to Prometheus. Secrets live in files (re-read each run), never in
/// the configuration itself.
package enum PrometheusAuth: Sendable, Equatable {
    case none
    case basic(username: String, passwordFile: String)
    case bearer(tokenFile: String)
    /// Amazon Managed Prometheus (service `aps`); `region` nil → the top-level region or AWS chain.
    case sigv4(region: String?)

    /// The configured `type` spelling.
    package var typeName: String {
        switch self {
        case .none: "none"
        case .basic: "basic"
        case .bearer: "bearer"
        case .sigv4: "sigv4"
        }
    }
}

package struct NodeBounds: Sendable, Equatable {
    /// Managed worker count never goes below this (scale up to it whatever the metrics say).
    package var min: Int
    /// … nor above this.
    package var max: Int

    package init(min: Int = 1, max: Int = 10) {
        self.min = min
        self.max = max
    }
}

package struct ScaleUpPolicy: Sendable, Equatable {
    /// Fraction 0…1: utilisation strictly above it asks for one more node.
    package var cpuThreshold: Double
    package var memoryThreshold: Double
    /// Most nodes launched in one run.
    package var maxStep: Int
    /// Minimum time between two scale-ups.
    package var cooldown: TimeInterval

    package init(cpuThreshold: Double = 0.70, memoryThreshold: Double = 0.70, maxStep: Int = 10, cooldown: TimeInterval = 60) {
        self.cpuThreshold = cpuThreshold
        self.memoryThreshold = memoryThreshold
        self.maxStep = maxStep
        self.cooldown = cooldown
    }
}

package struct ScaleDownPolicy: Sendable, Equatable {
    /// Fraction 0…1: the window maximum must be strictly below it to scale down.
    package var cpuThreshold: Double
    package var memoryThreshold: Double
    /// Most nodes terminated in one run.
    package var maxStep: Int
    /// Minimum time between two scale-downs.
    package var cooldown: TimeInterval
    /// No scale-down this long after a scale-up.
    package var delayAfterScaleUp: TimeInterval
    /// The window the `*_window_max` signals take their maximum over.
    package var stabilizationWindow: TimeInterval
    /// Without the Kubernetes API, terminate victims without a drain. Off by default: with no
    /// API there is no safe scale-down, so none happens unless this is set.
    package var withoutDrain: Bool

    package init(
        cpuThreshold: Double = 0.30,
        memoryThreshold: Double = 0.30,
        maxStep: Int = 1,
        cooldown: TimeInterval = 5 * 60,
        delayAfterScaleUp: TimeInterval = 10 * 60,
        stabilizationWindow: TimeInterval = 10 * 60,
        withoutDrain: Bool = false
    ) {
        self.cpuThreshold = cpuThreshold
        self.memoryThreshold = memoryThreshold
        self.maxStep = maxStep
        self.cooldown = cooldown
        self.delayAfterScaleUp = delayAfterScaleUp
        self.stabilizationWindow = stabilizationWindow
        self.withoutDrain = withoutDrain
    }
}

/// The cluster health gate: no action when more than `maxNotReadyFraction` of the nodes AND
/// more than `maxNotReadyNodes` nodes are not Ready (a cluster-wide outage is not a reason to
/// launch or terminate anything).
package struct HealthGate: Sendable, Equatable {
    package var maxNotReadyFraction: Double
    package var maxNotReadyNodes: Int

    package init(maxNotReadyFraction: Double = 0.45, maxNotReadyNodes: Int = 3) {
        self.maxNotReadyFraction = maxNotReadyFraction
        self.maxNotReadyNodes = maxNotReadyNodes
    }
}

package enum VictimOrder: String, Sendable, Equatable, Codable, CaseIterable {
    /// LIFO: the most recently launched goes first (the default; cluster-autoscaler alike).
    case newestFirst = "newest_first"
    /// FIFO: the oldest goes first (rolls old AMIs out over time).
    case oldestFirst = "oldest_first"
}

package struct VictimPolicy: Sendable, Equatable {
    package var order: VictimOrder
    /// Instance ids never terminated, in addition to instances tagged `kscaler:protected=true`.
    package var protectedInstances: Set<String>

    package init(order: VictimOrder = .newestFirst, protectedInstances: Set<String> = []) {
        self.order = order
        self.protectedInstances = protectedInstances
    }
}

/// Allocatable capacity of one worker of an instance type; sizes scale-ups for pending pods.
package struct WorkerSize: Sendable, Equatable, Codable {
    package var cpuCores: Double
    package var memoryBytes: Int64

    package init(cpuCores: Double, memoryBytes: Int64) {
        self.cpuCores = cpuCores
        self.memoryBytes = memoryBytes
    }

    private enum CodingKeys: String, CodingKey { case cpuCores = "cpu_cores", memoryBytes = "memory_bytes" }
}

package struct LaunchTemplateRef: Sendable, Equatable {
    package enum Identity: Sendable, Equatable {
        case id(String)
        case name(String)
    }

    package var identity: Identity
    /// `$Latest`, `$Default` or a version number.
    package var version: String

    package init(identity: Identity, version: String = "$Latest") {
        self.identity = identity
        self.version = version
    }
}

/// A Kubernetes taint, `key[=value]:Effect`.
package struct Taint: Sendable, Equatable, CustomStringConvertible {
    package enum Effect: String, Sendable, CaseIterable {
        case noSchedule = "NoSchedule"
        case preferNoSchedule = "PreferNoSchedule"
        case noExecute = "NoExecute"
    }

    package var key: String
    package var value: String?
    package var effect: Effect

    package init(key: String, value: String? = nil, effect: Effect) {
        self.key = key
        self.value = value
        self.effect = effect
    }

    /// The kubelet / k3s `--node-taint` spelling.
    package var description: String {
        "\(key)\(value.map { "=\($0)" } ?? ""):\(effect.rawValue)"
    }
}

/// SSM parameters the worker reads at boot to join the cluster.
package struct JoinParameters: Sendable, Equatable {
    package var tokenParameter: String
    package var serverURLParameter: String

    package init(tokenParameter: String, serverURLParameter: String) {
        self.tokenParameter = tokenParameter
        self.serverURLParameter = serverURLParameter
    }

    /// `/kscaler/<cluster>/join-token` and `/kscaler/<cluster>/server-url`.
    package static func defaults(clusterID: String) -> JoinParameters {
        JoinParameters(tokenParameter: "/kscaler/\(clusterID)/join-token", serverURLParameter: "/kscaler/\(clusterID)/server-url")
    }
}

/// How workers are launched. Either `launchTemplate`, or `imageID` + `instanceTypes`; with a
/// launch template, `imageID`, `instanceTypes` and `subnets` are optional overrides.
package struct WorkerSettings: Sendable, Equatable {
    package var pool: String
    package var launchTemplate: LaunchTemplateRef?
    package var imageID: String?
    /// Tried in this order on capacity errors.
    package var instanceTypes: [String]
    /// Launches spread over these, fewest managed instances first.
    package var subnets: [String]
    package var securityGroups: [String]
    package var instanceProfile: String?
    /// Allocatable size per instance type (at least one entry; the sizing unit for scale-ups).
    package var sizes: [String: WorkerSize]
    package var labels: [String: String]
    package var taints: [Taint]
    package var join: JoinParameters

    package init(
        pool: String = "default",
        launchTemplate: LaunchTemplateRef? = nil,
        imageID: String? = nil,
        instanceTypes: [String] = [],
        subnets: [String] = [],
        securityGroups: [String] = [],
        instanceProfile: String? = nil,
        sizes: [String: WorkerSize],
        labels: [String: String] = [:],
        taints: [Taint] = [],
        join: JoinParameters
    ) {
        self.pool = pool
        self.launchTemplate = launchTemplate
        self.imageID = imageID
        self.instanceTypes = instanceTypes
        self.subnets = subnets
        self.securityGroups = securityGroups
        self.instanceProfile = instanceProfile
        self.sizes = sizes
        self.labels = labels
        self.taints = taints
        self.join = join
    }
}

/// How a pool buys its machines.
package enum CapacityType: String, Sendable, Equatable, CaseIterable, Codable {
    case onDemand = "on-demand"
    case spot
    /// Spot first; on-demand when no Spot offering has capacity.
    case spotThenOnDemand = "spot-then-on-demand"

    /// The markets to try, in order.
    package var markets: [Market] {
        switch self {
        case .onDemand: [.onDemand]
        case .spot: [.spot]
        case .spotThenOnDemand: [.spot, .onDemand]
        }
    }
}

/// Which pool grows for pending pods that more than one pool can take (cluster-autoscaler's
/// expanders of the same names).
package enum Expander: String, Sendable, Equatable, CaseIterable, Codable {
    /// The pool with the highest `priority` (ties: by name).
    case priority
    /// The pool whose new nodes would be fullest: least CPU and memory left unrequested.
    case leastWaste = "least-waste"
    /// The pool whose new nodes cost least per hour, by its `prices`; pools without a price last.
    case cheapest
}

/// One pool of workers: how they launch (`workers` with the pool's name in `workers.pool`),
/// its bounds, its market, its priority and its scale-up/scale-down settings (the top-level
/// ones with the pool's overrides on top).
package struct PoolSettings: Sendable, Equatable {
    package var workers: WorkerSettings
    package var nodes: NodeBounds
    package var capacityType: CapacityType
    /// Higher wins with the priority expander, and goes first when the cluster cap is short.
    package var priority: Int
    /// Hourly price per instance type as this pool buys it (the cheapest expander).
    package var prices: [String: Double]
    package var scaleUp: ScaleUpPolicy
    package var scaleDown: ScaleDownPolicy
    /// Spare requested capacity kept free on this pool's workers (the top-level one unless overridden).
    package var headroom: Headroom?

    package init(workers: WorkerSettings, nodes: NodeBounds, capacityType: CapacityType = .onDemand, priority: Int = 0,
                 prices: [String: Double] = [:], scaleUp: ScaleUpPolicy = ScaleUpPolicy(), scaleDown: ScaleDownPolicy = ScaleDownPolicy(),
                 headroom: Headroom? = nil) {
        self.workers = workers
        self.nodes = nodes
        self.capacityType = capacityType
        self.priority = priority
        self.prices = prices
        self.scaleUp = scaleUp
        self.scaleDown = scaleDown
        self.headroom = headroom
    }

    package var name: String { workers.pool }

    /// What `decide` needs of the pool.
    package var policy: PoolPolicy {
        PoolPolicy(name: name, nodes: nodes, scaleUp: scaleUp, scaleDown: scaleDown,
                   capacity: WorkerCapacity(machineTypes: workers.instanceTypes, placements: workers.subnets, sizes: workers.sizes,
                                            markets: capacityType.markets),
                   capacityType: capacityType, priority: priority, labels: workers.labels, taints: workers.taints, prices: prices,
                   headroom: headroom)
    }
}

package struct LeaseSettings: Sendable, Equatable {
    /// How long an acquired lease lasts if never released (a killed run blocks at most this long).
    package var ttl: TimeInterval
    /// No EC2 action is started with less than this much lease left.
    package var safetyMargin: TimeInterval
    /// How far the clocks of the hosts sharing the table may disagree. A lease expiring later
    /// than now + ttl + this, or a cooldown stamp more than this in the future, was written by
    /// a clock running ahead (or by hand): flagged, and not trusted.
    package var maxClockSkew: TimeInterval

    package init(ttl: TimeInterval = 120, safetyMargin: TimeInterval = 20, maxClockSkew: TimeInterval = 30) {
        self.ttl = ttl
        self.safetyMargin = safetyMargin
        self.maxClockSkew = maxClockSkew
    }
}

/// The Kubernetes API: where it is, how kscaler authenticates, and how it tends Node objects.
///
/// Credentials resolve as kubectl's do unless `server` is set: `kubeconfig` (else `$KUBECONFIG`,
/// else `~/.kube/config`) at `context` (else its current context), else the pod's service
/// account in-cluster. With `server`, the bearer token is read from the SSM SecureString
/// `tokenParameter` (the ECS, Lambda and systemd shapes, which have no kubeconfig).
package struct KubernetesSettings: Sendable, Equatable {
    /// nil: on when a credential source resolves (`config check` says which); false: kscaler
    /// never calls the API (Node objects of terminated instances are left behind).
    package var enabled: Bool?
    package var kubeconfig: String?
    package var context: String?
    /// The API server URL, for the token-in-SSM path.
    package var server: String?
    /// The cluster CA as base64 PEM (what a kubeconfig's `certificate-authority-data` holds);
    /// nil trusts the system's CAs.
    package var caData: String?
    /// The SSM SecureString holding a service-account bearer token.
    package var tokenParameter: String?
    /// A Node whose machine is gone is deleted this long after kscaler first saw it so.
    package var ghostGrace: TimeInterval
    /// How long one API request may take.
    package var timeout: TimeInterval

    package init(enabled: Bool? = nil, kubeconfig: String? = nil, context: String? = nil, server: String? = nil,
                 caData: String? = nil, tokenParameter: String? = nil, ghostGrace: TimeInterval = 120, timeout: TimeInterval = 10) {
        self.enabled = enabled
        self.kubeconfig = kubeconfig
        self.context = context
        self.server = server
        self.caData = caData
        self.tokenParameter = tokenParameter
        self.ghostGrace = ghostGrace
        self.timeout = timeout
    }
}
