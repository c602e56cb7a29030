import AWS
import Foundation
import KScaler
import Testing
import TestSupport

/// `kscaler run` and `kscaler plan` as separate processes against moto (signature checking on)
/// and a real Prometheus scraping a simulated cluster.
@Suite struct EndToEndTests {
    @Test func pendingPodsLaunchTheRightNumberOfTaggedInstances() async throws {
        try await EndToEndHarness.with { harness in
            // 5 pending pods of 1 core each; a t3.large worker holds 2 cores: 3 nodes.
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 512 * 1_048_576), count: 5) }
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report()
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.outcome == .acted)
            #expect(report?.decision?.reasons.contains { $0.message.contains("unschedulable pods 5 > 0") } == true)
            let launched = try await harness.instances()
            #expect(launched.count == 3)
            let launchID = try #require(report?.actions.first?.launchID)
            for instance in launched {
                #expect(instance.tags["kscaler:cluster"] == harness.clusterID)
                #expect(instance.tags["kscaler:pool"] == "default")
                #expect(instance.tags["kscaler:launch-id"] == launchID)
                #expect(instance.instanceType == "t3.large")
                #expect(instance.subnetID == harness.subnet)
            }
            #expect(Set(report?.actions.first?.instanceIDs ?? []) == Set(launched.map(\.id)))
            // Each carries the worker user data rendered from this config, and no secret.
            let rendered = try await harness.kscaler(["userdata", "render"])
            #expect(rendered.status == 0, "\(rendered.combined)")
            let userData = try #require(try await harness.ec2.userData(instanceID: launched[0].id))
            #expect(String(decoding: userData, as: UTF8.self) == rendered.stdout)
            #expect(rendered.stdout.hasPrefix("#cloud-config"))
            #expect(rendered.stdout.contains("KSCALER_CLUSTER='\(harness.clusterID)'"))
            // The history has the event; the lease is free again.
            #expect(try await harness.table.history(limit: 5).events.first?.runID == report?.runID)
            #expect(try await harness.table.holder().owner == nil)
        }
    }

    @Test func quietMetricsAfterTheCooldownTerminateTheNewestVictim() async throws {
        try await EndToEndHarness.with(minNodes: 1) { harness in
            let older = try #require(try await harness.launchWorkers(1).first)
            try await Task.sleep(for: .seconds(1.1))
            let newer = try #require(try await harness.launchWorkers(1).first)
            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: older.id, podCPU: [0.1, 0.1]), .init(instanceID: newer.id, podCPU: [0.1, 0.1])]
            }
            try await Task.sleep(for: .seconds(1.1))  // past boot grace and the (1 s) cooldowns
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report()
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.outcome == .acted)
            #expect(report?.actions.first?.kind == .terminate)
            #expect(report?.actions.first?.instanceIDs == [newer.id])
            #expect(try await harness.instances().map(\.id) == [older.id])
            #expect(try await harness.table.readState().pool("default").lastScaleDownAt != nil)
        }
    }

    @Test func prometheusDownActsOnNothingExitsThreeAndReleasesTheLease() async throws {
        let closed = try StubHTTPServer.closedPort()
        let port = closed.port
        defer { withExtendedLifetime(closed) {} }
        try await EndToEndHarness.with(prometheusURL: "http://127.0.0.1:\(port)", minNodes: 1) { harness in
            let before = try await harness.instances()
            let (result, report) = try await harness.report()
            #expect(result.status == 3, "\(result.combined)")
            #expect(report?.outcome == .failed)
            #expect(report?.decision?.reasons.contains { $0.message.contains("could not be read") && $0.message.contains("127.0.0.1:\(port)") } == true)
            #expect(try await harness.instances().map(\.id) == before.map(\.id))
            #expect(try await harness.table.holder().owner == nil)
            #expect(try await harness.table.history(limit: 1).events.first?.outcome == .failed)

            // The last log record is the one CloudWatch's metric filters parse (infra/README.md,
            // "Log fields"): JSON, with a string outcome and a boolean at_max.
            let logged = try await harness.kscaler(["run", "--log-format", "json"])
            let last = try #require(logged.stderr.split(separator: "\n").last)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
            #expect(record["event"] as? String == "run_finished")
            #expect(record["outcome"] as? String == "failed")
            #expect(record["cluster_id"] as? String == harness.clusterID)
            #expect(record["at_max"] as? Bool == false)
            #expect((record["http_requests"] as? Int ?? 0) >= 3)
            #expect(record["duration_ms"] is Int)
        }
    }

    @Test func garbageFromPrometheusActsOnNothing() async throws {
        let garbage = try StubHTTPServer { _ in .text("{\"status\":\"success\",\"data\":{\"resultType\":\"vec", status: 200) }
        defer { garbage.stop() }
        try await EndToEndHarness.with(prometheusURL: garbage.baseURL, minNodes: 1) { harness in
            let (result, report) = try await harness.report()
            #expect(result.status == 3, "\(result.combined)")
            #expect(report?.decision?.halt == .missingSignals)
            #expect(try await harness.instances().isEmpty)
            #expect(try await harness.table.holder().owner == nil)
        }
    }

    @Test func emptyVectorsAreNoDataNotZero() async throws {
        try await EndToEndHarness.with(minNodes: 1) { harness in
            harness.exporter.update { $0.kubeStateMetricsUp = false }
            try await harness.prometheus?.waitUntil("count(up == 1)", atLeast: 1)
            let (result, report) = try await harness.report()
            #expect(result.status == 3, "\(result.combined)")
            // min is 1 and there is no instance: with zeros instead of "no data" it would launch.
            #expect(report?.decision?.reasons.contains { $0.message.contains("unschedulable_pods has no data") } == true)
            #expect(try await harness.instances().isEmpty)
        }
    }

    @Test func aRefusedLaunchExitsFourRecordsTheErrorAndReleases() async throws {
        try await EndToEndHarness.with { harness in
            // A subnet moto does not know: RunInstances answers InvalidSubnetID.NotFound.
            let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
                .replacingOccurrences(of: "subnets: [\(harness.subnet)]", with: "subnets: [subnet-0000000000000dead]")
            try config.write(toFile: harness.configPath, atomically: true, encoding: .utf8)
            harness.exporter.update { $0.pending = [.init(cpu: 1, memory: 1_048_576)] }
            try await harness.waitForMetrics()
            let (result, report) = try await harness.report()
            #expect(result.status == 4, "\(result.combined)")
            #expect(report?.outcome == .actionFailed)
            #expect(report?.errors.contains { $0.contains("InvalidSubnetID.NotFound") } == true)
            #expect(try await harness.table.holder().owner == nil)
            let event = try #require(try await harness.table.history(limit: 1).events.first)
            #expect(event.outcome == .actionFailed)
            #expect(event.actions.first?.error?.contains("InvalidSubnetID.NotFound") == true)
        }
    }

    @Test func aTableThatDoesNotExistExitsThreeAndSaysSo() async throws {
        try await EndToEndHarness.with(minNodes: 1) { harness in
            let result = try await harness.kscaler(["run"], environment: harness.environment.merging(["KSCALER_TABLE": "no-such-table"]) { _, new in new })
            #expect(result.status == 3, "\(result.combined)")
            #expect(result.combined.contains("ResourceNotFoundException"))
            #expect(try await harness.instances().isEmpty)
        }
    }

    @Test func planChangesNothingInTheTableOrTheFleet() async throws {
        try await EndToEndHarness.with(minNodes: 1) { harness in
            _ = try await harness.launchWorkers(1)
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 1_048_576), count: 4) }
            try await harness.waitForMetrics()
            let itemsBefore = try await harness.tableItems()
            let instancesBefore = try await harness.instances().map(\.id)

            let (result, report) = try await harness.report("plan")
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.mode == .plan)
            #expect(report?.actions.first?.kind == .launch)
            #expect(try await harness.tableItems() == itemsBefore)
            #expect(try await harness.instances().map(\.id) == instancesBefore)

            // `run --dry-run` is the same thing; human output says so.
            let human = try await harness.kscaler(["run", "--dry-run"])
            #expect(human.status == 0, "\(human.combined)")
            #expect(human.stdout.contains("kscaler plan (dry run: nothing is written or changed)"))
            #expect(human.stdout.contains("launch (dry run passed)"))
            #expect(try await harness.tableItems() == itemsBefore)

            // With read-only credentials the plan still observes and decides; the dry run names the missing permission.
            let readOnly = harness.fixture.moto.environment(readOnly: true)
            let (denied, deniedReport) = try await harness.report("plan", environment: readOnly)
            #expect(denied.status == 4, "\(denied.combined)")
            #expect(deniedReport?.decision != nil)
            #expect(deniedReport?.errors.contains { $0.contains("AccessDenied") || $0.contains("UnauthorizedOperation") } == true)
            #expect(try await harness.tableItems() == itemsBefore)
            #expect(try await harness.instances().map(\.id) == instancesBefore)
        }
    }
}
