import AWS
import KScalerCore
import Synchronization
import Testing
@testable import KScaler

/// How a run tends Node objects through the `ClusterAPI` port, with the scripted fakes of
/// `EvaluatorTests` and a fake API: the order of writes, terminations and deletions, and that
/// nothing is deleted that is not provably a ghost. (The Kubernetes adapter is tested against
/// the stand-in API server, and the whole loop in the sandbox.)
@Suite struct NodeTendingTests {
    typealias T = EvaluatorTests
    static let t0 = T.t0

    struct FakeCluster: ClusterAPI {
        let journal: T.Journal
        var nodes: [ClusterNode]
        var listFails = false
        var deleteFails = false
        var pods: [ClusterPod] = []
        /// Evictions answer 429 with this message (a disruption budget).
        var evictionBlockedBy: String?

        func nodes() async throws -> [ClusterNode] {
            journal.add("nodes")
            if listFails { throw T.Broken() }
            return nodes.map { var node = $0; node.machineID = nil; return node }  // the run resolves machines itself
        }
        func deleteNode(name: String, uid: String, dryRun: Bool) async throws -> NodeDeletion {
            journal.add("delete \(name) \(uid) dryRun=\(dryRun)")
            if deleteFails { throw T.Broken() }
            return .deleted
        }
        func recordEvent(_ event: NodeEvent) async throws { journal.add("event \(event.reason.rawValue) \(event.node)") }
        func pods() async throws -> [ClusterPod] { pods }
        func cordonForDrain(node: String, at: Date) async throws { journal.add("cordon \(node)") }
        func releaseDrain(node: String) async throws { journal.add("uncordon \(node)") }
        func evict(_ pod: ClusterPod) async throws -> Eviction {
            journal.add("evict \(pod.reference)")
            return evictionBlockedBy.map(Eviction.blocked) ?? .evicted
        }
        func deletePod(_ pod: ClusterPod) async throws { journal.add("delete pod \(pod.reference)") }
        func outcome(of error: any Error) -> FailedCallOutcome { .nothingHappened }
    }

    static func node(_ name: String, ready: Bool = true, draining: Bool = false) -> ClusterNode {
        ClusterNode(name: name, uid: "uid-\(name)", providerID: "aws:///us-east-1a/\(name)", ready: ready, machineID: name,
                    unschedulable: draining, hasDrainTaint: draining, drainTaintedAt: draining ? t0 : nil,
                    allocatable: Resources(cpu: 2, memory: 8 * 1_073_741_824))
    }

    static func pod(_ name: String, on node: String) -> ClusterPod {
        ClusterPod(namespace: "default", name: name, uid: "uid-\(name)", node: node, owner: .controller(kind: "ReplicaSet"),
                   requests: Resources(cpu: 0.1, memory: 1e8))
    }

    func evaluator(_ journal: T.Journal, state: StateDocument = StateDocument(), live: [String], ended: Set<String> = [],
                   cluster: FakeCluster, utilization: Double = 0.5, clock: Date = t0.addingTimeInterval(5)) -> Evaluator {
        var config = T.config
        config.kubernetes.ghostGrace = 120
        // A lease taken 5 s before `clock`, as a run's own would be.
        let lease = Lease(clusterID: "demo", owner: "me", token: 7, acquiredAt: clock.addingTimeInterval(-5), expiresAt: clock.addingTimeInterval(115))
        // Prometheus sees the same Node objects as the API (kube-state-metrics).
        var metrics = T.metrics(journal, ids: live, unschedulable: 0, utilization: utilization)
        metrics.nodes += cluster.nodes.filter { !live.contains($0.name) }
            .map { NodeObservation(name: $0.name, instanceID: $0.name, ready: $0.ready, nonDaemonSetPods: 0) }
        return Evaluator(config: config, store: T.FakeStore(journal: journal, acquisition: .acquired(lease, state)),
                         fleet: T.FakeFleet(journal: journal, instances: live.map { T.instance($0) }, ended: ended),
                         metrics: metrics, cluster: cluster,
                         clock: { clock })
    }

    let invocation = Evaluator.Invocation(runID: "run-1", owner: "me")

