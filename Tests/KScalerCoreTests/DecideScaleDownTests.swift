#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

@Suite("decide: scale-down and victims")
struct DecideScaleDownTests {
    /// Three long-running workers, everything quiet for the whole window.
    static func quietCluster(workers: Int = 3) -> Cluster {
        var cluster = Cluster(workers: workers)
        cluster.set(.cpuUtilization, .value(0.1))
        cluster.set(.memoryUtilization, .value(0.1))
        cluster.set(.cpuUtilizationWindowMax, .value(0.2))
        cluster.set(.memoryUtilizationWindowMax, .value(0.2))
        return cluster
    }

    @Test("both window maxima below 30 % and nothing pending: remove one node")
    func scaleDown() {
        let decision = Self.quietCluster().decide()
        #expect(decision.victimIDs?.count == 1)
        #expect(decision.counts.desired == 2)
        #expect(decision.reasons(.lowUtilization).first == "cpu window max 20 % < 30 % and memory window max 20 % < 30 % over 10m, no unschedulable pods")
        #expect(decision.signals.first { $0.signal == .cpuUtilizationWindowMax }?.verdict == .allowsScaleDown)
    }

    @Test("a window maximum exactly at its threshold holds the scale-down",
          arguments: [(0.30, 0.2), (0.2, 0.30), (0.29999, 0.29999)])
    func thresholdBoundary(cpu: Double, memory: Double) {
        var cluster = Self.quietCluster()
        cluster.set(.cpuUtilizationWindowMax, .value(cpu))
        cluster.set(.memoryUtilizationWindowMax, .value(memory))
        let decision = cluster.decide()
        let expectDown = cpu < 0.3 && memory < 0.3
        #expect((decision.victimIDs != nil) == expectDown)
        #expect(decision.has(.steady) == !expectDown)
    }

    @Test("unschedulable pods never allow a scale-down")
    func unschedulableBlocks() {
        var cluster = Self.quietCluster()
        cluster.set(.unschedulablePods, .value(1))
        cluster.state.lastScaleUpAt = cluster.now  // scale-up in cooldown, so nothing launches either
        let decision = cluster.decide()
        #expect(decision.isNone)
        #expect(decision.has(.scaleUpCooldown))
        #expect(!decision.has(.lowUtilization))
    }

