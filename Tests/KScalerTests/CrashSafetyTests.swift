import AWS
import Foundation
import KScaler
import Testing
import TestSupport

/// A run that crashed between writing its launch intent and recording the launch, replayed
/// against moto: the next run must look the launch id up before launching again. moto ignores
/// ClientToken (LOCAL-PEERS.md 1b), so the tag `kscaler:launch-id` is what protects here.
@Suite struct CrashSafetyTests {
    /// Writes the state a crashed run leaves: a launch intent and no release (the lease expired).
    static func crash(_ harness: EndToEndHarness, launchID: String, count: Int) async throws {
        let update = DynamoDBExpression("SET #intent = :intent",
                                        names: ["#intent": "launch_intent"],
                                        values: [":intent": .m(["launch_id": .s(launchID), "count": .number(count),
                                                                "created_at": .n(String(Date().timeIntervalSince1970 - 5))])])
        try await harness.fixture.dynamoDB.updateItem(
            table: harness.tableName, key: ["cluster_id": .s(harness.clusterID), "record": .s("state")], update: update)
    }

    @Test func aLaunchThatHappenedBeforeTheCrashIsNotRepeated() async throws {
        try await EndToEndHarness.with { harness in
            // The crashed run's RunInstances went through: 3 instances carry its launch id.
            let launched = try await harness.ec2.runInstances(RunInstancesRequest(
                imageID: "ami-760aaa0f", instanceType: "t3.large", count: 3, subnetID: harness.subnet,
                instanceTags: ["kscaler:cluster": harness.clusterID, "kscaler:launch-id": "ks-crashed"]))
            try await Self.crash(harness, launchID: "ks-crashed", count: 3)
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 5) }
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report()
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.notes.contains { $0.contains("ks-crashed") && $0.contains("had completed") } == true)
            // Nothing launched again; the crashed run's launch is recorded, as recovered.
            let launches = report?.actions.filter { $0.kind == .launch } ?? []
            #expect(launches.count == 1)
            #expect(launches.first?.recovered == true)
            #expect(launches.first?.launchID == "ks-crashed")
            #expect(Set(launches.first?.instanceIDs ?? []) == Set(launched.map(\.id)))
            #expect(report?.outcome == .nothing, "this run did not act")
            #expect(Set(try await harness.instances().map(\.id)) == Set(launched.map(\.id)))
            #expect(try await harness.table.readState().launchIntent == nil)
            // …and it reaches the history, which had nothing of it before.
            let event = try #require(try await harness.table.history(limit: 5).events.first)
            #expect(event.runID == report?.runID)
            #expect(Set(event.actions.flatMap(\.instanceIDs)) == Set(launched.map(\.id)))
        }
    }

    @Test func aLaunchThatNeverHappenedIsMadeOnceReusingItsID() async throws {
        try await EndToEndHarness.with { harness in
            try await Self.crash(harness, launchID: "ks-never-sent", count: 3)
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 5) }
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report()
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.actions.first?.launchID == "ks-never-sent")
            let instances = try await harness.instances()
            #expect(instances.count == 3)
            #expect(instances.allSatisfy { $0.tags["kscaler:launch-id"] == "ks-never-sent" })

            // The next run sees them booting and launches nothing more.
            let (_, second) = try await harness.report()
            #expect(!(second?.actions.contains { $0.kind == .launch } ?? true))
            #expect(try await harness.instances().count == 3)
        }
    }

    @Test func aBrokenEC2AnswerActsOnNothingAndReleases() async throws {
        let gateway = try StubHTTPServer { _ in .text("<html><body><h1>502 Bad Gateway</h1></body></html>", status: 502) }
        defer { gateway.stop() }
        try await EndToEndHarness.with(minNodes: 1) { harness in
            let environment = harness.environment.merging(["AWS_ENDPOINT_URL_EC2": gateway.baseURL]) { _, new in new }
            let (result, report) = try await harness.report("run", environment: environment)
            #expect(result.status == 3, "\(result.combined)")
            #expect(report?.errors.contains { $0.contains("502") && $0.contains("Bad Gateway") } == true)
            #expect(try await harness.table.holder().owner == nil)
            #expect(try await harness.instances().isEmpty)
        }
    }

    @Test func operatorsSeeAndBreakTheLeaseAndReadTheHistory() async throws {
        try await EndToEndHarness.with { harness in
            guard case .acquired = try await harness.table.acquire(owner: "stuck-host/42/abc", ttl: .seconds(3600), now: Date()) else {
                Issue.record("could not take the lease"); return
            }
            let status = try await harness.kscaler(["lease", "status"])
            #expect(status.status == 0)
            #expect(status.stdout.contains("lease held by stuck-host/42/abc"))
            #expect(status.stdout.contains("token    1"))

            let refused = try await harness.kscaler(["lease", "break"])
            #expect(refused.status == 64)
            #expect(refused.combined.contains("--yes"))
            #expect(try await harness.table.holder().owner == "stuck-host/42/abc")

            let broken = try await harness.kscaler(["lease", "break", "--yes", "--log-format", "json"])
            #expect(broken.status == 0, "\(broken.combined)")
            #expect(broken.stdout.contains("broke the lease held by stuck-host/42/abc"))
            #expect(broken.stderr.contains(#""event":"lease_broken""#))
            #expect(try await harness.table.holder().owner == nil)

            harness.exporter.update { $0.pending = [.init(cpu: 1, memory: 1_048_576)] }
            try await harness.waitForMetrics()
            let (_, run) = try await harness.report()
            let history = try await harness.kscaler(["history", "--output", "json"])
            #expect(history.status == 0)
            let events = try EndToEndHarness.decoder.decode([RunEvent].self, from: Data(history.stdout.utf8))
            #expect(events.map(\.runID) == [run?.runID].compactMap { $0 })
            #expect(events.first?.action == "scale_up")
        }
    }
}
