#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One signal's answer as the observe step got it. An empty answer is `.noData`, never zero.
package enum Reading: Sendable, Equatable, Codable {
    /// For scalar signals the value; for per-node signals (`node_ready`, `pods_per_node`) the
    /// number of series answered, the per-node detail being in `Observation.nodes`.
    case value(Double)
    /// The query answered an empty vector.
    case noData
    /// The newest sample is older than `prometheus.staleness`.
    case stale(ageSeconds: Double)
    /// NaN or ±Inf (e.g. a division by zero allocatable).
    case notANumber
    /// The query itself failed (HTTP error, timeout, bad PromQL). The message must not hold secrets.
    case failed(String)

    /// The value when it can be acted on: finite and not negative (every signal is a count,
    /// a fraction or an amount).
    package var usableValue: Double? {
        if case .value(let value) = self, value.isFinite, value >= 0 { return value }
        return nil
    }

    /// Why the reading cannot be used, in plain words; nil when usable.
    package var problem: String? {
        switch self {
        case .value(let value) where !value.isFinite: "is NaN or infinite"
        case .value(let value) where value < 0: "is negative (\(formatNumber(value)))"
        case .value: nil
        case .noData: "has no data (the query answered nothing)"
        case .stale(let age): "is stale (newest sample \(formatDuration(age)) old)"
        case .notANumber: "is NaN or infinite"
        case .failed(let message): "could not be read (\(message))"
        }
    }

    /// The same reading with a non-finite value spelled `.notANumber`, as JSON spells it.
    package var normalized: Reading {
        if case .value(let value) = self, !value.isFinite { return .notANumber }
        return self
    }

    /// NaN equals NaN here: a reading is a report, and the same report must compare equal
    /// (decisions are checked for determinism by equality).
    package static func == (lhs: Reading, rhs: Reading) -> Bool {
        switch (lhs, rhs) {
        case (.value(let a), .value(let b)): a == b || (a.isNaN && b.isNaN)
        case (.noData, .noData), (.notANumber, .notANumber): true
        case (.stale(let a), .stale(let b)): a == b
        case (.failed(let a), .failed(let b)): a == b
        default: false
        }
    }

    private enum CodingKeys: String, CodingKey { case status, value, ageSeconds = "age_seconds", message }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .value(let value) where value.isFinite:
            try container.encode("value", forKey: .status)
            try container.encode(value, forKey: .value)
        case .value, .notANumber:
            // JSON has no NaN; a non-finite value is reported as what it means.
            try container.encode("not_a_number", forKey: .status)
        case .noData:
            try container.encode("no_data", forKey: .status)
        case .stale(let age):
            try container.encode("stale", forKey: .status)
            try container.encode(age, forKey: .ageSeconds)
        case .failed(let message):
            try container.encode("failed", forKey: .status)
            try container.encode(message, forKey: .message)
        }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .status) {
        case "value": self = .value(try container.decode(Double.self, forKey: .value))
        case "no_data": self = .noData
        case "stale": self = .stale(ageSeconds: try container.decode(Double.self, forKey: .ageSeconds))
        case "not_a_number": self = .notANumber
        case "failed": self = .failed(try container.decode(String.self, forKey: .message))
        case let status:
            throw DecodingError.dataCorruptedError(forKey: .status, in: container, debugDescription: "unknown reading status \(status)")
        }
    }
}

