import AWS
import KScalerCore

/// The run's exclusive right to act for one cluster, held in the table's state item.
/// `token` is a fencing token: it grows on every acquisition, and every state write is
/// conditional on it, so a run that lost its lease (paused, then expired) cannot overwrite
/// the state of the run that took over.
package struct Lease: Sendable, Equatable, Codable {
    package var clusterID: String
    package var owner: String
    package var token: Int
    package var acquiredAt: Date
    package var expiresAt: Date

    package func remaining(at now: Date) -> Duration {
        .seconds(expiresAt.timeIntervalSince(now))
    }
}

/// The lease attributes of the state item as they stand (for `lease status`, the "skipped"
/// message, and deciding whether the item can be trusted at all).
package struct LeaseHolder: Sendable, Equatable, Codable {
    package var owner: String?
    /// The fencing token: 0 before the first acquisition, nil when the stored value is unreadable.
    package var token: Int?
    package var acquiredAt: Date?
    package var expiresAt: Date?
    /// What is wrong with the stored attributes (a wrong type, a fractional or out-of-range
    /// token, an owner without an expiry): kscaler never writes a lease like that, so it was
    /// edited by hand and no run acts until an operator looks (`kscaler lease break`).
    package var problems: [String]

    package init(owner: String?, token: Int?, acquiredAt: Date?, expiresAt: Date?, problems: [String] = []) {
        self.owner = owner
        self.token = token
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
        self.problems = problems
    }

    package func isHeld(at now: Date) -> Bool {
        guard owner != nil, let expiresAt else { return false }
        return expiresAt >= now
    }

    /// Why this lease cannot be trusted at `now`: its `problems`, and times that no host with a
    /// clock within `clockSkew` of ours could have written (an expiry later than a whole lease
    /// from now, an acquisition in the future). Such a lease would block every run for as long
    /// as it claims, silently; it is reported instead, and nothing acts.
    package func doubts(at now: Date, ttl: TimeInterval, clockSkew: TimeInterval) -> [String] {
        var doubts = problems
        if let expiresAt, expiresAt.timeIntervalSince(now) > ttl + clockSkew {
            doubts.append("lease_expires_at \(describe(expiresAt)) is \(formatDuration(expiresAt.timeIntervalSince(now))) from now, "
                + "more than lease.ttl (\(formatDuration(ttl))) + lease.max_clock_skew (\(formatDuration(clockSkew))): "
                + "the host that wrote it has a clock running ahead (check its time sync), or the item was edited")
        }
        if let acquiredAt, acquiredAt.timeIntervalSince(now) > clockSkew {
            doubts.append("lease_acquired_at \(describe(acquiredAt)) is \(formatDuration(acquiredAt.timeIntervalSince(now))) in the future, "
                + "more than lease.max_clock_skew (\(formatDuration(clockSkew))): a clock is wrong, or the item was edited")
        }
        return doubts
    }

    enum CodingKeys: String, CodingKey {
        case owner, token, acquiredAt = "acquired_at", expiresAt = "expires_at", problems
    }
}

package enum LeaseAcquisition: Sendable, Equatable {
    /// Ours, with the state item as the acquisition left it (read in the same round trip).
    case acquired(Lease, StateDocument)
    /// Another owner holds an unexpired lease: a normal outcome, the run is skipped.
    case heldByOther(LeaseHolder)
    /// The state item cannot be trusted (see `LeaseHolder.doubts`, `StateItemError`): no run
    /// acts until an operator repairs it. Any lease taken on the way was given back.
    case untrustworthy(LeaseHolder?, problems: [String])
}

/// A random owner id that also tells a person where the run came from.
package func makeLeaseOwner(hostname: String, processID: Int32) -> String {
    let random = UInt64.random(in: 0...UInt64.max)
    let suffix = String(random, radix: 16)
    return "\(hostname)/\(processID)/\(String(repeating: "0", count: 16 - suffix.count))\(suffix)"
}
