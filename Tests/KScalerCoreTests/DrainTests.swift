#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

/// Builders for the Kubernetes API's view in drain tests: worker nodes of 2 cores / 8 GiB.
private enum K {
    static let gibibyte = 1_073_741_824.0

    static func node(_ name: String, machine: String? = nil, ready: Bool = true, cordoned: Bool = false, tainted: Date? = nil,
                     disabled: Bool = false, cpu: Double = 2, memory: Double = 8 * gibibyte) -> ClusterNode {
        ClusterNode(name: name, uid: "uid-\(name)", providerID: nil, ready: ready, machineID: machine ?? name, unschedulable: cordoned,
                    hasDrainTaint: tainted != nil, drainTaintedAt: tainted, scaleDownDisabled: disabled,
                    allocatable: Resources(cpu: cpu, memory: memory))
    }

    static func pod(_ name: String, on node: String?, owner: ClusterPod.Owner = .controller(kind: "ReplicaSet"), namespace: String = "default",
                    cpu: Double = 0.5, memory: Double = 0.5 * gibibyte, terminating: Bool = false, finished: Bool = false,
                    localStorage: [String] = [], safeToEvict: Bool? = nil, budgets: [PodBudget] = []) -> ClusterPod {
        ClusterPod(namespace: namespace, name: name, uid: "uid-\(name)", node: node, owner: owner, finished: finished, terminating: terminating,
                   localStorage: localStorage, safeToEvict: safeToEvict, requests: Resources(cpu: cpu, memory: memory), budgets: budgets)
    }

    static func drain(_ node: String, startedAt: Date = t0, timeout: TimeInterval = 600) -> OpenDrain {
        OpenDrain(node: node, machine: node, startedAt: startedAt, deadline: startedAt.addingTimeInterval(timeout))
    }
}

@Suite("drain: which pods keep a node from being drained")
struct EvictionBlockerTests {
    let policy = DrainPolicy()

    @Test("each rule alone blocks, and only that rule")
    func eachRuleAlone() {
        let rules: [(ClusterPod, String)] = [
            (K.pod("bare", on: "n", owner: .none), "has no controller"),
            (K.pod("scratch", on: "n", localStorage: ["cache"]), "uses local storage (volume cache"),
            (K.pod("dns", on: "n", namespace: "kube-system"), "is a kube-system pod"),
            (K.pod("pinned", on: "n", safeToEvict: false), "safe-to-evict: \"false\""),
            (K.pod("web", on: "n", budgets: [PodBudget(name: "web-pdb", disruptionsAllowed: 0)]), "PodDisruptionBudget default/web-pdb allows no disruption"),
        ]
        for (pod, expected) in rules {
            let blocker = evictionBlocker(pod, policy: policy)
            #expect(blocker?.contains(expected) == true, "\(pod.name): \(blocker ?? "nil")")
        }
        #expect(evictionBlocker(K.pod("plain", on: "n"), policy: policy) == nil)
        #expect(evictionBlocker(K.pod("web", on: "n", budgets: [PodBudget(name: "web-pdb", disruptionsAllowed: 1)]), policy: policy) == nil)
    }

    @Test("each setting lifts its own rule; safe-to-evict true lifts all but the budget")
    func settingsLiftRules() {
        var lifted = policy
        lifted.deleteBarePods = true
        lifted.evictLocalStorage = true
        lifted.evictKubeSystem = true
        #expect(evictionBlocker(K.pod("bare", on: "n", owner: .none), policy: lifted) == nil)
        #expect(evictionBlocker(K.pod("scratch", on: "n", localStorage: ["cache"]), policy: lifted) == nil)
        #expect(evictionBlocker(K.pod("dns", on: "n", namespace: "kube-system"), policy: lifted) == nil)
        // All three at once on one pod, lifted by its annotation alone.
        let everything = K.pod("all", on: "n", owner: .none, namespace: "kube-system", localStorage: ["tmp"], safeToEvict: true)
        #expect(evictionBlocker(everything, policy: policy) == nil)
        #expect(evictionBlocker(K.pod("all", on: "n", owner: .none, namespace: "kube-system", localStorage: ["tmp"]), policy: policy) != nil)
        // No annotation lifts a budget that allows nothing now.
        let budgeted = K.pod("web", on: "n", safeToEvict: true, budgets: [PodBudget(name: "b", disruptionsAllowed: 0)])
        #expect(evictionBlocker(budgeted, policy: lifted) != nil)
    }

