#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything `decide` needs from the configuration (`KScalerConfig.policy`). Values are
/// trusted: `KScalerConfig.parse` is where they are validated.
package struct Policy: Sendable, Equatable {
    package var nodes: NodeBounds
    package var scaleUp: ScaleUpPolicy
    package var scaleDown: ScaleDownPolicy
    package var bootGrace: TimeInterval
    package var provisionTimeout: TimeInterval
    package var unavailableFor: TimeInterval
    package var health: HealthGate
    package var victims: VictimPolicy
    /// A cooldown stamp further in the future than this is not trusted (see `LeaseSettings`).
    package var maxClockSkew: TimeInterval
    package var drain: DrainPolicy
    package var capacity: WorkerCapacity
    /// `pools:`, highest priority first; nil for a `workers:` configuration, which `decide`
    /// treats as it always has (one pool; pending pods from Prometheus's sums).
    package var pools: [PoolPolicy]?
    /// The pool pods go to when their constraints cannot be read (no Kubernetes API).
    package var defaultPool: String?
    package var expander: Expander
    /// Spare requested capacity to keep free (nil: none). With `pools:` each pool has its own.
    package var headroom: Headroom?
    /// Set by `decide` for one pool's part of a pooled decision: only this pool's machines
    /// are the fleet (the health gate still counts every node).
    package var fleetPool: String?
    /// `schedules:`: windows raising `nodes` (or a pool's bounds) while active; `decide` applies
    /// them at its `now`.
    package var schedules: [ScheduleWindow]

    package init(
        nodes: NodeBounds = NodeBounds(),
        scaleUp: ScaleUpPolicy = ScaleUpPolicy(),
        scaleDown: ScaleDownPolicy = ScaleDownPolicy(),
        bootGrace: TimeInterval = KScalerConfig.Defaults.bootGrace,
        provisionTimeout: TimeInterval = KScalerConfig.Defaults.provisionTimeout,
        unavailableFor: TimeInterval = KScalerConfig.Defaults.unavailableFor,
        health: HealthGate = HealthGate(),
        victims: VictimPolicy = VictimPolicy(),
        maxClockSkew: TimeInterval = LeaseSettings().maxClockSkew,
        drain: DrainPolicy = DrainPolicy(),
        capacity: WorkerCapacity,
        pools: [PoolPolicy]? = nil,
        defaultPool: String? = nil,
        expander: Expander = .priority,
        schedules: [ScheduleWindow] = [],
        headroom: Headroom? = nil
    ) {
        self.nodes = nodes
        self.scaleUp = scaleUp
        self.scaleDown = scaleDown
        self.bootGrace = bootGrace
        self.provisionTimeout = provisionTimeout
        self.unavailableFor = unavailableFor
        self.health = health
        self.victims = victims
        self.maxClockSkew = maxClockSkew
        self.drain = drain
        self.capacity = capacity
        self.pools = pools
        self.defaultPool = defaultPool
        self.expander = expander
        self.headroom = headroom
        fleetPool = nil
        self.schedules = schedules
    }
}

/// One pool as `decide` sees it.
package struct PoolPolicy: Sendable, Equatable {
    package var name: String
    package var nodes: NodeBounds
    package var scaleUp: ScaleUpPolicy
    package var scaleDown: ScaleDownPolicy
    package var capacity: WorkerCapacity
    package var capacityType: CapacityType
    package var priority: Int
    /// The labels and taints its nodes register with: which pods they can take.
    package var labels: [String: String]
    package var taints: [Taint]
    package var prices: [String: Double]
    package var headroom: Headroom?

    package init(name: String, nodes: NodeBounds, scaleUp: ScaleUpPolicy = ScaleUpPolicy(), scaleDown: ScaleDownPolicy = ScaleDownPolicy(),
                 capacity: WorkerCapacity, capacityType: CapacityType = .onDemand, priority: Int = 0, labels: [String: String] = [:],
                 taints: [Taint] = [], prices: [String: Double] = [:], headroom: Headroom? = nil) {
        self.name = name
        self.nodes = nodes
        self.scaleUp = scaleUp
        self.scaleDown = scaleDown
        self.capacity = capacity
        self.capacityType = capacityType
        self.priority = priority
        self.labels = labels
        self.taints = taints
        self.prices = prices
        self.headroom = headroom
    }
}

/// What can be launched, where, and how big it is.
package struct WorkerCapacity: Sendable, Equatable {
    /// Machine types in preference order (EC2: instance types); empty when the backend's
    /// template alone picks the type.
    package var machineTypes: [String]
    /// Where machines can go, spread fewest-first (EC2: subnets); empty when the template
    /// alone picks. Opaque to the core.
    package var placements: [String]
    /// By machine type.
    package var sizes: [String: WorkerSize]
    /// Markets to try, in order: every spot offering before any on-demand one.
    package var markets: [Market]

    package init(machineTypes: [String], placements: [String], sizes: [String: WorkerSize], markets: [Market] = [.onDemand]) {
        self.machineTypes = machineTypes
        self.placements = placements
        self.sizes = sizes
        self.markets = markets
    }
}
