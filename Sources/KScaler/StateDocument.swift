import KScalerCore

/// The scaler's memory between runs: one typed, versioned document, stored as JSON in the
/// state item's `state` attribute beside the lease attributes (which stay attributes of their
/// own: every conditional write compares them). A run reads it with the lease, changes it in
/// memory and writes it back whole under the lease's fencing condition, so no two runs ever
/// interleave their changes.
///
/// Adding a field: give it a default when absent (see `init(from:)`); changing the meaning of
/// one: bump `currentVersion` and migrate the older version in `init(from:)`.
package struct StateDocument: Sendable, Equatable, Codable {
    package static let currentVersion = 1

    package var version: Int
    /// Cooldown stamps and unavailable offerings, per pool (one pool today: `workers.pool`).
    package var pools: [String: ScalerState]
    /// A launch written before RunInstances is called (see `LaunchIntent`).
    package var launchIntent: LaunchIntent?
    /// Scale-downs in progress, advanced run by run (`planDrainStep`).
    package var drains: [OpenDrain]
    /// Drains aborted recently: their nodes are not chosen again until the entry's `until`.
    package var abortedDrains: [AbortedDrain]
    /// Nodes whose machine is gone, still to delete from the cluster (`planNodeCleanup`).
    package var ghostNodes: [GhostNode]
    /// An operator's hold (`kscaler scale --hold`); cleared by the first run after it ends.
    package var hold: Hold?

    package init(pools: [String: ScalerState] = [:], launchIntent: LaunchIntent? = nil, drains: [OpenDrain] = [],
                abortedDrains: [AbortedDrain] = [], ghostNodes: [GhostNode] = [], hold: Hold? = nil) {
        version = Self.currentVersion
        self.pools = pools
        self.launchIntent = launchIntent
        self.drains = drains
        self.abortedDrains = abortedDrains
        self.ghostNodes = ghostNodes
        self.hold = hold
    }

    /// The memory of one pool; a pool never seen starts empty.
    package func pool(_ name: String) -> ScalerState { pools[name] ?? ScalerState() }

    /// This document with a run's `changes` to `pool` applied.
    package func applying(_ changes: StateChanges, pool name: String) -> StateDocument {
        var document = self
        var pool = pool(name)
        if let stamp = changes.lastScaleUpAt { pool.lastScaleUpAt = stamp }
        if let stamp = changes.lastScaleDownAt { pool.lastScaleDownAt = stamp }
        if let unavailable = changes.unavailableOfferings { pool.unavailableOfferings = unavailable }
        document.pools[name] = pool == ScalerState() ? nil : pool
        if changes.clearLaunchIntent { document.launchIntent = nil }
        return document
    }

    enum CodingKeys: String, CodingKey {
        case version, pools, launchIntent = "launch_intent", drains, abortedDrains = "aborted_drains", ghostNodes = "ghost_nodes", hold
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(Int.self, forKey: .version)
        guard (1...Self.currentVersion).contains(version) else {
            throw DecodingError.dataCorruptedError(forKey: .version, in: container, debugDescription:
                "version \(version) is not one this kscaler reads (1…\(Self.currentVersion)): written by a newer kscaler? Upgrade it")
        }
        pools = try container.decodeIfPresent([String: ScalerState].self, forKey: .pools) ?? [:]
        launchIntent = try container.decodeIfPresent(LaunchIntent.self, forKey: .launchIntent)
        drains = try container.decodeIfPresent([OpenDrain].self, forKey: .drains) ?? []
        abortedDrains = try container.decodeIfPresent([AbortedDrain].self, forKey: .abortedDrains) ?? []
        ghostNodes = try container.decodeIfPresent([GhostNode].self, forKey: .ghostNodes) ?? []
        hold = try container.decodeIfPresent(Hold.self, forKey: .hold)
    }
}

/// A launch written into the state *before* RunInstances is called, so that a run that
/// crashes (or times out) between the call and the record cannot make the next run launch
/// again: the next run looks the intent's launch id up in EC2 (tag `kscaler:launch-id`) first.
package struct LaunchIntent: Sendable, Equatable, Codable {
    package var launchID: String
    package var count: Int
    package var createdAt: Date

    package init(launchID: String, count: Int, createdAt: Date) {
        self.launchID = launchID
        self.count = count
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey { case launchID = "launch_id", count, createdAt = "created_at" }
}

/// What a run changes in the state when it finishes.
package struct StateChanges: Sendable, Equatable {
    package var lastScaleUpAt: Date?
    package var lastScaleDownAt: Date?
    /// The complete list to store (expired entries already dropped), or nil to leave it.
    package var unavailableOfferings: [UnavailableOffering]?
    package var clearLaunchIntent: Bool

    package init(lastScaleUpAt: Date? = nil, lastScaleDownAt: Date? = nil, unavailableOfferings: [UnavailableOffering]? = nil,
                clearLaunchIntent: Bool = false) {
        self.lastScaleUpAt = lastScaleUpAt
        self.lastScaleDownAt = lastScaleDownAt
        self.unavailableOfferings = unavailableOfferings
        self.clearLaunchIntent = clearLaunchIntent
    }
}
