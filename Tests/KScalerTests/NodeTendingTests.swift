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
        func outcome(of error: any Error) -> FailedCallOutcome { .nothingHappened }
    }

    static func node(_ name: String, ready: Bool = true) -> ClusterNode {
        ClusterNode(name: name, uid: "uid-\(name)", providerID: "aws:///us-east-1a/\(name)", ready: ready, machineID: name)
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

    @Test func aScaleDownRecordsTheNodeBeforeTerminatingAndDeletesItInTheSameRun() async throws {
        let journal = T.Journal()
        let report = await evaluator(journal, live: ["i-a", "i-b"], cluster: FakeCluster(journal: journal, nodes: [Self.node("i-a"), Self.node("i-b")]),
                                     utilization: 0.1).run(invocation)
        #expect(report.outcome == .acted, "\(report.errors)")
        let entries = journal.all
        let victim = try #require(report.decision.flatMap { if case .scaleDown(let v) = $0.action { v.first?.instanceID } else { nil } })
        let written = try #require(entries.firstIndex(of: "write ghosts \(victim)"))
        let terminated = try #require(entries.firstIndex(of: "terminate \(victim) dryRun=false"))
        let event = try #require(entries.firstIndex(of: "event ScaleDown \(victim)"))
        let deleted = try #require(entries.firstIndex(of: "delete \(victim) uid-\(victim) dryRun=false"))
        #expect(written < terminated && terminated < event && event < deleted)
        #expect(report.actions.map(\.kind) == [.terminate, .deleteNode])
        #expect(report.actions.last?.nodes == [victim])
        // The Node is gone: nothing left to remember.
        #expect(journal.finished.withLock { $0 }?.ghostNodes == [])
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
        #expect(report.errors.contains { $0.hasPrefix("Kubernetes API: listing the Node objects failed") })
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
