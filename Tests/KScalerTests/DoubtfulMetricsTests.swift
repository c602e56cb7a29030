import Foundation
import HTTP
import KScalerCore
import Prometheus
import Testing
import TestSupport
@testable import KScaler

/// Answers that parse but cannot be what a signal measures: a node counted twice, a fraction of
/// a pod, a readiness of 0.5. Each is a failed reading (never a value), so `decide` acts on
/// nothing and the run exits 3.
@Suite struct DoubtfulMetricsTests {
    static func vector(_ samples: [(labels: [String: String], value: String)]) -> String {
        let now = Date().timeIntervalSince1970
        let series = samples.map { sample in
            let labels = sample.labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
            return "{\"metric\":{\(labels)},\"value\":[\(now),\"\(sample.value)\"]}"
        }
        return #"{"status":"success","data":{"resultType":"vector","result":["# + series.joined(separator: ",") + "]}}"
    }

    /// Observes every signal through a Prometheus stand-in answering `answers[signal]` (a
    /// healthy default otherwise); each signal's query is its own name, so the stub can tell.
    static func observe(_ answers: [Signal: String]) async throws -> MetricsObservation {
        let healthy: [Signal: String] = [
            .nodeReady: vector([(["node": "i-0a"], "1"), (["node": "i-0b"], "1")]),
            .podsPerNode: vector([(["node": "i-0a"], "3"), (["node": "i-0b"], "2")]),
        ]
        let server = try StubHTTPServer { request in
            let query = request.target.split(separator: "query=").last.map(String.init) ?? ""
            let signal = Signal(rawValue: query) ?? .unschedulablePods
            return .text(answers[signal] ?? healthy[signal] ?? vector([([:], "0.5")]), headers: [.init("Content-Type", "application/json")])
        }
        defer { server.stop() }
        let source = PrometheusMetricsSource(client: try PrometheusClient(baseURL: server.baseURL, transport: CurlTransport()),
                                             staleness: .seconds(300))
        return await source.observe(queries: Dictionary(uniqueKeysWithValues: Signal.allCases.map { ($0, $0.rawValue) }), now: Date())
    }

    @Test func aNodeAnsweredTwiceIsAFailedReadingNotTwoNodes() async throws {
        let observed = try await Self.observe([.nodeReady: Self.vector([(["node": "i-0a"], "1"), (["node": "i-0a"], "0"), (["node": "i-0b"], "1")])])
        #expect(observed.readings[.nodeReady] == .failed(
            "node i-0a answered in more than one series; one series per node is expected: aggregate with max by (node) (two kube-state-metrics replicas report every node twice)"))
        #expect(observed.nodes.isEmpty)
    }

    @Test(arguments: [
        (Signal.unschedulablePods, "2.5", "2.5 is not a whole number of pods"),
        (Signal.unschedulablePods, "-1", "-1 is not a whole number of pods"),
    ])
    func aFractionalCountIsAFailedReading(signal: Signal, value: String, problem: String) async throws {
        let observed = try await Self.observe([signal: Self.vector([([:], value)])])
        #expect(observed.readings[signal] == .failed(problem))
    }

    @Test func perNodeValuesMustFitTheirSignal() async throws {
        let observed = try await Self.observe([
            .nodeReady: Self.vector([(["node": "i-0a"], "0.5")]),
            .podsPerNode: Self.vector([(["node": "i-0a"], "1.5")]),
        ])
        #expect(observed.readings[.nodeReady] == .failed("node i-0a: 0.5 is not 0 or 1 (not Ready or Ready)"))
        #expect(observed.readings[.podsPerNode] == .failed("node i-0a: 1.5 is not a whole number of pods"))
    }

    @Test func doubtfulReadingsStopEveryAction() async throws {
        let observed = try await Self.observe([
            .unschedulablePods: Self.vector([([:], "2.5")]),
            .nodeReady: Self.vector([(["node": "i-0a"], "1"), (["node": "i-0a"], "0")]),
        ])
        let decision = decide(Observation(readings: observed.readings, nodes: observed.nodes, instances: []),
                              policy: Policy(capacity: WorkerCapacity(machineTypes: ["t3.large"], placements: [],
                                                                      sizes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 << 30)])),
                              now: Date())
        #expect(decision.action == .none)
        #expect(decision.halt == .missingSignals)
        #expect(decision.reasons.filter { $0.code == .missingSignal }.count == 2)
    }
}

/// The same through the release binary and a real Prometheus: two scrape jobs of one cluster
/// (as two kube-state-metrics replicas look) and a query that does not aggregate them.
@Suite struct DoubtfulMetricsRunTests {
    @Test func aRunThatSeesEveryNodeTwiceLaunchesNothingAndExits3() async throws {
        let query = #"max by (node, job) (kube_node_status_condition{condition="Ready",status="true"})"#
        try await EndToEndHarness.with(extraConfig: "signals: {node_ready: '\(query)'}", scrapeJobs: 2) { harness in
            _ = try await harness.launchWorkers(1)
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 4) }
            try await harness.waitForMetrics()
            let before = try await harness.instances().count
            let (result, report) = try await harness.report()
            #expect(result.status == 3, "\(result.combined)")
            #expect(report?.errors.isEmpty == true)
            #expect(report?.decision?.reasons.contains { $0.message.contains("answered in more than one series") } == true,
                    "\(report?.decision?.reasons.map(\.message) ?? [])")
            #expect(try await harness.instances().count == before)
        }
    }

    @Test func aFractionalUnschedulableCountLaunchesNothingAndExits3() async throws {
        try await EndToEndHarness.with(extraConfig: "signals: {unschedulable_pods: 'sum(kube_pod_status_unschedulable) / 2'}") { harness in
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 5) }
            try await harness.waitForMetrics()
            try await harness.prometheus?.waitUntil("sum(kube_pod_status_unschedulable)", atLeast: 5)
            let (result, report) = try await harness.report()
            #expect(result.status == 3, "\(result.combined)")
            #expect(report?.decision?.reasons.contains { $0.message.contains("2.5 is not a whole number of pods") } == true,
                    "\(report?.decision?.reasons.map(\.message) ?? [])")
            #expect(try await harness.instances().isEmpty)
        }
    }
}
