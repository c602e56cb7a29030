#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// A scale-down with the Kubernetes API is a drain that spans runs: one run chooses a node
// whose pods can all leave, records the drain, cordons and taints the node; each later run
// evicts what is left (a PodDisruptionBudget may refuse: the next run tries again), and once
// no pod needs to leave it terminates the machine. Everything here is pure: the runs feed it
// what the API listed and carry out what it returns.

/// `drain.*`: what a drain may do, and how long it may take.
package struct DrainPolicy: Sendable, Equatable {
    /// A drain still not done after this long is aborted (or forced, see `forceAfterTimeout`).
    package var timeout: TimeInterval
    /// Pods without a controller are deleted for good by an eviction: only with this set.
    package var deleteBarePods: Bool
    /// Pods with an emptyDir or hostPath volume lose its data: only with this set.
    package var evictLocalStorage: Bool
    /// Non-DaemonSet pods in kube-system (DNS, the metrics server…): only with this set.
    package var evictKubeSystem: Bool
    /// At the timeout, delete the pods that are still there and terminate, instead of aborting.
    package var forceAfterTimeout: Bool
    /// A node whose drain was aborted is not chosen again for this long.
    package var abortBackoff: TimeInterval
    /// kscaler's taint on a node with no open drain (a crash, a hand edit) is removed after
    /// this long: the lease's TTL, as no run can still be between writing a drain and tainting.
    package var orphanTaintGrace: TimeInterval

    package init(timeout: TimeInterval = 600, deleteBarePods: Bool = false, evictLocalStorage: Bool = false,
                 evictKubeSystem: Bool = false, forceAfterTimeout: Bool = false, abortBackoff: TimeInterval = 1_800,
                 orphanTaintGrace: TimeInterval = 120) {
        self.timeout = timeout
        self.deleteBarePods = deleteBarePods
        self.evictLocalStorage = evictLocalStorage
        self.evictKubeSystem = evictKubeSystem
        self.forceAfterTimeout = forceAfterTimeout
        self.abortBackoff = abortBackoff
        self.orphanTaintGrace = orphanTaintGrace
    }
}

/// CPU cores and memory bytes, as pods request and nodes offer them.
package struct Resources: Sendable, Equatable, Codable {
    package var cpu: Double
    package var memory: Double

    package init(cpu: Double, memory: Double) {
        self.cpu = cpu
        self.memory = memory
    }

    package static let zero = Resources(cpu: 0, memory: 0)
}

/// A Pod as the Kubernetes API lists it: what choosing and draining a node needs.
package struct ClusterPod: Sendable, Equatable {
    package enum Owner: Sendable, Equatable {
        /// Run by a DaemonSet: it tolerates the cordon and stays; a drain leaves it.
        case daemonSet
        /// A static pod's mirror: the kubelet runs it from a file; evicting it does nothing.
        case mirror
        /// No controller: an eviction deletes it for good.
        case none
        /// A ReplicaSet, StatefulSet, Job…: it makes a replacement elsewhere.
        case controller(kind: String)
    }

    package var namespace: String
    package var name: String
    package var uid: String
    package var node: String?
    package var owner: Owner
    /// Succeeded or Failed: it holds nothing and needs no eviction.
    package var finished: Bool
    /// Being deleted already (it has a deletion timestamp): nothing to evict, but not gone yet.
    package var terminating: Bool
    /// Its emptyDir and hostPath volumes.
    package var localStorage: [String]
    /// The `safe-to-evict` annotation (kscaler's or cluster-autoscaler's): false blocks a
    /// drain, true overrides the local-storage, bare-pod and kube-system rules.
    package var safeToEvict: Bool?
    package var requests: Resources
    /// The PodDisruptionBudgets selecting it, with the disruptions each allows now.
    package var budgets: [PodBudget]
    /// The scheduler could not place it (`PodScheduled` False, reason `Unschedulable`): a pod a
    /// pool may be grown for.
    package var unschedulable: Bool
    /// Its nodeSelector, required node affinity and tolerations: which pools can take it.
    package var placement: PlacementConstraints

    package init(namespace: String, name: String, uid: String, node: String?, owner: Owner, finished: Bool = false,
                 terminating: Bool = false, localStorage: [String] = [], safeToEvict: Bool? = nil, requests: Resources = .zero,
                 budgets: [PodBudget] = [], unschedulable: Bool = false, placement: PlacementConstraints = .none) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.node = node
        self.owner = owner
        self.finished = finished
        self.terminating = terminating
        self.localStorage = localStorage
        self.safeToEvict = safeToEvict
        self.requests = requests
        self.budgets = budgets
        self.unschedulable = unschedulable
        self.placement = placement
    }

    package var reference: String { "\(namespace)/\(name)" }

    /// Has to leave before its node can go: not a DaemonSet's, not a mirror, not finished.
    package var mustLeave: Bool {
        switch owner {
        case .daemonSet, .mirror: false
        case .none, .controller: !finished
        }
    }
}

