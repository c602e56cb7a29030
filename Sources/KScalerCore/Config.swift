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
public struct KScalerConfig: Sendable, Equatable {
    /// `[a-z0-9-]`, 1…40 characters; tags managed instances `kscaler:cluster=<id>`.
    public var clusterID: String
    /// AWS region; `nil` leaves it to the AWS configuration chain.
    public var region: String?
    /// DynamoDB table holding the lease, the state item and history events.
    public var table: String
    public var prometheus: PrometheusSettings
    public var utilization: UtilizationMode
    /// PromQL overrides by signal; signals not listed use `DefaultQueries`.
    public var signalQueries: [Signal: String]
    public var nodes: NodeBounds
    public var scaleUp: ScaleUpPolicy
    public var scaleDown: ScaleDownPolicy
    /// An instance launched less than this long ago and not Ready yet is booting capacity.
    public var bootGrace: TimeInterval
    /// An instance with no registered node after this long is a failed boot.
    public var provisionTimeout: TimeInterval
    /// How long a capacity-error or failed-boot (instance type, subnet) is skipped.
    public var unavailableFor: TimeInterval
    public var health: HealthGate
    public var victims: VictimPolicy
    public var workers: WorkerSettings
    public var lease: LeaseSettings
    /// How long history events are kept (DynamoDB TTL).
    public var historyRetention: TimeInterval
    /// Pushgateway to push run metrics to; `nil` when not configured.
    public var pushgatewayURL: String?

    public init(
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
        pushgatewayURL: String? = nil
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
    }

    /// Schema defaults that are not inside a nested settings type.
    public enum Defaults {
        public static let bootGrace: TimeInterval = 5 * 60
        public static let provisionTimeout: TimeInterval = 15 * 60
        public static let unavailableFor: TimeInterval = 30 * 60
        public static let historyRetention: TimeInterval = 7 * 24 * 3600
    }

    /// The PromQL to run for every signal: the configured override, else the default for the
    /// utilisation mode and stabilization window.
    public func queries(workerNodes: String) -> [Signal: String] {
        let windowSeconds = max(1, Int(scaleDown.stabilizationWindow.rounded()))
        var result: [Signal: String] = [:]
        for signal in Signal.allCases {
            result[signal] = signalQueries[signal]
                ?? DefaultQueries.query(for: signal, mode: utilization, windowSeconds: windowSeconds, workerNodes: workerNodes)
        }
        return result
    }

    /// The part of the configuration `decide` needs.
    public var policy: Policy {
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
            capacity: WorkerCapacity(
                machineTypes: workers.instanceTypes,
                placements: workers.subnets,
                sizes: workers.sizes
            )
        )
    }
}

public struct PrometheusSettings: Sendable, Equatable {
    /// `http` or `https` base URL, without credentials.
    public var url: String
    public var auth: PrometheusAuth
    /// Per-query HTTP timeout.
    public var timeout: TimeInterval
    /// A sample older than this is stale (no action).
    public var staleness: TimeInterval

    public init(url: String, auth: PrometheusAuth = .none, timeout: TimeInterval = 5, staleness: TimeInterval = 5 * 60) {
        self.url = url
        self.auth = auth
        self.timeout = timeout
        self.staleness = staleness
    }
}

/// How kscaler authenticates to Prometheus. Secrets live in files (re-read each run), never in
/// the configuration itself.
public enum PrometheusAuth: Sendable, Equatable {
    case none
    case basic(username: String, passwordFile: String)
    case bearer(tokenFile: String)
    /// Amazon Managed Prometheus (service `aps`); `region` nil → the top-level region or AWS chain.
    case sigv4(region: String?)

    /// The configured `type` spelling.
    public var typeName: String {
        switch self {
        case .none: "none"
        case .basic: "basic"
        case .bearer: "bearer"
        case .sigv4: "sigv4"
        }
    }
}

public struct NodeBounds: Sendable, Equatable {
    /// Managed worker count never goes below this (scale up to it whatever the metrics say).
    public var min: Int
    /// … nor above this.
    public var max: Int

    public init(min: Int = 1, max: Int = 10) {
        self.min = min
        self.max = max
    }
}

public struct ScaleUpPolicy: Sendable, Equatable {
    /// Fraction 0…1: utilisation strictly above it asks for one more node.
    public var cpuThreshold: Double
    public var memoryThreshold: Double
    /// Most nodes launched in one run.
    public var maxStep: Int
    /// Minimum time between two scale-ups.
    public var cooldown: TimeInterval

    public init(cpuThreshold: Double = 0.70, memoryThreshold: Double = 0.70, maxStep: Int = 10, cooldown: TimeInterval = 60) {
        self.cpuThreshold = cpuThreshold
        self.memoryThreshold = memoryThreshold
        self.maxStep = maxStep
        self.cooldown = cooldown
    }
}

public struct ScaleDownPolicy: Sendable, Equatable {
    /// Fraction 0…1: the window maximum must be strictly below it to scale down.
    public var cpuThreshold: Double
    public var memoryThreshold: Double
    /// Most nodes terminated in one run.
    public var maxStep: Int
    /// Minimum time between two scale-downs.
    public var cooldown: TimeInterval
    /// No scale-down this long after a scale-up.
    public var delayAfterScaleUp: TimeInterval
    /// The window the `*_window_max` signals take their maximum over.
    public var stabilizationWindow: TimeInterval

