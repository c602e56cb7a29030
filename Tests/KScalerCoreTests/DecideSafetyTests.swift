#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

@Suite("decide: safety and health gate")
struct DecideSafetyTests {
    static let requiredAlways: [Signal] = [
        .unschedulablePods, .cpuUtilization, .memoryUtilization, .cpuUtilizationWindowMax, .memoryUtilizationWindowMax, .nodeReady,
    ]
    static let unusable: [(Reading?, String)] = [
        (nil, "has no data"), (.noData, "has no data"), (.stale(ageSeconds: 400), "stale (newest sample 6m40s old)"),
        (.value(.nan), "NaN or infinite"), (.value(.infinity), "NaN or infinite"), (.notANumber, "NaN or infinite"),
        (.failed("HTTP 503"), "could not be read (HTTP 503)"), (.value(-1), "negative"),
    ]

    @Test("a required signal that is missing, stale, NaN, failed or negative stops everything",
          arguments: requiredAlways, unusable.indices)
    func requiredSignalUnusable(signal: Signal, caseIndex: Int) {
        let (reading, words) = Self.unusable[caseIndex]
        var cluster = Cluster(workers: 2)
        cluster.addWorker(age: 3600, ready: nil)            // a failed boot: must not be terminated either
        cluster.set(.unschedulablePods, .value(4))          // would otherwise scale up
        cluster.set(.pendingCPURequestCores, .value(1))
        cluster.set(.pendingMemoryRequestBytes, .value(1e9))
        cluster.readings[signal] = reading
        let decision = cluster.decide()
        #expect(decision.isNone)
        #expect(decision.failedBoots.isEmpty)
        #expect(decision.halt == .missingSignals)
        let message = decision.reasons(.missingSignal).first ?? ""
        #expect(message.contains(signal.rawValue) && message.contains(words), "\(message)")
        #expect(decision.signals.first { $0.signal == signal }?.verdict == .missing)
        #expect(decision.counts.desired == decision.counts.current)
    }

    @Test("with no Ready worker, utilisation is not required: an empty cluster still scales up to min and for pending pods",
          arguments: [Signal.cpuUtilization, .memoryUtilization, .cpuUtilizationWindowMax, .memoryUtilizationWindowMax])
    func utilizationNotRequiredWithoutReadyWorkers(signal: Signal) {
        var empty = Cluster(workers: 0)
        empty.readings[signal] = .noData                    // what the default query answers with no worker
        let toMin = empty.decide()
        #expect(toMin.halt == nil)
        #expect(toMin.scaleUpCount == 1)

        empty.set(.unschedulablePods, .value(5))
        empty.set(.pendingCPURequestCores, .value(5))
        empty.set(.pendingMemoryRequestBytes, .value(1e9))
        #expect(empty.decide().scaleUpCount == 3)

        // With a Ready worker the same gap stops everything again.
        var running = Cluster(workers: 1)
        running.readings[signal] = .noData
        #expect(running.decide().halt == .missingSignals)
    }

    @Test("pending requests are required only while pods are unschedulable",
          arguments: [Signal.pendingCPURequestCores, .pendingMemoryRequestBytes])
    func pendingRequiredOnlyWhenUnschedulable(signal: Signal) {
        var cluster = Cluster(workers: 2)
        cluster.set(signal, .noData)
        cluster.set(.cpuUtilization, .value(0.9))
        let calm = cluster.decide()
        #expect(calm.halt == nil)
        #expect(calm.scaleUpCount == 1)
        #expect(calm.signals.first { $0.signal == signal }?.verdict == .unavailable)

        cluster.set(.unschedulablePods, .value(1))
        let pending = cluster.decide()
        #expect(pending.halt == .missingSignals)
        #expect(pending.reasons(.missingSignal).contains { $0.contains(signal.rawValue) })
    }

    @Test("without pods_per_node scale-up still happens but scale-down is blocked")
    func podsPerNodeOnlyBlocksScaleDown() {
        var cluster = Cluster(workers: 3)
        cluster.set(.podsPerNode, .stale(ageSeconds: 900))
        cluster.set(.cpuUtilization, .value(0.95))
        #expect(cluster.decide().scaleUpCount == 1)

        cluster.set(.cpuUtilization, .value(0.1))
        cluster.set(.cpuUtilizationWindowMax, .value(0.1))
        cluster.set(.memoryUtilizationWindowMax, .value(0.1))
        let decision = cluster.decide()
        #expect(decision.isNone)
        #expect(decision.halt == nil)
        #expect(decision.reasons(.victimPodsUnknown).first?.contains("pods_per_node is stale") == true)
    }

    struct GateCase: CustomTestStringConvertible, Sendable {
        let nodes: Int, notReady: Int, halted: Bool
        var testDescription: String { "\(notReady) of \(nodes) not Ready → \(halted ? "halt" : "act")" }
    }