    @Test("DaemonSet pods, mirror pods and finished pods never block and never have to leave")
    func stayingPodsNeverBlock() {
        let staying = [K.pod("ds", on: "n", owner: .daemonSet, localStorage: ["x"], safeToEvict: false),
                       K.pod("static", on: "n", owner: .mirror, namespace: "kube-system"),
                       K.pod("done", on: "n", owner: .none, finished: true)]
        for pod in staying {
            #expect(!pod.mustLeave)
            #expect(evictionBlocker(pod, policy: policy) == nil)
        }
    }
}

@Suite("drain: the state machine, one step per run")
struct DrainStepTests {
    let policy = DrainPolicy()
    let drain = K.drain("i-a")

    func step(nodes: [ClusterNode] = [K.node("i-a", cordoned: true, tainted: t0)], pods: [ClusterPod], live: Bool = true,
              scaleUp: Bool = false, force: Bool = false, at now: Date = t0.addingTimeInterval(60)) -> DrainStep {
        var policy = policy
        policy.forceAfterTimeout = force
        return planDrainStep(drain, cluster: ClusterView(nodes: nodes, pods: pods), machineLive: live, scaleUpWanted: scaleUp, policy: policy, now: now)
    }

    @Test("every state × every event")
    func table() {
        let web = K.pod("web-1", on: "i-a")
        let leaving = K.pod("web-2", on: "i-a", terminating: true)
        let daemon = K.pod("ds", on: "i-a", owner: .daemonSet)
        let late = t0.addingTimeInterval(600)

        // The machine went away (terminated by someone else, or by this drain before a crash): close.
        #expect(step(pods: [web], live: false).action == .close("instance i-a is gone (terminated outside the drain)"))
        // The node vanished: close, whatever else holds.
        #expect(step(nodes: [], pods: [web], scaleUp: true).action == .close("node i-a is no longer in the cluster"))
        // Pods unschedulable: cancel, before anything else is looked at (also past the deadline).
        #expect(step(pods: [web], scaleUp: true, at: late).action == .cancel)
        // Pods left, before the deadline: evict those not already terminating.
        #expect(step(pods: [web, leaving, daemon]).action == .evict([web]))
        #expect(step(pods: [web, leaving, daemon]).podsLeft == 2)
        // Only terminating pods left: wait for them.
        #expect(step(pods: [leaving, daemon]).action == .wait("1 pod terminating"))
        // Nothing has to leave (DaemonSet pods stay): terminate.
        #expect(step(pods: [daemon]).action == .terminate)
        #expect(step(pods: [daemon], at: late).action == .terminate)
        // At the deadline exactly, pods still there: abort, or force with the setting.
        let aborted = step(pods: [web], at: late)
        guard case .abort(let why) = aborted.action else { Issue.record("expected abort, got \(aborted.action)"); return }
        #expect(why.contains("not drained within drain.timeout 10m") && why.contains("default/web-1"))
        #expect(step(pods: [web, leaving], force: true, at: late).action == .force([web, leaving], blockedBy: "2 pods still on the node (default/web-1, default/web-2)"))
        // One second before the deadline it is still a drain.
        #expect(step(pods: [web], at: late.addingTimeInterval(-1)).action == .evict([web]))
    }

    @Test("a drain whose cordon or taint is missing (a crash, a hand edit) cordons again before evicting")
    func recordon() {
        let web = K.pod("web-1", on: "i-a")
        #expect(step(pods: [web]).recordon == false)
        #expect(step(nodes: [K.node("i-a", cordoned: false, tainted: t0)], pods: [web]).recordon)
        #expect(step(nodes: [K.node("i-a", cordoned: true, tainted: nil)], pods: [web]).recordon)
    }

    @Test("a blocker recorded by an earlier run is what an abort names")
    func abortNamesTheBlocker() {
        var blocked = drain
        blocked.blockedBy = "pod default/web-1: Cannot evict pod as it would violate the pod's disruption budget."
        let step = planDrainStep(blocked, cluster: ClusterView(nodes: [K.node("i-a", cordoned: true, tainted: t0)], pods: [K.pod("web-1", on: "i-a")]),
                                 machineLive: true, scaleUpWanted: false, policy: policy, now: t0.addingTimeInterval(601))
        guard case .abort(let why) = step.action else { Issue.record("expected abort"); return }
        #expect(why.contains("disruption budget"))
    }

