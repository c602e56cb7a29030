import Foundation
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// The `exec` fleet against the reference program `infra/local/ksandbox/exec_backend.py`, a
/// real child process speaking protocol 1 over stdin/stdout with its machines in a JSON file.
/// It stands in for a user's program (Docker, VPSie, kind: examples/backends/); where a real one
/// differs, it answers at once and fails only when a fault asks it to.
@Suite struct ExecFleetTests {
    static let program = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("infra/local/ksandbox/exec_backend.py").path

    /// One fleet over its own state file, and the calls the program saw.
    struct Backend {
        let directory: URL
        let fleet: ExecFleet
        var state: URL { directory.appendingPathComponent("machines.json") }
        var log: URL { directory.appendingPathComponent("calls.jsonl") }

        init(fault: String? = nil, extra: [String: String] = [:], protected: Set<String> = [], timeout: TimeInterval = 60,
             command: [String]? = nil, workers: WorkerSettings = Backend.workers) throws {
            directory = try ChildProcess.temporaryDirectory("kscaler-exec")
            var environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
            environment["KSANDBOX_EXEC_STATE"] = directory.appendingPathComponent("machines.json").path
            environment["KSANDBOX_EXEC_LOG"] = directory.appendingPathComponent("calls.jsonl").path
            environment["KSANDBOX_EXEC_FAULT"] = fault
            environment["AWS_SECRET_ACCESS_KEY"] = "kscaler-own-secret-never-for-the-program"
            fleet = ExecFleet(settings: ExecBackendSettings(command: command ?? [ExecFleetTests.program], timeout: timeout,
                                                            providerID: "sandbox://{id}"),
                              clusterID: "exec-test", pools: [PoolSettings(workers: workers, nodes: NodeBounds(min: 0, max: 5))],
                              protectedInstances: protected, environment: environment)
        }

        static let workers = WorkerSettings(pool: "general", instanceTypes: ["small", "large"], subnets: ["host-a", "host-b"],
                                            sizes: ["small": WorkerSize(cpuCores: 2, memoryBytes: 4 << 30)], labels: ["team": "ci"],
                                            taints: [Taint(key: "dedicated", value: "ci", effect: .noSchedule)],
                                            join: JoinParameters(tokenParameter: "", serverURLParameter: ""))

        /// Each call the program received: its operation, request and what its environment held.
        func calls() throws -> [[String: Any]] {
            guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
            return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        }

        func operations() throws -> [String] { try calls().map { $0["operation"] as! String } }
    }

    static let small = Offering(machineType: "small", placement: "host-a")
    static let large = Offering(machineType: "large", placement: "host-b")

    @Test func launchIsIdempotentByItsLaunchIDAndTerminateEndsTheMachines() async throws {
        let backend = try Backend()
        let first = try await backend.fleet.launch(LaunchPlan(launchID: "run-1", count: 2, candidates: [Self.small]), dryRun: false)
        #expect(first.instances.count == 2 && first.offering == Self.small && first.unavailable.isEmpty)
        #expect(first.instances.allSatisfy { $0.machineType == "small" && $0.placement == "host-a" && $0.pool == "general" })

        let again = try await backend.fleet.launch(LaunchPlan(launchID: "run-1", count: 2, candidates: [Self.small]), dryRun: false)
        #expect(Set(again.instances.map(\.id)) == Set(first.instances.map(\.id)), "the same launch id launches nothing more")
        #expect(Set(try await backend.fleet.instances(launchID: "run-1").map(\.id)) == Set(first.instances.map(\.id)))
        #expect(try await backend.fleet.instances(launchID: "run-2").isEmpty)

        let listing = try await backend.fleet.listMachines()
        #expect(listing.live.count == 2 && listing.ended.isEmpty)
        try await backend.fleet.terminate(first.instances.map(\.id), dryRun: false)
        let after = try await backend.fleet.listMachines()
        #expect(after.live.isEmpty)
        #expect(after.ended == Set(first.instances.map(\.id)), "ended machines stay listed: their Node objects are ghosts")
    }

    @Test func theProgramGetsTheBootstrapAndNoneOfKscalersAWSCredentials() async throws {
        let backend = try Backend()
        _ = try await backend.fleet.launch(LaunchPlan(launchID: "run-b", count: 1, candidates: [Self.small]), dryRun: false)
        let launch = try #require(try backend.calls().first { $0["operation"] as? String == "launch" })
        #expect(launch["env_has_aws_secret"] as? Bool == false)
        #expect(launch["kscaler_protocol"] as? String == "1")
        let bootstrap = try #require(launch["bootstrap"] as? [String: Any])
        #expect(bootstrap["pool"] as? String == "general" && bootstrap["cluster_id"] as? String == "exec-test")
        #expect(bootstrap["labels"] as? [String: String] == ["team": "ci", "kscaler.io/pool": "general", "kscaler.io/cluster": "exec-test"])
        #expect(bootstrap["taints"] as? [String] == ["dedicated=ci:NoSchedule"])
        let request = try #require(launch["request"] as? [String: Any])
        #expect(request["launch_id"] as? String == "run-b" && request["count"] as? Int == 1 && request["dry_run"] as? Bool == false)
        #expect(request["offering"] as? [String: String] == ["machine_type": "small", "placement": "host-a", "market": "on-demand"])
    }