    @Test("delay after scale-up holds until exactly its end", arguments: [(599.0, true), (600.0, false)])
    func delayAfterScaleUp(secondsSince: TimeInterval, blocked: Bool) {
        var cluster = Self.quietCluster()
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-secondsSince)
        let decision = cluster.decide()
        #expect((decision.victimIDs == nil) == blocked)
        let reason = decision.reasons(.scaleDownDelay).first
        #expect((reason != nil) == blocked)
        if blocked {
            #expect(reason == "scale-down blocked: delay after scale-up ends \(formatDate(cluster.now.addingTimeInterval(1))) (in 1s)")
        }
    }

    @Test("scale-down cooldown holds until exactly its end", arguments: [(299.0, true), (300.0, false)])
    func scaleDownCooldown(secondsSince: TimeInterval, blocked: Bool) {
        var cluster = Self.quietCluster()
        cluster.state.lastScaleDownAt = cluster.now.addingTimeInterval(-secondsSince)
        let decision = cluster.decide()
        #expect((decision.victimIDs == nil) == blocked)
        #expect(decision.has(.scaleDownCooldown) == blocked)
        #expect(decision.cooldowns.first { $0.name == .scaleDownCooldown }?.active == blocked)
    }

    @Test("a booting node blocks scale-down")
    func bootingBlocks() {
        var cluster = Self.quietCluster()
        cluster.addWorker(age: 10 * 60 + 1, ready: true)
        cluster.state.lastScaleUpAt = nil
        #expect(cluster.decide().victimIDs?.count == 1)
        cluster.addWorker(age: 4 * 60, ready: false)
        var policy = Policy.test()
        policy.scaleDown.delayAfterScaleUp = 60
        let decision = cluster.decide(policy)
        #expect(decision.isNone)
        #expect(decision.reasons(.scaleDownBooting) == ["scale-down blocked: 1 node is still booting"])
    }

    @Test("never below min; at most max_step", arguments: [(1, 5, 2), (3, 5, 0), (1, 1, 1), (2, 10, 1)])
    func stepAndMinimum(min: Int, maxStep: Int, expected: Int) {
        let decision = Self.quietCluster().decide(.test(min: min, scaleDown: ScaleDownPolicy(maxStep: maxStep)))
        #expect(decision.victimIDs?.count ?? 0 == expected)
        #expect(decision.counts.desired == 3 - expected)
        #expect(decision.has(.atMinimum) == (expected == 0))
    }

    // MARK: Victims

    @Test("fewest non-DaemonSet pods first, unknown counts last")
    func fewestPodsFirst() {
        var cluster = Self.quietCluster(workers: 0)
        let busy = cluster.addWorker(pods: 9)
        let idle = cluster.addWorker(age: 90_000, pods: 0)
        let unknown = cluster.addWorker(pods: nil)
        let some = cluster.addWorker(pods: 2)
        let decision = cluster.decide(.test(scaleDown: ScaleDownPolicy(maxStep: 4)))
        #expect(decision.victimIDs == [idle, some, busy])
        let last = cluster.decide(.test(min: 0, scaleDown: ScaleDownPolicy(maxStep: 4)))
        #expect(last.victimIDs == [idle, some, busy, unknown])
    }

    @Test("ties: newest first by default, oldest first when configured", arguments: [VictimOrder.newestFirst, .oldestFirst])
    func order(order: VictimOrder) {
        var cluster = Self.quietCluster(workers: 0)
        let old = cluster.addWorker(age: 30_000, pods: 1)
        let middle = cluster.addWorker(age: 20_000, pods: 1)
        let new = cluster.addWorker(age: 10_000, pods: 1)
        let decision = cluster.decide(.test(min: 0, scaleDown: ScaleDownPolicy(maxStep: 3), victims: VictimPolicy(order: order)))
        #expect(decision.victimIDs == (order == .newestFirst ? [new, middle, old] : [old, middle, new]))
    }

    @Test("protected (tag or list) and pending instances are never victims")
    func protectedNeverChosen() {
        var cluster = Self.quietCluster(workers: 0)
        cluster.addWorker(pods: 0, protected: true)
        let listed = cluster.addWorker(pods: 0)
        cluster.addWorker(pods: 0, state: .pending)
        let plain = cluster.addWorker(pods: 7)
        let policy = Policy.test(min: 0, scaleDown: ScaleDownPolicy(maxStep: 4), victims: VictimPolicy(protectedInstances: [listed]))
        let decision = cluster.decide(policy)
        #expect(decision.victimIDs == [plain])
        #expect(decision.reasons(.victimsChosen).first?.contains("only 1 of 4 wanted could be chosen") == true)
    }

    @Test("nothing removable: said plainly")
    func noVictims() {
        var cluster = Self.quietCluster(workers: 0)
        for _ in 0..<3 { cluster.addWorker(protected: true) }
        let decision = cluster.decide()
        #expect(decision.isNone)
        #expect(decision.has(.noVictims))
    }

    @Test("foreign nodes are never victims, even idle ones")
    func foreignNodesNeverChosen() {
        var cluster = Self.quietCluster(workers: 2)
        cluster.nodes.append(NodeObservation(name: "i-0ffffffff", instanceID: "i-0ffffffff", ready: true, nonDaemonSetPods: 0))
        let decision = cluster.decide(.test(min: 0, scaleDown: ScaleDownPolicy(maxStep: 5)))
        #expect(Set(decision.victimIDs ?? []) == Set(cluster.instances.map(\.id)))
    }
}
