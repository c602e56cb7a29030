#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `decide` concluded, with everything needed to explain it (human table or JSON with
/// stable snake_case keys; dates follow the encoder's strategy, ISO 8601 recommended).
package struct Decision: Sendable, Equatable, Codable {
    package enum Action: Sendable, Equatable, Codable {
        case none
        case scaleUp(count: Int)
        case scaleDown(victims: [Victim])

        private enum CodingKeys: String, CodingKey { case type, count, victims }

        package func encode(to encoder: any Encoder) throws {
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

        package init(from decoder: any Decoder) throws {
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
    package enum Halt: String, Sendable, Equatable, Codable {
        case missingSignals = "missing_signals"
        case clusterUnhealthy = "cluster_unhealthy"
        /// No instance type of a pool (or of `workers`) has a known size: nothing is launched on doubt.
        case unknownSizes = "unknown_sizes"
        /// An operator's request that cannot be carried out as asked (`Decision.manual`).
        case refused
    }

    package var action: Action
    /// Instances to terminate because they never became nodes; independent of `action`.
    package var failedBoots: [FailedBoot]
    package var halt: Halt?
    package var counts: NodeCounts
    /// The instance type and size scale-ups were sized with (nil when no size is known).
    package var sizing: SizingUnit?
    /// For a scale-up: (machine type, placement) pairs to try in order on capacity errors.
    package var launchCandidates: [Offering]
    /// Plain-words explanation, most important first.
    package var reasons: [Reason]
    package var signals: [SignalVerdict]
    package var cooldowns: [CooldownStatus]
    /// Open drains' steps, orphaned taints, and whether victims are drained first.
    package var drain: DrainDecision
    /// With `pools:`, each pool's part (highest priority first); `action` is then their sum:
    /// a scale-up launches in each pool as its part says, a scale-down's victims name their
    /// pool. Empty for a `workers:` configuration.
    package var pools: [PoolOutcome]
    /// Unschedulable pods no pool can take, each with why: nothing is launched for them.
    package var unservablePods: [UnservablePod]
    /// An operator's target (`Decision.manual`, `Decision.holding`): the managed machines (of
    /// the request's pool) it takes the fleet to; nil for a policy's decision.
    package var manualTarget: Int?
    /// With `schedules:`: the windows active, the bounds they gave, and the next change.
    package var schedule: ScheduleStatus?
    /// `headroom:` wanted and free this run; nil without one (with `pools:`, each pool's is in `pools`).
    package var headroom: HeadroomStatus?
    /// Managed machines never chosen as victims (or whose protection ended), and why.
    package var protectedMachines: [ProtectedMachine] = []
    /// Each instance type's size this decision used and where it came from (config, nodes, EC2).
    package var sizes: [TypeSize] = []

    package init(action: Action, failedBoots: [FailedBoot], halt: Halt?, counts: NodeCounts, sizing: SizingUnit?,
                launchCandidates: [Offering], reasons: [Reason], signals: [SignalVerdict], cooldowns: [CooldownStatus],
                drain: DrainDecision = DrainDecision(), pools: [PoolOutcome] = [], unservablePods: [UnservablePod] = [],
                schedule: ScheduleStatus? = nil, headroom: HeadroomStatus? = nil) {
        self.action = action
        self.failedBoots = failedBoots
        self.halt = halt
        self.counts = counts
        self.sizing = sizing
        self.launchCandidates = launchCandidates
        self.reasons = reasons
        self.signals = signals
        self.cooldowns = cooldowns
        self.drain = drain
        self.pools = pools
        self.unservablePods = unservablePods
        self.schedule = schedule
        self.headroom = headroom
    }

    /// The launches to make: one per pool that scales up (a `workers:` configuration's one
    /// pool is `nil`: the fleet's own).
    package var launches: [(pool: String?, count: Int, candidates: [Offering])] {
        guard case .scaleUp(let count) = action else { return [] }
        guard !pools.isEmpty else { return [(nil, count, launchCandidates)] }
        return pools.compactMap { pool in
            if case .scaleUp(let count) = pool.action, count > 0 { (pool.name, count, pool.launchCandidates) } else { nil }
        }
    }

    private enum CodingKeys: String, CodingKey {
        case action, failedBoots = "failed_boots", halt, counts, sizing, launchCandidates = "launch_candidates"
        case reasons, signals, cooldowns, drain, pools, unservablePods = "unservable_pods", manualTarget = "manual_target", schedule, headroom
        case protectedMachines = "protected_machines", sizes
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(action: try container.decode(Action.self, forKey: .action),
                  failedBoots: try container.decode([FailedBoot].self, forKey: .failedBoots),
                  halt: try container.decodeIfPresent(Halt.self, forKey: .halt), counts: try container.decode(NodeCounts.self, forKey: .counts),
                  sizing: try container.decodeIfPresent(SizingUnit.self, forKey: .sizing),
                  launchCandidates: try container.decode([Offering].self, forKey: .launchCandidates),
                  reasons: try container.decode([Reason].self, forKey: .reasons), signals: try container.decode([SignalVerdict].self, forKey: .signals),
                  cooldowns: try container.decode([CooldownStatus].self, forKey: .cooldowns),
                  drain: try container.decodeIfPresent(DrainDecision.self, forKey: .drain) ?? DrainDecision(),
                  pools: try container.decodeIfPresent([PoolOutcome].self, forKey: .pools) ?? [],
                  unservablePods: try container.decodeIfPresent([UnservablePod].self, forKey: .unservablePods) ?? [],
                  schedule: try container.decodeIfPresent(ScheduleStatus.self, forKey: .schedule),
                  headroom: try container.decodeIfPresent(HeadroomStatus.self, forKey: .headroom))
        manualTarget = try container.decodeIfPresent(Int.self, forKey: .manualTarget)
        protectedMachines = try container.decodeIfPresent([ProtectedMachine].self, forKey: .protectedMachines) ?? []
        sizes = try container.decodeIfPresent([TypeSize].self, forKey: .sizes) ?? []
    }
}

/// One pool's part of a pooled decision.
package struct PoolOutcome: Sendable, Equatable, Codable {
    package var name: String
    package var action: Decision.Action
    package var counts: NodeCounts
    package var min: Int
    package var max: Int
    package var capacityType: CapacityType
    package var sizing: SizingUnit?
    package var launchCandidates: [Offering]
    package var cooldowns: [CooldownStatus]
    /// The unschedulable pods routed to this pool, and what they request.
    package var pendingPods: Int
    package var pendingRequests: Resources
    /// Its utilisation signals, measured on its own nodes.
    package var signals: [SignalVerdict]
    /// Its `headroom`, wanted and free; nil without one.
    package var headroom: HeadroomStatus?

    package init(name: String, action: Decision.Action, counts: NodeCounts, min: Int, max: Int, capacityType: CapacityType,
                 sizing: SizingUnit?, launchCandidates: [Offering], cooldowns: [CooldownStatus], pendingPods: Int, pendingRequests: Resources,
                 signals: [SignalVerdict] = [], headroom: HeadroomStatus? = nil) {
        self.name = name
        self.action = action
        self.counts = counts
        self.min = min
        self.max = max
        self.capacityType = capacityType
        self.sizing = sizing
        self.launchCandidates = launchCandidates
        self.cooldowns = cooldowns
        self.pendingPods = pendingPods
        self.pendingRequests = pendingRequests
        self.signals = signals
        self.headroom = headroom
    }

    private enum CodingKeys: String, CodingKey {
        case name, action, counts, min, max, capacityType = "capacity_type", sizing, launchCandidates = "launch_candidates", cooldowns
        case pendingPods = "pending_pods", pendingRequests = "pending_requests", signals, headroom
    }
}

/// An unschedulable pod no pool can take.
package struct UnservablePod: Sendable, Equatable, Codable {
    /// `namespace/name`.
    package var pod: String
    /// Why, pool by pool ("batch: no toleration for taint dedicated=batch:NoSchedule").
    package var reasons: [String]

    package init(pod: String, reasons: [String]) {
        self.pod = pod
        self.reasons = reasons
    }
}

/// A managed instance chosen for termination.
package struct Victim: Sendable, Equatable, Codable {
    package var instanceID: String
    package var machineType: String
    package var launchTime: Date
    package var nodeName: String?
    package var nonDaemonSetPods: Int?
    /// Its pool, with `pools:`.
    package var pool: String?

    package init(instanceID: String, machineType: String, launchTime: Date, nodeName: String?, nonDaemonSetPods: Int?, pool: String? = nil) {
        self.instanceID = instanceID
        self.machineType = machineType
        self.launchTime = launchTime
        self.nodeName = nodeName
        self.nonDaemonSetPods = nonDaemonSetPods
        self.pool = pool
    }

    private enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", machineType = "instance_type", launchTime = "launch_time"
        case nodeName = "node_name", nonDaemonSetPods = "non_daemonset_pods", pool
    }
}

/// An instance with no registered node after `provision_timeout`: terminate it and record
/// `unavailable` in the state item so the next launch tries another type or subnet.
package struct FailedBoot: Sendable, Equatable, Codable {
    package var instanceID: String
    package var launchTime: Date
    package var unavailable: UnavailableOffering

    package init(instanceID: String, launchTime: Date, unavailable: UnavailableOffering) {
        self.instanceID = instanceID
        self.launchTime = launchTime
        self.unavailable = unavailable
    }

    private enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", launchTime = "launch_time", unavailable
    }
}

package struct NodeCounts: Sendable, Equatable, Codable {
    /// Managed instances that count as capacity: pending + running, minus failed boots being terminated.
    package var current: Int
    /// Managed instances whose node is Ready.
    package var ready: Int
    /// Capacity on its way: managed instances within `boot_grace` and not Ready yet, or past it
    /// with no node registered yet (until `provision_timeout` makes them failed boots).
    package var booting: Int
    /// Managed worker count after this decision.
    package var desired: Int
    /// All nodes Prometheus reports (control plane and foreign nodes included).
    package var clusterNodes: Int
    /// Nodes not Ready, not counting managed nodes still within boot grace.
    package var clusterNotReady: Int
    /// Nodes whose machine is gone, left out of `clusterNodes` and `clusterNotReady`.
    package var ghostNodes: Int

    package init(current: Int, ready: Int, booting: Int, desired: Int, clusterNodes: Int, clusterNotReady: Int, ghostNodes: Int = 0) {
        self.current = current
        self.ready = ready
        self.booting = booting
        self.desired = desired
        self.clusterNodes = clusterNodes
        self.clusterNotReady = clusterNotReady
        self.ghostNodes = ghostNodes
    }

    private enum CodingKeys: String, CodingKey {
        case current, ready, booting, desired, clusterNodes = "cluster_nodes", clusterNotReady = "cluster_not_ready", ghostNodes = "ghost_nodes"
    }

    /// Reports written before ghosts were counted read as having none.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        current = try container.decode(Int.self, forKey: .current)
        ready = try container.decode(Int.self, forKey: .ready)
        booting = try container.decode(Int.self, forKey: .booting)
        desired = try container.decode(Int.self, forKey: .desired)
        clusterNodes = try container.decode(Int.self, forKey: .clusterNodes)
        clusterNotReady = try container.decode(Int.self, forKey: .clusterNotReady)
        ghostNodes = try container.decodeIfPresent(Int.self, forKey: .ghostNodes) ?? 0
    }
}

