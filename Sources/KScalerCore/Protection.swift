#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A machine kept out of scale-downs by an operator (`kscaler protect`): the fleet's tag
/// (EC2: `kscaler:protected=true`, with `kscaler:protected-until=<RFC 3339>` when it ends), a
/// node annotation, or `victims.protected_instances`. An expired protection is no protection.
package enum Protection {
    /// kscaler's node annotation: "true" (for ever) or an RFC 3339 time (until then).
    package static let annotation = "kscaler.io/protected"
    /// Annotations that opt a node out of scale-down for ever, kscaler's and cluster-autoscaler's.
    package static let scaleDownDisabledAnnotations = ["kscaler.io/scale-down-disabled", "cluster-autoscaler.kubernetes.io/scale-down-disabled"]

    /// Protected at `now`: for ever without an end, else strictly before it.
    package static func isActive(until: Date?, now: Date) -> Bool {
        until.map { now < $0 } ?? true
    }

    /// An RFC 3339 time ("2026-12-02T18:00:00Z", offsets and fractions accepted); nil otherwise.
    package static func parseTime(_ text: String) -> Date? {
        let trimmed = Scalar.trimmed(text)
        if let date = try? Date(trimmed, strategy: Date.ISO8601FormatStyle()) { return date }
        return try? Date(trimmed, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// `kscaler protect --until`: an RFC 3339 time, or a duration from `now` (`2h`, `30m`, `1d`),
    /// which must lie after `now`; else why not, with a fix.
    package static func parseUntil(_ text: String, now: Date) -> Result<Date, UntilError> {
        let text = Scalar.trimmed(text)
        let fix = "write an RFC 3339 time such as 2026-12-24T18:00:00Z, or a duration from now such as 2h, 90m or 7d"
        let end: Date
        if let seconds = parseDuration(text) {
            end = now.addingTimeInterval(seconds)
        } else if let time = parseTime(text) {
            end = time
        } else {
            return .failure(UntilError(description: "--until \"\(text)\" is neither an RFC 3339 time nor a duration; \(fix)"))
        }
        guard end > now else {
            return .failure(UntilError(description: "--until \(text) is not in the future (\(formatDate(end)) ≤ now \(formatDate(now))); \(fix)"))
        }
        return .success(end)
    }

    package struct UntilError: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// What a protection mark's value says: "true" for ever, a time until then. Anything else
    /// (a hand edit gone wrong) is doubt, and doubt keeps the machine: for ever, `unreadable` set.
    package static func mark(_ value: String) -> (until: Date?, unreadable: Bool) {
        if value.lowercased() == "true" { return (nil, false) }
        if let until = parseTime(value) { return (until, false) }
        return (nil, true)
    }
}

extension ManagedInstance {
    /// Protected by its tag at `now` (an end in the past no longer protects).
    package func isProtected(at now: Date) -> Bool {
        protected && Protection.isActive(until: protectedUntil, now: now)
    }
}

extension ClusterNode {
    /// Its `kscaler.io/protected` annotation's end (nil: for ever), when it has one.
    package var protection: (until: Date?, unreadable: Bool)? {
        protectedAnnotation.map(Protection.mark)
    }

    /// Annotated protected at `now` (kscaler's annotation, not expired).
    package func isProtected(at now: Date) -> Bool {
        protection.map { Protection.isActive(until: $0.until, now: now) } ?? false
    }
}

/// A machine that is never a victim, or whose protection ended, and why: `plan` lists them.
package struct ProtectedMachine: Sendable, Equatable, Codable {
    /// One reason it is protected.
    package struct Mark: Sendable, Equatable, Codable {
        package enum Source: String, Sendable, Equatable, Codable {
            /// The fleet's tag (EC2: `kscaler:protected`).
            case tag
            /// `victims.protected_instances`.
            case protectedInstances = "protected_instances"
            /// A node annotation (`kscaler.io/protected`, or a scale-down-disabled one).
            case annotation
        }

        package var source: Source
        /// The tag or annotation and its value, or the setting.
        package var detail: String
        /// When it ends; nil: for ever.
        package var until: Date?
        /// Its end has passed: it protects no more.
        package var expired: Bool

        package init(source: Source, detail: String, until: Date? = nil, expired: Bool = false) {
            self.source = source
            self.detail = detail
            self.until = until
            self.expired = expired
        }
    }

    package var instanceID: String
    package var nodeName: String?
    package var pool: String?
    package var marks: [Mark]

    package init(instanceID: String, nodeName: String?, pool: String?, marks: [Mark]) {
        self.instanceID = instanceID
        self.nodeName = nodeName
        self.pool = pool
        self.marks = marks
    }

    /// Some mark still protects it.
    package var isProtected: Bool { marks.contains { !$0.expired } }

    private enum CodingKeys: String, CodingKey {
        case instanceID = "instance_id", nodeName = "node_name", pool, marks, isProtected = "protected"
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(instanceID, forKey: .instanceID)
        try container.encodeIfPresent(nodeName, forKey: .nodeName)
        try container.encodeIfPresent(pool, forKey: .pool)
        try container.encode(marks, forKey: .marks)
        try container.encode(isProtected, forKey: .isProtected)
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(instanceID: try container.decode(String.self, forKey: .instanceID),
                  nodeName: try container.decodeIfPresent(String.self, forKey: .nodeName),
                  pool: try container.decodeIfPresent(String.self, forKey: .pool), marks: try container.decode([Mark].self, forKey: .marks))
    }

    /// "tag kscaler:protected until 2026-12-02T18:00:00Z", "… expired 2026-…: a victim again".
    package var summary: String {
        marks.map { mark in
            let when = mark.until.map { mark.expired ? " expired \(formatDate($0))" : " until \(formatDate($0))" } ?? ""
            return "\(mark.source == .protectedInstances ? "" : "\(mark.source.rawValue) ")\(mark.detail)\(when)"
        }.joined(separator: "; ") + (isProtected ? ": never a victim" : ": protection over, a victim again")
    }
}

/// Every managed machine that is protected, or whose protection has expired, with why. Pure:
/// `now` decides which ends have passed.
func protectedMachines(_ observation: Observation, policy: Policy, now: Date) -> [ProtectedMachine] {
    let nodes = Dictionary(observation.nodes.compactMap { node in node.instanceID.map { ($0, node.name) } }, uniquingKeysWith: { first, _ in first })
    let clusterNodes = Dictionary((observation.cluster?.nodes ?? []).compactMap { node in node.machineID.map { ($0, node) } },
                                  uniquingKeysWith: { first, _ in first })
    return observation.instances.sorted { $0.id < $1.id }.compactMap { instance in
        var marks: [ProtectedMachine.Mark] = []
        if instance.protected {
            let expired = !instance.isProtected(at: now)
            marks.append(.init(source: .tag, detail: "kscaler:protected", until: instance.protectedUntil, expired: expired))
        }
        if policy.victims.protectedInstances.contains(instance.id) {
            marks.append(.init(source: .protectedInstances, detail: "victims.protected_instances"))
        }
        let node = clusterNodes[instance.id]
        if let node, let protection = node.protection {
            marks.append(.init(source: .annotation, detail: Protection.annotation + (protection.unreadable ? " (unreadable value: kept for ever)" : ""),
                               until: protection.until, expired: !node.isProtected(at: now)))
        }
        if let node, node.scaleDownDisabled {
            marks.append(.init(source: .annotation, detail: "scale-down-disabled (kscaler.io or cluster-autoscaler.kubernetes.io)"))
        }
        guard !marks.isEmpty else { return nil }
        return ProtectedMachine(instanceID: instance.id, nodeName: node?.name ?? nodes[instance.id], pool: instance.pool, marks: marks)
    }
}
