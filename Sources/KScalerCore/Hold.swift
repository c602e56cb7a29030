#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An operator's request (`kscaler scale`): what to change, and what it may override.
package struct ManualRequest: Sendable, Equatable, Codable {
    package enum Change: Sendable, Equatable {
        /// Take the managed fleet (of `pool`) to this many machines.
        case to(Int)
        /// Add this many machines to what is there now.
        case add(Int)
        /// Remove these machines (instance ids), drained first while the Kubernetes API is on.
        case remove([String])
        /// Change nothing now; with `hold`, keep today's count (`kscaler scale --hold 1h` alone).
        case keep
    }

    package var change: Change
    /// With `pools:`, the pool to scale (required there); nil for a `workers:` configuration.
    package var pool: String?
    /// Go past `nodes.min`/`nodes.max`; every override is said in the reasons.
    package var force: Bool
    /// Pin the resulting size for this long: no automatic decision until then (`Hold`).
    package var hold: TimeInterval?
    /// End the hold in force (`--release-hold`).
    package var releaseHold: Bool
    /// Why, in the operator's words; kept in the history.
    package var reason: String?
    /// Who asked (the operator's user name), kept in the history.
    package var by: String

    package init(change: Change, pool: String? = nil, force: Bool = false, hold: TimeInterval? = nil, releaseHold: Bool = false,
                 reason: String? = nil, by: String) {
        self.change = change
        self.pool = pool
        self.force = force
        self.hold = hold
        self.releaseHold = releaseHold
        self.reason = reason
        self.by = by
    }

    /// "--to 5", "--add 2", "--remove i-1 i-2", "--hold 1h": how the operator said it.
    package var summary: String {
        var words: [String] = switch change {
        case .to(let count): ["--to \(count)"]
        case .add(let count): ["--add \(count)"]
        case .remove(let ids): ["--remove " + ids.joined(separator: " ")]
        case .keep: []
        }
        if let pool { words.append("--pool \(pool)") }
        if force { words.append("--force") }
        if let hold { words.append("--hold \(formatDuration(hold))") }
        if releaseHold { words.append("--release-hold") }
        return words.isEmpty ? "(no change)" : words.joined(separator: " ")
    }

    private enum CodingKeys: String, CodingKey { case change, count, instanceIDs = "instance_ids", pool, force, holdSeconds = "hold_seconds", releaseHold = "release_hold", reason, by }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch change {
        case .to(let count):
            try container.encode("to", forKey: .change)
            try container.encode(count, forKey: .count)
        case .add(let count):
            try container.encode("add", forKey: .change)
            try container.encode(count, forKey: .count)
        case .remove(let ids):
            try container.encode("remove", forKey: .change)
            try container.encode(ids, forKey: .instanceIDs)
        case .keep:
            try container.encode("keep", forKey: .change)
        }
        try container.encodeIfPresent(pool, forKey: .pool)
        try container.encode(force, forKey: .force)
        try container.encodeIfPresent(hold, forKey: .holdSeconds)
        try container.encode(releaseHold, forKey: .releaseHold)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encode(by, forKey: .by)
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        change = switch try container.decode(String.self, forKey: .change) {
        case "to": .to(try container.decode(Int.self, forKey: .count))
        case "add": .add(try container.decode(Int.self, forKey: .count))
        case "remove": .remove(try container.decode([String].self, forKey: .instanceIDs))
        case "keep": .keep
        case let other: throw DecodingError.dataCorruptedError(forKey: .change, in: container, debugDescription: "unknown change \(other)")
        }
        pool = try container.decodeIfPresent(String.self, forKey: .pool)
        force = try container.decodeIfPresent(Bool.self, forKey: .force) ?? false
        hold = try container.decodeIfPresent(TimeInterval.self, forKey: .holdSeconds)
        releaseHold = try container.decodeIfPresent(Bool.self, forKey: .releaseHold) ?? false
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        by = try container.decode(String.self, forKey: .by)
    }
}

/// A size pinned by an operator (`kscaler scale --hold`), kept in the state item. Until it
/// ends, runs take no decision of their own: they only keep the managed fleet (of `pool`) at
/// `target` — replacing failed boots, finishing the operator's drains — and say so. Nothing
/// else lifts it early but `kscaler scale --release-hold` (or a new `scale`).
package struct Hold: Sendable, Equatable, Codable {
    package var target: Int
    package var pool: String?
    package var until: Date
    /// The target was outside `nodes.min`…`nodes.max` and the operator said `--force`.
    package var forced: Bool
    package var by: String
    package var reason: String?
    package var setAt: Date

    package init(target: Int, pool: String? = nil, until: Date, forced: Bool = false, by: String, reason: String? = nil, setAt: Date) {
        self.target = target
        self.pool = pool
        self.until = until
        self.forced = forced
        self.by = by
        self.reason = reason
        self.setAt = setAt
    }

    /// In force at `now`: a hold is over exactly at its end, as every period is.
    package func isActive(at now: Date) -> Bool { now < until }

    /// "held at 5 nodes by alice until 2026-12-02T18:00:00Z (Monday launch)".
    package var summary: String {
        "held at \(target) node\(target == 1 ? "" : "s")\(pool.map { " in pool \($0)" } ?? "") by \(by) until \(formatDate(until))"
            + (forced ? " (forced past the bounds)" : "") + (reason.map { " (\($0))" } ?? "")
    }

    private enum CodingKeys: String, CodingKey { case target, pool, until, forced, by, reason, setAt = "set_at" }
}
