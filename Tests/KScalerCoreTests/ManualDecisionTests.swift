#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import PropertyBased
import Testing
@testable import KScalerCore

@Suite("Decision.manual: an operator's request, within the same safety rules")
struct ManualDecisionTests {
    func manual(_ cluster: Cluster, _ change: ManualRequest.Change, force: Bool = false, pool: String? = nil,
                _ policy: Policy = .test()) -> Decision {
        Decision.manual(ManualRequest(change: change, pool: pool, force: force, by: "alice"), observation: cluster.observation,
                        policy: policy, now: cluster.now)
    }

    @Test("--to: up to the target, in the usual launch order, max_step per run, whatever the cooldowns")
    func upToTheTarget() {
        var cluster = Cluster(workers: 2)
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-1)
        let decision = manual(cluster, .to(5), .test(max: 10))
        #expect(decision.scaleUpCount == 3)
        #expect(decision.manualTarget == 5)
        #expect(decision.launchCandidates == KScalerCore.decide(cluster.observation, policy: .test(min: 5), now: cluster.now).launchCandidates)
        #expect(decision.reasons(.manualTarget) == ["manual target 5 nodes, 2 now: launch 3"])
        let stepped = manual(cluster, .to(9), .test(max: 10, scaleUp: ScaleUpPolicy(maxStep: 2)))
        #expect(stepped.scaleUpCount == 2)
        #expect(stepped.manualTarget == 9, "the target stays the operator's; a hold keeps going toward it")
    }

    @Test("--add counts from the machines there now")
    func add() {
        let decision = manual(Cluster(workers: 3), .add(2), .test(max: 10))
        #expect(decision.scaleUpCount == 2)
        #expect(decision.manualTarget == 5)
    }

    @Test("outside nodes.min … nodes.max: refused whole, with the nearest allowed target; --force goes past and says what it overrides")
    func bounds() {
        let cluster = Cluster(workers: 2)
        let above = manual(cluster, .to(50), .test(max: 6))
        #expect(above.isNone)
        #expect(above.halt == .refused)
        #expect(above.manualTarget == nil)
        #expect(above.reasons(.manualRefused) == ["refused, nothing changed: manual target 50 nodes is outside nodes.max 6 (2 now): "
            + "ask for 6, or add --force to go past the bounds"])
        let below = manual(cluster, .to(0), .test(min: 2))
        #expect(below.halt == .refused)
        #expect(below.reasons(.manualRefused).first?.contains("outside nodes.min 2") == true)
        #expect(manual(cluster, .add(5), .test(max: 6)).halt == .refused)

        let forced = manual(cluster, .to(8), force: true, .test(max: 6, scaleUp: ScaleUpPolicy(maxStep: 3)))
        #expect(forced.halt == nil)
        #expect(forced.scaleUpCount == 3, "max_step 3 still holds: --force lifts the bounds, not the rate")
        #expect(forced.reasons(.manualForce) == ["--force overrides nodes.max 6: target 8 nodes"])
        #expect(manual(cluster, .to(-1), force: true).halt == .refused)
    }

    @Test("--to down: victims as decide picks them, protected ones never, max_step per run")
    func downToTheTarget() {
        var cluster = Cluster()
        let busy = cluster.addWorker(age: 3600, pods: 9)
        let idle = cluster.addWorker(age: 7200, pods: 0)
        let protected = cluster.addWorker(age: 60, pods: 0, protected: true)
        let decision = manual(cluster, .to(1), .test(scaleDown: ScaleDownPolicy(maxStep: 5)))
        #expect(decision.victimIDs == [idle, busy])
        #expect(decision.victimIDs?.contains(protected) == false)
        #expect(manual(cluster, .to(1)).victimIDs == [idle], "scale_down.max_step 1 per run")
    }

    @Test("--remove: exactly the machines named; a protected, unknown or draining one refuses the whole request")
    func remove() {
        var cluster = Cluster()
        let first = cluster.addWorker(age: 3600, pods: 9)
        let second = cluster.addWorker(age: 7200, pods: 0)
        let third = cluster.addWorker(age: 7200, pods: 0)
        let protected = cluster.addWorker(age: 60, pods: 0, protected: true)
        let policy = Policy.test(scaleDown: ScaleDownPolicy(maxStep: 2))

        let removed = manual(cluster, .remove([first]), policy)
        #expect(removed.victimIDs == [first], "the busy one, because it was named")
        #expect(removed.manualTarget == 3)

        let refused = manual(cluster, .remove([second, protected]), policy)
        #expect(refused.isNone)
        #expect(refused.halt == .refused)
        #expect(refused.reasons(.manualRefused) == ["refused, nothing changed: \(protected) is protected (tag kscaler:protected): "
            + "`kscaler unprotect \(protected)` first"])
        #expect(manual(cluster, .remove([second, protected]), force: true, policy).halt == .refused, "--force does not lift protection")
        #expect(manual(cluster, .remove(["i-unknown"]), policy).reasons(.manualRefused).first?.contains("i-unknown is not a live machine") == true)
        #expect(manual(cluster, .remove([first, second, third]), policy).reasons(.manualRefused).first?
            .contains("more than scale_down.max_step 2") == true)
        #expect(manual(cluster, .remove([first, second, third]), .test(min: 2, scaleDown: ScaleDownPolicy(maxStep: 3))).halt == .refused,
                "below nodes.min without --force")
    }

    @Test("an unhealthy cluster halts it; failed boots are still replaced")
    func safety() {
        var unhealthy = Cluster(workers: 1)
        for _ in 0..<4 { unhealthy.addForeignNode(ready: false) }
        let halted = manual(unhealthy, .to(5), .test(max: 10))
        #expect(halted.isNone)
        #expect(halted.halt == .clusterUnhealthy)

        var failing = Cluster(workers: 2)
        let failed = failing.addWorker(age: 3600, ready: nil, type: "t3.large", subnet: "subnet-a")
        let decision = manual(failing, .to(3))
        #expect(decision.failedBoots.map(\.instanceID) == [failed])
        #expect(decision.scaleUpCount == 1)
        #expect(decision.launchCandidates.first.map { $0 != Offering(machineType: "t3.large", placement: "subnet-a") } == true)
    }

    @Test("at the target: nothing to do, said so")
    func atTarget() {
        let decision = manual(Cluster(workers: 3), .to(3))
        #expect(decision.isNone)
        #expect(decision.halt == nil)
        #expect(decision.reasons(.manualTarget) == ["manual target 3 nodes, 3 now: nothing to change"])
    }

    @Test("a scheduled window's raised min is a bound in force: a request below it is refused, and the reasons say why")
    func scheduledBounds() throws {
        var cluster = Cluster(workers: 5)
        cluster.now = t0
        var policy = Policy.test(min: 1, max: 10)
        // Active from t0's hour for two hours, whatever t0 is.
        let hour = Int(t0.timeIntervalSince1970) / 3600 % 24
        policy.schedules = [ScheduleWindow(name: "launch", cron: try CronExpression.parse("0 \(hour) * * *").get(), duration: 7200, min: 4)]
        let refused = manual(cluster, .to(2), policy)
        #expect(refused.halt == .refused)
        #expect(refused.reasons(.manualRefused).first?.contains("outside nodes.min 4") == true)
        #expect(refused.schedule?.active.map(\.name) == ["launch"])
        #expect(manual(cluster, .to(4), policy).victimIDs?.count == 1)
    }

    @Test("pools: --pool is required, names a pool, and the launch goes to it within its bounds")
    func pools() {
        var cluster = Cluster()
        let general = cluster.addWorker(age: 3600, pods: 3)
        cluster.instances[0].pool = "general"
        var policy = Policy.test(max: 20)
        policy.pools = [
            PoolPolicy(name: "general", nodes: NodeBounds(min: 1, max: 5), capacity: policy.capacity),
            PoolPolicy(name: "batch", nodes: NodeBounds(min: 0, max: 4), capacity: policy.capacity),
        ]
        #expect(manual(cluster, .remove([general]), pool: "batch", policy).halt == .refused, "a machine of another pool")
        #expect(manual(cluster, .to(3), policy).halt == .refused)
        #expect(manual(cluster, .to(3), pool: "gpu", policy).reasons(.manualRefused).first?.contains("no pool named gpu (pools: general, batch)") == true)
        let batch = manual(cluster, .to(2), pool: "batch", policy)
        #expect(batch.scaleUpCount == 2)
        #expect(batch.launches.map(\.pool) == ["batch"])
        #expect(manual(cluster, .to(5), pool: "batch", policy).halt == .refused, "above the pool's max 4")
        #expect(manual(Cluster(workers: 1), .to(1), pool: "batch").halt == .refused, "--pool without pools")
    }
}

