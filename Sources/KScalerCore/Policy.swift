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
        capacity: WorkerCapacity
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

    package init(machineTypes: [String], placements: [String], sizes: [String: WorkerSize]) {
        self.machineTypes = machineTypes
        self.placements = placements
        self.sizes = sizes
    }
}