    @Test func protectedForeignAndUnknownMachinesAreRefusedBeforeTheProgramIsAskedToTerminate() async throws {
        let launched = try Backend()
        let ids = try await launched.fleet.launch(LaunchPlan(launchID: "run-p", count: 2, candidates: [Self.small]), dryRun: false).instances.map(\.id)
        let guarded = try Backend(protected: [ids[0]])
        // The same state file seen by a fleet that protects the first machine.
        try FileManager.default.copyItem(at: launched.state, to: guarded.state)
        for victims in [[ids[0]], ["m-not-ours"], [ids[1], "m-not-ours"]] {
            await #expect(throws: TerminationRefused.self) { try await guarded.fleet.terminate(victims, dryRun: false) }
        }
        #expect(try guarded.operations().allSatisfy { $0 == "list" }, "nothing but listing reached the program")
        #expect(try await guarded.fleet.listMachines().live.count == 2)
        #expect(guarded.fleet.outcome(of: TerminationRefused(instances: [])) == .nothingHappened)
    }

    @Test func aShortOfferingIsSkippedForTheNextAndAllShortIsNothingLaunched() async throws {
        let someShort = try Backend(fault: "launch:capacity", extra: ["KSANDBOX_EXEC_SHORT_PLACEMENTS": "host-a"])
        let result = try await someShort.fleet.launch(LaunchPlan(launchID: "run-c", count: 1, candidates: [Self.small, Self.large]), dryRun: false)
        #expect(result.offering == Self.large && result.unavailable == [Self.small] && result.instances.count == 1)

        let allShort = try Backend(fault: "launch:capacity")
        let failure = await #expect(throws: LaunchFailure.self) {
            _ = try await allShort.fleet.launch(LaunchPlan(launchID: "run-d", count: 1, candidates: [Self.small, Self.large]), dryRun: false)
        }
        #expect(failure?.unavailable == [Self.small, Self.large])
        #expect(failure.map { allShort.fleet.outcome(of: $0) } == .nothingHappened)
        #expect(try await allShort.fleet.listMachines().live.isEmpty)
    }

    @Test("whatever the program does short of saying nothing launched, the launch's outcome is unknown",
          arguments: ["launch:hang", "launch:garbage", "launch:no-json-fail", "launch:unknown"])
    func doubtIsUnknown(fault: String) async throws {
        let backend = try Backend(fault: fault, timeout: 3)
        let plan = LaunchPlan(launchID: "run-u", count: 1, candidates: [Self.small, Self.large])
        let failure = await #expect(throws: ExecCallFailure.self) { _ = try await backend.fleet.launch(plan, dryRun: false) }
        #expect(failure?.outcome == .unknown)
        #expect(failure.map { backend.fleet.outcome(of: $0) } == .unknown)
        #expect(try backend.operations() == ["launch"], "an unknown outcome stops: the next offering is not tried")
        if fault == "launch:unknown" {
            // It acted and said so: the next run finds the launch by its id.
            #expect(try await backend.fleet.instances(launchID: "run-u").count == 1)
        }
        if fault == "launch:hang" { #expect(failure?.message.contains("fleet.exec.timeout") == true) }
        if fault == "launch:no-json-fail" { #expect(failure?.stderr == "something broke") }
    }

    @Test func aProgramThatRefusesLaunchedNothing() async throws {
        let backend = try Backend(fault: "launch:refuse")
        let failure = await #expect(throws: LaunchFailure.self) {
            _ = try await backend.fleet.launch(LaunchPlan(launchID: "run-r", count: 1, candidates: [Self.small, Self.large]), dryRun: false)
        }
        #expect(failure?.reason.contains("refused on purpose") == true)
        #expect(try backend.operations() == ["launch"], "a refusal that is not a capacity shortage does not try the next offering")
    }

    @Test func aListThatFailsOrIsUnusableThrows() async throws {
        for fault in ["list:garbage", "list:hang", "list:refuse"] {
            let backend = try Backend(fault: fault, timeout: 3)
            await #expect(throws: ExecCallFailure.self, "\(fault)") { _ = try await backend.fleet.listMachines() }
        }
    }

    @Test func secretsInTheProgramsStderrAreRedacted() async throws {
        let secret = "s3cr3t-\(UUID().uuidString)"
        let failing = try Backend(command: ["/bin/sh", "-c", "cat >/dev/null; echo \"calling with token=\(secret) and password: \(secret)\" >&2; exit 7"])
        let failure = await #expect(throws: ExecCallFailure.self) {
            _ = try await failing.fleet.launch(LaunchPlan(launchID: "run-s", count: 1, candidates: [Self.small]), dryRun: false)
        }
        let text = try #require(failure?.description)
        #expect(!text.contains(secret))
        #expect(text.contains("calling with token [redacted]"))
        #expect(failure?.outcome == .unknown, "exit 7 without a JSON error is unknown")
    }

    @Test func machinesThatBreakTheProtocolMakeTheAnswerUnusable() async throws {
        let answers = [
            #"{"protocol":1,"machines":[{"id":"has space","state":"running","launch_time":"2026-12-03T10:00:00Z"}]}"#,
            #"{"protocol":1,"machines":[{"id":"m-1","state":"booting","launch_time":"2026-12-03T10:00:00Z"}]}"#,
            #"{"protocol":1,"machines":[{"id":"m-1","state":"running","launch_time":"yesterday"}]}"#,
            #"{"protocol":1,"machines":[{"id":"m-1","state":"running"}]}"#,
            #"{"protocol":2,"machines":[]}"#,
            #"{"protocol":1}"#,
        ]
        for text in answers {
            let backend = try Backend(command: ["/bin/sh", "-c", "cat >/dev/null; printf '%s' '\(text)'", "sh"])
            let failure = await #expect(throws: ExecCallFailure.self, "\(text)") { _ = try await backend.fleet.listMachines() }
            #expect(failure?.outcome == .unknown, "\(text)")
        }
        let good = try Backend(command: ["/bin/sh", "-c", #"cat >/dev/null; printf '%s' '{"protocol":1,"machines":[{"id":"m-1","state":"running","launch_time":"2026-12-03T10:00:00Z","protected":true}]}'"#, "sh"])
        let listing = try await good.fleet.listMachines()
        #expect(listing.live.map(\.id) == ["m-1"] && listing.live[0].protected)
    }

    @Test func aMissingProgramLaunchesNothing() async throws {
        let backend = try Backend(command: ["/nonexistent/kscaler-backend"])
        let failure = await #expect(throws: LaunchFailure.self) {
            _ = try await backend.fleet.launch(LaunchPlan(launchID: "run-m", count: 1, candidates: [Self.small]), dryRun: false)
        }
        #expect(failure?.reason.contains("/nonexistent/kscaler-backend") == true)
    }

    @Test func theConformanceChecksPassTheReferenceProgramAndCatchABrokenOne() async throws {
        let good = try Backend()
        var environment = ProcessInfo.processInfo.environment
        environment["KSANDBOX_EXEC_STATE"] = good.state.path
        let passing = await ExecConformance(command: [Self.program], timeout: 60, clusterID: "conf-ok", machineType: "small", placement: nil,
                                            environment: environment, launchID: "conf-1").run()
        #expect(passing.map(\.name) == ["list", "unknown protocol", "dry run", "launch", "launch again", "launch the missing", "terminate", "terminate again"])
        let failed = passing.filter { !$0.passed }
        #expect(failed.isEmpty, "\(failed)")

        environment["KSANDBOX_EXEC_FAULT"] = "launch:ignore-launch-id"
        let failing = await ExecConformance(command: [Self.program], timeout: 60, clusterID: "conf-bad", machineType: "small", placement: nil,
                                            environment: environment, launchID: "conf-2").run()
        #expect(failing.filter { !$0.passed }.map(\.name) == ["launch again", "launch the missing"])
        // Whatever failed, it cleaned up after itself.
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: good.state)) as! [[String: Any]]
        #expect(state.allSatisfy { $0["state"] as? String == "ended" })
    }
}

@Suite struct ExecRedactionTests {
    @Test func aLineIsCutAfterTheFirstSecretWord() {
        #expect(ExecRedaction.redacted("calling with Token=abc123 now") == "calling with Token [redacted]")
        #expect(ExecRedaction.redacted("Authorization: Bearer xyz") == "Authorization [redacted]")
        #expect(ExecRedaction.redacted("fine line\napi_key=1\nother") == "fine line\napi_key [redacted]\nother")
        #expect(ExecRedaction.redacted("nothing here") == "nothing here")
    }

    @Test func onlyTheTailIsKept() {
        let long = Data((String(repeating: "x", count: 10_000) + "\nthe end\n").utf8)
        let tail = ExecRedaction.tail(of: long)
        #expect(tail.count <= ExecRedaction.maxBytes && tail.hasSuffix("the end"))
    }
}
