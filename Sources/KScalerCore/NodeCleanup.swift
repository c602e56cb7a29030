#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A Node object as the Kubernetes API lists it: what tending and draining nodes needs.
package struct ClusterNode: Sendable, Equatable, Codable {
    /// kscaler's taint on a node it drains (as cluster-autoscaler's ToBeDeletedByClusterAutoscaler):
    /// its value is the Unix time it was put on, its effect NoSchedule.
    package static let drainTaintKey = "kscaler.io/to-be-deleted"

    package var name: String
    /// The object's uid: a deletion is conditional on it, so a node re-registered under the
    /// same name in between is never the one deleted.
    package var uid: String
    package var providerID: String?
    /// The Ready condition is True.
    package var ready: Bool
    /// The machine behind it, by the fleet's `MachineIdentity`; nil when not one of the fleet's.
    package var machineID: String?
    /// Cordoned (`spec.unschedulable`).
    package var unschedulable: Bool
    /// It carries kscaler's drain taint.
    package var hasDrainTaint: Bool
    /// When the drain taint was put on (its value); nil without one, or with a value that is no time.
    package var drainTaintedAt: Date?
    /// Another NoSchedule or NoExecute taint: pods moved off a drained node are not counted on it.
    package var hasOtherNoScheduleTaint: Bool
    /// Annotated `kscaler.io/scale-down-disabled` or cluster-autoscaler's `scale-down-disabled` "true".
    package var scaleDownDisabled: Bool
    /// Its `kscaler.io/protected` annotation as written ("true" or an RFC 3339 end); nil without one.
    package var protectedAnnotation: String?
    /// What pods may request on it; nil when the API did not say.
    package var allocatable: Resources?
    /// Its labels, for the pods' node selectors and affinities.
    package var labels: [String: String]
    /// All its taints, kscaler's drain taint and the cordon's among them, as the pods'
    /// tolerations see them.
    package var taints: [Taint]

    package init(name: String, uid: String, providerID: String?, ready: Bool, machineID: String?, unschedulable: Bool = false,
                 hasDrainTaint: Bool = false, drainTaintedAt: Date? = nil, hasOtherNoScheduleTaint: Bool = false,
                 scaleDownDisabled: Bool = false, allocatable: Resources? = nil, labels: [String: String] = [:], taints: [Taint] = [],
                 protectedAnnotation: String? = nil) {
        self.name = name
        self.uid = uid
        self.providerID = providerID
        self.ready = ready
        self.machineID = machineID
        self.unschedulable = unschedulable
        self.hasDrainTaint = hasDrainTaint
        self.drainTaintedAt = drainTaintedAt
        self.hasOtherNoScheduleTaint = hasOtherNoScheduleTaint
        self.scaleDownDisabled = scaleDownDisabled
        self.protectedAnnotation = protectedAnnotation
        self.allocatable = allocatable
        self.labels = labels
        self.taints = taints
    }

    private enum CodingKeys: String, CodingKey {
        case name, uid, providerID = "provider_id", ready, machineID = "instance_id", unschedulable, hasDrainTaint = "drain_taint"
        case drainTaintedAt = "drain_tainted_at", hasOtherNoScheduleTaint = "other_no_schedule_taint"
        case scaleDownDisabled = "scale_down_disabled", allocatable, labels, taints, protectedAnnotation = "protected_annotation"
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try container.decode(String.self, forKey: .name), uid: try container.decode(String.self, forKey: .uid),
                  providerID: try container.decodeIfPresent(String.self, forKey: .providerID),
                  ready: try container.decode(Bool.self, forKey: .ready),
                  machineID: try container.decodeIfPresent(String.self, forKey: .machineID),
                  unschedulable: try container.decodeIfPresent(Bool.self, forKey: .unschedulable) ?? false,
                  hasDrainTaint: try container.decodeIfPresent(Bool.self, forKey: .hasDrainTaint) ?? false,
                  drainTaintedAt: try container.decodeIfPresent(Date.self, forKey: .drainTaintedAt),
                  hasOtherNoScheduleTaint: try container.decodeIfPresent(Bool.self, forKey: .hasOtherNoScheduleTaint) ?? false,
                  scaleDownDisabled: try container.decodeIfPresent(Bool.self, forKey: .scaleDownDisabled) ?? false,
                  allocatable: try container.decodeIfPresent(Resources.self, forKey: .allocatable),
                  labels: try container.decodeIfPresent([String: String].self, forKey: .labels) ?? [:],
                  taints: try container.decodeIfPresent([CodedTaint].self, forKey: .taints)?.compactMap(\.taint) ?? [],
                  protectedAnnotation: try container.decodeIfPresent(String.self, forKey: .protectedAnnotation))
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(uid, forKey: .uid)
        try container.encodeIfPresent(providerID, forKey: .providerID)
        try container.encode(ready, forKey: .ready)
        try container.encodeIfPresent(machineID, forKey: .machineID)
        try container.encode(unschedulable, forKey: .unschedulable)
        try container.encode(hasDrainTaint, forKey: .hasDrainTaint)
        try container.encodeIfPresent(drainTaintedAt, forKey: .drainTaintedAt)
        try container.encode(hasOtherNoScheduleTaint, forKey: .hasOtherNoScheduleTaint)
        try container.encode(scaleDownDisabled, forKey: .scaleDownDisabled)
        try container.encodeIfPresent(allocatable, forKey: .allocatable)
        try container.encode(labels, forKey: .labels)
        try container.encode(taints.map(CodedTaint.init), forKey: .taints)
        try container.encodeIfPresent(protectedAnnotation, forKey: .protectedAnnotation)
    }

    /// A taint as the API writes it: `{"key": …, "value": …, "effect": "NoSchedule"}`.
    private struct CodedTaint: Codable {
        var key: String
        var value: String?
        var effect: Taint.Effect.RawValue

        init(_ taint: Taint) {
            key = taint.key
            value = taint.value
            effect = taint.effect.rawValue
        }

        /// A taint whose effect this version does not know is no taint (the scheduler's filter
        /// reads NoSchedule and NoExecute only).
        var taint: Taint? { Taint.Effect(rawValue: effect).map { Taint(key: key, value: value, effect: $0) } }
    }
}

