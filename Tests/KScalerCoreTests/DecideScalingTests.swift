#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

@Suite("decide: bounds, failed boots and scale-up")
struct DecideScalingTests {
    // MARK: Bounds

    @Test("below min: scale up to min whatever the metrics and cooldowns say")
    func belowMinimum() {
        var cluster = Cluster(workers: 1)
        cluster.set(.cpuUtilizationWindowMax, .value(0.01))
        cluster.set(.memoryUtilizationWindowMax, .value(0.01))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-1)
        let decision = cluster.decide(.test(min: 3))
        #expect(decision.scaleUpCount == 2)
        #expect(decision.counts.desired == 3)
        #expect(decision.reasons(.belowMinimum) == ["1 managed nodes < min 3: scale up to the minimum whatever the metrics say"])
    }

    @Test("below min with unschedulable pods: the larger need wins")
    func belowMinimumWithPendingPods() {
        var cluster = Cluster()
        cluster.set(.unschedulablePods, .value(10))
        cluster.set(.pendingCPURequestCores, .value(7))
        cluster.set(.pendingMemoryRequestBytes, .value(1e9))
        #expect(cluster.decide(.test(min: 1)).scaleUpCount == 4)
        #expect(cluster.decide(.test(min: 6)).scaleUpCount == 6)
    }

    @Test("bounds enforcement obeys scale_up.max_step")
    func belowMinimumCappedByStep() {
        let decision = Cluster().decide(.test(min: 5, scaleUp: ScaleUpPolicy(maxStep: 2)))
        #expect(decision.scaleUpCount == 2)
        #expect(decision.has(.capped))
    }

    @Test("above max: scale down toward max whatever the metrics and cooldowns say, max_step per run",
          arguments: [(1, 1), (2, 2), (5, 2)])
    func aboveMaximum(maxStep: Int, expected: Int) {
        var cluster = Cluster(workers: 12)
        cluster.set(.unschedulablePods, .value(3))
        cluster.set(.pendingCPURequestCores, .value(1))
        cluster.set(.pendingMemoryRequestBytes, .value(1))
        cluster.state.lastScaleDownAt = cluster.now
        cluster.state.lastScaleUpAt = cluster.now
        let decision = cluster.decide(.test(max: 10, scaleDown: ScaleDownPolicy(maxStep: maxStep)))
        #expect(decision.victimIDs?.count == expected)
        #expect(decision.counts.desired == 12 - expected)
        #expect(decision.has(.aboveMaximum))
    }

    @Test("at max: a wanted scale-up is reported and nothing launches")
    func atMaximum() {
        var cluster = Cluster(workers: 10)
        cluster.set(.cpuUtilization, .value(0.99))
        let decision = cluster.decide(.test(max: 10))
        #expect(decision.isNone)
        #expect(decision.reasons(.atMaximum) == ["scale-up needed but already at max 10 nodes"])
    }

    @Test("scale-up capped by nodes.max and by scale_up.max_step")
    func caps() {
        var cluster = Cluster(workers: 8)
        cluster.set(.unschedulablePods, .value(40))
        cluster.set(.pendingCPURequestCores, .value(60))
        cluster.set(.pendingMemoryRequestBytes, .value(0))
        #expect(cluster.decide(.test(max: 10)).scaleUpCount == 2)
        #expect(cluster.decide(.test(max: 100)).scaleUpCount == 10)
        #expect(cluster.decide(.test(max: 100, scaleUp: ScaleUpPolicy(maxStep: 4))).scaleUpCount == 4)
    }

    // MARK: Failed boots

    @Test("an instance with no node is a failed boot from exactly provision_timeout on",
          arguments: [(899.0, false), (900.0, true), (4000.0, true)])
    func failedBootBoundary(age: TimeInterval, failed: Bool) {
        var cluster = Cluster(workers: 2)
        let id = cluster.addWorker(age: age, ready: nil, subnet: "subnet-b")
        let decision = cluster.decide()
        #expect(decision.failedBoots.map(\.instanceID) == (failed ? [id] : []))
        if failed {
            let boot = decision.failedBoots[0]
            #expect(boot.unavailable == UnavailableOffering(machineType: "t3.large", placement: "subnet-b",
                                                            until: cluster.now.addingTimeInterval(30 * 60)))
            #expect(decision.counts.current == 2)
            #expect(decision.reasons(.failedBoot).first?.contains("failed boot: \(id) (t3.large in subnet-b)") == true)
        } else {
            #expect(decision.counts.current == 3)
        }
    }

    @Test("a registered node that is not Ready is never terminated as a failed boot")
    func registeredNotReadyIsNotAFailedBoot() {
        var cluster = Cluster(workers: 2)
        cluster.addWorker(age: 7200, ready: false)
        let decision = cluster.decide()
        #expect(decision.failedBoots.isEmpty)
        #expect(decision.counts.clusterNotReady == 1)
    }

    @Test("a protected failed boot is left alone, tag or list", arguments: [true, false])
    func protectedFailedBoot(byTag: Bool) {
        var cluster = Cluster(workers: 1)
        let id = cluster.addWorker(age: 3600, ready: nil, protected: byTag)
        let policy = Policy.test(victims: VictimPolicy(protectedInstances: byTag ? [] : [id]))
        let decision = cluster.decide(policy)
        #expect(decision.failedBoots.isEmpty)
        #expect(decision.reasons(.protectedFailedBoot).first?.hasPrefix(id) == true)
    }

    @Test("a failed boot's capacity is replaced in the same run, away from its offering")
    func failedBootReplaced() {
        var cluster = Cluster(workers: 2)
        let failed = cluster.addWorker(age: 1000, ready: nil, subnet: "subnet-b")
        let decision = cluster.decide(.test(min: 3, subnets: ["subnet-b", "subnet-a"]))
        #expect(decision.failedBoots.map(\.instanceID) == [failed])
        #expect(decision.scaleUpCount == 1)
        #expect(decision.counts.desired == 3)
        // t3.large in subnet-b just failed, so it is not offered again this run.
        #expect(decision.launchCandidates.first == Offering(machineType: "t3.large", placement: "subnet-a"))
        #expect(!decision.launchCandidates.contains(Offering(machineType: "t3.large", placement: "subnet-b")))
    }

    @Test("no scale-down while failed boots are being terminated")
    func failedBootBlocksScaleDown() {
        var cluster = Cluster(workers: 3)
        cluster.addWorker(age: 1000, ready: nil)
        cluster.set(.cpuUtilizationWindowMax, .value(0.05))
        cluster.set(.memoryUtilizationWindowMax, .value(0.05))
        let decision = cluster.decide()
        #expect(decision.victimIDs == nil)
        #expect(decision.has(.scaleDownFailedBoots))
    }

    // MARK: Scale-up for unschedulable pods

    struct PendingCase: CustomTestStringConvertible, Sendable {
        let pods: Double, cpu: Double, memoryGiB: Double, expected: Int
        var testDescription: String { "\(pods) pods, \(cpu) cores, \(memoryGiB) GiB → \(expected)" }
    }

    @Test("enough t3.large (2 vCPU, 8 GiB) for the pending requests, at least one", arguments: [
        PendingCase(pods: 12, cpu: 5.5, memoryGiB: 20, expected: 3),
        PendingCase(pods: 1, cpu: 4, memoryGiB: 0, expected: 2),       // exactly two nodes' CPU
        PendingCase(pods: 1, cpu: 4.001, memoryGiB: 0, expected: 3),
        PendingCase(pods: 3, cpu: 0.5, memoryGiB: 30, expected: 4),    // memory decides
        PendingCase(pods: 2, cpu: 0, memoryGiB: 0, expected: 1),       // no requests: still one node
        PendingCase(pods: 50, cpu: 0.3, memoryGiB: 0.1, expected: 1),  // a burst of small pods in one node
        PendingCase(pods: 3, cpu: 0.1 + 0.2 + 5.7, memoryGiB: 0, expected: 3),  // 6.000000000000001: no float surprise
    ])
    func pendingSizing(_ pending: PendingCase) {
        var cluster = Cluster(workers: 1)
        cluster.set(.unschedulablePods, .value(pending.pods))
        cluster.set(.pendingCPURequestCores, .value(pending.cpu))
        cluster.set(.pendingMemoryRequestBytes, .value(pending.memoryGiB * Double(gib)))
        let decision = cluster.decide(.test(max: 100))
        #expect(decision.scaleUpCount == pending.expected)
        #expect(decision.sizing == SizingUnit(machineType: "t3.large", size: WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)))
    }

    @Test("the reason names pods, nodes, the size and the requests")
    func pendingReasonText() {
        var cluster = Cluster(workers: 1)
        cluster.set(.unschedulablePods, .value(12))
        cluster.set(.pendingCPURequestCores, .value(5.5))
        cluster.set(.pendingMemoryRequestBytes, .value(20 * Double(gib)))
        let decision = cluster.decide()
        #expect(decision.reasons(.unschedulablePods) == [
            "unschedulable pods 12 > 0: need 3 nodes of t3.large (2 vCPU, 8 GiB) for 5.5 cores / 20 GiB requested",
        ])
        #expect(decision.signals.first { $0.signal == .unschedulablePods }?.verdict == .triggersScaleUp)
    }

    @Test("sizing uses the first instance type that is available")
    func sizingSkipsUnavailableType() {
        var cluster = Cluster(workers: 1)
        cluster.set(.unschedulablePods, .value(5))
        cluster.set(.pendingCPURequestCores, .value(8))
        cluster.set(.pendingMemoryRequestBytes, .value(0))
        cluster.state.unavailableOfferings = [UnavailableOffering(machineType: "t3.large", placement: nil, until: cluster.now.addingTimeInterval(60))]
        let decision = cluster.decide()
        #expect(decision.sizing?.machineType == "t3.xlarge")
        #expect(decision.scaleUpCount == 2)
        #expect(decision.launchCandidates.allSatisfy { $0.machineType == "t3.xlarge" })
    }

    @Test("an unavailable mark ends exactly at its time")
    func unavailableExpires() {
        var cluster = Cluster(workers: 1)
        cluster.set(.cpuUtilization, .value(0.9))
        cluster.state.unavailableOfferings = [UnavailableOffering(machineType: "t3.large", placement: "subnet-b", until: cluster.now)]
        #expect(cluster.decide().launchCandidates.count == 4)
        cluster.state.unavailableOfferings[0].until = cluster.now.addingTimeInterval(1)
        #expect(cluster.decide().launchCandidates.count == 3)
    }

    @Test("launch candidates: types in order, subnets with fewest managed instances first")
    func launchCandidateOrder() {
        var cluster = Cluster()
        cluster.addWorker(subnet: "subnet-a")
        cluster.addWorker(subnet: "subnet-a")
        cluster.addWorker(subnet: "subnet-b")
        cluster.set(.cpuUtilization, .value(0.9))
        let decision = cluster.decide(.test(subnets: ["subnet-a", "subnet-b", "subnet-c"]))
        #expect(decision.launchCandidates == [
            Offering(machineType: "t3.large", placement: "subnet-c"), Offering(machineType: "t3.large", placement: "subnet-b"),
            Offering(machineType: "t3.large", placement: "subnet-a"), Offering(machineType: "t3.xlarge", placement: "subnet-c"),
            Offering(machineType: "t3.xlarge", placement: "subnet-b"), Offering(machineType: "t3.xlarge", placement: "subnet-a"),
        ])
    }

    @Test("every offering unavailable: no launch, said plainly")
    func noLaunchCandidates() {
        var cluster = Cluster(workers: 1)
        cluster.set(.cpuUtilization, .value(0.9))
        cluster.state.unavailableOfferings = ["t3.large", "t3.xlarge"].map {
            UnavailableOffering(machineType: $0, placement: nil, until: cluster.now.addingTimeInterval(600))
        }
        let decision = cluster.decide()
        #expect(decision.isNone)
        #expect(decision.reasons(.noLaunchCandidates).first?.contains("(in 10m)") == true)
    }

    @Test("launch template alone: the smallest size is the unit, the template picks type and network")
    func launchTemplateOnly() {
        var cluster = Cluster(workers: 1)
        cluster.set(.unschedulablePods, .value(3))
        cluster.set(.pendingCPURequestCores, .value(6))
        cluster.set(.pendingMemoryRequestBytes, .value(0))
        let decision = cluster.decide(.test(instanceTypes: [], subnets: []))
        #expect(decision.sizing?.machineType == "t3.large")
        #expect(decision.scaleUpCount == 3)
        #expect(decision.launchCandidates == [Offering(machineType: nil, placement: nil)])
    }

    // MARK: Scale-up for utilisation

    struct UtilizationCase: CustomTestStringConvertible, Sendable {
        let cpu: Double, memory: Double, scaleUp: Bool
        var testDescription: String { "cpu \(cpu), memory \(memory) → \(scaleUp ? "+1" : "none")" }
    }

    @Test("utilisation strictly above 70 % adds one node", arguments: [
        UtilizationCase(cpu: 0.70, memory: 0.70, scaleUp: false),
        UtilizationCase(cpu: 0.7000001, memory: 0.2, scaleUp: true),
        UtilizationCase(cpu: 0.2, memory: 0.7000001, scaleUp: true),
        UtilizationCase(cpu: 0.99, memory: 0.99, scaleUp: true),
        UtilizationCase(cpu: 1.3, memory: 0, scaleUp: true),
    ])
    func utilizationThreshold(_ utilization: UtilizationCase) {
        var cluster = Cluster(workers: 2)
        cluster.set(.cpuUtilization, .value(utilization.cpu))
        cluster.set(.memoryUtilization, .value(utilization.memory))
        let decision = cluster.decide()
        #expect(decision.scaleUpCount == (utilization.scaleUp ? 1 : nil))
        #expect(decision.has(.highUtilization) == utilization.scaleUp)
    }

    @Test("the utilisation reason compares value and threshold")
    func utilizationReasonText() {
        var cluster = Cluster(workers: 2)
        cluster.set(.cpuUtilization, .value(0.725))
        #expect(cluster.decide().reasons(.highUtilization) == ["cpu utilisation 72.5 % > scale-up threshold 70 %: add 1 node"])
    }

    // MARK: Booting capacity

    @Test("booting capacity is subtracted; a registered node that is not Ready is booting until exactly boot_grace",
          arguments: [(60.0, 2), (299.0, 2), (300.0, 3)])
    func bootingSubtracted(age: TimeInterval, expected: Int) {
        var cluster = Cluster(workers: 1)
        cluster.addWorker(age: age, ready: false)
        cluster.set(.unschedulablePods, .value(6))
        cluster.set(.pendingCPURequestCores, .value(6))
        cluster.set(.pendingMemoryRequestBytes, .value(0))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-3600)
        var policy = Policy.test()
        policy.scaleUp.cooldown = 1
        let decision = cluster.decide(policy)
        #expect(decision.scaleUpCount == expected)
        #expect(decision.has(.bootingCapacity) == (expected == 2))
    }

    @Test("an instance with no node yet is booting capacity too")
    func unregisteredBooting() {
        var cluster = Cluster(workers: 1)
        cluster.addWorker(age: 30, ready: nil, state: .pending)
        cluster.set(.cpuUtilization, .value(0.9))
        var policy = Policy.test()
        policy.scaleUp.cooldown = 10
        let decision = cluster.decide(policy)
        #expect(decision.isNone)
        #expect(decision.counts.booting == 1)
        #expect(decision.reasons(.bootingCapacity) == ["1 needed, 1 already booting (not Ready yet, within provision timeout 15m): they cover it"])
    }

    /// Found by the sandbox: a boot slower than `boot_grace` was launched again for the same need.
    @Test("an instance with no node past boot_grace is still booting capacity until provision_timeout",
          arguments: [(301.0, 0), (899.0, 0), (900.0, 1)])
    func slowBootIsNotLaunchedTwice(age: TimeInterval, expected: Int) {
        var cluster = Cluster(workers: 1)
        cluster.addWorker(age: age, ready: nil)
        cluster.set(.unschedulablePods, .value(1))
        cluster.set(.pendingCPURequestCores, .value(1))
        cluster.set(.pendingMemoryRequestBytes, .value(0))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-3600)
        let decision = cluster.decide()
        // At provision_timeout it is a failed boot: terminated, and its capacity replaced.
        #expect((decision.scaleUpCount ?? 0) == expected)
        #expect(decision.failedBoots.count == (age >= 900 ? 1 : 0))
    }

    // MARK: Cooldown

    @Test("scale-up cooldown holds until exactly its end", arguments: [(59.0, true), (60.0, false), (61.0, false)])
    func scaleUpCooldown(secondsSince: TimeInterval, blocked: Bool) {
        var cluster = Cluster(workers: 2)
        cluster.set(.cpuUtilization, .value(0.9))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-secondsSince)
        let decision = cluster.decide()
        #expect(decision.scaleUpCount == (blocked ? nil : 1))
        #expect(decision.has(.scaleUpCooldown) == blocked)
        let status = decision.cooldowns.first { $0.name == .scaleUpCooldown }
        #expect(status?.active == blocked)
        #expect(status?.endsAt == cluster.state.lastScaleUpAt?.addingTimeInterval(60))
    }

    @Test("the newest launch time starts the cooldown even if no scale-up was recorded (crash safety)")
    func cooldownFromLaunchTime() {
        var cluster = Cluster(workers: 2)
        cluster.addWorker(age: 20, ready: true)
        cluster.set(.cpuUtilization, .value(0.9))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-3600)
        let decision = cluster.decide()
        #expect(decision.isNone)
        let reason = decision.reasons(.scaleUpCooldown).first ?? ""
        #expect(reason == "scale-up blocked: cooldown 1m since the last scale-up ends \(formatDate(cluster.now.addingTimeInterval(40))) (in 40s)")
    }
}