package struct SizingUnit: Sendable, Equatable, Codable {
    package var machineType: String
    package var size: WorkerSize

    package init(machineType: String, size: WorkerSize) {
        self.machineType = machineType
        self.size = size
    }

    private enum CodingKeys: String, CodingKey { case machineType = "instance_type", size }
}

/// Where to launch: a machine type (keys `workers.sizes`), a placement and a market, the
/// first two opaque to the core (EC2: an instance type and a subnet); nil fields are left to
/// the backend's template. The JSON keys stay those of version one (`instance_type`, `subnet_id`).
package struct Offering: Sendable, Equatable, Codable {
    package var machineType: String?
    package var placement: String?
    /// Spot or on-demand (EC2: `InstanceMarketOptions`).
    package var market: Market

    package init(machineType: String?, placement: String?, market: Market = .onDemand) {
        self.machineType = machineType
        self.placement = placement
        self.market = market
    }

    private enum CodingKeys: String, CodingKey { case machineType = "instance_type", placement = "subnet_id", market }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        machineType = try container.decodeIfPresent(String.self, forKey: .machineType)
        placement = try container.decodeIfPresent(String.self, forKey: .placement)
        market = try container.decodeIfPresent(Market.self, forKey: .market) ?? .onDemand
    }
}

/// How a machine is bought.
package enum Market: String, Sendable, Equatable, Codable, CaseIterable {
    case onDemand = "on-demand"
    /// Spare capacity at a discount, which the provider may take back at short notice.
    case spot
}

