#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `decide` concluded, with everything needed to explain it (human table or JSON with
/// stable snake_case keys; dates follow the encoder's strategy, ISO 8601 recommended).
public struct Decision: Sendable, Equatable, Codable {
    public enum Action: Sendable, Equatable, Codable {
        case none
        case scaleUp(count: Int)
        case scaleDown(victims: [Victim])

        private enum CodingKeys: String, CodingKey { case type, count, victims }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .none:
                try container.encode("none", forKey: .type)
            case .scaleUp(let count):
                try container.encode("scale_up", forKey: .type)
                try container.encode(count, forKey: .count)
            case .scaleDown(let victims):
                try container.encode("scale_down", forKey: .type)
                try container.encode(victims, forKey: .victims)
            }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            switch try container.decode(String.self, forKey: .type) {
            case "none": self = .none
            case "scale_up": self = .scaleUp(count: try container.decode(Int.self, forKey: .count))
            case "scale_down": self = .scaleDown(victims: try container.decode([Victim].self, forKey: .victims))
            case let type:
                throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown action \(type)")
            }
        }
    }

    /// Why nothing at all may happen this run; the CLI turns `.missingSignals` into a non-zero exit.
    public enum Halt: String, Sendable, Equatable, Codable {
        case missingSignals = "missing_signals"
        case clusterUnhealthy = "cluster_unhealthy"
    }

    public var action: Action
    /// Instances to terminate because they never became nodes; independent of `action`.
    public var failedBoots: [FailedBoot]
    public var halt: Halt?
    public var counts: NodeCounts
    /// The instance type and size scale-ups were sized with (nil when no size is known).
    public var sizing: SizingUnit?
    /// For a scale-up: (machine type, placement) pairs to try in order on capacity errors.
    public var launchCandidates: [Offering]
    /// Plain-words explanation, most important first.
    public var reasons: [Reason]
    public var signals: [SignalVerdict]
    public var cooldowns: [CooldownStatus]

    public init(action: Action, failedBoots: [FailedBoot], halt: Halt?, counts: NodeCounts, sizing: SizingUnit?,
                launchCandidates: [Offering], reasons: [Reason], signals: [SignalVerdict], cooldowns: [CooldownStatus]) {
        self.action = action
        self.failedBoots = failedBoots
        self.halt = halt
        self.counts = counts
        self.sizing = sizing
        self.launchCandidates = launchCandidates
        self.reasons = reasons
        self.signals = signals
        self.cooldowns = cooldowns
    }

    private enum CodingKeys: String, CodingKey {
        case action, failedBoots = "failed_boots", halt, counts, sizing, launchCandidates = "launch_candidates"
        case reasons, signals, cooldowns
    }
}

/// A managed instance chosen for termination.
public struct Victim: Sendable, Equatable, Codable {
    public var instanceID: String
    public var machineType: String
    public var launchTime: Date
    public var nodeName: String?
    public var nonDaemonSetPods: Int?

    public init(instanceID: String, machineType: String, launchTime: Date, nodeName: String?, nonDaemonSetPods: Int?) {
        self.instanceID = instanceID
        self.machineType = machineType
        self.launchTime = launchTime
        self.nodeName = nodeName
        self.nonDaemonSetPods = nonDaemonSetPods
    }

    private enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", machineType = "instance_type", launchTime = "launch_time"
        case nodeName = "node_name", nonDaemonSetPods = "non_daemonset_pods"
    }
}

/// An instance with no registered node after `provision_timeout`: terminate it and record
/// `unavailable` in the state item so the next launch tries another type or subnet.
public struct FailedBoot: Sendable, Equatable, Codable {
    public var instanceID: String
    public var launchTime: Date
    public var unavailable: UnavailableOffering

    public init(instanceID: String, launchTime: Date, unavailable: UnavailableOffering) {
        self.instanceID = instanceID
        self.launchTime = launchTime
        self.unavailable = unavailable
    }

    private enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", launchTime = "launch_time", unavailable
    }
}

public struct NodeCounts: Sendable, Equatable, Codable {
    /// Managed instances that count as capacity: pending + running, minus failed boots being terminated.
    public var current: Int
    /// Managed instances whose node is Ready.
    public var ready: Int
    /// Capacity on its way: managed instances within `boot_grace` and not Ready yet, or past it
    /// with no node registered yet (until `provision_timeout` makes them failed boots).
    public var booting: Int
    /// Managed worker count after this decision.
    public var desired: Int
    /// All nodes Prometheus reports (control plane and foreign nodes included).
    public var clusterNodes: Int
    /// Nodes not Ready, not counting managed nodes still within boot grace.
    public var clusterNotReady: Int

    public init(current: Int, ready: Int, booting: Int, desired: Int, clusterNodes: Int, clusterNotReady: Int) {
        self.current = current
        self.ready = ready
        self.booting = booting
        self.desired = desired
        self.clusterNodes = clusterNodes
        self.clusterNotReady = clusterNotReady
    }

