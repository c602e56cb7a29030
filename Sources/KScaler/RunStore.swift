import KScalerCore

/// The table: the lease, the state document, the history — everything a run and the operator
/// commands (`lease status`, `lease break`, `history`) read or write there.
package protocol RunStore: Sendable {
    func acquire(owner: String, ttl: Duration, now: Date, clockSkew: TimeInterval) async throws -> LeaseAcquisition
    /// Releases a lease `owner` may hold (its acquisition's answer was lost); a no-op otherwise.
    func giveBack(owner: String) async throws
    func readState() async throws -> StateDocument
    /// Writes the state while the lease is ours (the launch intent, before RunInstances).
    func write(_ document: StateDocument, lease: Lease) async throws
    /// Records the state (nil: unchanged) and the event, and releases the lease, in one step;
    /// false when the lease was lost (then nothing was written).
    func finish(lease: Lease, document: StateDocument?, event: RunEvent?, retention: TimeInterval) async throws -> Bool
    func holder() async throws -> LeaseHolder
    func breakLease() async throws -> KScalerTable.BrokenLease
    func history(limit: Int) async throws -> (events: [RunEvent], unreadable: [String])
}

extension KScalerTable: RunStore {}
