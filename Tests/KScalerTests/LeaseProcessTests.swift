import Dispatch
import Foundation
import KScaler
import Testing
import TestSupport

/// The lease between real `kscaler run` processes, as cron or a scheduler starts them. A slow
/// Prometheus stand-in (every query answers after `delay`) keeps a run holding the lease for
/// that long, so other processes meet it held.
@Suite struct LeaseProcessTests {
    static let emptyVector = #"{"status":"success","data":{"resultType":"vector","result":[]}}"#

    static func slowPrometheus(delay: Duration) throws -> StubHTTPServer {
        try StubHTTPServer { _ in .text(emptyVector, headers: [.init("Content-Type", "application/json")], delay: delay) }
    }

    /// Starts `kscaler run --output json` without waiting for it.
    static func startRun(_ harness: EndToEndHarness, extra: [String] = []) throws -> (SpawnedProcess, Pipe, Pipe) {
        let out = Pipe(), err = Pipe()
        let process = try KScalerProcess.start(["run", "--output", "json", "--config", harness.configPath] + extra,
                                               environment: harness.environment, stdout: out, stderr: err)
        return (process, out, err)
    }

    static func finish(_ run: (SpawnedProcess, Pipe, Pipe)) async -> (status: Int32, report: RunReport?, output: String) {
        let (process, out, err) = run
        let output = await ChildProcess.collect(process, stdout: out, stderr: err)
        return (output.status, try? EndToEndHarness.decoder.decode(RunReport.self, from: output.stdout),
                String(decoding: output.stdout + output.stderr, as: UTF8.self))
    }