    private enum CodingKeys: String, CodingKey {
        case current, ready, booting, desired, clusterNodes = "cluster_nodes", clusterNotReady = "cluster_not_ready"
    }
}

public struct SizingUnit: Sendable, Equatable, Codable {
    public var machineType: String
    public var size: WorkerSize

    public init(machineType: String, size: WorkerSize) {
        self.machineType = machineType
        self.size = size
    }

    private enum CodingKeys: String, CodingKey { case machineType = "instance_type", size }
}

/// Where to launch: a machine type (keys `workers.sizes`) and a placement, both opaque to the
/// core (EC2: an instance type and a subnet); nil fields are left to the backend's template.
/// The JSON keys stay those of version one (`instance_type`, `subnet_id`).
public struct Offering: Sendable, Equatable, Codable {
    public var machineType: String?
    public var placement: String?

    public init(machineType: String?, placement: String?) {
        self.machineType = machineType
        self.placement = placement
    }

    private enum CodingKeys: String, CodingKey { case machineType = "instance_type", placement = "subnet_id" }
}

/// One line of explanation: a stable code for machines, a sentence with the values compared for people.
public struct Reason: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable, Codable {
        /// A cooldown stamp lies in the future (clock skew, or an edited state item).
        case futureTimestamp = "future_timestamp"
        case missingSignal = "missing_signal"
        case clusterUnhealthy = "cluster_unhealthy"
        case failedBoot = "failed_boot"
        case protectedFailedBoot = "protected_failed_boot"
        case belowMinimum = "below_minimum"
        case aboveMaximum = "above_maximum"
        case unschedulablePods = "unschedulable_pods"
        case highUtilization = "high_utilization"
        case bootingCapacity = "booting_capacity"
        case capped
        case atMaximum = "at_maximum"
        case noLaunchCandidates = "no_launch_candidates"
        case scaleUpCooldown = "scale_up_cooldown"
        case lowUtilization = "low_utilization"
        case scaleDownDelay = "scale_down_delay"
        case scaleDownCooldown = "scale_down_cooldown"
        case scaleDownBooting = "scale_down_booting"
        case scaleDownFailedBoots = "scale_down_failed_boots"
        case atMinimum = "at_minimum"
        case victimPodsUnknown = "victim_pods_unknown"
        case noVictims = "no_victims"
        case victimsChosen = "victims_chosen"
        /// An operator's target (`Decision.manual`), not the metrics, decided.
        case manualTarget = "manual_target"
        case steady
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// How one signal weighed in.
public struct SignalVerdict: Sendable, Equatable, Codable {
    public enum Verdict: String, Sendable, Equatable, Codable {
        /// Above its scale-up threshold (or unschedulable pods > 0).
        case triggersScaleUp = "triggers_scale_up"
        /// At or below its scale-up threshold.
        case withinRange = "within_range"
        /// Below its scale-down threshold (or no unschedulable pods).
        case allowsScaleDown = "allows_scale_down"
        /// At or above its scale-down threshold.
        case preventsScaleDown = "prevents_scale_down"
        /// Read for sizing or victim choice, no threshold.
        case informational
        /// Required but unusable: no action this run.
        case missing
        /// Unusable but not required this run.
        case unavailable
    }

    public var signal: Signal
    public var reading: Reading
    public var required: Bool
    /// The fraction (utilisation) or count (unschedulable pods) compared against; nil when none.
    public var threshold: Double?
    public var verdict: Verdict
    /// A short human note: "72.5 % > 70 %", "5 of 6 nodes Ready", "has no data…".
    public var detail: String

    public init(signal: Signal, reading: Reading, required: Bool, threshold: Double?, verdict: Verdict, detail: String) {
        self.signal = signal
        self.reading = reading
        self.required = required
        self.threshold = threshold
        self.verdict = verdict
        self.detail = detail
    }
}

public struct CooldownStatus: Sendable, Equatable, Codable {
    public enum Name: String, Sendable, Equatable, Codable, CaseIterable {
        case scaleUpCooldown = "scale_up_cooldown"
        case scaleDownDelayAfterScaleUp = "scale_down_delay_after_scale_up"
        case scaleDownCooldown = "scale_down_cooldown"
    }

    public var name: Name
    /// The event the period counts from (last scale-up or scale-down); nil when never.
    public var since: Date?
    public var endsAt: Date?
    /// `now < endsAt`: a period is over exactly at its end.
    public var active: Bool

    public init(name: Name, since: Date?, endsAt: Date?, active: Bool) {
        self.name = name
        self.since = since
        self.endsAt = endsAt
        self.active = active
    }

    private enum CodingKeys: String, CodingKey { case name, since, endsAt = "ends_at", active }
}