    @Test("kscaler's taint on a node with no open drain is removed after the grace, not before")
    func orphanTaint() {
        let cluster = ClusterView(nodes: [K.node("i-a", cordoned: true, tainted: t0), K.node("i-b", cordoned: true, tainted: t0),
                                          K.node("i-c", cordoned: true)], pods: [])
        #expect(orphanTaints(cluster: cluster, drains: [K.drain("i-b")], grace: 120, now: t0.addingTimeInterval(119)).isEmpty)
        #expect(orphanTaints(cluster: cluster, drains: [K.drain("i-b")], grace: 120, now: t0.addingTimeInterval(120)).map(\.name) == ["i-a"])
    }
}

@Suite("drain: decide chooses drainable nodes and advances drains")
struct DrainDecideTests {
    /// Workers of 2 cores with `podsPerWorker` pods of 0.25 core each and a small DaemonSet pod,
    /// quiet enough to scale down.
    static func quiet(podsPerWorker: [Int] = [1, 3, 3]) -> Cluster {
        var cluster = Cluster()
        var nodes: [ClusterNode] = [K.node("control-plane", machine: "", cpu: 0, memory: 0)]
        var pods: [ClusterPod] = []
        for (index, count) in podsPerWorker.enumerated() {
            let id = cluster.addWorker(age: 86_400 - Double(index), pods: count)
            nodes.append(K.node(id, machine: id))
            pods += (0..<count).map { K.pod("p\(index)-\($0)", on: id, cpu: 0.25) } + [K.pod("ds-\(index)", on: id, owner: .daemonSet, cpu: 0.05)]
        }
        nodes[0].machineID = nil
        cluster.cluster = ClusterView(nodes: nodes, pods: pods)
        cluster.set(.cpuUtilizationWindowMax, .value(0.1))
        cluster.set(.memoryUtilizationWindowMax, .value(0.1))
        return cluster
    }

    static func emptiest(_ cluster: Cluster) -> String { cluster.instances[0].id }

    @Test("with the API a scale-down drains its victim; without it, only with scale_down.without_drain")
    func drainOrNothing() {
        var cluster = Self.quiet()
        let drained = cluster.decide(.test(withoutDrain: false))
        #expect(drained.victimIDs == [Self.emptiest(cluster)], "\(drained.reasons.map(\.message))")
        #expect(drained.drain.drainVictims)
        #expect(drained.reasons(.victimsChosen).first?.hasPrefix("drain, then terminate,") == true)

        cluster.cluster = nil
        let refused = cluster.decide(.test(withoutDrain: false))
        #expect(refused.isNone)
        #expect(refused.reasons(.drainUnavailable).first?.contains("scale_down.without_drain is not set") == true)
        let terminated = cluster.decide(.test(withoutDrain: true))
        #expect(terminated.victimIDs == [Self.emptiest(cluster)])
        #expect(!terminated.drain.drainVictims)
    }

    @Test("a node is skipped when a pod may not be evicted, when it is opted out, or when its pods would not fit elsewhere")
    func skipsUndrainableNodes() throws {
        var cluster = Self.quiet(podsPerWorker: [1, 1, 3])
        let (a, b, c) = (cluster.instances[0].id, cluster.instances[1].id, cluster.instances[2].id)
        var view = try #require(cluster.cluster)
        view.pods.append(K.pod("bare", on: a, owner: .none, cpu: 0.1))
        view.nodes[view.nodes.firstIndex { $0.name == b }!].scaleDownDisabled = true
        cluster.cluster = view
        let decision = cluster.decide(.test(withoutDrain: false))
        #expect(decision.victimIDs == [c])
        #expect(decision.reasons(.notDrainable).contains { $0.contains(a) && $0.contains("has no controller") })
        #expect(decision.reasons(.notDrainable).contains { $0.contains(b) && $0.contains("scale-down-disabled") })

        // c's three pods (0.75 cores) fit on a and b only while those have room: with 1.4 cores more
        // on each, 0.2 and 0.3 cores are left, room for one of them.
        view.pods += [K.pod("big-a", on: a, cpu: 1.4), K.pod("big-b", on: b, cpu: 1.4)]
        cluster.cluster = view
        let full = cluster.decide(.test(withoutDrain: false))
        #expect(full.isNone)
        #expect(full.reasons(.notDrainable).contains { $0.contains(c) && $0.contains("would not fit on the remaining Ready nodes") })
    }

