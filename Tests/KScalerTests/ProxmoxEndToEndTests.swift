import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// `fleet.backend: proxmox` end to end: the release binary, its lease and history in moto
/// (signature checking on), a real Prometheus scraping a simulated cluster, and the stand-in of
/// the Proxmox VE API (infra/local/ksandbox/proxmox.py, which says where the real API differs).
@Suite struct ProxmoxEndToEndTests {
    static func fleetConfig(_ api: ProxmoxProcess) -> (workers: String, fleet: String) {
        ("""
        workers:
          instance_types: [2c-4g]
          sizes: {2c-4g: {cpu: 2, memory: 4Gi}}
        """, """
        fleet:
          backend: proxmox
          proxmox: {url: "\(api.url)", token_id: "\(api.tokenID)", token_secret_file: \(api.secretFile), nodes: [pve1, pve2, pve3],
                    template_vmid: \(ProxmoxProcess.templateVMID), cluster_name: lab, task_timeout: 2m}
        """)
    }

    @Test func pendingPodsCloneWorkersAndDoctorChecksTheAPIWithoutShowingTheToken() async throws {
        let api = try await ProxmoxProcess.start()
        do {
            let (workers, fleet) = Self.fleetConfig(api)
            try await EndToEndHarness.with(extraConfig: fleet, workers: workers) { harness in
                // 3 pending pods of 1 core each; a 2c-4g worker holds 2 cores: 2 clones.
                harness.exporter.update { $0.pending = Array(repeating: .init(cpu: 1, memory: 512 * 1_048_576), count: 3) }
                try await harness.waitForMetrics()

                let (result, report) = try await harness.report("run", ["--log-level", "debug"])
                #expect(result.status == 0, "\(result.combined)")
                #expect(report?.outcome == .acted && report?.backend == "proxmox")
                let launched = try #require(report?.actions.first)
                #expect(launched.kind == .launch && launched.instanceIDs.count == 2 && launched.machineType == "2c-4g")
                let vms = try await api.vms()
                #expect(Set(vms.keys.map(String.init)) == Set(launched.instanceIDs))
                for (vmid, vm) in vms {
                    let config = vm["config"] as? [String: Any] ?? [:]
                    #expect((config["tags"] as? String)?.split(separator: ";").contains("kscaler-cluster-\(harness.clusterID)") == true, "\(vm)")
                    #expect(config["name"] as? String == "kscaler-\(harness.clusterID)-\(vmid)")
                }
                #expect(try await harness.table.history(limit: 5).events.first?.backend == "proxmox")
                #expect(!result.combined.contains(api.secret), "the token secret is never printed, not even at debug level")

                let doctor = try await harness.kscaler(["doctor", "--log-level", "debug"])
                #expect(doctor.status == 0, "\(doctor.combined)")
                #expect(doctor.stdout.contains("proxmox machines") && doctor.stdout.contains("2 live and 0 ended machines listed"), "\(doctor.stdout)")
                #expect(!doctor.combined.contains(api.secret))

                let check = try await harness.kscaler(["config", "check"])
                #expect(check.status == 0, "\(check.combined)")
                #expect(check.stdout.contains("fleet.proxmox.token_secret_file") && !check.combined.contains(api.secret))
            }
        } catch {
            await api.stop()
            throw error
        }
        await api.stop()
    }

    @Test func aWrongTokenSecretActsOnNothingAndSaysWhichSetting() async throws {
        let api = try await ProxmoxProcess.start()
        do {
            let (workers, fleet) = Self.fleetConfig(api)
            try await EndToEndHarness.with(extraConfig: fleet, workers: workers) { harness in
                try "not-the-secret\n".write(toFile: api.secretFile, atomically: true, encoding: .utf8)
                harness.exporter.update { $0.pending = [.init(cpu: 1, memory: 512 * 1_048_576)] }
                try await harness.waitForMetrics()
                let (result, report) = try await harness.report()
                #expect(result.status == 3, "\(result.combined)")
                #expect(report?.outcome == .failed)
                #expect(result.combined.contains("token_id"), "\(result.combined)")
                #expect(try await api.vms().isEmpty)
                #expect(try await harness.table.holder().owner == nil)
            }
        } catch {
            await api.stop()
            throw error
        }
        await api.stop()
    }
}
