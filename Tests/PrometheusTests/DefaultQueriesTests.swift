// Every default signal query against a real Prometheus scraping the fake cluster, whose
// answers are known (see `fixed` in infra/local/ksandbox/exporter.py).
import Foundation
import KScaler
import KScalerCore
import Prometheus
import Testing

private let gib = 1_073_741_824.0

/// Short enough for a test to wait for, long enough for ten subquery steps of one second.
private let testWindowSeconds = 10

private func answer(_ signal: Signal, mode: UtilizationMode = .requests, windowSeconds: Int = testWindowSeconds) async throws -> QueryResult {
    let query = DefaultQueries.query(for: signal, mode: mode, windowSeconds: windowSeconds, workerNodes: EC2Fleet.machines.workerNodeNames)
    return try await fakeClusterPrometheus().client().query(query)
}

/// The one number a `.scalar` signal answers, or nil for no data.
private func number(_ signal: Signal, mode: UtilizationMode = .requests, windowSeconds: Int = testWindowSeconds) async throws -> Double? {
    let samples = try await answer(signal, mode: mode, windowSeconds: windowSeconds).samples
    try #require(samples.count <= 1, "\(signal) answered \(samples.count) samples")
    return samples.first?.value
}

/// A `.perNode` signal's answer keyed by node name.
private func perNode(_ signal: Signal) async throws -> [String: Sample] {
    let samples = try await answer(signal).samples
    return Dictionary(samples.map { ($0.labels["node"] ?? "", $0) }, uniquingKeysWith: { first, _ in first })
}

/// A window-max signal once Prometheus holds a whole window of complete history.
private func windowMaximum(_ signal: Signal, mode: UtilizationMode) async throws -> Double? {
    // One second more for the subquery's step alignment.
    try await Task.sleep(until: fakeClusterPrometheus().fullyScrapedSince + .seconds(testWindowSeconds + 1))
    return try await number(signal, mode: mode)
}

@Suite(.fakeCluster(.busy)) struct DefaultQueriesBusyClusterTests {
    @Test func unschedulablePodsAreCounted() async throws {
        #expect(try await number(.unschedulablePods) == 2)
    }

    @Test func pendingRequestsAreTheUnschedulablePodsOnly() async throws {
        // big-1 (1.5 cores, 3 GiB) + big-2 (1 + 0.5 cores, 1 GiB + 512 MiB); fresh-1, pending but not
        // yet judged unschedulable, does not count.
        #expect(try await number(.pendingCPURequestCores) == 3)
        #expect(try await number(.pendingMemoryRequestBytes) == 4.5 * gib)
    }

    @Test func requestedShareOfReadyWorkerAllocatable() async throws {
        // Ready workers i-…0 and i-…1 only: 2.75 of 4 cores, 4.5 of 16 GiB. The NotReady i-…2 and
        // i-…3 (a ghost, or a node still booting) add neither requests nor allocatable.
        #expect(try await number(.cpuUtilization, mode: .requests) == 2.75 / 4)
        #expect(try await number(.memoryUtilization, mode: .requests) == 4.5 / 16)
    }

    @Test func usedShareOfWorkerCapacity() async throws {
        let cpu = try #require(try await number(.cpuUtilization, mode: .usage))
        #expect(abs(cpu - 1.0 / 3) < 1e-9, "cpu usage \(cpu)")
        #expect(try await number(.memoryUtilization, mode: .usage) == 0.5)
    }

    @Test(arguments: UtilizationMode.allCases)
    func windowMaximumOnceAWholeWindowIsRecorded(mode: UtilizationMode) async throws {
        let cpu = try #require(try await windowMaximum(.cpuUtilizationWindowMax, mode: mode), "no window max after a whole window")
        let memory = try #require(try await windowMaximum(.memoryUtilizationWindowMax, mode: mode), "no window max after a whole window")
        switch mode {
        case .requests:
            #expect(cpu == 2.75 / 4)
            #expect(memory == 4.5 / 16)
        case .usage:
            #expect(abs(cpu - 1.0 / 3) < 1e-9, "cpu usage window max \(cpu)")
            #expect(memory == 0.5)
        }
    }

    @Test(arguments: UtilizationMode.allCases)
    func windowLongerThanTheHistoryIsNoData(mode: UtilizationMode) async throws {
        // A window a minute longer than the history so far (however late a loaded machine runs this
        // test): the current value and the latest subquery steps have data, the earliest do not.
        let fullyScrapedSince = try fakeClusterPrometheus().fullyScrapedSince
        try await Task.sleep(until: fullyScrapedSince + .seconds(3))
        #expect(try await number(.cpuUtilization, mode: mode) != nil)
        let history = ContinuousClock.now - fullyScrapedSince
        let windowSeconds = Int(history.components.seconds) + 60
        for signal in [Signal.cpuUtilizationWindowMax, .memoryUtilizationWindowMax] {
            #expect(try await answer(signal, mode: mode, windowSeconds: windowSeconds).isNoData, "window \(windowSeconds)s")
        }
    }

    @Test func readinessPerNodeWithProviderID() async throws {
        let ready = try await perNode(.nodeReady)
        #expect(ready.mapValues(\.value) == [
            "i-0123456789abcdef0": 1, "i-0123456789abcdef1": 1,
            "i-0123456789abcdef2": 0,  // Ready=False
            "i-0123456789abcdef3": 0,  // Ready=Unknown
            "ip-10-0-1-10": 1,
        ])
        #expect(ready["i-0123456789abcdef1"]?.labels == ["node": "i-0123456789abcdef1", "provider_id": "aws:///us-east-1b/i-0123456789abcdef1"])
    }

    @Test func podsPerNodeCountsEmptyNodesAsZero() async throws {
        let pods = try await perNode(.podsPerNode)
        // DaemonSet, finished and unscheduled pods do not count; i-…1 runs none of the rest.
        #expect(pods.mapValues(\.value) == [
            "i-0123456789abcdef0": 2, "i-0123456789abcdef1": 0, "i-0123456789abcdef2": 1, "i-0123456789abcdef3": 1,
            "ip-10-0-1-10": 1,
        ])
        #expect(pods.values.allSatisfy { $0.labels.keys.sorted() == ["node"] })
    }

    @Test func allocatableByInstanceTypeFromReadyNodesOnly() async throws {
        #expect(try await sizesByType() == [
            "m5.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * 1_073_741_824),  // i-…0 and i-…1
            "c5.xlarge": WorkerSize(cpuCores: 4, memoryBytes: 8 * 1_073_741_824),  // the control plane
            // t3.medium: i-…2 and i-…3 are not Ready, so no size from them
        ])
        // One series per (type, resource), as the source reads them.
        #expect(try await fakeClusterPrometheus().client().query(DefaultQueries.allocatableByInstanceType).samples.count == 4)
    }
}

