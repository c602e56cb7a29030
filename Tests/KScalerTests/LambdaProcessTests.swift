import AWS
import Foundation
import KScaler
import Testing
import TestSupport

/// `kscaler lambda` (and the binary started as Lambda's `bootstrap`) against the Runtime API
/// stand-in, with the release binary, moto (signature checking on) and a real Prometheus:
/// each invocation is one run or plan, its JSON report the response, a failed run an
/// invocation error named after its exit code's class, the lease released every time.
@Suite struct LambdaProcessTests {
    /// A running `kscaler lambda` and its output, collected when it exits.
    struct Running {
        let process: SpawnedProcess
        let output: Task<ChildProcess.Output, Never>

        init(_ arguments: [String], environment: [String: String]) throws {
            let out = Pipe(), err = Pipe()
            let process = try KScalerProcess.start(arguments, environment: environment, stdout: out, stderr: err)
            self.process = process
            output = Task { await ChildProcess.collect(process, stdout: out, stderr: err, timeout: .seconds(180)) }
        }

        func finish() async -> (status: Int32, stderr: String) {
            let output = await output.value
            return (output.status, String(decoding: output.stderr, as: UTF8.self))
        }
    }

    static func environment(_ harness: EndToEndHarness, _ runtime: LambdaRuntimeStandIn) -> [String: String] {
        harness.environment.merging(["AWS_LAMBDA_RUNTIME_API": runtime.address, "KSCALER_LOG_FORMAT": "json"]) { _, new in new }
    }

    static func report(_ result: LambdaRuntimeStandIn.Result?) -> RunReport? {
        guard let result, result.kind == .response else { return nil }
        return try? EndToEndHarness.decoder.decode(RunReport.self, from: result.body)
    }

    /// Three pending pods → a run launches; a plan with more pending launches nothing and writes
    /// nothing; an event with an unknown mode is refused; SIGTERM while waiting for the next
    /// invocation ends the process with 0.
    @Test func runsAndPlansAreInvocationsAndSigtermBetweenThemExitsZero() async throws {
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        try await EndToEndHarness.with { harness in
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 3) }
            try await harness.waitForMetrics()
            let lambda = try Running(["lambda", "--config", harness.configPath], environment: Self.environment(harness, runtime))