/// A Kubernetes node as Prometheus (kube-state-metrics) reports it.
package struct NodeObservation: Sendable, Equatable, Codable {
    package var name: String
    /// The machine behind the node, as the fleet's `MachineIdentity` tells from the node's name
    /// and provider id; nil when it is not one of the fleet's machines (or not resolved yet).
    package var instanceID: String?
    /// The node's `spec.providerID` as reported (not encoded: the machine id is what counts).
    package var providerID: String?
    package var ready: Bool
    /// Pods not owned by a DaemonSet. `nil` when `pods_per_node` could not be read; 0 when it
    /// answered but had no series for this node (`count by` drops empty groups).
    package var nonDaemonSetPods: Int?

    package init(name: String, instanceID: String?, providerID: String? = nil, ready: Bool, nonDaemonSetPods: Int?) {
        self.name = name
        self.instanceID = instanceID
        self.providerID = providerID
        self.ready = ready
        self.nonDaemonSetPods = nonDaemonSetPods
    }

    /// This node with the machine behind it resolved by `identity`.
    package func identified(by identity: MachineIdentity) -> NodeObservation {
        var node = self
        node.instanceID = identity.machineID(name, providerID)
        return node
    }

    private enum CodingKeys: String, CodingKey {
        case name, instanceID = "instance_id", ready, nonDaemonSetPods = "non_daemonset_pods"
    }
}

/// A machine of this cluster's fleet, pending or running (EC2: an instance tagged `kscaler:cluster`).
package struct ManagedInstance: Sendable, Equatable, Codable {
    package enum State: String, Sendable, Codable {
        case pending, running
    }

    package var id: String
    package var machineType: String
    package var placement: String?
    package var zone: String?
    package var launchTime: Date
    package var state: State
    /// Tagged `kscaler:protected=true`: never a victim, never terminated as a failed boot
    /// (until `protectedUntil`, when set: see `isProtected(at:)`).
    package var protected: Bool
    /// The protection's end (EC2: tag `kscaler:protected-until`); nil: for ever.
    package var protectedUntil: Date?
    /// The pool it was launched for (EC2: tag `kscaler:pool`); nil when untagged.
    package var pool: String?
    package var market: Market
    /// The backend says it is being taken back (EC2: a Spot instance `marked-for-termination`):
    /// no longer capacity, and its node is drained.
    package var interrupted: Bool

    package init(id: String, machineType: String, placement: String?, zone: String?,
                launchTime: Date, state: State, protected: Bool = false, pool: String? = nil, market: Market = .onDemand,
                interrupted: Bool = false, protectedUntil: Date? = nil) {
        self.id = id
        self.machineType = machineType
        self.placement = placement
        self.zone = zone
        self.launchTime = launchTime
        self.state = state
        self.protected = protected
        self.protectedUntil = protectedUntil
        self.pool = pool
        self.market = market
        self.interrupted = interrupted
    }

    private enum CodingKeys: String, CodingKey {
        case id, machineType = "instance_type", placement = "subnet_id", zone = "availability_zone"
        case launchTime = "launch_time", state, protected, pool, market, interrupted, protectedUntil = "protected_until"
    }

    /// Reports written before pools read as on-demand machines of no pool.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try container.decode(String.self, forKey: .id), machineType: try container.decode(String.self, forKey: .machineType),
                  placement: try container.decodeIfPresent(String.self, forKey: .placement),
                  zone: try container.decodeIfPresent(String.self, forKey: .zone),
                  launchTime: try container.decode(Date.self, forKey: .launchTime), state: try container.decode(State.self, forKey: .state),
                  protected: try container.decodeIfPresent(Bool.self, forKey: .protected) ?? false,
                  pool: try container.decodeIfPresent(String.self, forKey: .pool),
                  market: try container.decodeIfPresent(Market.self, forKey: .market) ?? .onDemand,
                  interrupted: try container.decodeIfPresent(Bool.self, forKey: .interrupted) ?? false,
                  protectedUntil: try container.decodeIfPresent(Date.self, forKey: .protectedUntil))
    }
}

