#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything `decide` needs from the configuration (`KScalerConfig.policy`). Values are
/// trusted: `KScalerConfig.parse` is where they are validated.
public struct Policy: Sendable, Equatable {
    public var nodes: NodeBounds
    public var scaleUp: ScaleUpPolicy
    public var scaleDown: ScaleDownPolicy
    public var bootGrace: TimeInterval
    public var provisionTimeout: TimeInterval
    public var unavailableFor: TimeInterval
    public var health: HealthGate
    public var victims: VictimPolicy
    /// A cooldown stamp further in the future than this is not trusted (see `LeaseSettings`).
    public var maxClockSkew: TimeInterval
    public var capacity: WorkerCapacity

    public init(
        nodes: NodeBounds = NodeBounds(),
        scaleUp: ScaleUpPolicy = ScaleUpPolicy(),
        scaleDown: ScaleDownPolicy = ScaleDownPolicy(),
        bootGrace: TimeInterval = KScalerConfig.Defaults.bootGrace,
        provisionTimeout: TimeInterval = KScalerConfig.Defaults.provisionTimeout,
        unavailableFor: TimeInterval = KScalerConfig.Defaults.unavailableFor,
        health: HealthGate = HealthGate(),
        victims: VictimPolicy = VictimPolicy(),
        maxClockSkew: TimeInterval = LeaseSettings().maxClockSkew,
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
        self.capacity = capacity
    }
}

/// What can be launched, where, and how big it is.
public struct WorkerCapacity: Sendable, Equatable {
    /// Machine types in preference order (EC2: instance types); empty when the backend's
    /// template alone picks the type.
    public var machineTypes: [String]
    /// Where machines can go, spread fewest-first (EC2: subnets); empty when the template
    /// alone picks. Opaque to the core.
    public var placements: [String]
    /// By machine type.
    public var sizes: [String: WorkerSize]

    public init(machineTypes: [String], placements: [String], sizes: [String: WorkerSize]) {
        self.machineTypes = machineTypes
        self.placements = placements
        self.sizes = sizes
    }
}