/// A PodDisruptionBudget as one of its pods sees it.
package struct PodBudget: Sendable, Equatable {
    package var name: String
    package var disruptionsAllowed: Int

    package init(name: String, disruptionsAllowed: Int) {
        self.name = name
        self.disruptionsAllowed = disruptionsAllowed
    }
}

/// What the Kubernetes API listed this run, machine ids resolved.
package struct ClusterView: Sendable, Equatable {
    package var nodes: [ClusterNode]
    package var pods: [ClusterPod]

    package init(nodes: [ClusterNode], pods: [ClusterPod]) {
        self.nodes = nodes
        self.pods = pods
    }

    package func node(named name: String) -> ClusterNode? { nodes.first { $0.name == name } }
    package func node(ofMachine machine: String) -> ClusterNode? { nodes.first { $0.machineID == machine } }
    package func pods(on node: String) -> [ClusterPod] { pods.filter { $0.node == node } }
}

/// A node being drained before its machine is terminated, kept in the state item.
package struct OpenDrain: Sendable, Equatable, Codable {
    package var node: String
    package var machine: String
    package var startedAt: Date
    package var deadline: Date
    /// Why the last step could not go on (a PodDisruptionBudget, say); nil while it progresses.
    package var blockedBy: String?
    /// Pods that still had to leave at the last step.
    package var podsLeft: Int?

    package init(node: String, machine: String, startedAt: Date, deadline: Date, blockedBy: String? = nil, podsLeft: Int? = nil) {
        self.node = node
        self.machine = machine
        self.startedAt = startedAt
        self.deadline = deadline
        self.blockedBy = blockedBy
        self.podsLeft = podsLeft
    }

    enum CodingKeys: String, CodingKey {
        case node, machine, startedAt = "started_at", deadline, blockedBy = "blocked_by", podsLeft = "pods_left"
    }
}

/// A drain that was aborted: its node is not chosen again until `until`.
package struct AbortedDrain: Sendable, Equatable, Codable {
    package var node: String
    package var machine: String
    package var abortedAt: Date
    package var until: Date
    package var reason: String

    package init(node: String, machine: String, abortedAt: Date, until: Date, reason: String) {
        self.node = node
        self.machine = machine
        self.abortedAt = abortedAt
        self.until = until
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case node, machine, abortedAt = "aborted_at", until, reason }
}

/// What one run does about one open drain.
package struct DrainStep: Sendable, Equatable {
    package enum Action: Sendable, Equatable {
        /// Evict these pods (cordon and taint again first if `recordon`).
        case evict([ClusterPod])
        /// Pods still leaving (terminating): nothing to send this run.
        case wait(String)
        /// No pod has to leave any more: terminate the machine, delete the Node, close.
        case terminate
        /// The timeout passed with `force_after_timeout`: delete these pods, then terminate.
        case force([ClusterPod], blockedBy: String)
        /// The timeout passed: uncordon, untaint, close, and skip the node for a while.
        case abort(String)
        /// Pods are unschedulable: a running node is cheaper and faster than a new one.
        case cancel
        /// Nothing left to drain (the node or its machine is gone): close the drain only.
        case close(String)
    }

    package var drain: OpenDrain
    package var action: Action
    /// The node lost kscaler's cordon or taint (a crash between the state write and the
    /// cordon, or a hand edit): it is put back before anything is evicted.
    package var recordon: Bool
    /// Pods that still have to leave, after this step's observation.
    package var podsLeft: Int

    package init(drain: OpenDrain, action: Action, recordon: Bool = false, podsLeft: Int = 0) {
        self.drain = drain
        self.action = action
        self.recordon = recordon
        self.podsLeft = podsLeft
    }

    /// Its machine goes away: the drain stays open, or terminates it this run.
    package var removesMachine: Bool {
        switch action {
        case .evict, .wait, .terminate, .force: true
        case .abort, .cancel, .close: false
        }
    }

    /// Whether the drain stays open after this step.
    package var staysOpen: Bool {
        switch action {
        case .evict, .wait: true
        case .terminate, .force, .abort, .cancel, .close: false
        }
    }
}

