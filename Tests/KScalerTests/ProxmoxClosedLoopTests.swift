import Foundation
import HTTP
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// Whole runs (lease → observe → decide → act → record) with the Proxmox fleet against the
/// stand-in of the Proxmox API, the table and Prometheus scripted as in `EvaluatorTests`: pending
/// pods clone workers, the next run counts them and launches nothing more, low utilisation
/// destroys one. `ProxmoxEndToEndTests` runs the release binary configured for Proxmox.
@Suite struct ProxmoxClosedLoopTests {
    typealias E = EvaluatorTests
    static let t0 = EvaluatorTests.t0

    static let config = KScalerConfig(
        clusterID: "demo", table: "kscaler", prometheus: PrometheusSettings(url: "http://127.0.0.1:9090"),
        nodes: NodeBounds(min: 1, max: 10),
        scaleDown: ScaleDownPolicy(withoutDrain: true),
        workers: WorkerSettings(instanceTypes: ["2c-4g"], sizes: ["2c-4g": WorkerSize(cpuCores: 2, memoryBytes: 4 << 30)],
                                join: .defaults(clusterID: "demo")),
        lease: LeaseSettings(ttl: 120, safetyMargin: 20))

    func fleet(_ api: ProxmoxProcess) throws -> ProxmoxFleet {
        let settings = ProxmoxSettings(url: api.url, tokenID: api.tokenID, tokenSecret: .file(path: api.secretFile), nodes: ["pve1", "pve2", "pve3"],
                                       templateVMID: ProxmoxProcess.templateVMID, clusterName: "lab", taskTimeout: 120)
        let secretFile = api.secretFile
        // Launched an hour before the runs: past the scale-up cooldowns and boot grace.
        return try ProxmoxFleet(settings: settings, clusterID: "demo", pools: Self.config.workerPools, protectedMachines: [],
                                tokenSecret: { try String(contentsOfFile: secretFile, encoding: .utf8) },
                                transport: CurlTransport(connectTimeout: .seconds(10), totalTimeout: .seconds(60)),
                                clock: { Self.t0.addingTimeInterval(-3600) }, pollInterval: .milliseconds(50))
    }

    func run(_ fleet: ProxmoxFleet, nodes ids: [String], unschedulable: Double, cpu: Double, utilization: Double) async -> RunReport {
        let journal = E.Journal()
        var metrics = E.metrics(journal, ids: ids, unschedulable: unschedulable, cpu: cpu, utilization: utilization)
        metrics.nodes = ids.map { NodeObservation(name: "kscaler-demo-\($0)", instanceID: $0, ready: true, nonDaemonSetPods: 3) }
        return await Evaluator(config: Self.config, store: E.FakeStore(journal: journal, acquisition: .acquired(E.lease, StateDocument())),
                               fleet: fleet, metrics: metrics, clock: { Self.t0.addingTimeInterval(5) })
            .run(Evaluator.Invocation(runID: "run-\(ids.count)", owner: "me"))
    }

    @Test func pendingPodsCloneWorkersAndLowUtilisationDestroysOne() async throws {
        let api = try await ProxmoxProcess.start()
        do {
            let fleet = try fleet(api)
            let first = try await fleet.launch(LaunchPlan(launchID: "ks-seed", count: 1, candidates: []), dryRun: false).instances.map(\.id)

            // 4 pending pods needing 4 cores, 2 cores a worker: two more workers.
            let up = await run(fleet, nodes: first, unschedulable: 4, cpu: 4, utilization: 0.5)
            #expect(up.outcome == .acted)
            let launched = try #require(up.actions.first)
            #expect(launched.kind == .launch && launched.result == .done && launched.instanceIDs.count == 2)
            #expect(launched.machineType == "2c-4g")
            let vms = try await api.vms()
            #expect(vms.count == 3)
            #expect(vms.values.allSatisfy { $0["status"] as? String == "running" })
            let all = vms.keys.map(String.init).sorted()

            // The same pods, the new workers Ready: nothing more to launch.
            let steady = await run(fleet, nodes: all, unschedulable: 0, cpu: 0, utilization: 0.5)
            #expect(steady.outcome == .nothing)
            #expect(try await api.vms().count == 3)

            // Everything idle: one worker goes, stopped and destroyed.
            let down = await run(fleet, nodes: all, unschedulable: 0, cpu: 0, utilization: 0.05)
            #expect(down.outcome == .acted)
            let terminated = try #require(down.actions.first)
            #expect(terminated.kind == .terminate && terminated.result == .done && terminated.instanceIDs.count == 1)
            let left = try await api.vms().keys.map(String.init).sorted()
            #expect(left.count == 2 && !left.contains(terminated.instanceIDs[0]))
            let requests = try await api.requests()
            #expect(requests.contains { $0.hasPrefix("DELETE /nodes/") && $0.hasSuffix("/qemu/\(terminated.instanceIDs[0])") })
        } catch {
            await api.stop()
            throw error
        }
        await api.stop()
    }
}