    @Test("first fit: the second victim's pods must fit without the first victim's node, and after its pods moved")
    func fitIsCumulative() {
        var cluster = Self.quiet(podsPerWorker: [1, 1, 1])
        let decision = cluster.decide(.test(min: 0, scaleDown: ScaleDownPolicy(maxStep: 3), withoutDrain: false))
        // Each holds 0.3 cores: the first two victims' pods move on; the last worker's have nowhere left to go.
        #expect(decision.victimIDs?.count == 2)
        #expect(decision.reasons(.notDrainable).contains { $0.contains("would not fit") })
        #expect(cluster.decide(.test(min: 0, scaleDown: ScaleDownPolicy(maxStep: 3), withoutDrain: false)) == decision)
    }

    @Test("open drains count against max_step and the minimum; a finishing drain starts the cooldown, no new drain")
    func openDrainsLimitNewOnes() {
        var cluster = Self.quiet()
        let first = cluster.instances[0].id
        cluster.drains = [K.drain(first, startedAt: t0.addingTimeInterval(-60))]
        cluster.cluster?.nodes[1].unschedulable = true
        cluster.cluster?.nodes[1].hasDrainTaint = true
        cluster.cluster?.nodes[1].drainTaintedAt = t0
        let held = cluster.decide(.test(withoutDrain: false))
        #expect(held.drain.steps.map(\.action) == [.evict([K.pod("p0-0", on: first, cpu: 0.25)])])
        #expect(held.isNone)
        #expect(held.reasons(.drainsOpen).contains { $0.contains("1 drain open, scale_down.max_step 1") })

        // Its pod gone: the drain terminates this run, and no other drain starts with it.
        cluster.cluster?.pods.removeAll { $0.name == "p0-0" }
        let finishing = cluster.decide(.test(scaleDown: ScaleDownPolicy(maxStep: 2), withoutDrain: false))
        #expect(finishing.drain.steps.map(\.action) == [.terminate])
        #expect(finishing.isNone)
        #expect(finishing.reasons(.scaleDownCooldown).contains { $0.contains("a drain finishes this run") })

        // min 2 with 3 workers and one draining: no second drain even with max_step 2.
        cluster.cluster?.pods.append(K.pod("p0-0", on: first, cpu: 0.25))
        let atMin = cluster.decide(.test(min: 2, scaleDown: ScaleDownPolicy(maxStep: 2), withoutDrain: false))
        #expect(atMin.isNone)
        #expect(atMin.has(.atMinimum))
    }

    @Test("unschedulable pods cancel every open drain first, and the kept nodes count against the launch")
    func scaleUpWins() {
        var cluster = Self.quiet()
        let first = cluster.instances[0].id
        cluster.drains = [K.drain(first)]
        cluster.set(.unschedulablePods, .value(1))
        cluster.set(.pendingCPURequestCores, .value(0.5))
        cluster.set(.pendingMemoryRequestBytes, .value(1e8))
        let kept = cluster.decide(.test(withoutDrain: false))
        #expect(kept.drain.steps.map(\.action) == [.cancel])
        #expect(kept.isNone)
        #expect(kept.reasons(.drainsCancelled).first?.contains("they cover it") == true)

        cluster.set(.unschedulablePods, .value(6))
        cluster.set(.pendingCPURequestCores, .value(6))
        let more = cluster.decide(.test(withoutDrain: false))
        #expect(more.drain.steps.map(\.action) == [.cancel])
        #expect(more.scaleUpCount == 2)  // 3 nodes needed, one kept
    }

    @Test("a fleet that lost an instance mid-drain keeps the drained node rather than fall below the minimum")
    func minimumCancelsTheNewestDrain() {
        var cluster = Self.quiet()
        let (a, b) = (cluster.instances[0].id, cluster.instances[1].id)
        cluster.drains = [K.drain(a, startedAt: t0.addingTimeInterval(-120)), K.drain(b, startedAt: t0.addingTimeInterval(-60))]
        let decision = cluster.decide(.test(min: 2, scaleDown: ScaleDownPolicy(maxStep: 2), withoutDrain: false))
        #expect(decision.drain.steps.map(\.drain.node) == [a, b])
        #expect(decision.drain.steps.last?.action == .cancel)
        #expect(decision.drain.steps.first?.action != .cancel)
    }

