import Foundation
import Testing
import TestSupport

/// `kscaler backtest` (the release binary) against a real Prometheus holding a known history:
/// an OpenMetrics file of kube-state-metrics-shaped series turned into blocks by promtool.
///
/// The recorded cluster, minute by minute from T0 - 60m to T0 + 6h (T0 on the hour, a day ago):
/// - nodes: `cp-1` (control plane, not a worker) and worker `i-0aaa` throughout; the real
///   autoscaler added worker `i-0bbb` at 62 (Ready at 64) and removed it after 150;
/// - quiet: `web-1`, `web-2` (0.5 core, 512 MiB each) Running on i-0aaa; a DaemonSet pod and the
///   control plane's etcd (1 core each) that no worker has to hold;
/// - a burst: `batch-1…6` (1 core, 1 GiB each) Pending and unschedulable 60–63, Running 64–119,
///   Succeeded from 120 (their `node` label changes when they are scheduled);
/// - a slow ramp: `ramp-1…4` (0.5 core, 512 MiB) starting at 180, 190, 200, 210, Succeeded at 300.
@Suite(.serialized) struct BacktestCommandTests {
    static let start = Int(Date().timeIntervalSince1970 / 3600 - 30) * 3600
    static func at(_ minute: Int) -> Int { start + minute * 60 }

    /// `simple`: sized scale-up (up to 10 a run), 95 % up, 30 % down, the default cooldowns.
    static let simple = """
    nodes: {min: 1, max: 10}
    scale_up: {cpu_threshold: 95, max_step: 10, cooldown: 1m}
    scale_down: {cpu_threshold: 30, memory_threshold: 30, max_step: 1, cooldown: 5m, delay_after_scale_up: 10m, stabilization_window: 10m}
    """
    /// `one-at-a-time`: one node a run at most, 2m apart, 72 % up.
    static let oneAtATime = """
    nodes: {min: 1, max: 10}
    scale_up: {cpu_threshold: 72, max_step: 1, cooldown: 2m}
    scale_down: {cpu_threshold: 30, memory_threshold: 30, max_step: 1, cooldown: 5m, delay_after_scale_up: 10m, stabilization_window: 10m}
    """

    @Test("the replay's launches, terminations and summary match the hand-computed ones; two configs side by side (JSON)")
    func json() async throws {
        try await Self.withRecordedHistory { directory, prometheus in
            let configs = try Self.configs(in: directory, prometheus: prometheus)
            let result = try await KScalerProcess.run(Self.arguments(configs) + ["--output", "json"], environment: [:], timeout: .seconds(120))
            try #require(result.status == 0, "\(result.combined)")
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let report = try decoder.decode(Report.self, from: Data(result.stdout.utf8))

            // What the cluster had: i-0bbb from 62 to 150 → 450 node-minutes over 361 steps.
            #expect(report.real.summary == Summary(launches: 1, terminations: 1, peak_nodes: 2, mean_nodes: 450.0 / 361,
                                                   unschedulable_minutes: 4, node_hours: 7.5, steps_without_data: 0))
            #expect(report.configs.map(\.label) == ["simple", "one-at-a-time"])