/// The step for one open drain, from what this run observed. `machineLive`: the fleet still
/// lists its machine pending or running; `scaleUpWanted`: pods are unschedulable.
package func planDrainStep(_ drain: OpenDrain, cluster: ClusterView, machineLive: Bool, scaleUpWanted: Bool,
                           policy: DrainPolicy, now: Date) -> DrainStep {
    guard machineLive else { return DrainStep(drain: drain, action: .close("instance \(drain.machine) is gone (terminated outside the drain)")) }
    guard let node = cluster.node(named: drain.node) else {
        return DrainStep(drain: drain, action: .close("node \(drain.node) is no longer in the cluster"))
    }
    if scaleUpWanted { return DrainStep(drain: drain, action: .cancel) }
    let leaving = cluster.pods(on: node.name).filter(\.mustLeave)
    let recordon = !node.unschedulable || node.drainTaintedAt == nil
    guard !leaving.isEmpty else { return DrainStep(drain: drain, action: .terminate, recordon: recordon) }
    if now >= drain.deadline {
        let blocker = drain.blockedBy ?? describeLeaving(leaving)
        if policy.forceAfterTimeout { return DrainStep(drain: drain, action: .force(leaving, blockedBy: blocker), podsLeft: leaving.count) }
        return DrainStep(drain: drain, action: .abort("not drained within drain.timeout \(formatDuration(policy.timeout)): \(blocker)"),
                         podsLeft: leaving.count)
    }
    let evictable = leaving.filter { !$0.terminating }
    guard !evictable.isEmpty else {
        return DrainStep(drain: drain, action: .wait("\(leaving.count) pod\(leaving.count == 1 ? "" : "s") terminating"),
                         recordon: recordon, podsLeft: leaving.count)
    }
    return DrainStep(drain: drain, action: .evict(evictable), recordon: recordon, podsLeft: leaving.count)
}

private func describeLeaving(_ pods: [ClusterPod]) -> String {
    let names = pods.prefix(3).map(\.reference).joined(separator: ", ")
    return "\(pods.count) pod\(pods.count == 1 ? "" : "s") still on the node (\(names)\(pods.count > 3 ? ", …" : ""))"
}

/// Nodes carrying kscaler's taint with no open drain, tainted longer than the grace ago
/// (or with a value that is no time): the taint is to be removed and the node uncordoned.
package func orphanTaints(cluster: ClusterView, drains: [OpenDrain], grace: TimeInterval, now: Date) -> [ClusterNode] {
    let draining = Set(drains.map(\.node))
    return cluster.nodes.filter { node in
        guard node.hasDrainTaint, !draining.contains(node.name) else { return false }
        guard let since = node.drainTaintedAt else { return true }
        return now >= since.addingTimeInterval(grace)
    }
}

// MARK: - Choosing a node that can be drained

/// Why a pod keeps its node from being chosen, or nil when it can be evicted. A drain that
/// starts must be able to finish: anything an eviction may not move blocks the node up front.
package func evictionBlocker(_ pod: ClusterPod, policy: DrainPolicy) -> String? {
    guard pod.mustLeave else { return nil }
    if pod.safeToEvict == false { return "pod \(pod.reference) is annotated safe-to-evict: \"false\"" }
    if let budget = pod.budgets.first(where: { $0.disruptionsAllowed <= 0 }) {
        return "pod \(pod.reference): PodDisruptionBudget \(pod.namespace)/\(budget.name) allows no disruption now"
    }
    if pod.safeToEvict == true { return nil }
    if pod.owner == .none && !policy.deleteBarePods {
        return "pod \(pod.reference) has no controller (an eviction would delete it for good; drain.delete_bare_pods)"
    }
    if let volume = pod.localStorage.first, !policy.evictLocalStorage {
        return "pod \(pod.reference) uses local storage (volume \(volume); drain.evict_local_storage)"
    }
    if pod.namespace == "kube-system" && !policy.evictKubeSystem {
        return "pod \(pod.reference) is a kube-system pod (drain.evict_kube_system)"
    }
    return nil
}