/// A Node object whose machine is gone, remembered in the state until it is deleted.
package struct GhostNode: Sendable, Equatable, Codable {
    package var node: String
    package var machine: String
    /// When kscaler first saw it a ghost, or terminated its machine.
    package var since: Date
    /// kscaler terminated the machine itself (written before the call): the Node goes at
    /// once, with no grace, in the same run or — after a crash — the next.
    package var terminatedByKscaler: Bool

    package init(node: String, machine: String, since: Date, terminatedByKscaler: Bool = false) {
        self.node = node
        self.machine = machine
        self.since = since
        self.terminatedByKscaler = terminatedByKscaler
    }

    private enum CodingKeys: String, CodingKey { case node, machine, since, terminatedByKscaler = "terminated_by_kscaler" }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        node = try container.decode(String.self, forKey: .node)
        machine = try container.decode(String.self, forKey: .machine)
        since = try container.decode(Date.self, forKey: .since)
        terminatedByKscaler = try container.decodeIfPresent(Bool.self, forKey: .terminatedByKscaler) ?? false
    }
}

/// What to do about Node objects this run: the ghosts found, those due for deletion, and what
/// the state remembers afterwards.
package struct NodeCleanup: Sendable, Equatable, Codable {
    package struct Ghost: Sendable, Equatable, Codable {
        package var node: ClusterNode
        package var machine: String
        package var since: Date
        /// When it may be deleted: at once for kscaler's own terminations, else `since` + grace.
        package var deleteAt: Date
        package var terminatedByKscaler: Bool
        /// Deleted this run.
        package var due: Bool

        package init(node: ClusterNode, machine: String, since: Date, deleteAt: Date, terminatedByKscaler: Bool, due: Bool) {
            self.node = node
            self.machine = machine
            self.since = since
            self.deleteAt = deleteAt
            self.terminatedByKscaler = terminatedByKscaler
            self.due = due
        }

        private enum CodingKeys: String, CodingKey {
            case node, machine = "instance_id", since, deleteAt = "delete_at", terminatedByKscaler = "terminated_by_kscaler", due
        }
    }

    /// Every ghost found, due or waiting out its grace, by node name.
    package var ghosts: [Ghost]
    /// Why a node that looked like a ghost was left alone.
    package var keptNodes: [String]
    /// The state's ghost list after this run, before any deletion (a deletion that succeeds
    /// drops its entry).
    package var records: [GhostNode]

    package init(ghosts: [Ghost] = [], keptNodes: [String] = [], records: [GhostNode] = []) {
        self.ghosts = ghosts
        self.keptNodes = keptNodes
        self.records = records
    }

    package var due: [Ghost] { ghosts.filter(\.due) }

    private enum CodingKeys: String, CodingKey { case ghosts, keptNodes = "kept_nodes", records }
}

/// Which Node objects to delete, and which to remember, from the API's node list. Pure.
///
/// A node is a ghost only when it is provably this cluster's and its machine provably gone:
/// its machine is one the fleet answered ended (still tagged ours), or one kscaler recorded
/// terminating and no longer live. Anything else — no machine id, a machine the fleet does
/// not list, a live machine — is never touched. A ghost that reports Ready is left alone too
/// (something still runs a kubelet under that name), unless kscaler terminated its machine.
///
/// - Parameters:
///   - nodes: every Node object the API listed, machine ids resolved.
///   - live: the fleet's live machines; `ended`: its machines shutting down or terminated.
///   - recorded: the state's ghost list from earlier runs (and this run's terminations).
///   - grace: how long a ghost kscaler did not make itself waits (`kubernetes.ghost_grace`).
package func planNodeCleanup(nodes: [ClusterNode], live: Set<String>, ended: Set<String>, recorded: [GhostNode],
                             grace: TimeInterval, now: Date) -> NodeCleanup {
    let recordedByMachine = Dictionary(recorded.map { ($0.machine, $0) }, uniquingKeysWith: { first, _ in first })
    var cleanup = NodeCleanup()
    for node in nodes.sorted(by: { $0.name < $1.name }) {
        guard let machine = node.machineID, !live.contains(machine) else { continue }
        let record = recordedByMachine[machine]
        guard ended.contains(machine) || record != nil else { continue }
        let ours = record?.terminatedByKscaler ?? false
        if node.ready && !ours {
            cleanup.keptNodes.append("\(node.name) reports Ready although its machine \(machine) is gone: left alone")
            continue
        }
        let since = record?.since ?? now
        let deleteAt = ours ? since : since.addingTimeInterval(grace)
        cleanup.ghosts.append(.init(node: node, machine: machine, since: since, deleteAt: deleteAt, terminatedByKscaler: ours,
                                    due: now >= deleteAt))
        cleanup.records.append(GhostNode(node: node.name, machine: machine, since: since, terminatedByKscaler: ours))
    }
    // A record whose node is no longer listed is done; one whose machine is live again never
    // was terminated (the call failed, or the run died before it): both are dropped.
    return cleanup
}