/// One line of explanation: a stable code for machines, a sentence with the values compared for people.
package struct Reason: Sendable, Equatable, Codable, CustomStringConvertible {
    package enum Code: String, Sendable, Equatable, Codable {
        /// A cooldown stamp lies in the future (clock skew, or an edited state item).
        case futureTimestamp = "future_timestamp"
        case missingSignal = "missing_signal"
        /// An instance type no source gave a size for: skipped (or, for all of them, no action).
        case unknownSize = "unknown_size"
        case clusterUnhealthy = "cluster_unhealthy"
        /// Nodes whose machine is gone were left out of the counts and the health gate.
        case ghostNodes = "ghost_nodes"
        case failedBoot = "failed_boot"
        case protectedFailedBoot = "protected_failed_boot"
        case unconfirmedFailedBoot = "unconfirmed_failed_boot"
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
        /// Drains are open: how they go this run.
        case drainsOpen = "drains_open"
        /// Pods are unschedulable: open drains are cancelled, their nodes count as capacity.
        case drainsCancelled = "drains_cancelled"
        /// A candidate node could not be drained (a pod that may not be evicted, no room elsewhere…).
        case notDrainable = "not_drainable"
        /// No Kubernetes API and no `scale_down.without_drain`: no scale-down at all.
        case drainUnavailable = "drain_unavailable"
        /// An operator's target (`Decision.manual`), not the metrics, decided.
        case manualTarget = "manual_target"
        /// An operator's request refused whole: nothing changes.
        case manualRefused = "manual_refused"
        /// `--force` took a target past `nodes.min`/`nodes.max`.
        case manualForce = "manual_force"
        /// An operator's hold is in force: no automatic decision (`Hold`).
        case held
        /// An operator's hold ended: decided as usual again.
        case holdEnded = "hold_ended"
        /// Unschedulable pods no pool can take: nothing is launched for them.
        case unservablePods = "unservable_pods"
        /// How the pools' parts were put together: the cluster cap, one direction per run.
        case pools
        /// A `schedules:` window raised the bounds in force.
        case scheduled
        /// `headroom:` asked for a scale-up, or held a scale-down back (a floor).
        case headroom
        case steady
    }

    package var code: Code
    package var message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { message }
}

