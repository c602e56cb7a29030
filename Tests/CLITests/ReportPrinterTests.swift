import Foundation
import KScaler
import KScalerCore
import Testing
@testable import kscaler

/// What `kscaler plan` and `run` print about ghost Nodes: each one, why it is a ghost, and
/// when it is (or would be) deleted; and the deletions among the actions.
@Suite struct ReportPrinterTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func report(_ mode: RunReport.Mode) -> RunReport {
        var report = RunReport(runID: "run-1", mode: mode, clusterID: "demo", startedAt: now)
        let own = ClusterNode(name: "i-0aaa", uid: "u1", providerID: nil, ready: false, machineID: "i-0aaa")
        let other = ClusterNode(name: "i-0bbb", uid: "u2", providerID: nil, ready: false, machineID: "i-0bbb")
        report.nodeCleanup = NodeCleanup(ghosts: [
            .init(node: own, machine: "i-0aaa", since: now, deleteAt: now, terminatedByKscaler: true, due: true),
            .init(node: other, machine: "i-0bbb", since: now.addingTimeInterval(-30), deleteAt: now.addingTimeInterval(90),
                  terminatedByKscaler: false, due: false),
        ])
        report.actions = [.init(kind: .deleteNode, instanceIDs: ["i-0aaa"], nodes: ["i-0aaa"])]
        return report
    }

    /// With pools: a line per pool (market, nodes, bounds, pending pods, its decision), each pod
    /// no pool takes with why, and the pool and market of each launch.
    @Test func aPooledRunListsEachPoolAndTheUnservablePods() throws {
        var report = RunReport(runID: "run-2", mode: .run, clusterID: "demo", startedAt: Self.now)
        let counts = NodeCounts(current: 1, ready: 1, booting: 0, desired: 3, clusterNodes: 2, clusterNotReady: 0)
        report.decision = Decision(action: .scaleUp(count: 2), failedBoots: [], halt: nil, counts: counts, sizing: nil, launchCandidates: [],
                                   reasons: [], signals: [], cooldowns: [],
                                   pools: [PoolOutcome(name: "batch", action: .scaleUp(count: 2), counts: counts, min: 0, max: 6,
                                                       capacityType: .spotThenOnDemand, sizing: nil, launchCandidates: [], cooldowns: [],
                                                       pendingPods: 5, pendingRequests: .zero,
                                                       signals: [SignalVerdict(signal: .cpuUtilization, reading: .value(0.8), required: true, threshold: 0.7,
                                                                               verdict: .triggersScaleUp, detail: "")])],
                                   unservablePods: [UnservablePod(pod: "default/gpu", reasons: ["batch: nodeSelector gpu=true (the nodes lack gpu)"])])
        report.actions = [.init(kind: .launch, instanceIDs: ["i-1", "i-2"], machineType: "c5.xlarge", pool: "batch", market: .spot)]
        let lines = ReportPrinter.human(report, bounds: NodeBounds(min: 1, max: 12), now: Self.now).split(separator: "\n").map(String.init)
        let batch = try #require(lines.first { $0.contains("batch") && $0.contains("spot-then-on-demand") })
        #expect(batch.contains("0…6") && batch.contains("1 (1 Ready)") && batch.hasSuffix("scale up by 2"))
        #expect(lines.contains("unservable  default/gpu: batch: nodeSelector gpu=true (the nodes lack gpu)"))
        #expect(lines.contains("              cpu_utilization 0.8"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("nodes ") && $0.contains("cap 12 across pools") })
        #expect(lines.contains("action      launched 2 · pool batch · c5.xlarge · spot · i-1, i-2"))
    }

    @Test func planListsEachGhostWithWhenItWouldBeDeleted() {
        let text = ReportPrinter.human(Self.report(.plan), bounds: NodeBounds(), now: Self.now)
        #expect(text.contains("ghosts      Node objects whose instance is gone"))
        #expect(text.contains("i-0aaa") && text.contains("terminated by kscaler · would be deleted now"), "\(text)")
        #expect(text.contains("gone since 2027-01-15T07:59:30Z") && text.contains("deleted after") && text.contains("(in 1m 30s, kubernetes.ghost_grace)"),
                "\(text)")
        #expect(text.contains("action      delete node i-0aaa (server-side dry run passed)"), "\(text)")
    }

    @Test func aRunSaysWhatItDeleted() {
        let text = ReportPrinter.human(Self.report(.run), bounds: NodeBounds(), now: Self.now)
        #expect(text.contains("terminated by kscaler · deleted now"), "\(text)")
        #expect(text.contains("action      deleted node i-0aaa"), "\(text)")
    }

    @Test func planAndRunListEachOpenDrainWithPodsLeftBlockerDeadlineAndStep() throws {
        var report = RunReport(runID: "run-2", mode: .plan, clusterID: "demo", startedAt: Self.now)
        let blocked = OpenDrain(node: "i-0ccc", machine: "i-0ccc", startedAt: Self.now.addingTimeInterval(-120),
                                deadline: Self.now.addingTimeInterval(480), blockedBy: "pod web/web-1: Cannot evict pod as it would violate the pod's disruption budget.")
        let done = OpenDrain(node: "i-0ddd", machine: "i-0ddd", startedAt: Self.now.addingTimeInterval(-60), deadline: Self.now.addingTimeInterval(540))
        let pod = ClusterPod(namespace: "web", name: "web-1", uid: "u", node: "i-0ccc", owner: .controller(kind: "ReplicaSet"))
        let decision = Decision(action: .none, failedBoots: [], halt: nil, counts: NodeCounts(current: 2, ready: 2, booting: 0, desired: 2, clusterNodes: 3, clusterNotReady: 0),
                                sizing: nil, launchCandidates: [], reasons: [], signals: [], cooldowns: [],
                                drain: DrainDecision(steps: [DrainStep(drain: blocked, action: .evict([pod]), podsLeft: 1),
                                                             DrainStep(drain: done, action: .terminate)], drainVictims: true))
        report.decision = decision
        let text = ReportPrinter.human(report, bounds: NodeBounds(), now: Self.now)
        #expect(text.contains("drains      nodes being emptied before their instance is terminated"), "\(text)")
        let line = try #require(text.split(separator: "\n").first { $0.contains("i-0ccc") && $0.contains("pod left") })
        #expect(line.contains("1 pod left") && line.contains("deadline 2027-01-15T08:08:00Z (in 8m)"), "\(line)")
        #expect(line.contains("blocked by pod web/web-1: Cannot evict pod") && line.contains("this run: evict web/web-1"), "\(line)")
        #expect(text.contains("this run: terminate and delete the node"), "\(text)")
        // The JSON carries the same steps.
        let json = try JSONEncoder().encode(decision)
        let decoded = try JSONDecoder().decode(Decision.self, from: json)
        #expect(decoded.drain == decision.drain)
    }
}