    /// Polls the table until someone holds the lease (180 s at most: a loaded machine can take
    /// a minute to start a process).
    static func waitUntilHeld(_ harness: EndToEndHarness, by run: (SpawnedProcess, Pipe, Pipe)) async throws -> LeaseHolder {
        let deadline = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < deadline {
            let holder = try await harness.table.holder()
            if holder.owner != nil { return holder }
            // A run that ended without anyone seeing it hold the lease will not take it now:
            // say what it printed instead of waiting out the bound.
            if !run.0.isRunning, try await harness.table.holder().owner == nil {
                throw TestSupportError("the run ended before anyone saw it hold the lease: \(await finish(run).output)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("no run took the lease within 180 s")
    }

    /// Each round starts 20 processes at once. The conditional write lets exactly one take each
    /// acquisition: fencing tokens come out 1, 2, 3, … with no token held by two processes, and
    /// every other process was skipped by a live holder. (On a loaded 2-core machine stragglers
    /// may start after the round's winner released: each then acquires next, with the next
    /// token, in turn; so a round may have a few holders, never two at once.)
    @Test func twentyProcessesRacingNeverShareTheLease() async throws {
        let prometheus = try Self.slowPrometheus(delay: .seconds(3))
        defer { prometheus.stop() }
        try await EndToEndHarness.with(prometheusURL: prometheus.baseURL) { harness in
            var holders: [RunReport] = []
            for round in 1...4 {
                let runs = try (0..<20).map { _ in try Self.startRun(harness) }
                var results: [(status: Int32, report: RunReport?, output: String)] = []
                for run in runs { results.append(await Self.finish(run)) }
                let reports = results.compactMap(\.report)
                #expect(reports.count == 20, "round \(round): \(results.filter { $0.report == nil }.map(\.output))")
                let roundHolders = reports.filter { $0.outcome != .skipped }
                #expect(!roundHolders.isEmpty, "round \(round): nobody took the lease")
                #expect(roundHolders.count <= 4, "round \(round): \(roundHolders.count) acquisitions")
                let holderOwners = Set(roundHolders.compactMap(\.lease?.owner))
                for skipped in results where skipped.report?.outcome == .skipped {
                    #expect(skipped.status == 0)
                    #expect(skipped.report?.lease?.owner.map(holderOwners.contains) == true, "skipped by an unknown holder")
                }
                holders += roundHolders
            }
            let tokens = holders.compactMap(\.lease?.token).sorted()
            #expect(tokens == Array(1...holders.count), "every acquisition by exactly one process: \(tokens)")
            #expect(Set(holders.compactMap(\.lease?.owner)).count == holders.count)
            #expect(holders.allSatisfy { $0.leaseReleased == true }, "\(holders.flatMap(\.errors))")
            #expect(try await harness.table.holder().owner == nil)
        }
    }

    /// Holds every request until opened (30 s at most, so a failing test still ends): the
    /// first run keeps the lease for exactly as long as the test needs, however slowly the
    /// second process starts on a loaded machine.
    final class Gate: Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        func wait() { _ = semaphore.wait(timeout: .now() + 30) }
        func open() { for _ in 0..<64 { semaphore.signal() } }
    }

    @Test func aSecondRunWhileTheFirstHoldsTheLeaseIsSkipped() async throws {
        let gate = Gate()
        let prometheus = try StubHTTPServer { _ in
            gate.wait()
            return .text(Self.emptyVector, headers: [.init("Content-Type", "application/json")])
        }
        defer { prometheus.stop() }
        try await EndToEndHarness.with(prometheusURL: prometheus.baseURL, prometheusTimeout: "40s") { harness in
            let first = try Self.startRun(harness)
            let holder = try await Self.waitUntilHeld(harness, by: first)
            let second = try await harness.kscaler(["run"])
            gate.open()
            #expect(second.status == 0, "\(second.combined)")
            #expect(second.stdout.contains("held by \(holder.owner ?? "?")"))
            #expect(second.stdout.contains("skipped"))
            let firstResult = await Self.finish(first)
            #expect(firstResult.report?.lease?.owner == holder.owner)
            #expect(try await harness.table.holder().owner == nil)
        }
    }

    /// Prometheus answers after two minutes, so the run is still observing when SIGTERM comes.
    @Test func sigtermReleasesTheLeaseBeforeExit() async throws {
        let prometheus = try Self.slowPrometheus(delay: .seconds(120))
        defer { prometheus.stop() }
        try await EndToEndHarness.with(prometheusURL: prometheus.baseURL) { harness in
            let run = try Self.startRun(harness)
            _ = try await Self.waitUntilHeld(harness, by: run)
            run.0.terminate()
            let result = await Self.finish(run)
            #expect(result.status == 128 + SIGTERM, "\(result.output)")
            #expect(result.report?.leaseReleased == true, "\(result.output)")
            #expect(result.report?.errors.contains { $0.contains("cancelled") } == true, "\(result.output)")
            #expect(try await harness.table.holder().owner == nil)
            #expect(try await harness.instances().isEmpty)
        }
    }

    @Test func aKilledHolderBlocksOthersOnlyUntilTheLeaseExpires() async throws {
        // Prometheus answers after two minutes: the first run is still waiting on it (its work
        // deadline is 41 s away) when it is killed, however slowly this test notices the lease.
        // The lease lasts 45 s so that the blocked run below, however slowly a loaded machine
        // starts it, still meets the lease unexpired (with 15 s, one CI run took it over).
        let prometheus = try Self.slowPrometheus(delay: .seconds(120))
        defer { prometheus.stop() }
        try await EndToEndHarness.with(prometheusURL: prometheus.baseURL, leaseTTL: "45s") { harness in
            let killed = try Self.startRun(harness, extra: ["--timeout", "44"])
            let holder = try await Self.waitUntilHeld(harness, by: killed)
            kill(killed.0.processIdentifier, SIGKILL)
            _ = await Self.finish(killed)
            #expect(try await harness.table.holder().owner == holder.owner)

            let blocked = try await harness.report("run", ["--timeout", "6"])
            #expect(blocked.1?.outcome == .skipped, "\(blocked.0.combined)")

            let expiry = try #require(holder.expiresAt)
            try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow) + 1.1))
            let (result, report) = try await harness.report("run", ["--timeout", "6"])
            #expect(report?.outcome != .skipped, "\(result.combined)")
            #expect(report?.lease?.token == holder.token.map { $0 + 1 })
            #expect(report?.leaseReleased == true)
        }
    }
}
