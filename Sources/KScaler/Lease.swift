import AWS

/// The run's exclusive right to act for one cluster, held in the table's state item.
/// `token` is a fencing token: it grows on every acquisition, and every state write is
/// conditional on it, so a run that lost its lease (paused, then expired) cannot overwrite
/// the state of the run that took over.
public struct Lease: Sendable, Equatable, Codable {
    public var clusterID: String
    public var owner: String
    public var token: Int
    public var acquiredAt: Date
    public var expiresAt: Date

    public func remaining(at now: Date) -> Duration {
        .seconds(expiresAt.timeIntervalSince(now))
    }
}

/// Who holds the lease now (for `lease status`, and the "skipped" message).
public struct LeaseHolder: Sendable, Equatable, Codable {
    public var owner: String?
    public var token: Int
    public var acquiredAt: Date?
    public var expiresAt: Date?

    public func isHeld(at now: Date) -> Bool {
        guard owner != nil, let expiresAt else { return false }
        return expiresAt >= now
    }
}

public enum LeaseAcquisition: Sendable, Equatable {
    /// Ours, with the state item as the acquisition left it (read in the same round trip).
    case acquired(Lease, StoredState)
    /// Another owner holds an unexpired lease: a normal outcome, the run is skipped.
    case heldByOther(LeaseHolder)
}

/// A random owner id that also tells a person where the run came from.
public func makeLeaseOwner(hostname: String, processID: Int32) -> String {
    let random = UInt64.random(in: 0...UInt64.max)
    let suffix = String(random, radix: 16)
    return "\(hostname)/\(processID)/\(String(repeating: "0", count: 16 - suffix.count))\(suffix)"
}