/// A (machine type, placement, market) to skip until a time; `placement` nil means every placement.
/// Spot and on-demand capacity run out separately: one being short says nothing of the other.
package struct UnavailableOffering: Sendable, Equatable, Codable {
    package var machineType: String
    package var placement: String?
    package var until: Date
    package var market: Market

    package init(machineType: String, placement: String?, until: Date, market: Market = .onDemand) {
        self.machineType = machineType
        self.placement = placement
        self.until = until
        self.market = market
    }

    private enum CodingKeys: String, CodingKey {
        case machineType = "instance_type", placement = "subnet_id", until, market
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        machineType = try container.decode(String.self, forKey: .machineType)
        placement = try container.decodeIfPresent(String.self, forKey: .placement)
        until = try container.decode(Date.self, forKey: .until)
        market = try container.decodeIfPresent(Market.self, forKey: .market) ?? .onDemand
    }

    /// The synthesised form would write `market` for every on-demand entry: state items and
    /// reports of a cluster without Spot stay as they were.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(machineType, forKey: .machineType)
        try container.encodeIfPresent(placement, forKey: .placement)
        try container.encode(until, forKey: .until)
        if market != .onDemand { try container.encode(market, forKey: .market) }
    }
}

/// What earlier runs recorded in the DynamoDB state item.
package struct ScalerState: Sendable, Equatable, Codable {
    package var lastScaleUpAt: Date?
    package var lastScaleDownAt: Date?
    package var unavailableOfferings: [UnavailableOffering]

    package init(lastScaleUpAt: Date? = nil, lastScaleDownAt: Date? = nil, unavailableOfferings: [UnavailableOffering] = []) {
        self.lastScaleUpAt = lastScaleUpAt
        self.lastScaleDownAt = lastScaleDownAt
        self.unavailableOfferings = unavailableOfferings
    }

    private enum CodingKeys: String, CodingKey {
        case lastScaleUpAt = "last_scale_up_at", lastScaleDownAt = "last_scale_down_at"
        case unavailableOfferings = "unavailable_offerings"
    }
}

