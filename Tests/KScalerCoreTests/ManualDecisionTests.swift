#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

@Suite("Decision.manual: an operator's target, within the same safety rules")
struct ManualDecisionTests {
    func manual(_ cluster: Cluster, target: Int, _ policy: Policy = .test()) -> Decision {
        Decision.manual(target: target, observation: cluster.observation, policy: policy, now: cluster.now)
    }

    @Test("up to the target, in the usual launch order, max_step per run, whatever the cooldowns")
    func upToTheTarget() {
        var cluster = Cluster(workers: 2)
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-1)
        let decision = manual(cluster, target: 5)
        #expect(decision.scaleUpCount == 3)
        #expect(decision.launchCandidates == KScalerCore.decide(cluster.observation, policy: .test(min: 5), now: cluster.now).launchCandidates)
        #expect(decision.reasons(.manualTarget) == ["manual target 5 nodes, 2 now: launch 3"])
        #expect(manual(cluster, target: 9, .test(scaleUp: ScaleUpPolicy(maxStep: 2))).scaleUpCount == 2)
    }

    @Test("the target is kept within nodes.min … nodes.max")
    func bounded() {
        let cluster = Cluster(workers: 2)
        #expect(manual(cluster, target: 50, .test(max: 6)).scaleUpCount == 4)
        #expect(manual(cluster, target: 50, .test(max: 6)).reasons(.manualTarget).first?.contains("(kept within nodes.min 1 … nodes.max 6: 6)") == true)
        #expect(manual(cluster, target: 0, .test(min: 2)).isNone)
    }

    @Test("down to the target, victims as decide picks them, protected ones never")
    func downToTheTarget() {
        var cluster = Cluster()
        let busy = cluster.addWorker(age: 3600, pods: 9)
        let idle = cluster.addWorker(age: 7200, pods: 0)
        let protected = cluster.addWorker(age: 60, pods: 0, protected: true)
        let decision = manual(cluster, target: 1, .test(scaleDown: ScaleDownPolicy(maxStep: 5)))
        #expect(decision.victimIDs == [idle, busy])
        #expect(decision.victimIDs?.contains(protected) == false)
        #expect(manual(cluster, target: 1).victimIDs == [idle], "scale_down.max_step 1 per run")
    }

    @Test("an unhealthy cluster halts it; failed boots are still replaced")
    func safety() {
        var unhealthy = Cluster(workers: 1)
        for _ in 0..<4 { unhealthy.addForeignNode(ready: false) }
        let halted = manual(unhealthy, target: 5)
        #expect(halted.isNone)
        #expect(halted.halt == .clusterUnhealthy)

        var failing = Cluster(workers: 2)
        let failed = failing.addWorker(age: 3600, ready: nil, type: "t3.large", subnet: "subnet-a")
        let decision = manual(failing, target: 3)
        #expect(decision.failedBoots.map(\.instanceID) == [failed])
        #expect(decision.scaleUpCount == 1)
        #expect(decision.launchCandidates.first.map { $0 != Offering(machineType: "t3.large", placement: "subnet-a") } == true)
    }

    @Test("at the target: nothing to do, said so")
    func atTarget() {
        let decision = manual(Cluster(workers: 3), target: 3)
        #expect(decision.isNone)
        #expect(decision.reasons(.manualTarget) == ["manual target 3 nodes: 3 now, nothing to do"])
    }
}
