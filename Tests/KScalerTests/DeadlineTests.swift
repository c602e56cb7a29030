import AWS
import Foundation
import KScaler
import Testing
import TestSupport

/// `--timeout` and SIGTERM against peers that never answer, with the release binary, moto and
/// a real Prometheus. Every stand-in here holds its answer for minutes and the requests' own
/// timeouts are longer still, so a run that ended within its deadline can only have cut them
/// off — the bounds asserted are many times wider than the scheduling noise of a loaded machine.
@Suite struct DeadlineTests {
    static let emptyVector = #"{"status":"success","data":{"resultType":"vector","result":[]}}"#

    /// A Prometheus that reads every query and answers two minutes later.
    static func silentPrometheus() throws -> StubHTTPServer {
        try StubHTTPServer(lifetime: .seconds(300)) { _ in
            .text(emptyVector, headers: [.init("Content-Type", "application/json")], delay: .seconds(120))
        }
    }

    static func seconds(_ report: RunReport?) -> Double {
        report.map { $0.finishedAt.timeIntervalSince($0.startedAt) } ?? .infinity
    }

    /// Before: the run waited for each query's own timeout (here 100 s), past its lease.
    @Test func theTimeoutCutsOffRequestsInFlightAndTheLeaseIsReleased() async throws {
        let prometheus = try Self.silentPrometheus()
        defer { prometheus.stop() }
        try await EndToEndHarness.with(prometheusURL: prometheus.baseURL, leaseTTL: "30s", prometheusTimeout: "100s") { harness in
            let (result, report) = try await harness.report("run", ["--timeout", "12"])
            #expect(result.status == 3, "\(result.combined)")
            #expect(!prometheus.requests.isEmpty, "the queries were sent")
            // Work stops at the work deadline (12 s less the release's reserve of 3 s).
            #expect(Self.seconds(report) < 12, "\(Self.seconds(report)) s")
            #expect(report?.leaseReleased == true, "\(result.combined)")
            // Cut off either by the cancellation at the work deadline (an error) or, a moment
            // earlier, by the queries' own timeouts, set to that deadline (failed readings).
            let said = (report?.errors ?? []) + (report?.decision?.reasons.map(\.message) ?? [])
            #expect(said.contains { $0.contains("deadline") || $0.contains("cancelled") }, "\(said)")
            #expect(try await harness.table.holder().owner == nil)
        }
    }

    /// Before: SIGTERM waited for the request in flight to time out.
    @Test func sigtermCutsOffRequestsInFlightAndReleasesTheLease() async throws {
        let prometheus = try Self.silentPrometheus()
        defer { prometheus.stop() }
        try await EndToEndHarness.with(prometheusURL: prometheus.baseURL, prometheusTimeout: "100s") { harness in
            let out = Pipe(), err = Pipe()
            let process = try KScalerProcess.start(["run", "--output", "json", "--timeout", "110", "--config", harness.configPath],
                                                   environment: harness.environment, stdout: out, stderr: err)
            let collecting = Task { await ChildProcess.collect(process, stdout: out, stderr: err, timeout: .seconds(180)) }
            let deadline = ContinuousClock.now + .seconds(60)
            while prometheus.requests.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!prometheus.requests.isEmpty, "the run never queried Prometheus")
            process.terminate()
            let output = await collecting.value
            let report = try? EndToEndHarness.decoder.decode(RunReport.self, from: output.stdout)
            #expect(output.status == 128 + SIGTERM, "\(String(decoding: output.stderr, as: UTF8.self))")
            #expect(report?.leaseReleased == true)
            #expect(Self.seconds(report) < 60, "\(Self.seconds(report)) s: the queries' own 100 s timeout was waited for")
            #expect(try await harness.table.holder().owner == nil)
        }
    }

    /// RunInstances goes through (moto launches) but its answer arrives after the deadline.
    /// Before: exit 3, "no action was taken". Now: result unknown, exit 4, recorded, and the
    /// next run finds the launch by its id instead of launching again.
    @Test func anActionWhoseAnswerCameAfterTheDeadlineIsRecordedAsUnknown() async throws {
        try await EndToEndHarness.with(leaseTTL: "1m") { harness in
            let proxy = try FaultyProxy(upstream: harness.fixture.moto.endpoint) { operation, _ in
                operation == "RunInstances" ? .delayAnswer(.seconds(120)) : .none
            }
            defer { proxy.stop() }
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 3) }
            try await harness.waitForMetrics()
            let slowEC2 = harness.environment.merging(["AWS_ENDPOINT_URL_EC2": proxy.baseURL]) { _, new in new }

            // The work deadline (9 s) comes before the request's own timeout (10 s): a request
            // that timed out would be retried with the same ClientToken, which EC2 deduplicates
            // but moto ignores (LOCAL-PEERS.md), so here it would launch a second time.
            let (result, report) = try await harness.report("run", ["--timeout", "12"], environment: slowEC2)
            #expect(result.status == 4, "\(result.combined)")
            #expect(report?.outcome == .actionResultUnknown)
            let launch = try #require(report?.actions.first { $0.kind == .launch })
            #expect(launch.result == .unknown)
            #expect(report?.leaseReleased == true)
            let launched = try await harness.instances()
            #expect(launched.count == 2, "moto did launch")

            let event = try #require(try await harness.table.history(limit: 1).events.first)
            #expect(event.outcome == .actionResultUnknown)
            #expect(event.actions.first?.result == .unknown)
            #expect(try await harness.table.readState().launchIntent?.launchID == launch.launchID, "kept for the next run")

            // The next run (EC2 answering again) finds the launch and records it; nothing more.
            let (nextResult, next) = try await harness.report("run", ["--timeout", "12"])
            #expect(next?.actions.first?.recovered == true, "\(nextResult.combined)")
            #expect(Set(next?.actions.first?.instanceIDs ?? []) == Set(launched.map(\.id)))
            #expect(try await harness.instances().count == 2)
        }
    }
}