/// How one signal weighed in.
package struct SignalVerdict: Sendable, Equatable, Codable {
    package enum Verdict: String, Sendable, Equatable, Codable {
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

    package var signal: Signal
    package var reading: Reading
    package var required: Bool
    /// The fraction (utilisation) or count (unschedulable pods) compared against; nil when none.
    package var threshold: Double?
    package var verdict: Verdict
    /// A short human note: "72.5 % > 70 %", "5 of 6 nodes Ready", "has no data…".
    package var detail: String

    package init(signal: Signal, reading: Reading, required: Bool, threshold: Double?, verdict: Verdict, detail: String) {
        self.signal = signal
        self.reading = reading
        self.required = required
        self.threshold = threshold
        self.verdict = verdict
        self.detail = detail
    }
}

package struct CooldownStatus: Sendable, Equatable, Codable {
    package enum Name: String, Sendable, Equatable, Codable, CaseIterable {
        case scaleUpCooldown = "scale_up_cooldown"
        case scaleDownDelayAfterScaleUp = "scale_down_delay_after_scale_up"
        case scaleDownCooldown = "scale_down_cooldown"
    }

    package var name: Name
    /// The event the period counts from (last scale-up or scale-down); nil when never.
    package var since: Date?
    package var endsAt: Date?
    /// `now < endsAt`: a period is over exactly at its end.
    package var active: Bool

    package init(name: Name, since: Date?, endsAt: Date?, active: Bool) {
        self.name = name
        self.since = since
        self.endsAt = endsAt
        self.active = active
    }

    private enum CodingKeys: String, CodingKey { case name, since, endsAt = "ends_at", active }
}