/// The run's reading of `DefaultQueries.allocatableByInstanceType`, in the batch with no signal.
private func sizesByType() async throws -> [String: WorkerSize] {
    let source = PrometheusMetricsSource(client: try fakeClusterPrometheus().client(), staleness: .seconds(60))
    let observed = await source.observe(queries: [:], sizesQuery: DefaultQueries.allocatableByInstanceType, now: Date())
    #expect(observed.nodeSizesProblem == nil)
    return observed.nodeSizes
}

@Suite(.fakeCluster(.settled)) struct DefaultQueriesSettledClusterTests {
    @Test func noUnschedulablePodIsZeroNotNoData() async throws {
        #expect(try await number(.unschedulablePods) == 0)
        #expect(try await number(.pendingCPURequestCores) == 0)
        #expect(try await number(.pendingMemoryRequestBytes) == 0)
    }

    @Test func utilizationIsUnchanged() async throws {
        #expect(try await number(.cpuUtilization) == 2.75 / 4)
        #expect(try await number(.memoryUtilization) == 4.5 / 16)
    }
}

@Suite(.fakeCluster(.kubeStateMetricsDown)) struct DefaultQueriesWithoutKubeStateMetricsTests {
    @Test func kubeStateMetricsWasScrapedAndFoundDown() async throws {
        let up = try await fakeClusterPrometheus().client().query(#"up{job="kube-state-metrics"}"#).samples
        #expect(up.map(\.value) == [0])
    }

    @Test(arguments: [
        Signal.unschedulablePods, .pendingCPURequestCores, .pendingMemoryRequestBytes, .cpuUtilization, .memoryUtilization,
        .cpuUtilizationWindowMax, .memoryUtilizationWindowMax, .nodeReady, .podsPerNode,
    ])
    func signalsFromKubeStateMetricsAreNoData(signal: Signal) async throws {
        #expect(try await answer(signal, mode: .requests).isNoData)
    }

    @Test func noNodeSizesWithoutKubeStateMetrics() async throws {
        // No data is no size (the config or EC2 then sizes the types), never a size of zero.
        #expect(try await sizesByType().isEmpty)
    }

    @Test func usageSignalsStillAnswerFromNodeExporter() async throws {
        let cpu = try #require(try await number(.cpuUtilization, mode: .usage))
        #expect(abs(cpu - 1.0 / 3) < 1e-9, "cpu usage \(cpu)")
        #expect(try await number(.memoryUtilization, mode: .usage) == 0.5)
    }
}

@Suite(.fakeCluster(.kubeStateMetricsRollout)) struct DefaultQueriesDuringKubeStateMetricsRolloutTests {
    @Test func readinessStillAnswersOncePerNode() async throws {
        let ready = try await perNode(.nodeReady)
        #expect(ready.mapValues(\.value) == [
            "i-0123456789abcdef0": 1, "i-0123456789abcdef1": 1, "i-0123456789abcdef2": 0, "i-0123456789abcdef3": 0, "ip-10-0-1-10": 1,
        ])
        #expect(try await answer(.nodeReady).samples.count == 5)
    }

    @Test func utilizationSharesAreUnchanged() async throws {
        #expect(try await number(.cpuUtilization) == 2.75 / 4)
        #expect(try await number(.memoryUtilization) == 4.5 / 16)
    }

    @Test func allocatableByInstanceTypeStillOneSeriesPerTypeAndResource() async throws {
        #expect(try await fakeClusterPrometheus().client().query(DefaultQueries.allocatableByInstanceType).samples.count == 4)
        #expect(try await sizesByType()["m5.large"] == WorkerSize(cpuCores: 2, memoryBytes: 8 * 1_073_741_824))
    }
}

@Suite struct DefaultQueriesTextTests {
    @Test(arguments: [(600, "[600s:60s]", ">= 10"), (10, "[10s:1s]", ">= 10"), (65, "[65s:6s]", ">= 10"), (3, "[3s:1s]", ">= 3")])
    func windowIsSampledTenTimesAndMustBeCovered(windowSeconds: Int, range: String, coverage: String) {
        let query = DefaultQueries.query(for: .cpuUtilizationWindowMax, mode: .requests, windowSeconds: windowSeconds, workerNodes: EC2Fleet.machines.workerNodeNames)
        #expect(query.hasPrefix("max_over_time(("))
        #expect(query.contains(range))
        #expect(query.hasSuffix(coverage + ")"))
    }
}