    public init(
        cpuThreshold: Double = 0.30,
        memoryThreshold: Double = 0.30,
        maxStep: Int = 1,
        cooldown: TimeInterval = 5 * 60,
        delayAfterScaleUp: TimeInterval = 10 * 60,
        stabilizationWindow: TimeInterval = 10 * 60
    ) {
        self.cpuThreshold = cpuThreshold
        self.memoryThreshold = memoryThreshold
        self.maxStep = maxStep
        self.cooldown = cooldown
        self.delayAfterScaleUp = delayAfterScaleUp
        self.stabilizationWindow = stabilizationWindow
    }
}

/// The cluster health gate: no action when more than `maxNotReadyFraction` of the nodes AND
/// more than `maxNotReadyNodes` nodes are not Ready (a cluster-wide outage is not a reason to
/// launch or terminate anything).
public struct HealthGate: Sendable, Equatable {
    public var maxNotReadyFraction: Double
    public var maxNotReadyNodes: Int

    public init(maxNotReadyFraction: Double = 0.45, maxNotReadyNodes: Int = 3) {
        self.maxNotReadyFraction = maxNotReadyFraction
        self.maxNotReadyNodes = maxNotReadyNodes
    }
}

public enum VictimOrder: String, Sendable, Equatable, Codable, CaseIterable {
    /// LIFO: the most recently launched goes first (the default; cluster-autoscaler alike).
    case newestFirst = "newest_first"
    /// FIFO: the oldest goes first (rolls old AMIs out over time).
    case oldestFirst = "oldest_first"
}

public struct VictimPolicy: Sendable, Equatable {
    public var order: VictimOrder
    /// Instance ids never terminated, in addition to instances tagged `kscaler:protected=true`.
    public var protectedInstances: Set<String>

    public init(order: VictimOrder = .newestFirst, protectedInstances: Set<String> = []) {
        self.order = order
        self.protectedInstances = protectedInstances
    }
}

/// Allocatable capacity of one worker of an instance type; sizes scale-ups for pending pods.
public struct WorkerSize: Sendable, Equatable, Codable {
    public var cpuCores: Double
    public var memoryBytes: Int64

    public init(cpuCores: Double, memoryBytes: Int64) {
        self.cpuCores = cpuCores
        self.memoryBytes = memoryBytes
    }

    private enum CodingKeys: String, CodingKey { case cpuCores = "cpu_cores", memoryBytes = "memory_bytes" }
}

public struct LaunchTemplateRef: Sendable, Equatable {
    public enum Identity: Sendable, Equatable {
        case id(String)
        case name(String)
    }

    public var identity: Identity
    /// `$Latest`, `$Default` or a version number.
    public var version: String

    public init(identity: Identity, version: String = "$Latest") {
        self.identity = identity
        self.version = version
    }
}

/// A Kubernetes taint, `key[=value]:Effect`.
public struct Taint: Sendable, Equatable, CustomStringConvertible {
    public enum Effect: String, Sendable, CaseIterable {
        case noSchedule = "NoSchedule"
        case preferNoSchedule = "PreferNoSchedule"
        case noExecute = "NoExecute"
    }

    public var key: String
    public var value: String?
    public var effect: Effect

    public init(key: String, value: String? = nil, effect: Effect) {
        self.key = key
        self.value = value
        self.effect = effect
    }

    /// The kubelet / k3s `--node-taint` spelling.
    public var description: String {
        "\(key)\(value.map { "=\($0)" } ?? ""):\(effect.rawValue)"
    }
}

/// SSM parameters the worker reads at boot to join the cluster.
public struct JoinParameters: Sendable, Equatable {
    public var tokenParameter: String
    public var serverURLParameter: String

    public init(tokenParameter: String, serverURLParameter: String) {
        self.tokenParameter = tokenParameter
        self.serverURLParameter = serverURLParameter
    }

    /// `/kscaler/<cluster>/join-token` and `/kscaler/<cluster>/server-url`.
    public static func defaults(clusterID: String) -> JoinParameters {
        JoinParameters(tokenParameter: "/kscaler/\(clusterID)/join-token", serverURLParameter: "/kscaler/\(clusterID)/server-url")
    }
}

/// How workers are launched. Either `launchTemplate`, or `imageID` + `instanceTypes`; with a
/// launch template, `imageID`, `instanceTypes` and `subnets` are optional overrides.
public struct WorkerSettings: Sendable, Equatable {
    public var pool: String
    public var launchTemplate: LaunchTemplateRef?
    public var imageID: String?
    /// Tried in this order on capacity errors.
    public var instanceTypes: [String]
    /// Launches spread over these, fewest managed instances first.
    public var subnets: [String]
    public var securityGroups: [String]
    public var instanceProfile: String?
    /// Allocatable size per instance type (at least one entry; the sizing unit for scale-ups).
    public var sizes: [String: WorkerSize]
    public var labels: [String: String]
    public var taints: [Taint]
    public var join: JoinParameters

    public init(
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

public struct LeaseSettings: Sendable, Equatable {
    /// How long an acquired lease lasts if never released (a killed run blocks at most this long).
    public var ttl: TimeInterval
    /// No EC2 action is started with less than this much lease left.
    public var safetyMargin: TimeInterval
    /// How far the clocks of the hosts sharing the table may disagree. A lease expiring later
    /// than now + ttl + this, or a cooldown stamp more than this in the future, was written by
    /// a clock running ahead (or by hand): flagged, and not trusted.
    public var maxClockSkew: TimeInterval

    public init(ttl: TimeInterval = 120, safetyMargin: TimeInterval = 20, maxClockSkew: TimeInterval = 30) {
        self.ttl = ttl
        self.safetyMargin = safetyMargin
        self.maxClockSkew = maxClockSkew
    }
}
