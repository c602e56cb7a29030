import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// `fleet.backend: exec` end to end: the release binary with its lease and history in moto
/// (signature checking on), a real Prometheus scraping a simulated cluster, and the reference
/// exec program (`infra/local/ksandbox/exec_backend.py`, standing in for a user's program)
/// keeping its machines in a file.
@Suite struct ExecEndToEndTests {
    /// The `workers:` and `fleet:` of an exec configuration; `providerID` nil leaves it out.
    static func config(providerID: String?) -> (workers: String, fleet: String) {
        let provider = providerID.map { ", provider_id: \"\($0)\"" } ?? ""
        return ("""
        workers:
          instance_types: [small]
          subnets: [host-a]
          sizes: {small: {cpu: 2, memory: 8Gi}}
        """, """
        fleet: {backend: exec, exec: {command: [\(ExecFleetTests.program)], timeout: 60s, machine_ids: "m-[a-z0-9-]+"\(provider)}}
        """)
    }

    static func environment(_ harness: EndToEndHarness, state: URL) -> [String: String] {
        harness.environment.merging(["KSANDBOX_EXEC_STATE": state.path, "PATH": "/usr/local/bin:/usr/bin:/bin"]) { _, new in new }
    }

    static func machines(in state: URL) throws -> [[String: Any]] {
        guard let data = try? Data(contentsOf: state), !data.isEmpty else { return [] }
        return try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
    }

    @Test func pendingPodsLaunchThroughTheProgramAndTheReportHistoryAndDoctorNameTheBackend() async throws {
        let (workers, fleet) = Self.config(providerID: "sandbox://{id}")
        try await EndToEndHarness.with(extraConfig: fleet, workers: workers) { harness in
            let state = harness.directory.appendingPathComponent("machines.json")
            let environment = Self.environment(harness, state: state)
            // 5 pending pods of 1 core each; a small machine holds 2 cores: 3 machines.
            harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 512 * 1_048_576), count: 5) }
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report(environment: environment)
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.outcome == .acted && report?.backend == "exec")
            let launchID = try #require(report?.actions.first?.launchID)
            let made = try Self.machines(in: state)
            #expect(made.count == 3)
            #expect(made.allSatisfy { $0["launch_id"] as? String == launchID && $0["machine_type"] as? String == "small"
                && $0["placement"] as? String == "host-a" && $0["pool"] as? String == "default" })
            #expect(Set(report?.actions.first?.instanceIDs ?? []) == Set(made.compactMap { $0["id"] as? String }))
            #expect(try await harness.table.history(limit: 5).events.first?.backend == "exec")
            #expect(try await harness.table.holder().owner == nil)

            // The same need again: the three are booting capacity, nothing more launches.
            let (again, second) = try await harness.report(environment: environment)
            #expect(again.status == 0, "\(again.combined)")
            #expect(second?.decision?.action == Decision.Action.none)
            #expect(try Self.machines(in: state).count == 3)

            let doctor = try await harness.kscaler(["doctor"], environment: environment)
            #expect(doctor.status == 0, "\(doctor.combined)")
            #expect(doctor.stdout.contains("exec machines") && doctor.stdout.contains("3 live and 0 ended machines listed"), "\(doctor.stdout)")
            #expect(doctor.stdout.contains("exec launch") && doctor.stdout.contains("dry-run launch passed for small in host-a"))
        }
    }

    @Test("a machine with no node after provision_timeout goes as a failed boot only when the backend declares its provider id",
          arguments: [true, false])
    func failedBootsNeedAProviderIDRule(declared: Bool) async throws {
        let (workers, fleet) = Self.config(providerID: declared ? "sandbox://{id}" : nil)
        try await EndToEndHarness.with(extraConfig: fleet + "\nprovision_timeout: 2s", minNodes: 1, workers: workers) { harness in
            let state = harness.directory.appendingPathComponent("machines.json")
            let environment = Self.environment(harness, state: state)
            try await harness.waitForMetrics()
            let (first, launched) = try await harness.report(environment: environment)
            #expect(first.status == 0, "\(first.combined)")
            #expect(launched?.decision?.action == .scaleUp(count: 1))
            let id = try #require(try Self.machines(in: state).first?["id"] as? String)
            // No node ever registers for it (the simulated cluster has none).
            try await Task.sleep(for: .seconds(2.5))

            let (second, report) = try await harness.report(environment: environment)
            #expect(second.status == 0, "\(second.combined)")
            let machine = try #require(try Self.machines(in: state).first { $0["id"] as? String == id })
            if declared {
                #expect(report?.decision?.failedBoots.map(\.instanceID) == [id])
                #expect(machine["state"] as? String == "ended")
            } else {
                #expect(report?.decision?.failedBoots.isEmpty == true)
                #expect(report?.decision?.reasons.contains { $0.code == .unconfirmedFailedBoot && $0.message.hasPrefix(id) } == true,
                        "\(String(describing: report?.decision?.reasons))")
                #expect(machine["state"] as? String != "ended", "left alone")
                #expect(report?.decision?.action == Decision.Action.none, "still capacity: nothing launched in its place")
            }
        }
    }
}