/// Everything the observe step produced; the only input of `decide` besides policy and clock.
package struct Observation: Sendable, Equatable, Codable {
    /// Every signal's reading; a signal absent here counts as `.noData`.
    package var readings: [Signal: Reading]
    /// Every node of the cluster (control plane and foreign nodes too: they count for the health gate).
    package var nodes: [NodeObservation]
    /// This cluster's machines only, pending or running.
    package var instances: [ManagedInstance]
    /// This cluster's machines that are gone (EC2: shutting-down or terminated, still tagged
    /// ours), and those kscaler recorded terminating: a node of one is a ghost, never counted.
    package var endedMachines: Set<String>
    package var state: ScalerState
    /// The Kubernetes API's nodes and pods; nil when kscaler runs without the API. Not part of
    /// the report's JSON (a cluster's every pod): the drains and victims say what mattered.
    package var cluster: ClusterView?
    /// The drains open in the state item, and the recent aborts (their nodes are skipped).
    package var drains: [OpenDrain]
    package var abortedDrains: [AbortedDrain]
    /// With `pools:`: each pool's utilisation signals (its own nodes), and its state (cooldowns,
    /// unavailable offerings). `readings` and `state` then hold the cluster's and nothing.
    package var poolReadings: [String: [Signal: Reading]]
    package var poolStates: [String: ScalerState]
    /// An operator's hold from the state item (`kscaler scale --hold`), in force or ended.
    package var hold: Hold?
    /// Instance types' sizes learned from Ready nodes and EC2; `decide` puts the configured
    /// ones first (`Policy.sized(by:)`).
    package var learnedSizes: LearnedSizes
    /// Whether the backend can tell a machine that never got a node from one whose node it
    /// cannot see (`MachineIdentity.detectsFailedBoots`). When it cannot, no machine is
    /// terminated as a failed boot: a healthy node named unexpectedly must never be killed.
    package var failedBootsDetectable: Bool = true

    package init(readings: [Signal: Reading], nodes: [NodeObservation], instances: [ManagedInstance],
                 endedMachines: Set<String> = [], state: ScalerState = ScalerState(), cluster: ClusterView? = nil,
                 drains: [OpenDrain] = [], abortedDrains: [AbortedDrain] = [], poolReadings: [String: [Signal: Reading]] = [:],
                 poolStates: [String: ScalerState] = [:], hold: Hold? = nil, learnedSizes: LearnedSizes = LearnedSizes()) {
        self.readings = readings
        self.nodes = nodes
        self.instances = instances
        self.endedMachines = endedMachines
        self.state = state
        self.cluster = cluster
        self.drains = drains
        self.abortedDrains = abortedDrains
        self.poolReadings = poolReadings
        self.poolStates = poolStates
        self.hold = hold
        self.learnedSizes = learnedSizes
    }

    /// Nodes whose machine is gone (a terminated instance's Node object left behind): not
    /// counted by the health gate or the node counts, whatever the Kubernetes API says.
    package var ghostNodes: [NodeObservation] {
        nodes.filter { node in node.instanceID.map(endedMachines.contains) == true }
    }

    private enum CodingKeys: String, CodingKey {
        case readings, nodes, instances, endedMachines = "ended_instances", state, drains, abortedDrains = "aborted_drains"
        case poolReadings = "pool_readings", poolStates = "pool_states", hold, learnedSizes = "learned_sizes"
        case failedBootsDetectable = "failed_boots_detectable"
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(readings, forKey: .readings)
        try container.encode(nodes, forKey: .nodes)
        try container.encode(instances, forKey: .instances)
        try container.encode(endedMachines.sorted(), forKey: .endedMachines)
        try container.encode(state, forKey: .state)
        try container.encode(drains, forKey: .drains)
        try container.encode(abortedDrains, forKey: .abortedDrains)
        if !poolReadings.isEmpty { try container.encode(poolReadings, forKey: .poolReadings) }
        if !poolStates.isEmpty { try container.encode(poolStates, forKey: .poolStates) }
        try container.encodeIfPresent(hold, forKey: .hold)
        if !learnedSizes.isEmpty { try container.encode(learnedSizes, forKey: .learnedSizes) }
        if !failedBootsDetectable { try container.encode(false, forKey: .failedBootsDetectable) }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        readings = try container.decode([Signal: Reading].self, forKey: .readings)
        nodes = try container.decode([NodeObservation].self, forKey: .nodes)
        instances = try container.decode([ManagedInstance].self, forKey: .instances)
        endedMachines = Set(try container.decodeIfPresent([String].self, forKey: .endedMachines) ?? [])
        state = try container.decode(ScalerState.self, forKey: .state)
        cluster = nil
        drains = try container.decodeIfPresent([OpenDrain].self, forKey: .drains) ?? []
        abortedDrains = try container.decodeIfPresent([AbortedDrain].self, forKey: .abortedDrains) ?? []
        poolReadings = try container.decodeIfPresent([String: [Signal: Reading]].self, forKey: .poolReadings) ?? [:]
        poolStates = try container.decodeIfPresent([String: ScalerState].self, forKey: .poolStates) ?? [:]
        hold = try container.decodeIfPresent(Hold.self, forKey: .hold)
        learnedSizes = try container.decodeIfPresent(LearnedSizes.self, forKey: .learnedSizes) ?? LearnedSizes()
        failedBootsDetectable = try container.decodeIfPresent(Bool.self, forKey: .failedBootsDetectable) ?? true
    }

    package func reading(_ signal: Signal) -> Reading { readings[signal] ?? .noData }

    /// The last scale-up: the recorded stamp or the newest launch, whichever is later, so a run
    /// that crashed after RunInstances but before recording still starts the cooldown.
    package var lastScaleUpAt: Date? {
        [state.lastScaleUpAt, instances.map(\.launchTime).max()].compactMap { $0 }.max()
    }
}

// Readings encode as a JSON object keyed by the signal's raw value.
extension Signal: CodingKeyRepresentable {}
