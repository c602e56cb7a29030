import KScalerCore
import Synchronization
import Testing
@testable import KScaler

/// When a run asks for sizes: the nodes' query only when a listed type has no configured size
/// (in the same batch as the signals), EC2 only when the decision launches or halted for want
/// of sizes, once, for the types still unknown. Scripted fakes (EvaluatorTests'); the sources
/// themselves are tested against a real Prometheus and moto.
@Suite struct SizesEvaluatorTests {
    typealias Fakes = EvaluatorTests

    /// The metrics fake, saying whether the sizes query came in its batch.
    struct SizingMetrics: MetricsSource {
        let base: EvaluatorTests.FakeMetrics
        var nodeSizes: [String: WorkerSize] = [:]
        func observe(queries: [Signal: String], now: Date) async -> MetricsObservation {
            await observe(queries: queries, sizesQuery: nil, now: now)
        }
        func observe(queries: [Signal: String], sizesQuery: String?, now: Date) async -> MetricsObservation {
            base.journal.add("metrics \(queries.count) sizes=\(sizesQuery == DefaultQueries.allocatableByInstanceType)")
            var observed = await base.observe(queries: queries, now: now)
            if sizesQuery != nil { observed.nodeSizes = nodeSizes }
            return observed
        }
    }

    /// The fleet fake with EC2's estimate.
    struct SizingFleet: Fleet, MachineSizing {
        let base: EvaluatorTests.FakeFleet
        var estimates: [String: WorkerSize] = [:]
        var estimateFails = false
        var machines: MachineIdentity { base.machines }
        func listMachines() async throws -> MachineListing { try await base.listMachines() }
        func instances(launchID: String) async throws -> [ManagedInstance] { try await base.instances(launchID: launchID) }
        func launch(_ plan: LaunchPlan, dryRun: Bool) async throws -> LaunchResult {
            base.journal.add("offerings \(plan.candidates.map { $0.machineType ?? "-" }.joined(separator: ","))")
            return try await base.launch(plan, dryRun: dryRun)
        }
        func terminate(_ instanceIDs: [String], dryRun: Bool) async throws { try await base.terminate(instanceIDs, dryRun: dryRun) }
        func outcome(of error: any Error) -> FailedCallOutcome { base.outcome(of: error) }
        func estimatedSizes(of machineTypes: [String]) async throws -> [String: WorkerSize] {
            base.journal.add("estimate \(machineTypes.joined(separator: ","))")
            if estimateFails { throw EvaluatorTests.Broken() }
            return estimates.filter { machineTypes.contains($0.key) }
        }
    }

    static let nodesSize = WorkerSize(cpuCores: 2, memoryBytes: 8 << 30)
    static let ec2Size = WorkerSize(cpuCores: 1.93, memoryBytes: 6627 << 20)

    func run(sizes: [String: WorkerSize], types: [String] = ["t3.large", "m5.large"], unschedulable: Double, cpu: Double = 0,
             nodeSizes: [String: WorkerSize] = [:], estimateFails: Bool = false) async -> (RunReport, [String]) {
        let journal = EvaluatorTests.Journal()
        var config = Fakes.config
        config.workers.instanceTypes = types
        config.workers.sizes = sizes
        let ids = ["i-a"]
        let report = await Evaluator(
            config: config, store: Fakes.FakeStore(journal: journal, acquisition: .acquired(Fakes.lease, StateDocument())),
            fleet: SizingFleet(base: Fakes.FakeFleet(journal: journal, instances: ids.map { Fakes.instance($0) }),
                               estimates: ["t3.large": Self.ec2Size, "m5.large": Self.ec2Size], estimateFails: estimateFails),
            metrics: SizingMetrics(base: Fakes.metrics(journal, ids: ids, unschedulable: unschedulable, cpu: cpu), nodeSizes: nodeSizes),
            clock: { Fakes.t0.addingTimeInterval(5) }).run(Evaluator.Invocation(runID: "run-1", owner: "me"))
        return (report, journal.all)
    }

    @Test func everySizeConfiguredAsksNeitherPrometheusNorEC2ForSizes() async {
        let (report, journal) = await run(sizes: ["t3.large": Self.nodesSize, "m5.large": Self.nodesSize], unschedulable: 5, cpu: 5)
        #expect(journal.contains("metrics \(Signal.allCases.count) sizes=false"), "\(journal)")
        #expect(!journal.contains { $0.hasPrefix("estimate") })
        #expect(report.decision?.action == .scaleUp(count: 3))
        #expect(report.decision?.sizes.map(\.source) == [.config, .config])
    }

    @Test func sizesFromNodesInTheSameBatchAndNoEC2CallForAQuietRun() async {
        // m5.large from its nodes, t3.large unknown: a run that launches nothing does not ask EC2.
        let (report, journal) = await run(sizes: [:], unschedulable: 0, nodeSizes: ["m5.large": Self.nodesSize])
        #expect(journal.contains("metrics \(Signal.allCases.count) sizes=true"), "\(journal)")
        #expect(!journal.contains { $0.hasPrefix("estimate") }, "\(journal)")
        #expect(report.outcome == .nothing)
        #expect(report.decision?.sizes == [TypeSize(machineType: "t3.large", size: nil, source: nil),
                                           TypeSize(machineType: "m5.large", size: Self.nodesSize, source: .nodes)])
    }

    @Test func aLaunchAsksEC2OnceForTheTypesStillUnknownAndLaunchesThePreferredOne() async {
        let (report, journal) = await run(sizes: [:], unschedulable: 4, cpu: 4, nodeSizes: ["m5.large": Self.nodesSize])
        #expect(journal.filter { $0.hasPrefix("estimate") } == ["estimate t3.large"], "\(journal)")
        // t3.large first again, sized by EC2's 1.93 cores: 3 nodes for 4 cores.
        #expect(report.decision?.action == .scaleUp(count: 3))
        #expect(journal.contains("offerings t3.large,m5.large"), "\(journal)")
        #expect(report.decision?.sizes.map(\.source) == [.ec2, .nodes])
        #expect(report.observation?.learnedSizes.ec2 == ["t3.large": Self.ec2Size])
    }

    @Test func anEC2FailureLeavesTheTypeSkippedAndSaysWhy() async {
        let (report, journal) = await run(sizes: [:], unschedulable: 4, cpu: 4, nodeSizes: ["m5.large": Self.nodesSize], estimateFails: true)
        #expect(journal.contains("offerings m5.large"), "\(journal)")
        #expect(report.decision?.action == .scaleUp(count: 2))
        #expect(report.decision?.reasons.contains { $0.code == .unknownSize && $0.message.contains("EC2 DescribeInstanceTypes failed") } == true)
    }

    @Test func noSizeAnywhereDecidesNothingAndFails() async {
        let (report, journal) = await run(sizes: [:], unschedulable: 4, cpu: 4, estimateFails: true)
        #expect(journal.filter { $0.hasPrefix("estimate") } == ["estimate t3.large,m5.large"], "\(journal)")
        #expect(!journal.contains { $0.hasPrefix("launch") || $0.hasPrefix("intent") })
        #expect(report.decision?.halt == .unknownSizes)
        #expect(report.outcome == .failed)
    }
}