@Suite("Holds: an operator's pinned size")
struct HoldTests {
    func hold(_ cluster: Cluster, target: Int, for seconds: TimeInterval = 3600, pool: String? = nil) -> Hold {
        Hold(target: target, pool: pool, until: cluster.now.addingTimeInterval(seconds), by: "alice", reason: "launch day",
             setAt: cluster.now.addingTimeInterval(-60))
    }

    @Test("while in force no automatic decision is taken, however many pods are pending")
    func blocksAutomaticDecisions() {
        var cluster = Cluster(workers: 3)
        cluster.set(.unschedulablePods, .value(40))
        cluster.set(.pendingCPURequestCores, .value(40))
        cluster.hold = hold(cluster, target: 3)
        let decision = cluster.decide(.test(max: 10))
        #expect(decision.isNone)
        #expect(decision.reasons(.held).first?.hasPrefix("held at 3 nodes by alice until ") == true)
        #expect(decision.reasons(.held).first?.contains("(launch day)") == true)
        #expect(decision.reasons(.manualTarget) == ["held target 3 nodes, 3 now: nothing to change"])
    }

    @Test("the held target is kept: a machine that went away is replaced, max_step per run")
    func keepsTheTarget() {
        var cluster = Cluster(workers: 2)
        cluster.hold = hold(cluster, target: 5)
        #expect(cluster.decide(.test(max: 10)).scaleUpCount == 3)
        var above = Cluster(workers: 4)
        above.set(.cpuUtilization, .value(0.99))
        above.hold = hold(above, target: 3)
        #expect(above.decide(.test(max: 10, scaleDown: ScaleDownPolicy(withoutDrain: true))).victimIDs?.count == 1)
    }