    @Test func aScaleDownDrainsOverRunsThenRecordsTheNodeBeforeTerminatingAndDeletesItInTheSameRun() async throws {
        // Run 1: the drain is written into the state before the node is cordoned; nothing is terminated.
        let journal = T.Journal()
        var cluster = FakeCluster(journal: journal, nodes: [Self.node("i-a"), Self.node("i-b")])
        cluster.pods = [Self.pod("web-1", on: "i-a"), Self.pod("web-2", on: "i-b"), Self.pod("web-3", on: "i-b")]
        let first = await evaluator(journal, live: ["i-a", "i-b"], cluster: cluster, utilization: 0.1).run(invocation)
        #expect(first.outcome == .acted, "\(first.errors)")
        #expect(first.actions.map(\.kind) == [.drainStart])
        let victim = try #require(first.actions.first?.instanceIDs.first)
        #expect(victim == "i-a")  // the fewest pods (FakeMetrics), newest first among equals
        let entries = journal.all
        let written = try #require(entries.firstIndex(of: "write drains i-a"))
        let cordoned = try #require(entries.firstIndex(of: "cordon i-a"))
        #expect(written < cordoned)
        #expect(entries.contains("event ScaleDownDrainStarted i-a"))
        #expect(!entries.contains { $0.hasPrefix("terminate") || $0.hasPrefix("evict") })
        let afterFirst = try #require(journal.finished.withLock { $0 })
        #expect(afterFirst.drains.map(\.node) == ["i-a"])
        #expect(afterFirst.drains.first?.deadline == Self.t0.addingTimeInterval(5 + 600))

        // Run 2: a disruption budget refuses the eviction; the drain stays open and says why.
        let second = T.Journal()
        cluster = FakeCluster(journal: second, nodes: [Self.node("i-a", draining: true), Self.node("i-b")], pods: cluster.pods,
                              evictionBlockedBy: "Cannot evict pod as it would violate the pod's disruption budget.")
        let blocked = await evaluator(second, state: afterFirst, live: ["i-a", "i-b"], cluster: cluster, utilization: 0.1,
                                      clock: Self.t0.addingTimeInterval(65)).run(invocation)
        #expect(second.all.contains("evict default/web-1"))
        #expect(!second.all.contains { $0.hasPrefix("terminate") || $0.hasPrefix("cordon") })
        #expect(blocked.actions.map(\.kind) == [.evict])
        #expect(blocked.actions.first?.pods == [])
        let afterSecond = try #require(second.finished.withLock { $0 })
        #expect(afterSecond.drains.first?.blockedBy?.contains("disruption budget") == true)

        // Run 3: the pod is gone (evicted, rescheduled elsewhere): terminate, then delete the Node in the same run.
        let third = T.Journal()
        cluster = FakeCluster(journal: third, nodes: [Self.node("i-a", draining: true), Self.node("i-b")],
                              pods: [Self.pod("web-2", on: "i-b"), Self.pod("web-3", on: "i-b"), Self.pod("web-4", on: "i-b")])
        let report = await evaluator(third, state: afterSecond, live: ["i-a", "i-b"], cluster: cluster, utilization: 0.1,
                                     clock: Self.t0.addingTimeInterval(125)).run(invocation)
        #expect(report.outcome == .acted, "\(report.errors)")
        let steps = third.all
        let ghostWritten = try #require(steps.firstIndex(of: "write ghosts i-a"))
        let terminated = try #require(steps.firstIndex(of: "terminate i-a dryRun=false"))
        let event = try #require(steps.firstIndex(of: "event ScaleDown i-a"))
        let deleted = try #require(steps.firstIndex(of: "delete i-a uid-i-a dryRun=false"))
        #expect(ghostWritten < terminated && terminated < event && event < deleted)
        #expect(report.actions.map(\.kind) == [.terminate, .deleteNode])
        #expect(report.drainDurations == [120])
        let done = try #require(third.finished.withLock { $0 })
        #expect(done.drains.isEmpty)
        #expect(done.ghostNodes.isEmpty)
        #expect(done.pool("default").lastScaleDownAt == Self.t0.addingTimeInterval(125))
    }

