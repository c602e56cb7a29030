import Foundation
import HTTP
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// Metrics for a job that does not stay up, pushed to the Debian `prometheus-pushgateway`.
@Suite struct PushgatewayTests {
    /// The Pushgateway on 127.0.0.1:<free port>, stopped by `body`'s end.
    static func withPushgateway(_ body: (String) async throws -> Void) async throws {
        let binary = "/usr/bin/prometheus-pushgateway"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestSupportError("no \(binary): run the tests with `make test` (scripts/install-deps.sh installs prometheus-pushgateway)")
        }
        let directory = try ChildProcess.temporaryDirectory("kscaler-pushgateway")
        let log = directory.appendingPathComponent("pushgateway.log")
        let process = try ChildProcess.launch("/usr/bin/timeout", ["300", binary, "--web.listen-address=127.0.0.1:0"], log: log)
        do {
            let line = try await ChildProcess.firstLine(of: log, what: "the Pushgateway's address") { $0.contains("msg=\"Listening on\"") }
            guard let address = line.split(separator: " ").first(where: { $0.hasPrefix("address=") })?.dropFirst("address=".count) else {
                throw TestSupportError("no address in: \(line)")
            }
            try await body("http://\(address)")
        } catch {
            await ChildProcess.stop(process)
            throw error
        }
        await ChildProcess.stop(process)
        try? FileManager.default.removeItem(at: directory)
    }

    static func report(outcome: RunReport.Outcome) -> RunReport {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var report = RunReport(runID: "r1", mode: .run, clusterID: "demo", startedAt: t0)
        report.finishedAt = t0.addingTimeInterval(0.25)
        report.outcome = outcome
        report.decision = Decision(
            action: .scaleUp(count: 2), failedBoots: [], halt: nil,
            counts: NodeCounts(current: 3, ready: 3, booting: 0, desired: 5, clusterNodes: 4, clusterNotReady: 0),
            sizing: nil, launchCandidates: [], reasons: [], signals: [], cooldowns: [])
        report.observation = Observation(readings: [.unschedulablePods: .value(7)], nodes: [], instances: [])
        report.actions = [.init(kind: .launch, instanceIDs: ["i-1", "i-2"])]
        return report
    }

    /// A run that observed the fleet replaces the group; a run that failed before deciding
    /// pushes its own figures only, and the node gauges of the last run that saw the fleet
    /// stay (a dashboard shows no gap), while the run gauges say it failed.
    @Test func aFailedRunKeepsTheLastNodeGaugesAndAnObservingRunReplacesTheGroup() async throws {
        try await Self.withPushgateway { url in
            let pushgateway = Pushgateway(baseURL: url, transport: CurlTransport())
            func ours() async throws -> [String] {
                let metrics = String(decoding: try await CurlTransport().send(HTTPRequest(method: "GET", url: url + "/metrics")).body, as: UTF8.self)
                return metrics.split(separator: "\n").filter { $0.hasPrefix("kscaler_") }.map(String.init)
            }
            /// The value of the series `name` whose labels include all of `labels`.
            func value(_ lines: [String], _ name: String, _ labels: [String] = []) -> String? {
                lines.first { line in
                    line.hasPrefix(name + "{") && (labels + [#"cluster="demo""#, #"job="kscaler""#]).allSatisfy(line.contains)
                }?.split(separator: " ").last.map(String.init)
            }
            var pooled = Self.report(outcome: .acted)
            pooled.decision?.pools = [PoolOutcome(
                name: "batch", action: .none, counts: NodeCounts(current: 1, ready: 1, booting: 0, desired: 1, clusterNodes: 1, clusterNotReady: 0),
                min: 0, max: 3, capacityType: .spot, sizing: nil, launchCandidates: [], cooldowns: [], pendingPods: 0, pendingRequests: .zero)]
            try await pushgateway.push(pooled)
            var failed = Self.report(outcome: .failed)
            failed.decision = nil
            failed.actions = []
            failed.finishedAt = failed.startedAt.addingTimeInterval(60)
            try await pushgateway.push(failed)

            let afterFailure = try await ours()
            #expect(value(afterFailure, "kscaler_last_run_success") == "0", "\(afterFailure)")
            #expect(value(afterFailure, "kscaler_last_run_outcome", [#"outcome="failed""#]) == "1")
            #expect(value(afterFailure, "kscaler_last_run_outcome", [#"outcome="acted""#]) == "0")
            #expect(value(afterFailure, "kscaler_last_run_decision", [#"action="scale_up""#]) == "0", "no decision lingers")
            #expect(value(afterFailure, "kscaler_last_run_instances", [#"kind="launch""#]) == "0")
            #expect(value(afterFailure, "kscaler_last_run_timestamp_seconds").flatMap(Double.init) == 1_800_000_060)
            #expect(value(afterFailure, "kscaler_desired_nodes") == "5", "the last observed fleet stays: \(afterFailure)")
            #expect(value(afterFailure, "kscaler_managed_nodes") == "3")
            #expect(value(afterFailure, "kscaler_pool_managed_nodes", [#"pool="batch""#]) == "1")

            // The next observing run replaces the whole group: the pool that went away goes.
            try await pushgateway.push(Self.report(outcome: .nothing))
            let afterSuccess = try await ours()
            #expect(value(afterSuccess, "kscaler_last_run_success") == "1")
            #expect(!afterSuccess.contains { $0.hasPrefix("kscaler_pool_") }, "\(afterSuccess)")
        }
    }

    @Test func aRunWithoutADecisionSaysNothingAboutTheFleet() throws {
        var failed = Self.report(outcome: .failed)
        failed.decision = nil
        let text = Pushgateway.exposition(failed)
        #expect(text.contains("kscaler_last_run_success 0"))
        for fleet in ["kscaler_managed_nodes", "kscaler_desired_nodes", "kscaler_unschedulable_pods", "kscaler_drains_open", "kscaler_hold_active"] {
            #expect(!text.contains(fleet), "\(fleet) in:\n\(text)")
        }
    }

    @Test func theBackendIsALabelOfItsOwnGaugeAndOnlyWhenKnown() {
        var report = Self.report(outcome: .acted)
        #expect(!Pushgateway.exposition(report).contains("kscaler_backend_info"), "a report without a backend names none")
        report.backend = "proxmox"
        #expect(Pushgateway.exposition(report).split(separator: "\n").contains(#"kscaler_backend_info{backend="proxmox"} 1"#))
    }

    @Test func theExpositionCarriesNodesDecisionAndActions() throws {
        let text = Pushgateway.exposition(Self.report(outcome: .acted))
        #expect(text.hasSuffix("\n"))
        for line in ["kscaler_last_run_success 1", "kscaler_managed_nodes 3", "kscaler_ready_nodes 3", "kscaler_booting_nodes 0", "kscaler_desired_nodes 5",
                     "kscaler_unschedulable_pods 7", #"kscaler_last_run_decision{action="scale_up"} 1"#,
                     #"kscaler_last_run_decision{action="none"} 0"#, #"kscaler_last_run_instances{kind="launch"} 2"#,
                     "kscaler_last_run_duration_seconds 0.25"] {
            #expect(text.split(separator: "\n").contains { $0 == line }, "missing \(line)")
        }
    }

    /// With pools, each pool's figures carry its name; a `workers:` run has no pool series.
    @Test func theExpositionLabelsEachPoolsFigures() throws {
        var report = Self.report(outcome: .acted)
        #expect(!Pushgateway.exposition(report).contains("pool="), "one pool: no pool series")
        let counts = { (current: Int, desired: Int) in NodeCounts(current: current, ready: current, booting: 0, desired: desired, clusterNodes: 4, clusterNotReady: 0) }
        report.decision?.pools = [
            PoolOutcome(name: "general", action: .none, counts: counts(2, 2), min: 1, max: 6, capacityType: .onDemand, sizing: nil,
                        launchCandidates: [], cooldowns: [], pendingPods: 0, pendingRequests: .zero),
            PoolOutcome(name: "batch", action: .scaleUp(count: 2), counts: counts(1, 3), min: 0, max: 6, capacityType: .spot, sizing: nil,
                        launchCandidates: [], cooldowns: [], pendingPods: 5, pendingRequests: Resources(cpu: 7.5, memory: 0)),
        ]
        report.decision?.unservablePods = [UnservablePod(pod: "default/gpu", reasons: ["general: nodeSelector gpu=true"])]
        let lines = Pushgateway.exposition(report).split(separator: "\n")
        #expect(lines.contains("kscaler_pool_managed_nodes{pool=\"general\"} 2"))
        #expect(lines.contains("kscaler_pool_desired_nodes{pool=\"batch\"} 3"))
        #expect(lines.contains("kscaler_pool_pending_pods{pool=\"batch\"} 5"))
        #expect(lines.contains("kscaler_unservable_pods 1"))
        #expect(lines.contains("kscaler_managed_nodes 3"), "the cluster's totals stay")
    }

    /// A pinned size is visible on dashboards while it lasts, and only then.
    @Test func theExpositionCarriesAnOperatorsHoldWhileItLasts() throws {
        var report = Self.report(outcome: .acted)
        #expect(Pushgateway.exposition(report).split(separator: "\n").contains("kscaler_hold_active 0"))
        report.manual = ManualRequest(change: .to(5), hold: 3600, by: "alice")
        report.hold = Hold(target: 5, until: report.finishedAt.addingTimeInterval(3600), by: "alice", setAt: report.finishedAt)
        let lines = Pushgateway.exposition(report).split(separator: "\n")
        #expect(lines.contains("kscaler_hold_active 1"))
        #expect(lines.contains("kscaler_hold_target_nodes 5"))
        #expect(lines.contains("kscaler_hold_until_timestamp_seconds \(Pushgateway.format(report.finishedAt.timeIntervalSince1970 + 3600))"))
        #expect(lines.contains("kscaler_last_run_manual 1"))
        report.hold?.until = report.finishedAt
        #expect(Pushgateway.exposition(report).split(separator: "\n").contains("kscaler_hold_active 0"), "over exactly at its end")
    }

    @Test func theExpositionCarriesTheHeadroomShortfallByResourceAndPool() throws {
        var report = Self.report(outcome: .acted)
        #expect(!Pushgateway.exposition(report).contains("kscaler_headroom_shortfall"), "no headroom: no series")
        // 2 cores and 4 GiB wanted; 0.5 core and 6 GiB free on Ready workers, 1 core booting: 0.5 core short.
        let status = HeadroomStatus(nodes: nil, wanted: Resources(cpu: 2, memory: 4 * 1_073_741_824),
                                    freeReady: Resources(cpu: 0.5, memory: 6 * 1_073_741_824), booting: Resources(cpu: 1, memory: 0))
        report.decision?.headroom = status
        let lines = Pushgateway.exposition(report).split(separator: "\n")
        #expect(lines.contains("kscaler_headroom_shortfall{resource=\"cpu\"} 0.5"))
        #expect(lines.contains("kscaler_headroom_shortfall{resource=\"memory\"} 0"))
        let counts = NodeCounts(current: 1, ready: 1, booting: 0, desired: 1, clusterNodes: 1, clusterNotReady: 0)
        report.decision?.pools = [
            PoolOutcome(name: "general", action: .none, counts: counts, min: 1, max: 6, capacityType: .onDemand, sizing: nil,
                        launchCandidates: [], cooldowns: [], pendingPods: 0, pendingRequests: .zero, headroom: status),
            PoolOutcome(name: "batch", action: .none, counts: counts, min: 0, max: 6, capacityType: .spot, sizing: nil,
                        launchCandidates: [], cooldowns: [], pendingPods: 0, pendingRequests: .zero),
        ]
        let pooled = Pushgateway.exposition(report).split(separator: "\n")
        #expect(pooled.contains("kscaler_headroom_shortfall{pool=\"general\",resource=\"cpu\"} 0.5"))
        #expect(!pooled.contains { $0.contains("pool=\"batch\",resource") }, "a pool without headroom has no series")
    }

    @Test func theExpositionCarriesOpenDrainsAndTheLongestFinishedDrain() throws {
        var report = Self.report(outcome: .acted)
        let quiet = Pushgateway.exposition(report).split(separator: "\n")
        #expect(quiet.contains("kscaler_drains_open 0"))
        #expect(!quiet.contains { $0.hasPrefix("kscaler_drain_duration_seconds") }, "no drain finished: no duration")
        report.drainsOpen = 2
        report.drainDurations = [95, 312.5]
        let lines = Pushgateway.exposition(report).split(separator: "\n")
        #expect(lines.contains("kscaler_drains_open 2"))
        #expect(lines.contains("kscaler_drain_duration_seconds 312.5"))
        #expect(lines.contains("# TYPE kscaler_drain_duration_seconds gauge"))
    }

    @Test func aPushgatewayErrorIsReported() async throws {
        let broken = try StubHTTPServer { _ in .text("text format parsing error", status: 400) }
        defer { broken.stop() }
        await #expect {
            try await Pushgateway(baseURL: broken.baseURL, transport: CurlTransport()).push(Self.report(outcome: .acted))
        } throws: { error in
            "\(error)".contains("HTTP 400")
        }
        #expect(broken.requests.first?.method == "PUT")
        #expect(broken.requests.first?.target == "/metrics/job/kscaler/cluster/demo")
    }
}