    @Test("nothing moves while a required signal is missing, drains included")
    func haltedRunsLeaveDrainsAlone() {
        var cluster = Self.quiet()
        cluster.drains = [K.drain(cluster.instances[0].id)]
        cluster.cluster?.pods.removeAll { $0.node == cluster.instances[0].id && $0.owner != .daemonSet }
        cluster.set(.unschedulablePods, .noData)
        let decision = cluster.decide(.test(withoutDrain: false))
        #expect(decision.halt == .missingSignals)
        #expect(decision.drain.steps.isEmpty)
    }

    @Test("a node whose drain was aborted is not chosen again until the backoff ends")
    func abortBackoff() {
        var cluster = Self.quiet()
        let first = cluster.instances[0].id
        cluster.abortedDrains = [AbortedDrain(node: first, machine: first, abortedAt: t0.addingTimeInterval(-60), until: t0.addingTimeInterval(60),
                                              reason: "PDB")]
        let decision = cluster.decide(.test(withoutDrain: false))
        #expect(decision.victimIDs?.contains(first) == false)
        #expect(decision.reasons(.notDrainable).contains { $0.contains("its drain was aborted") })
        cluster.now = t0.addingTimeInterval(60)
        #expect(cluster.decide(.test(withoutDrain: false)).victimIDs == [first])
    }
}

@Suite("drain: properties over random clusters")
struct DrainProperties {
    @Test("never terminates over an evictable pod unless forced; never more drains than max_step; unschedulable pods cancel every drain")
    func properties() {
        var random = SplitMix(state: 0xD7A1)
        for round in 0..<400 {
            var cluster = Cluster()
            let workers = random.int(1...6)
            var nodes: [ClusterNode] = []
            var pods: [ClusterPod] = []
            for index in 0..<workers {
                let id = cluster.addWorker(age: 86_400 - Double(index), pods: random.int(0...3))
                nodes.append(K.node(id, cordoned: random.chance(0.3), tainted: random.chance(0.3) ? t0.addingTimeInterval(-random.double(0...600)) : nil,
                                    disabled: random.chance(0.1)))
                for p in 0..<random.int(0...3) {
                    pods.append(K.pod("p\(index)-\(p)", on: id, owner: random.pick([ClusterPod.Owner.none, .daemonSet, .mirror, .controller(kind: "ReplicaSet")]),
                                      cpu: random.double(0...1), terminating: random.chance(0.2), finished: random.chance(0.1),
                                      budgets: random.chance(0.3) ? [PodBudget(name: "b", disruptionsAllowed: random.int(0...1))] : []))
                }
            }
            cluster.cluster = ClusterView(nodes: nodes, pods: pods)
            cluster.drains = random.subset(cluster.instances.map(\.id)).map { K.drain($0, startedAt: t0.addingTimeInterval(-random.double(0...900))) }
            let force = random.chance(0.5)
            let maxStep = random.int(1...3)
            let scaleUp = random.chance(0.3)
            cluster.set(.unschedulablePods, .value(scaleUp ? 2 : 0))
            cluster.set(.pendingCPURequestCores, .value(scaleUp ? 1 : 0))
            cluster.set(.pendingMemoryRequestBytes, .value(scaleUp ? 1e8 : 0))
            cluster.set(.cpuUtilizationWindowMax, .value(random.double(0...0.5)))
            let policy = Policy.test(min: random.int(0...2), scaleDown: ScaleDownPolicy(maxStep: maxStep), withoutDrain: false,
                                     drain: DrainPolicy(forceAfterTimeout: force))
            let decision = cluster.decide(policy)

            for step in decision.drain.steps {
                let left = pods.filter { $0.node == step.drain.node && $0.mustLeave }
                if step.action == DrainStep.Action.terminate { #expect(left.isEmpty, "round \(round): terminate over \(left.map(\.name))") }
                if case .force = step.action { #expect(force, "round \(round): forced without force_after_timeout") }
                if scaleUp { #expect(step.action == DrainStep.Action.cancel, "round \(round): \(step.action) while pods are unschedulable") }
            }
            let open = decision.drain.steps.count { $0.staysOpen }
            let started = decision.victimIDs?.count ?? 0
            if started > 0 { #expect(open + started <= maxStep, "round \(round): \(open) open + \(started) new > \(maxStep)") }
            if scaleUp { #expect(decision.victimIDs == nil, "round \(round): a scale-down while pods are unschedulable") }
        }
    }
}

/// A seeded generator (SplitMix64), so a failing round can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func double(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &self) }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    mutating func subset<T>(_ items: [T]) -> [T] { items.filter { _ in chance(0.5) } }
}