            // simple: the burst's five waiting cores → 3 nodes at once (Ready at 63: 7/8 = 87.5 % < 95 %);
            // after the burst a whole low window (120–130), then one node per 5m cooldown; the ramp's
            // second pod fills the node (100 % > 95 %) at 190; a window after the ramp ends, it goes.
            let simple = report.configs[0]
            #expect(simple.actions.map(Action.init) == [
                Action(.up, 60, 3), Action(.down, 130, 1), Action(.down, 135, 1), Action(.down, 140, 1), Action(.up, 190, 1), Action(.down, 310, 1),
            ])
            #expect(simple.actions[0].machines == ["sim-0002", "sim-0003", "sim-0004"])
            // Nodes a step: 1×60, 4×70, 3×5, 2×5, 1×50, 2×120, 1×51 = 706 node-minutes; 60, 61, 62 waited.
            #expect(simple.summary == Summary(launches: 4, terminations: 4, peak_nodes: 4, mean_nodes: 706.0 / 361,
                                              unschedulable_minutes: 3, node_hours: 706.0 / 60, steps_without_data: 0))

            // one-at-a-time: 1 node at 60, 62, 64 (2m cooldown, booting nodes subtracted), +1 at 67 for
            // 87.5 % > 72 %; down newest first from 130; +1 at 180 (75 %) and at 210 (75 %); down at 310, 315.
            let oneAtATime = report.configs[1]
            #expect(oneAtATime.actions.map(Action.init) == [
                Action(.up, 60, 1), Action(.up, 62, 1), Action(.up, 64, 1), Action(.up, 67, 1),
                Action(.down, 130, 1), Action(.down, 135, 1), Action(.down, 140, 1), Action(.down, 145, 1),
                Action(.up, 180, 1), Action(.up, 210, 1), Action(.down, 310, 1), Action(.down, 315, 1),
            ])
            #expect(oneAtATime.actions[4].machines == ["sim-0005"])
            // 60 + 2×2 + 2×3 + 3×4 + 63×5 + 5×4 + 5×3 + 5×2 + 35 + 30×2 + 100×3 + 5×2 + 46 = 893; pods waited 60–66.
            #expect(oneAtATime.summary == Summary(launches: 6, terminations: 6, peak_nodes: 5, mean_nodes: 893.0 / 361,
                                                  unschedulable_minutes: 7, node_hours: 893.0 / 60, steps_without_data: 0))
            #expect(oneAtATime.timeline.count == 361)
        }
    }

    @Test("the human table holds the same figures side by side, and --chart writes both fleets over time")
    func humanAndChart() async throws {
        try await Self.withRecordedHistory { directory, prometheus in
            let configs = try Self.configs(in: directory, prometheus: prometheus)
            let chart = directory.appendingPathComponent("backtest.svg")
            let result = try await KScalerProcess.run(Self.arguments(configs) + ["--chart", chart.path], environment: [:], timeout: .seconds(120))
            try #require(result.status == 0, "\(result.combined)")
            let rows = result.stdout.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
            for expected in ["real simple one-at-a-time", "launches 1 4 6", "terminations 1 4 6", "peak nodes 2 4 5", "mean nodes 1.25 1.96 2.47",
                             "node-hours 7.50 11.77 14.88", "minutes with unschedulable pods 4.0 3.0 7.0", "steps without data (no action) 0 0 0",
                             "boot time - 3m 3m"] {
                #expect(rows.contains(expected), "no row \(expected) in:\n\(result.stdout)")
            }
            #expect(result.stdout.contains("launch 3"))
            #expect(result.stdout.contains("unschedulable pods 5 > 0"))
            let svg = try String(contentsOf: chart, encoding: .utf8)
            #expect(svg.hasPrefix("<svg"))
            #expect(svg.components(separatedBy: "<polyline").count - 1 == 3)
            // One marker per simulated action (6 + 12), besides the legend's.
            #expect(svg.components(separatedBy: "<title>").count - 1 == 18)
        }
    }

    @Test("pools are refused (exit 2) before Prometheus is contacted; a bad or future time is a usage error naming the fix; Prometheus down is exit 3")
    func refusals() async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-backtest")
        defer { try? FileManager.default.removeItem(at: directory) }
        let pooled = directory.appendingPathComponent("pools.yaml")
        try """
        cluster_id: demo
        table: kscaler
        prometheus: {url: "http://127.0.0.1:1"}
        pools:
          general: {image_id: ami-0123456789abcdef0, instance_types: [t3.large], subnets: [subnet-0a], sizes: {t3.large: {cpu: 2, memory: 8Gi}}}
        """.write(to: pooled, atomically: true, encoding: .utf8)
        let refused = try await KScalerProcess.run(["backtest", "--from", "now-1h", "--to", "now", "--config", pooled.path], environment: [:])
        #expect(refused.status == 2, "\(refused.combined)")
        #expect(refused.stderr.contains("pools: backtest does not replay pools yet; give it a configuration with workers:"))
        #expect(!refused.combined.contains("Prometheus"))

        let badTime = try await KScalerProcess.run(["backtest", "--from", "yesterday", "--to", "now", "--config", pooled.path], environment: [:])
        #expect(badTime.status == 64, "\(badTime.combined)")
        #expect(badTime.stderr.contains("--from yesterday is not a time; give ISO 8601"))
        let future = try await KScalerProcess.run(["backtest", "--from", "now-1h", "--to", "4102444800", "--config", pooled.path], environment: [:])
        #expect(future.status == 64, "\(future.combined)")
        #expect(future.stderr.contains("--to 4102444800 is in the future"))

        // Prometheus down: nothing to replay, exit 3 naming it.
        let unreachable = directory.appendingPathComponent("unreachable.yaml")
        try """
        cluster_id: demo
        table: kscaler
        prometheus: {url: "http://127.0.0.1:1"}
        workers: {image_id: ami-0123456789abcdef0, instance_types: [t3.large], subnets: [subnet-0a], sizes: {t3.large: {cpu: 2, memory: 8Gi}}}
        """.write(to: unreachable, atomically: true, encoding: .utf8)
        let down = try await KScalerProcess.run(["backtest", "--from", "now-1h", "--to", "now", "--config", unreachable.path], environment: [:])
        #expect(down.status == 3, "\(down.combined)")
        #expect(down.stderr.contains("cannot read the history from Prometheus: Prometheus unreachable"))
    }

    // MARK: - The recorded history

    static func arguments(_ configs: [URL]) -> [String] {
        ["backtest", "--from", String(at(0)), "--to", String(at(360)), "--step", "1m", "--boot-time", "3m"]
            + configs.flatMap { ["--config", $0.path] }
    }

    static func configs(in directory: URL, prometheus: String) throws -> [URL] {
        try [("simple", simple), ("one-at-a-time", oneAtATime)].map { name, policy in
            let file = directory.appendingPathComponent("\(name).yaml")
            try """
            cluster_id: backtest
            table: kscaler
            prometheus: {url: "\(prometheus)"}
            \(policy)
            workers: {image_id: ami-0123456789abcdef0, instance_types: [t3.large], subnets: [subnet-0a], sizes: {t3.large: {cpu: 2, memory: 8Gi}}}
            """.write(to: file, atomically: true, encoding: .utf8)
            return file
        }
    }

    /// promtool turns the history into blocks; Prometheus opens them. A 30 s lookback: backfilled
    /// series have no staleness markers, so a series that ended would otherwise linger 5 minutes.
    static func withRecordedHistory(_ body: (URL, String) async throws -> Void) async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-backtest")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("history.om")
        try openMetrics().write(to: file, atomically: true, encoding: .utf8)
        let data = directory.appendingPathComponent("data")
        let promtool = ProcessInfo.processInfo.environment["KSTEST_PROMTOOL_BIN"] ?? "/usr/bin/promtool"
        let out = Pipe(), err = Pipe()
        let process = try ChildProcess.launch(promtool, ["tsdb", "create-blocks-from", "openmetrics", file.path, data.path], stdout: out, stderr: err)
        let created = await ChildProcess.collect(process, stdout: out, stderr: err, timeout: .seconds(120))
        try #require(created.status == 0, "promtool: \(String(decoding: created.stdout + created.stderr, as: UTF8.self))")
        let server = try await PrometheusServer.start(config: "global: {scrape_interval: 1m}\n", extraArguments: ["--query.lookback-delta=30s"],
                                                      storage: data)
        do {
            try await body(directory, server.baseURL)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    private struct Pod {
        var namespace = "default"
        var name: String
        var kind = "ReplicaSet"
        var cpu: Double
        var memory: Int
        var minutes: ClosedRange<Int>
        /// Its node at a minute ("" while unscheduled).
        var node: (Int) -> String
        var phase: (Int) -> String
        var unschedulable: (Int) -> Bool = { _ in false }
    }

    private static let mib = 1 << 20

    private static var pods: [Pod] {
        let always = -60...360
        var pods = [
            Pod(name: "web-1", cpu: 0.5, memory: 512 * mib, minutes: always, node: { _ in "i-0aaa" }, phase: { _ in "Running" }),
            Pod(name: "web-2", cpu: 0.5, memory: 512 * mib, minutes: always, node: { _ in "i-0aaa" }, phase: { _ in "Running" }),
            Pod(namespace: "kube-system", name: "ds-1", kind: "DaemonSet", cpu: 1, memory: 256 * mib, minutes: always,
                node: { _ in "i-0aaa" }, phase: { _ in "Running" }),
            Pod(namespace: "kube-system", name: "etcd-cp-1", kind: "Node", cpu: 1, memory: 1024 * mib, minutes: always,
                node: { _ in "cp-1" }, phase: { _ in "Running" }),
        ]
        pods += (1...6).map { n in
            Pod(name: "batch-\(n)", cpu: 1, memory: 1024 * mib, minutes: 60...130, node: { $0 < 64 ? "" : "i-0bbb" },
                phase: { $0 < 64 ? "Pending" : $0 < 120 ? "Running" : "Succeeded" }, unschedulable: { $0 < 64 })
        }
        pods += (1...4).map { n in
            Pod(name: "ramp-\(n)", cpu: 0.5, memory: 512 * mib, minutes: (170 + 10 * n)...305, node: { _ in "i-0aaa" },
                phase: { $0 < 300 ? "Running" : "Succeeded" })
        }
        return pods
    }

    /// The history as OpenMetrics: each family's series together, timestamps in seconds, `# EOF`.
    static func openMetrics() -> String {
        var lines: [String] = []
        func family(_ name: String, _ series: [(labels: String, values: [(minute: Int, value: String)])]) {
            lines.append("# TYPE \(name) gauge")
            for (labels, values) in series {
                for (minute, value) in values { lines.append("\(name){\(labels)} \(value) \(at(minute))") }
            }
        }
        let nodes: [(name: String, minutes: ClosedRange<Int>, readyFrom: Int)] = [("cp-1", -60...360, -60), ("i-0aaa", -60...360, -60), ("i-0bbb", 62...150, 64)]
        family("kube_node_info", nodes.map { node in
            ("node=\"\(node.name)\",provider_id=\"aws:///us-east-1a/\(node.name)\"", node.minutes.map { ($0, "1") })
        })
        family("kube_node_status_condition", nodes.map { node in
            ("node=\"\(node.name)\",condition=\"Ready\",status=\"true\"", node.minutes.map { ($0, $0 >= node.readyFrom ? "1" : "0") })
        })
        // A series per label set: a pod whose node label changes has two.
        func split(_ pod: Pod, _ labels: (String) -> String) -> [(labels: String, values: [(minute: Int, value: String)])] {
            var series: [(labels: String, values: [(minute: Int, value: String)])] = []
            for minute in pod.minutes {
                let node = pod.node(minute)
                if series.last?.labels != labels(node) { series.append((labels(node), [])) }
                series[series.count - 1].values.append((minute, "1"))
            }
            return series
        }
        family("kube_pod_info", pods.flatMap { pod in
            split(pod) { "namespace=\"\(pod.namespace)\",pod=\"\(pod.name)\",node=\"\($0)\",created_by_kind=\"\(pod.kind)\"" }
        })
        family("kube_pod_status_phase", pods.flatMap { pod in
            ["Pending", "Running", "Succeeded"].map { phase in
                ("namespace=\"\(pod.namespace)\",pod=\"\(pod.name)\",phase=\"\(phase)\"", pod.minutes.map { ($0, pod.phase($0) == phase ? "1" : "0") })
            }
        })
        family("kube_pod_status_unschedulable", pods.compactMap { pod in
            let minutes = pod.minutes.filter(pod.unschedulable)
            return minutes.isEmpty ? nil : ("namespace=\"\(pod.namespace)\",pod=\"\(pod.name)\"", minutes.map { ($0, "1") })
        })
        family("kube_pod_container_resource_requests", pods.flatMap { pod in
            [("cpu", "core", String(pod.cpu)), ("memory", "byte", String(pod.memory))].flatMap { resource, unit, amount in
                split(pod) { node in
                    "namespace=\"\(pod.namespace)\",pod=\"\(pod.name)\",container=\"main\",node=\"\(node)\",resource=\"\(resource)\",unit=\"\(unit)\""
                }.map { series in (series.labels, series.values.map { ($0.minute, amount) }) }
            }
        })
        lines.append("# EOF")
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - The JSON, as a user's script reads it

    struct Summary: Decodable, Equatable {
        var launches: Int
        var terminations: Int
        var peak_nodes: Int
        var mean_nodes: Double
        var unschedulable_minutes: Double
        var node_hours: Double
        var steps_without_data: Int

        static func == (a: Summary, b: Summary) -> Bool {
            (a.launches, a.terminations, a.peak_nodes, a.steps_without_data) == (b.launches, b.terminations, b.peak_nodes, b.steps_without_data)
                && abs(a.mean_nodes - b.mean_nodes) < 1e-9 && abs(a.unschedulable_minutes - b.unschedulable_minutes) < 1e-9
                && abs(a.node_hours - b.node_hours) < 1e-9
        }
    }

    struct ReportedAction: Decodable {
        var time: Date
        var kind: String
        var machines: [String]
        var reasons: [String]
    }

    struct Replay: Decodable {
        var label: String
        var summary: Summary
        var actions: [ReportedAction]
        var timeline: [Point]

        struct Point: Decodable { var nodes: Int? }
    }

    struct Report: Decodable {
        struct Real: Decodable { var summary: Summary }
        var real: Real
        var configs: [Replay]
    }

    /// An action as the tests write it: up or down, the minute after T0, how many machines.
    struct Action: Equatable, CustomStringConvertible {
        enum Kind { case up, down }
        var kind: Kind
        var minute: Int
        var count: Int

        init(_ kind: Kind, _ minute: Int, _ count: Int) {
            self.kind = kind
            self.minute = minute
            self.count = count
        }

        init(_ reported: ReportedAction) {
            self.init(reported.kind == "scale_up" ? .up : .down, (Int(reported.time.timeIntervalSince1970) - BacktestCommandTests.start) / 60,
                      reported.machines.count)
        }

        var description: String { "\(kind) \(count) at \(minute)" }
    }
}