    @Test("health gate: more than 45 % AND more than 3 nodes not Ready", arguments: [
        GateCase(nodes: 20, notReady: 9, halted: false),   // exactly 45 %: not more
        GateCase(nodes: 20, notReady: 10, halted: true),   // 50 %, 10 nodes
        GateCase(nodes: 6, notReady: 3, halted: false),    // 50 % but only 3 nodes
        GateCase(nodes: 8, notReady: 4, halted: true),     // 50 % and 4 nodes
        GateCase(nodes: 4, notReady: 3, halted: false),    // 75 % but only 3 nodes
        GateCase(nodes: 9, notReady: 4, halted: false),    // 4 nodes but 44.4 %
        GateCase(nodes: 5, notReady: 4, halted: true),
    ])
    func healthGate(_ gate: GateCase) {
        var cluster = Cluster()
        cluster.nodes = []
        for index in 0..<gate.nodes { cluster.addForeignNode(ready: index >= gate.notReady) }
        cluster.addWorker(age: 3600, ready: nil)  // a failed boot, to show nothing at all happens when halted
        cluster.set(.cpuUtilization, .value(0.9))
        let decision = cluster.decide()
        #expect((decision.halt == .clusterUnhealthy) == gate.halted)
        #expect(decision.counts.clusterNotReady == gate.notReady)
        if gate.halted {
            #expect(decision.isNone && decision.failedBoots.isEmpty)
            #expect(decision.reasons(.clusterUnhealthy).first?.contains("\(gate.notReady) of \(gate.nodes) nodes not Ready") == true)
        } else {
            #expect(decision.failedBoots.count == 1)
        }
    }

    @Test("managed nodes still within boot grace do not count as not Ready; past it they do")
    func bootingNodesDoNotTripTheGate() {
        var cluster = Cluster(workers: 1)
        for _ in 0..<5 { cluster.addWorker(age: 60, ready: false) }
        let booting = cluster.decide()
        #expect(booting.halt == nil)
        #expect(booting.counts.clusterNotReady == 0)
        #expect(booting.counts.booting == 5)

        cluster.now = cluster.now.addingTimeInterval(KScalerConfig.Defaults.bootGrace)
        let late = cluster.decide()
        #expect(late.halt == .clusterUnhealthy)
        #expect(late.counts.clusterNotReady == 5)
    }

    @Test("absurd but finite values are handled, not trapped on")
    func absurdValues() {
        var cluster = Cluster(workers: 2)
        cluster.set(.unschedulablePods, .value(1e300))
        cluster.set(.pendingCPURequestCores, .value(1e300))
        cluster.set(.pendingMemoryRequestBytes, .value(1e300))
        #expect(cluster.decide(.test(max: 100)).scaleUpCount == 10)
        cluster.set(.cpuUtilizationWindowMax, .stale(ageSeconds: 1e300))
        #expect(cluster.decide().reasons(.missingSignal).first?.contains("stale") == true)
    }

    // MARK: Clocks

    @Test("a cooldown stamp beyond the clock skew allowance in the future is flagged and not used")
    func cooldownStampFarInTheFuture() {
        var cluster = Cluster(workers: 3)
        cluster.set(.unschedulablePods, .value(2))
        cluster.set(.pendingCPURequestCores, .value(1))
        // Written by a host whose clock ran an hour ahead: honoured, it would hold the scale-up
        // cooldown (and the delay before any scale-down) for an hour.
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(3600)
        cluster.state.lastScaleDownAt = cluster.now.addingTimeInterval(31)
        let decision = cluster.decide()
        #expect(decision.scaleUpCount == 1)
        #expect(decision.reasons(.futureTimestamp) == [
            "last_scale_up_at 2027-01-15T09:00:00Z is 1h in the future, beyond lease.max_clock_skew 30s: not used as a cooldown (a clock ran ahead, or the state item was edited)",
            "last_scale_down_at 2027-01-15T08:00:31Z is 31s in the future, beyond lease.max_clock_skew 30s: not used as a cooldown (a clock ran ahead, or the state item was edited)",
        ])
        #expect(decision.cooldowns.allSatisfy { !$0.active && ($0.since.map { $0 <= cluster.now } ?? true) })
    }

    @Test("a cooldown stamp slightly in the future is used, with a warning")
    func cooldownStampWithinSkew() {
        var cluster = Cluster(workers: 3)
        cluster.set(.unschedulablePods, .value(2))
        cluster.set(.pendingCPURequestCores, .value(1))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(20)
        let decision = cluster.decide()
        #expect(decision.isNone)
        #expect(decision.has(.scaleUpCooldown))
        #expect(decision.reasons(.futureTimestamp) == [
            "last_scale_up_at 2027-01-15T08:00:20Z is 20s in the future, within lease.max_clock_skew 30s: used as it is; check the hosts' clocks",
        ])
        // The allowance is the configured one.
        var policy = Policy.test()
        policy.maxClockSkew = 10
        #expect(cluster.decide(policy).scaleUpCount == 1)
    }
}