            let runID = runtime.enqueue(#"{"mode": "run"}"#)
            let ran = await runtime.result(of: runID)
            let report = try #require(Self.report(ran), "\(ran?.text ?? "no result")")
            #expect(report.mode == .run)
            #expect(report.outcome == .acted)
            #expect(report.leaseReleased == true)
            let launched = try await harness.instances()
            #expect(launched.count == 2, "3 pods of 1 CPU on 2-CPU workers")
            #expect(Set(report.actions.flatMap(\.instanceIDs)) == Set(launched.map(\.id)))
            #expect(try await harness.table.holder().owner == nil)

            // A plan: more pending pods, but nothing launched and nothing written.
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 9) }
            try await harness.waitForMetrics()
            let itemsBefore = try await harness.tableItems().count
            let planID = runtime.enqueue(#"{"mode": "plan"}"#)
            let planned = await runtime.result(of: planID)
            let plan = try #require(Self.report(planned), "\(planned?.text ?? "no result")")
            #expect(plan.mode == .plan)
            #expect(plan.outcome == .acted, "the dry run of the launch passed")
            #expect(try await harness.instances().count == 2, "a plan launches nothing")
            #expect(try await harness.tableItems().count == itemsBefore, "a plan writes no history")

            // An event that asks for something else is refused, and nothing runs.
            let badID = runtime.enqueue(#"{"mode": "destroy"}"#)
            let refused = try #require(await runtime.result(of: badID))
            #expect(refused.kind == .error)
            #expect(refused.errorType == "KScaler.InvalidEvent")
            #expect(refused.errorTypeHeader == "KScaler.InvalidEvent")

            // Idle, waiting for the fourth invocation: SIGTERM ends it cleanly.
            #expect(await runtime.waitForNextRequests(4))
            lambda.process.terminate()
            let (status, stderr) = await lambda.finish()
            #expect(status == 0, "\(stderr)")
            #expect(stderr.contains(#""event":"lambda_shutdown""#), "\(stderr)")
            #expect(stderr.contains(#""event":"run_finished""#))
            #expect(try await harness.instances().count == 2)
        }
    }

    /// Prometheus unreachable: the run fails before acting, which `run` reports as exit 3; here
    /// an invocation error `KScaler.ObservationFailed`, the lease released, and the loop goes on.
    @Test func aFailedRunIsAnInvocationErrorAndTheLeaseIsReleased() async throws {
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        let closed = try StubHTTPServer.closedPort()
        let deadPort = closed.port
        defer { withExtendedLifetime(closed) {} }
        try await EndToEndHarness.with(prometheusURL: "http://127.0.0.1:\(deadPort)") { harness in
            let lambda = try Running(["lambda", "--config", harness.configPath], environment: Self.environment(harness, runtime))
            for attempt in 1...2 {
                let id = runtime.enqueue("{}")
                let failed = try #require(await runtime.result(of: id), "attempt \(attempt)")
                #expect(failed.kind == .error, "\(failed.text)")
                #expect(failed.errorType == "KScaler.ObservationFailed", "\(failed.text)")
                #expect(failed.errorTypeHeader == "KScaler.ObservationFailed")
                #expect(failed.errorMessage?.hasPrefix("exit 3") == true, "\(failed.text)")
                #expect(failed.errorMessage?.contains("lease released: true") == true, "\(failed.text)")
                #expect(try await harness.table.holder().owner == nil)
            }
            #expect(try await harness.instances().isEmpty)
            #expect(await runtime.waitForNextRequests(3))
            lambda.process.terminate()
            let (status, stderr) = await lambda.finish()
            #expect(status == 0, "\(stderr)")
        }
    }

    /// A Prometheus that holds every answer for two minutes: an invocation whose deadline is 12 s
    /// away ends within it with an error that names the deadline, lease released; then SIGTERM
    /// during a second invocation cancels its run, releases the lease, reports
    /// `KScaler.Terminated` and exits 143.
    @Test func theDeadlineBoundsTheRunAndSigtermDuringOneReleasesTheLease() async throws {
        let prometheus = try DeadlineTests.silentPrometheus()
        defer { prometheus.stop() }
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        try await EndToEndHarness.with(prometheusURL: prometheus.baseURL, leaseTTL: "2m", prometheusTimeout: "100s") { harness in
            let lambda = try Running(["lambda", "--config", harness.configPath], environment: Self.environment(harness, runtime))
            #expect(await runtime.waitForNextRequests(1))

            let started = ContinuousClock.now
            // 12 s, so that even on a loaded machine the lease and the listing are done and the
            // run is waiting on Prometheus when its deadline comes (4 s was not always enough).
            let shortID = runtime.enqueue("{}", deadlineIn: .seconds(12))
            let timedOut = try #require(await runtime.result(of: shortID))
            let took = ContinuousClock.now - started
            #expect(took < .seconds(12), "\(took): the answer must be posted before Lambda's own deadline")
            // The run had until the deadline less 1 s (11 s), its work until a quarter before (8.25 s).
            #expect(took > .seconds(8), "\(took): it ended before its deadline")
            #expect(timedOut.errorType == "KScaler.ObservationFailed", "\(timedOut.text)")
            #expect(timedOut.errorMessage?.contains("deadline") == true, "\(timedOut.text)")
            #expect(!prometheus.requests.isEmpty, "the run had started its queries")
            #expect(try await harness.table.holder().owner == nil)

            let queriesBefore = prometheus.requests.count
            let longID = runtime.enqueue("{}", deadlineIn: .seconds(100))
            let waitUntil = ContinuousClock.now + .seconds(60)
            while prometheus.requests.count == queriesBefore && ContinuousClock.now < waitUntil { try await Task.sleep(for: .milliseconds(20)) }
            #expect(prometheus.requests.count > queriesBefore, "the second run never queried Prometheus")
            lambda.process.terminate()
            let (status, stderr) = await lambda.finish()
            #expect(status == 128 + SIGTERM, "\(stderr)")
            let terminated = try #require(await runtime.result(of: longID, within: .seconds(60)), "\(stderr)")
            #expect(terminated.errorType == "KScaler.Terminated", "\(terminated.text)")
            #expect(terminated.errorMessage?.contains("lease released: true") == true, "\(terminated.text)")
            #expect(try await harness.table.holder().owner == nil)
        }
    }

    /// Started as `bootstrap` (no arguments, AWS_LAMBDA_RUNTIME_API set) with an invalid
    /// configuration: `init/error` names it, no invocation is asked for, exit 2.
    @Test func anInvalidConfigurationIsAnInitErrorAndNoInvocationIsTaken() async throws {
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        let directory = try ChildProcess.temporaryDirectory("kscaler-lambda")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("config.yaml").path
        try "cluster_id: c\ntable: t\nnodes: {min: 5, max: 2}\nprometheus: {url: 'http://127.0.0.1:1'}\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let moto = try Peers.moto()
        let environment = moto.environment().merging(["AWS_LAMBDA_RUNTIME_API": runtime.address, "KSCALER_CONFIG": config]) { _, new in new }
        let result = try await KScalerProcess.run([], environment: environment, timeout: .seconds(60))
        #expect(result.status == 2, "\(result.combined)")
        let initError = try #require(runtime.initErrors.first, "\(result.combined)")
        #expect(initError.errorType == "KScaler.InvalidConfiguration", "\(initError.text)")
        #expect(initError.errorTypeHeader == "KScaler.InvalidConfiguration")
        #expect(initError.errorMessage?.contains("nodes") == true, "\(initError.text)")
        #expect(runtime.nextRequests == 0)
    }

    /// An unusable KSCALER_LOG_FORMAT with a valid configuration: `kscaler run` exits 2 before
    /// anything runs; the function reports it as an initialization error too.
    @Test func anUnusableLogFormatIsAnInitErrorToo() async throws {
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        let closed = try StubHTTPServer.closedPort()
        defer { withExtendedLifetime(closed) {} }
        try await EndToEndHarness.with(prometheusURL: "http://127.0.0.1:\(closed.port)") { harness in
            var environment = Self.environment(harness, runtime)
            environment["KSCALER_LOG_FORMAT"] = "yaml"
            let result = try await KScalerProcess.run(["lambda", "--config", harness.configPath], environment: environment)
            #expect(result.status == 2, "\(result.combined)")
            let initError = try #require(runtime.initErrors.first, "\(result.combined)")
            #expect(initError.errorType == "KScaler.InvalidConfiguration", "\(initError.text)")
            #expect(initError.errorMessage?.contains("KSCALER_LOG_FORMAT") == true, "\(initError.text)")
            #expect(runtime.nextRequests == 0)
        }
    }
}