/// Why a node cannot be drained at all, before looking at its pods.
func nodeBlocker(_ node: ClusterNode, aborted: [AbortedDrain], now: Date) -> String? {
    if node.scaleDownDisabled { return "node \(node.name) is annotated scale-down-disabled" }
    if node.isProtected(at: now) {
        return "node \(node.name) is annotated \(Protection.annotation)=\(node.protectedAnnotation ?? "")"
    }
    if node.unschedulable && !node.hasDrainTaint { return "node \(node.name) is cordoned by someone else" }
    if let abort = aborted.first(where: { $0.node == node.name && $0.until > now }) {
        return "node \(node.name): its drain was aborted \(formatDate(abort.abortedAt)) (\(abort.reason)); not chosen again until \(formatDate(abort.until))"
    }
    return nil
}

/// The room left on the nodes pods may move to, filled first-fit: a node is chosen only if
/// its pods fit on what remains once the nodes chosen before it are gone, so a scale-down
/// cannot leave pods unschedulable (and turn into a scale-up right after).
struct Room {
    private var free: [(node: String, room: Resources, labels: [String: String], taints: [Taint])]

    /// Room on every Ready, schedulable node no drain empties. A node with another NoSchedule
    /// taint takes only pods that tolerate it (a pool's dedicated nodes take that pool's pods),
    /// and only when its taints are known; every pod's nodeSelector and required node affinity
    /// are checked against the node's labels, as the scheduler would.
    /// One pass over the pods (a cluster may list tens of thousands), not one per node.
    init(cluster: ClusterView, leaving: Set<String>) {
        var used: [String: Resources] = [:]
        for pod in cluster.pods where !pod.finished {
            guard let node = pod.node else { continue }
            let sum = used[node, default: .zero]
            used[node] = Resources(cpu: sum.cpu + pod.requests.cpu, memory: sum.memory + pod.requests.memory)
        }
        let targets = cluster.nodes.filter { node in
            node.ready && !node.unschedulable && !node.hasDrainTaint && !leaving.contains(node.name)
                && (!node.hasOtherNoScheduleTaint || !node.taints.isEmpty)
        }
        free = targets.sorted { $0.name < $1.name }.compactMap { node in
            guard let allocatable = node.allocatable else { return nil }
            let taken = used[node.name, default: .zero]
            return (node.name, Resources(cpu: allocatable.cpu - taken.cpu, memory: allocatable.memory - taken.memory), node.labels, node.taints)
        }
    }

    /// Places the pods, largest first, each on the first node with room that it may run on; on
    /// failure changes nothing and says which pod found no room.
    mutating func place(_ pods: [ClusterPod], leaving node: String) -> String? {
        var trial = free.filter { $0.node != node }
        let ordered = pods.sorted { ($0.requests.cpu, $0.requests.memory, $0.reference) > ($1.requests.cpu, $1.requests.memory, $1.reference) }
        for pod in ordered {
            guard let index = trial.firstIndex(where: { target in
                target.room.cpu + 1e-9 >= pod.requests.cpu && target.room.memory + 1e-9 >= pod.requests.memory
                    && pod.placement.mismatch(labels: target.labels, taints: target.taints) == nil
            }) else {
                return "pod \(pod.reference) (\(formatNumber(pod.requests.cpu, decimals: 3)) cores, \(formatBytes(pod.requests.memory))) "
                    + "would not fit on the remaining Ready nodes it may run on"
            }
            trial[index].room.cpu -= pod.requests.cpu
            trial[index].room.memory -= pod.requests.memory
        }
        free = trial
        return nil
    }
}

// MARK: - The decision's part, and its JSON

/// What this run does about drains: a step for each open one, orphaned taints to remove, and
/// whether this decision's scale-down victims are drained first.
package struct DrainDecision: Sendable, Equatable, Codable {
    package var steps: [DrainStep]
    /// Nodes whose kscaler taint has no open drain: untainted and uncordoned (`orphanTaints`).
    package var untaint: [String]
    /// The Kubernetes API is on: victims are cordoned and drained, not terminated at once.
    package var drainVictims: Bool
    /// Machines the backend is taking back (Spot interruptions) whose nodes start draining now,
    /// whatever else the run does: their pods must move before the machine goes.
    package var interrupted: [Victim]

    package init(steps: [DrainStep] = [], untaint: [String] = [], drainVictims: Bool = false, interrupted: [Victim] = []) {
        self.steps = steps
        self.untaint = untaint
        self.drainVictims = drainVictims
        self.interrupted = interrupted
    }

    private enum CodingKeys: String, CodingKey { case steps, untaint, drainVictims = "drain_victims", interrupted }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(steps: try container.decode([DrainStep].self, forKey: .steps), untaint: try container.decode([String].self, forKey: .untaint),
                  drainVictims: try container.decode(Bool.self, forKey: .drainVictims),
                  interrupted: try container.decodeIfPresent([Victim].self, forKey: .interrupted) ?? [])
    }
}

