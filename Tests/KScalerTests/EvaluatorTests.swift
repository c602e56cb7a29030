import AWS
import HTTP
import KScalerCore
import Synchronization
import Testing
@testable import KScaler

/// The run's orchestration with scripted fakes for the table, the fleet and Prometheus:
/// what is called, in which order, and that nothing acts on doubt. (The adapters themselves
/// are tested against moto and a real Prometheus elsewhere.)
@Suite struct EvaluatorTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Every call the fakes saw, in order.
    final class Journal: Sendable {
        let entries = Mutex<[String]>([])
        /// The time left before the request deadline when `launch` was called.
        let launchBound = Mutex<Duration?>(nil)
        /// The document the run finished with (nil: unchanged).
        let finished = Mutex<StateDocument?>(nil)
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    struct FakeStore: RunStore {
        let journal: Journal
        var acquisition: LeaseAcquisition
        var intentFails = false
        var finishResult = true

        func acquire(owner: String, ttl: Duration, now: Date, clockSkew: TimeInterval) async throws -> LeaseAcquisition {
            journal.add("acquire"); return acquisition
        }
        func giveBack(owner: String) async throws { journal.add("giveBack \(owner)") }
        func readState() async throws -> StateDocument { journal.add("readState"); return StateDocument() }
        func write(_ document: StateDocument, lease: Lease) async throws {
            if document.ghostNodes.isEmpty && document.launchIntent == nil && !document.drains.isEmpty {
                journal.add("write drains \(document.drains.map(\.machine).joined(separator: ","))")
            } else if document.ghostNodes.isEmpty {
                journal.add("intent \(document.launchIntent?.count ?? 0)")
            } else {
                journal.add("write ghosts \(document.ghostNodes.map(\.machine).joined(separator: ","))")
            }
            if intentFails { throw DynamoDBLost() }
        }
        /// What changed against the state the acquisition handed out: stamps set, an intent cleared.
        func finish(lease: Lease, document: StateDocument?, event: RunEvent?, retention: TimeInterval) async throws -> Bool {
            let before = if case .acquired(_, let state) = acquisition { state } else { StateDocument() }
            let after = document ?? before
            journal.finished.withLock { $0 = document }
            let wroteIntent = journal.all.contains { $0.hasPrefix("intent ") }
            let cleared = document != nil && (before.launchIntent != nil || wroteIntent) && after.launchIntent == nil
            journal.add("finish up=\(after.pool("default").lastScaleUpAt != before.pool("default").lastScaleUpAt) "
                + "down=\(after.pool("default").lastScaleDownAt != before.pool("default").lastScaleDownAt) "
                + "clearIntent=\(cleared) event=\(event?.outcome.rawValue ?? "none")")
            return finishResult
        }
        func holder() async throws -> LeaseHolder { LeaseHolder(owner: nil, token: 0, acquiredAt: nil, expiresAt: nil) }
        func breakLease() async throws -> KScalerTable.BrokenLease {
            .init(holder: try await holder(), cleared: false, tokenReset: false)
        }
        func history(limit: Int) async throws -> (events: [RunEvent], unreadable: [String]) { ([], []) }
    }
    struct DynamoDBLost: Error {}
    struct Broken: Error, CustomStringConvertible { var description: String { "EC2 DescribeInstances failed: InternalError (HTTP 500)" } }

    struct FakeFleet: Fleet {
        let journal: Journal
        var instances: [ManagedInstance] = []
        /// Machines shutting down or terminated, still tagged ours.
        var ended: Set<String> = []
        var describeFails = false
        var launchError: (any Error & Sendable)?
        var launchedByIntent: [ManagedInstance] = []

        func listMachines() async throws -> MachineListing {
            journal.add("describe")
            if describeFails { throw Broken() }
            return MachineListing(live: instances, ended: ended)
        }
        func instances(launchID: String) async throws -> [ManagedInstance] { journal.add("lookup \(launchID)"); return launchedByIntent }
        func launch(_ plan: LaunchPlan, dryRun: Bool) async throws -> LaunchResult {
            journal.add("launch \(plan.count) dryRun=\(dryRun) id=\(plan.launchID)")
            journal.launchBound.withLock { $0 = RequestDeadline.remaining }
            if let launchError { throw launchError }
            let launched = (0..<(dryRun ? 0 : plan.count)).map { index in
                ManagedInstance(id: "i-new\(index)", machineType: "t3.large", placement: "subnet-a", zone: "us-east-1a",
                                launchTime: EvaluatorTests.t0, state: .pending, protected: false)
            }
            return LaunchResult(instances: launched, offering: plan.candidates.first, unavailable: [])
        }
        func terminate(_ instanceIDs: [String], dryRun: Bool) async throws {
            journal.add("terminate \(instanceIDs.joined(separator: ",")) dryRun=\(dryRun)")
        }
        /// The fake's nodes are named after their machines.
        var machines: MachineIdentity { MachineIdentity(backend: "test", providerID: nil, nodeName: .machineID, machineIDs: "i-.+",
                                                        isMachineID: { $0.hasPrefix("i-") }) }
        /// The fakes throw the AWS layer's errors: judged as the EC2 fleet judges them.
        func outcome(of error: any Error) -> FailedCallOutcome { mayHaveTakenEffect(error) ? .unknown : .nothingHappened }
    }

    struct FakeMetrics: MetricsSource {
        let journal: Journal
        var readings: [Signal: Reading]
        var nodes: [NodeObservation]
        func observe(queries: [Signal: String], now: Date) async -> MetricsObservation {
            journal.add("metrics \(queries.count)")
            return MetricsObservation(readings: readings, nodes: nodes)
        }
    }

    static let config = KScalerConfig(
        clusterID: "demo", table: "kscaler", prometheus: PrometheusSettings(url: "http://127.0.0.1:9090"),
        nodes: NodeBounds(min: 1, max: 10),
        // Without a Kubernetes API (most tests here), the terminate-only scale-down.
        scaleDown: ScaleDownPolicy(withoutDrain: true),
        workers: WorkerSettings(imageID: "ami-1", instanceTypes: ["t3.large"], subnets: ["subnet-a"],
                                sizes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 << 30)],
                                join: .defaults(clusterID: "demo")),
        lease: LeaseSettings(ttl: 120, safetyMargin: 20))

    static let lease = Lease(clusterID: "demo", owner: "me", token: 7, acquiredAt: t0, expiresAt: t0.addingTimeInterval(120))

    static func instance(_ id: String, ageMinutes: Double = 60) -> ManagedInstance {
        ManagedInstance(id: id, machineType: "t3.large", placement: "subnet-a", zone: "us-east-1a",
                        launchTime: t0.addingTimeInterval(-ageMinutes * 60), state: .running, protected: false)
    }

    /// A healthy cluster of `ready` managed nodes with `unschedulable` pods needing `cpu` cores.
    static func metrics(_ journal: Journal, ids: [String], unschedulable: Double, cpu: Double = 0, utilization: Double = 0.5) -> FakeMetrics {
        var readings: [Signal: Reading] = [:]
        for signal in Signal.allCases { readings[signal] = .value(utilization) }
        readings[.unschedulablePods] = .value(unschedulable)
        readings[.pendingCPURequestCores] = .value(cpu)
        readings[.pendingMemoryRequestBytes] = .value(0)
        readings[.nodeReady] = .value(Double(ids.count))
        readings[.podsPerNode] = .value(Double(ids.count))
        return FakeMetrics(journal: journal, readings: readings,
                           nodes: ids.map { NodeObservation(name: $0, instanceID: $0, ready: true, nonDaemonSetPods: 3) })
    }

    func evaluator(store: FakeStore, fleet: FakeFleet, metrics: FakeMetrics, clock: Date = t0.addingTimeInterval(5)) -> Evaluator {
        Evaluator(config: Self.config, store: store, fleet: fleet, metrics: metrics, clock: { clock })
    }

    var invocation = Evaluator.Invocation(runID: "run-1", owner: "me")

    @Test func pendingPodsLaunchAfterRecordingTheIntentAndFinishInOneStep() async {
        let journal = Journal()
        let ids = ["i-a", "i-b"]
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: ids.map { Self.instance($0) }),
            metrics: Self.metrics(journal, ids: ids, unschedulable: 5, cpu: 5)).run(invocation)
        #expect(report.outcome == .acted)
        let entries = journal.all
        #expect(entries.first == "acquire")
        #expect(Set(entries[1...2]) == ["metrics \(Signal.allCases.count)", "describe"])
        #expect(entries[3] == "intent 3")
        #expect(entries[4].hasPrefix("launch 3 dryRun=false id=ks-"))
        #expect(entries[5] == "finish up=true down=false clearIntent=true event=acted")
        #expect(entries.count == 6)
        #expect(report.actions.first?.instanceIDs == ["i-new0", "i-new1", "i-new2"])
        #expect(report.leaseReleased == true)
    }

    /// The lease (t0 … t0+120 s, safety margin 20 s) is 5 s old when the run acts: every EC2
    /// call must be over 95 s from now, however long the run's own deadline.
    @Test func actionsAreBoundedByTheLeasesSafeWindow() async throws {
        let journal = Journal()
        var invocation = invocation
        invocation.deadline = .now + .seconds(3600)
        _ = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4)).run(invocation)
        let bound = try #require(journal.launchBound.withLock { $0 })
        #expect(bound <= .seconds(95) && bound > .seconds(60), "\(bound)")
    }

    /// The lease, observation, actions and record around a decision are the same whatever
    /// decides: here an operator's request (`kscaler scale`) instead of the metrics (which ask
    /// for nothing). Its hold goes into the state, its request into the history.
    @Test func anOperatorsRequestRunsInsideTheSameLeaseAndActions() async throws {
        let journal = Journal()
        let request = ManualRequest(change: .to(3), hold: 600, reason: "launch day", by: "alice")
        let report = await Evaluator(
            config: Self.config, store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 0),
            clock: { Self.t0.addingTimeInterval(5) }).scale(invocation, request: request)
        #expect(report.outcome == .acted)
        #expect(journal.all.contains("intent 2"))
        #expect(journal.all.last == "finish up=true down=false clearIntent=true event=acted")
        #expect(report.decision?.reasons.map(\.code) == [.manualTarget])
        let hold = Hold(target: 3, until: Self.t0.addingTimeInterval(605), by: "alice", reason: "launch day", setAt: Self.t0.addingTimeInterval(5))
        #expect(journal.finished.withLock { $0 }?.hold == hold)
        #expect(report.historyEvent?.manual == request)
        #expect(report.historyEvent?.hold == hold)
    }

    @Test func aRefusedRequestChangesNothingButIsRecorded() async throws {
        let journal = Journal()
        let held = Hold(target: 1, until: Self.t0.addingTimeInterval(600), by: "bob", setAt: Self.t0)
        let report = await Evaluator(
            config: Self.config, store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument(hold: held))),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 0),
            clock: { Self.t0.addingTimeInterval(5) }).scale(invocation, request: ManualRequest(change: .to(500), hold: 60, by: "alice"))
        #expect(report.decision?.halt == .refused)
        #expect(report.actions.isEmpty)
        #expect(!journal.all.contains { $0.hasPrefix("intent") || $0.hasPrefix("launch") })
        #expect(journal.finished.withLock { $0 } == nil, "the state (and bob's hold) untouched")
        #expect(report.historyEvent?.manual?.by == "alice")
        #expect(report.historyEvent?.outcome == .nothing)
    }

    @Test func aRunDuringAHoldTakesNoDecisionAndTheFirstAfterItLiftsIt() async throws {
        let journal = Journal()
        let held = Hold(target: 1, until: Self.t0.addingTimeInterval(60), by: "bob", setAt: Self.t0)
        func run(at offset: TimeInterval) async -> RunReport {
            await evaluator(store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument(hold: held))),
                            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
                            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4),
                            clock: Self.t0.addingTimeInterval(offset)).run(invocation)
        }
        let during = await run(at: 30)
        #expect(during.decision?.action == Decision.Action.none)
        #expect(during.decision?.reasons.first?.code == .held)
        #expect(during.hold == held)
        #expect(journal.finished.withLock { $0 } == nil, "nothing to write while the hold goes on")
        let after = await run(at: 60)
        #expect(after.decision.map { if case .scaleUp = $0.action { true } else { false } } == true)
        #expect(after.hold == nil)
        #expect(after.holdChanged)
        #expect(journal.finished.withLock { $0 }?.hold == nil)
    }

    @Test func aLeaseHeldByAnotherRunIsSkippedWithoutObserving() async {
        let journal = Journal()
        let holder = LeaseHolder(owner: "other/1/abc", token: 3, acquiredAt: Self.t0, expiresAt: Self.t0.addingTimeInterval(60))
        let report = await evaluator(store: FakeStore(journal: journal, acquisition: .heldByOther(holder)),
                                     fleet: FakeFleet(journal: journal), metrics: Self.metrics(journal, ids: [], unschedulable: 9)).run(invocation)
        #expect(report.outcome == .skipped)
        #expect(journal.all == ["acquire"])
        #expect(report.lease?.owner == "other/1/abc")
    }

    @Test func anUntrustworthyStateItemIsAFailureWithItsProblemsAndNothingElseHappens() async {
        let journal = Journal()
        let problems = ["lease_token is \"2.5\", not a whole number"]
        let report = await evaluator(store: FakeStore(journal: journal, acquisition: .untrustworthy(nil, problems: problems)),
                                     fleet: FakeFleet(journal: journal), metrics: Self.metrics(journal, ids: [], unschedulable: 9)).run(invocation)
        #expect(report.outcome == .failed)
        #expect(journal.all == ["acquire"])
        #expect(report.errors.count == 1)
        #expect(report.errors.first?.contains("lease_token is \"2.5\", not a whole number") == true)
        #expect(report.errors.first?.contains("kscaler lease break --yes") == true)
    }

    @Test func anEC2DescribeFailureActsOnNothingAndStillReleases() async {
        let journal = Journal()
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, describeFails: true),
            metrics: Self.metrics(journal, ids: [], unschedulable: 9, cpu: 9)).run(invocation)
        #expect(report.outcome == .failed)
        #expect(!journal.all.contains { $0.hasPrefix("launch") || $0.hasPrefix("intent") || $0.hasPrefix("terminate") })
        #expect(journal.all.last == "finish up=false down=false clearIntent=false event=failed")
        #expect(report.errors.contains { $0.contains("DescribeInstances failed") })
    }

    @Test(arguments: [Reading.noData, .stale(ageSeconds: 900), .notANumber, .failed("Prometheus answered HTTP 502")])
    func anUnusableSignalActsOnNothingAndExitsAsFailed(reading: Reading) async {
        let journal = Journal()
        var metrics = Self.metrics(journal, ids: ["i-a"], unschedulable: 9, cpu: 9)
        metrics.readings[.unschedulablePods] = reading
        let report = await evaluator(store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
                                     fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]), metrics: metrics).run(invocation)
        #expect(report.outcome == .failed)
        #expect(!journal.all.contains { $0.hasPrefix("launch") || $0.hasPrefix("intent") })
        #expect(journal.all.last?.hasPrefix("finish") == true)
    }

    @Test func tooLittleLeaseLeftRefusesToAct() async {
        let journal = Journal()
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4),
            clock: Self.t0.addingTimeInterval(105)).run(invocation)  // 15 s left < 20 s margin
        #expect(report.outcome == .failed)
        #expect(!journal.all.contains { $0.hasPrefix("launch") || $0.hasPrefix("intent") })
        #expect(report.errors.contains { $0.contains("safety margin") })
    }

    @Test func aLostLeaseBeforeTheLaunchLaunchesNothing() async {
        let journal = Journal()
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument()), intentFails: true),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4)).run(invocation)
        #expect(report.outcome == .failed)
        #expect(!journal.all.contains { $0.hasPrefix("launch") })
    }

    @Test func anAmbiguousLaunchFailureKeepsTheIntentForTheNextRun() async {
        let journal = Journal()
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")], launchError: Broken()),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4)).run(invocation)
        // An error that does not prove nothing happened: the launch may have been made.
        #expect(report.outcome == .actionResultUnknown)
        #expect(report.actions.map(\.result) == [.unknown])
        #expect(journal.all.last == "finish up=false down=false clearIntent=false event=action_result_unknown")
    }

    @Test func aLaunchThatNeverLeftIsAPlainFailure() async {
        let journal = Journal()
        let refused = HTTPError(kind: .couldNotConnect, host: "ec2.us-east-1.amazonaws.com", detail: "could not connect", requestWasSent: false)
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")], launchError: refused),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4)).run(invocation)
        #expect(report.outcome == .actionFailed)
        #expect(report.actions.map(\.result) == [.failed])
        #expect(journal.all.last == "finish up=false down=false clearIntent=false event=action_failed")
    }

    @Test func aPendingIntentThatNeverLaunchedIsReusedNotDuplicated() async {
        let journal = Journal()
        let state = StateDocument(launchIntent: LaunchIntent(launchID: "ks-crashed", count: 3, createdAt: Self.t0.addingTimeInterval(-30)))
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, state)),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4)).run(invocation)
        #expect(report.outcome == .acted)
        #expect(journal.all.contains("lookup ks-crashed"))
        #expect(journal.all.contains { $0.hasPrefix("launch 2 dryRun=false id=ks-crashed") })
    }

    @Test func aCompletedIntentIsClearedAndItsInstancesCountAsBooting() async {
        let journal = Journal()
        let booting = [Self.instance("i-b", ageMinutes: 0.5), Self.instance("i-c", ageMinutes: 0.5)]
        var fleet = FakeFleet(journal: journal, instances: [Self.instance("i-a")] + booting)
        fleet.launchedByIntent = booting
        let state = StateDocument(launchIntent: LaunchIntent(launchID: "ks-done", count: 2, createdAt: Self.t0.addingTimeInterval(-30)))
        let report = await evaluator(store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, state)), fleet: fleet,
                                     metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 2, cpu: 2)).run(invocation)
        // 2 pending pods need 1 node; 2 are booting already: nothing to launch.
        #expect(!journal.all.contains { $0.hasPrefix("launch") })
        #expect(journal.all.last?.contains("clearIntent=true") == true)
        #expect(report.notes.contains { $0.contains("had completed") })
    }

    @Test func aCancelledRunStartsNoActionButReleases() async {
        let journal = Journal()
        let evaluator = evaluator(store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
                                  fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
                                  metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4))
        let task = Task { await evaluator.run(invocation) }
        task.cancel()
        let report = await task.value
        #expect(!journal.all.contains { $0.hasPrefix("launch") || $0.hasPrefix("intent") })
        #expect(journal.all.last?.hasPrefix("finish") == true)
        #expect(report.errors.contains { $0.contains("cancelled") })
    }

    @Test func planNeverWritesAndDryRunsTheAction() async {
        let journal = Journal()
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: [Self.instance("i-a")]),
            metrics: Self.metrics(journal, ids: ["i-a"], unschedulable: 4, cpu: 4)).plan(invocation)
        #expect(report.outcome == .acted)
        #expect(report.mode == .plan)
        #expect(!journal.all.contains { $0 == "acquire" || $0.hasPrefix("intent") || $0.hasPrefix("finish") })
        #expect(journal.all.contains { $0.hasPrefix("launch 2 dryRun=true") })
    }

    @Test func quietMetricsTerminateTheNewestVictimAndStampTheScaleDown() async {
        let journal = Journal()
        let ids = ["i-old", "i-new"]
        let instances = [Self.instance("i-old", ageMinutes: 120), Self.instance("i-new", ageMinutes: 30)]
        let report = await evaluator(
            store: FakeStore(journal: journal, acquisition: .acquired(Self.lease, StateDocument())),
            fleet: FakeFleet(journal: journal, instances: instances),
            metrics: Self.metrics(journal, ids: ids, unschedulable: 0, utilization: 0.1)).run(invocation)
        #expect(report.outcome == .acted)
        #expect(journal.all.contains("terminate i-new dryRun=false"))
        #expect(journal.all.last == "finish up=false down=true clearIntent=false event=acted")
    }
}