    @Test func unschedulablePodsCancelAnOpenDrainBeforeAnythingIsLaunched() async throws {
        let journal = T.Journal()
        var cluster = FakeCluster(journal: journal, nodes: [Self.node("i-a", draining: true), Self.node("i-b")])
        cluster.pods = [Self.pod("web-1", on: "i-a")]
        let state = StateDocument(drains: [OpenDrain(node: "i-a", machine: "i-a", startedAt: Self.t0, deadline: Self.t0.addingTimeInterval(600))])
        var config = T.config
        config.kubernetes.ghostGrace = 120
        let lease = Lease(clusterID: "demo", owner: "me", token: 7, acquiredAt: Self.t0, expiresAt: Self.t0.addingTimeInterval(120))
        let evaluator = Evaluator(config: config, store: T.FakeStore(journal: journal, acquisition: .acquired(lease, state)),
                                  fleet: T.FakeFleet(journal: journal, instances: [T.instance("i-a"), T.instance("i-b")]),
                                  metrics: T.metrics(journal, ids: ["i-a", "i-b"], unschedulable: 1), cluster: cluster,
                                  clock: { Self.t0.addingTimeInterval(5) })
        let report = await evaluator.run(invocation)
        let entries = journal.all
        let uncordoned = try #require(entries.firstIndex(of: "uncordon i-a"))
        #expect(report.actions.first?.kind == .drainCancel)
        if let launched = entries.firstIndex(where: { $0.hasPrefix("launch") }) { #expect(uncordoned < launched) }
        #expect(entries.contains("event ScaleDownDrainCancelled i-a"))
        #expect(journal.finished.withLock { $0 }?.drains == [])
    }

    @Test func aRunThatLostItsLeaseBeforeRecordingTheDrainTouchesNoNode() async throws {
        // The state write before the cordon is refused (the lease was taken over): the loser
        // cordons nothing, evicts nothing, terminates nothing.
        let journal = T.Journal()
        var cluster = FakeCluster(journal: journal, nodes: [Self.node("i-a"), Self.node("i-b")])
        cluster.pods = [Self.pod("web-1", on: "i-a")]
        let lease = Lease(clusterID: "demo", owner: "me", token: 7, acquiredAt: Self.t0, expiresAt: Self.t0.addingTimeInterval(120))
        let evaluator = Evaluator(config: T.config, store: T.FakeStore(journal: journal, acquisition: .acquired(lease, StateDocument()), intentFails: true),
                                  fleet: T.FakeFleet(journal: journal, instances: [T.instance("i-a"), T.instance("i-b")]),
                                  metrics: T.metrics(journal, ids: ["i-a", "i-b"], unschedulable: 0, utilization: 0.1), cluster: cluster,
                                  clock: { Self.t0.addingTimeInterval(5) })
        let report = await evaluator.run(invocation)
        #expect(journal.all.contains { $0.hasPrefix("write drains") })
        #expect(!journal.all.contains { $0.hasPrefix("cordon") || $0.hasPrefix("evict") || $0.hasPrefix("terminate") || $0.hasPrefix("event") })
        #expect(report.actions.isEmpty)
        #expect(!report.errors.isEmpty)
    }

    @Test func aGhostWaitsOutTheGraceThenIsDeletedWithAnEvent() async throws {
        let journal = T.Journal()
        let nodes = [Self.node("i-a"), Self.node("i-dead", ready: false)]
        let first = await evaluator(journal, live: ["i-a"], ended: ["i-dead"], cluster: FakeCluster(journal: journal, nodes: nodes)).run(invocation)
        #expect(first.outcome == .nothing, "\(first.errors)")
        #expect(!journal.all.contains { $0.hasPrefix("delete") || $0.hasPrefix("event") })
        let remembered = try #require(journal.finished.withLock { $0 })
        #expect(remembered.ghostNodes == [GhostNode(node: "i-dead", machine: "i-dead", since: Self.t0.addingTimeInterval(5))])
        #expect(first.nodeCleanup?.ghosts.first?.deleteAt == Self.t0.addingTimeInterval(125))
        #expect(first.decision?.counts.ghostNodes == 1)

        let later = T.Journal()
        let second = await evaluator(later, state: remembered, live: ["i-a"], ended: ["i-dead"],
                                     cluster: FakeCluster(journal: later, nodes: nodes), clock: Self.t0.addingTimeInterval(125)).run(invocation)
        #expect(second.outcome == .acted)
        #expect(later.all.contains("event GhostNodeDeleted i-dead"))
        #expect(later.all.contains("delete i-dead uid-i-dead dryRun=false"))
        #expect(later.finished.withLock { $0 }?.ghostNodes == [])
        #expect(!later.all.contains { $0.hasPrefix("delete i-a") })
    }

    @Test func aRunKilledAfterItsTerminateHasTheNodeDeletedByTheNextRunAtOnce() async {
        // What the killed run left: its record written before the call, the instance terminated.
        let state = StateDocument(ghostNodes: [GhostNode(node: "i-b", machine: "i-b", since: Self.t0, terminatedByKscaler: true)])
        let journal = T.Journal()
        let report = await evaluator(journal, state: state, live: ["i-a"], ended: [],  // EC2 already forgot it: the record still says it is ours
                                     cluster: FakeCluster(journal: journal, nodes: [Self.node("i-a"), Self.node("i-b", ready: false)]),
                                     clock: Self.t0.addingTimeInterval(30)).run(invocation)
        #expect(journal.all.contains("delete i-b uid-i-b dryRun=false"))
        #expect(journal.all.contains("event GhostNodeDeleted i-b"))
        #expect(report.outcome == .acted)
        #expect(report.decision?.counts.ghostNodes == 1)
        #expect(report.decision?.halt == nil)
    }

    @Test func aFailedNodeListActsOnNothing() async {
        let journal = T.Journal()
        var cluster = FakeCluster(journal: journal, nodes: [])
        cluster.listFails = true
        let report = await evaluator(journal, live: ["i-a", "i-b"], cluster: cluster, utilization: 0.1).run(invocation)
        #expect(report.outcome == .failed)
        #expect(!journal.all.contains { $0.hasPrefix("terminate") || $0.hasPrefix("launch") || $0.hasPrefix("delete") || $0.hasPrefix("write") })
        #expect(report.errors.contains { $0.hasPrefix("Kubernetes API: listing the nodes and pods failed") })
    }

    @Test func aFailedDeletionIsKeptForTheNextRun() async {
        let journal = T.Journal()
        var cluster = FakeCluster(journal: journal, nodes: [Self.node("i-a"), Self.node("i-dead", ready: false)])
        cluster.deleteFails = true
        let state = StateDocument(ghostNodes: [GhostNode(node: "i-dead", machine: "i-dead", since: Self.t0.addingTimeInterval(-600))])
        let report = await evaluator(journal, state: state, live: ["i-a"], ended: ["i-dead"], cluster: cluster).run(invocation)
        #expect(report.outcome == .actionFailed)
        #expect(report.actions.map(\.result) == [.failed])
        #expect(journal.finished.withLock { $0 }?.ghostNodes.map(\.machine) == nil)  // unchanged: the record stays as it was
    }

    @Test func planAsksTheAPIServerForADryRunAndWritesNothing() async {
        let journal = T.Journal()
        let state = StateDocument(ghostNodes: [GhostNode(node: "i-dead", machine: "i-dead", since: Self.t0.addingTimeInterval(-600))])
        let evaluator = Evaluator(config: T.config, store: PlanStore(journal: journal, state: state),
                                  fleet: T.FakeFleet(journal: journal, instances: [T.instance("i-a")], ended: ["i-dead"]),
                                  metrics: T.metrics(journal, ids: ["i-a"], unschedulable: 0),
                                  cluster: FakeCluster(journal: journal, nodes: [Self.node("i-a"), Self.node("i-dead", ready: false)]),
                                  clock: { Self.t0 })
        let report = await evaluator.plan(invocation)
        #expect(journal.all.contains("delete i-dead uid-i-dead dryRun=true"))
        #expect(!journal.all.contains { $0.hasPrefix("event") || $0.hasPrefix("write") || $0.hasPrefix("intent") })
        #expect(report.nodeCleanup?.due.map(\.node.name) == ["i-dead"])
    }

    struct PlanStore: RunStore {
        let journal: T.Journal
        let state: StateDocument
        func acquire(owner: String, ttl: Duration, now: Date, clockSkew: TimeInterval) async throws -> LeaseAcquisition { fatalError("plan takes no lease") }
        func giveBack(owner: String) async throws {}
        func readState() async throws -> StateDocument { state }
        func write(_ document: StateDocument, lease: Lease) async throws { journal.add("write") }
        func finish(lease: Lease, document: StateDocument?, event: RunEvent?, retention: TimeInterval) async throws -> Bool { true }
        func holder() async throws -> LeaseHolder { LeaseHolder(owner: nil, token: 0, acquiredAt: nil, expiresAt: nil) }
        func breakLease() async throws -> KScalerTable.BrokenLease { .init(holder: try await holder(), cleared: false, tokenReset: false) }
        func history(limit: Int) async throws -> (events: [RunEvent], unreadable: [String]) { ([], []) }
    }
}