    @Test("it ends exactly at its end; the run after decides as usual and says the hold ended")
    func ends() {
        var cluster = Cluster(workers: 3)
        cluster.set(.unschedulablePods, .value(4))
        cluster.set(.pendingCPURequestCores, .value(4))
        cluster.hold = hold(cluster, target: 3, for: 0)
        let decision = cluster.decide(.test(max: 10))
        #expect(decision.scaleUpCount ?? 0 > 0)
        #expect(decision.reasons(.holdEnded).first?.contains("ended 0s ago: deciding as usual") == true)
        #expect(decision.reasons(.held).isEmpty)
    }
}

/// Random operator requests against the random clusters of `DecideProperties`.
let manualRequests = Generator<(Scenario, ManualRequest), Shrink.None<(Scenario, ManualRequest)>> { rng in
    var scenario = scenarios.run(using: &rng)
    let ids = scenario.observation.instances.map(\.id)
    let pick = Int(rng.next() % 4)
    let count = Int(rng.next() % 20)
    let change: ManualRequest.Change = switch pick {
    case 0: .to(count)
    case 1: .add(count % 6)
    case 2: .remove(ids.filter { _ in rng.next() % 5 == 0 })
    default: .keep
    }
    scenario.observation.hold = nil
    return (scenario, ManualRequest(change: change, force: rng.next() % 4 == 0, by: "prop"))
}

@Suite("Decision.manual and holds: properties over random clusters")
struct ManualProperties {
    @Test("never outside nodes.min … nodes.max without --force; a refusal changes nothing")
    func withinBounds() async {
        await propertyCheck(count: 3000, input: manualRequests) { scenario, request in
            let decision = Decision.manual(request, observation: scenario.observation, policy: scenario.policy, now: scenario.now)
            let (minimum, maximum) = (scenario.policy.nodes.min, scenario.policy.nodes.max)
            if decision.halt != nil {
                #expect(decision.isNone && decision.failedBoots.isEmpty, "\(scenario)")
                return
            }
            let target = try #require(decision.manualTarget)
            if !request.force { #expect((minimum...maximum).contains(target), "\(scenario) \(request.summary)") }
            let current = decision.counts.current
            switch decision.action {
            case .none: break
            case .scaleUp(let count):
                #expect(count <= scenario.policy.scaleUp.maxStep && target >= current + count, "\(scenario) \(request.summary)")
            case .scaleDown(let victims):
                #expect(victims.count <= scenario.policy.scaleDown.maxStep, "\(scenario)")
                #expect(current - victims.count >= target, "\(scenario) \(request.summary)")
                let protected = Set(scenario.observation.instances.filter(\.protected).map(\.id)).union(scenario.policy.victims.protectedInstances)
                #expect(victims.allSatisfy { !protected.contains($0.instanceID) }, "\(scenario)")
            }
        }
    }

    @Test("a hold blocks every automatic action until it ends: only moves toward its target")
    func holdBlocks() async {
        await propertyCheck(count: 3000, input: scenarios) { scenario in
            var observation = scenario.observation
            let target = Int(scenario.now.timeIntervalSince1970) % (scenario.policy.nodes.max + 3)
            let length = Double(Int(scenario.now.timeIntervalSince1970) % 7200)
            observation.hold = Hold(target: target, until: scenario.now.addingTimeInterval(length - 3600), by: "prop", setAt: scenario.now)
            let decision = decide(observation, policy: scenario.policy, now: scenario.now)
            let held = observation.hold!.isActive(at: scenario.now)
            if held {
                #expect(decision.has(.held), "\(scenario)")
                switch decision.action {
                case .none: break
                case .scaleUp(let count): #expect(decision.counts.current + count <= target, "\(scenario)")
                case .scaleDown(let victims): #expect(decision.counts.current - victims.count >= target, "\(scenario)")
                }
            } else {
                var unheld = observation
                unheld.hold = nil
                let usual = decide(unheld, policy: scenario.policy, now: scenario.now)
                #expect(decision.action == usual.action && decision.failedBoots == usual.failedBoots, "\(scenario)")
                #expect(decision.has(.holdEnded))
            }
        }
    }
}