extension DrainStep: Codable {
    private enum CodingKeys: String, CodingKey { case drain, action, pods, reason, recordon, podsLeft = "pods_left" }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(drain, forKey: .drain)
        try container.encode(recordon, forKey: .recordon)
        try container.encode(podsLeft, forKey: .podsLeft)
        switch action {
        case .evict(let pods):
            try container.encode("evict", forKey: .action)
            try container.encode(pods, forKey: .pods)
        case .wait(let reason):
            try container.encode("wait", forKey: .action)
            try container.encode(reason, forKey: .reason)
        case .terminate:
            try container.encode("terminate", forKey: .action)
        case .force(let pods, let blocker):
            try container.encode("force", forKey: .action)
            try container.encode(pods, forKey: .pods)
            try container.encode(blocker, forKey: .reason)
        case .abort(let reason):
            try container.encode("abort", forKey: .action)
            try container.encode(reason, forKey: .reason)
        case .cancel:
            try container.encode("cancel", forKey: .action)
        case .close(let reason):
            try container.encode("close", forKey: .action)
            try container.encode(reason, forKey: .reason)
        }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        drain = try container.decode(OpenDrain.self, forKey: .drain)
        recordon = try container.decodeIfPresent(Bool.self, forKey: .recordon) ?? false
        podsLeft = try container.decodeIfPresent(Int.self, forKey: .podsLeft) ?? 0
        let pods = { try container.decodeIfPresent([ClusterPod].self, forKey: .pods) ?? [] }
        let reason = { try container.decodeIfPresent(String.self, forKey: .reason) ?? "" }
        switch try container.decode(String.self, forKey: .action) {
        case "evict": action = .evict(try pods())
        case "wait": action = .wait(try reason())
        case "terminate": action = .terminate
        case "force": action = .force(try pods(), blockedBy: try reason())
        case "abort": action = .abort(try reason())
        case "cancel": action = .cancel
        case "close": action = .close(try reason())
        case let other: throw DecodingError.dataCorruptedError(forKey: .action, in: container, debugDescription: "unknown drain action \(other)")
        }
    }
}

extension ClusterPod: Codable {
    private enum CodingKeys: String, CodingKey {
        case namespace, name, uid, node, owner, finished, terminating, localStorage = "local_storage", safeToEvict = "safe_to_evict"
        case requests, budgets
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(namespace, forKey: .namespace)
        try container.encode(name, forKey: .name)
        try container.encode(uid, forKey: .uid)
        try container.encodeIfPresent(node, forKey: .node)
        let owner = switch owner {
        case .daemonSet: "DaemonSet"
        case .mirror: "mirror"
        case .none: "none"
        case .controller(let kind): kind
        }
        try container.encode(owner, forKey: .owner)
        try container.encode(finished, forKey: .finished)
        try container.encode(terminating, forKey: .terminating)
        try container.encode(localStorage, forKey: .localStorage)
        try container.encodeIfPresent(safeToEvict, forKey: .safeToEvict)
        try container.encode(requests, forKey: .requests)
        try container.encode(budgets, forKey: .budgets)
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let owner: Owner = switch try container.decode(String.self, forKey: .owner) {
        case "DaemonSet": .daemonSet
        case "mirror": .mirror
        case "none": .none
        case let kind: .controller(kind: kind)
        }
        self.init(namespace: try container.decode(String.self, forKey: .namespace), name: try container.decode(String.self, forKey: .name),
                  uid: try container.decode(String.self, forKey: .uid), node: try container.decodeIfPresent(String.self, forKey: .node),
                  owner: owner, finished: try container.decodeIfPresent(Bool.self, forKey: .finished) ?? false,
                  terminating: try container.decodeIfPresent(Bool.self, forKey: .terminating) ?? false,
                  localStorage: try container.decodeIfPresent([String].self, forKey: .localStorage) ?? [],
                  safeToEvict: try container.decodeIfPresent(Bool.self, forKey: .safeToEvict),
                  requests: try container.decodeIfPresent(Resources.self, forKey: .requests) ?? .zero,
                  budgets: try container.decodeIfPresent([PodBudget].self, forKey: .budgets) ?? [])
    }
}

extension PodBudget: Codable {
    private enum CodingKeys: String, CodingKey { case name, disruptionsAllowed = "disruptions_allowed" }
}
