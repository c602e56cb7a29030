import Foundation

/// The simulated cluster's kube-state-metrics and node-exporter (infra/local/ksandbox/exporter.py,
/// the one exposition the sandbox and the benchmark serve too), run as a process on 127.0.0.1.
/// It exits by itself after 900 s, and as soon as its stdin closes (the test process is gone).
package final class ClusterExporterProcess: @unchecked Sendable {  // immutable after init; only stop() acts on the child.
    /// Where Prometheus scrapes kube-state-metrics as a static target (`metrics_path`).
    package static let kubeStateMetricsPath = "/kube-state-metrics/metrics"

    package let port: Int
    /// How many scrape targets its service discovery (`/sd`) lists.
    package let targets: Int
    package var address: String { "127.0.0.1:\(port)" }
    /// Prometheus's `http_sd_configs` URL for every target of the cluster.
    package var serviceDiscoveryURL: String { "http://\(address)/sd" }
    private let process: SpawnedProcess
    private let directory: URL

    package static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("infra/local/ksandbox/exporter.py")

    private init(port: Int, targets: Int, process: SpawnedProcess, directory: URL) {
        self.port = port
        self.targets = targets
        self.process = process
        self.directory = directory
    }

    /// Starts the exporter with `arguments` (`--scenario NAME`, or `--cluster-file PATH`) and
    /// returns once it has told its port.
    package static func start(_ arguments: [String]) async throws -> ClusterExporterProcess {
        let directory = try ChildProcess.temporaryDirectory("kscaler-cluster-exporter")
        let log = directory.appendingPathComponent("exporter.log")
        let process: SpawnedProcess
        do {
            process = try ChildProcess.launch(
                "/usr/bin/env", ["python3", script.path] + arguments + ["--lifetime", "900", "--exit-on-stdin-eof"],
                log: log, stdin: Pipe())
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        do {
            let line = try await ChildProcess.firstLine(of: log, what: "the cluster exporter's port") { $0.hasPrefix("{") }
            struct Announcement: Decodable { let port: Int; let targets: Int }
            let announced = try JSONDecoder().decode(Announcement.self, from: Data(line.utf8))
            return ClusterExporterProcess(port: announced.port, targets: announced.targets, process: process, directory: directory)
        } catch {
            await ChildProcess.stop(process)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    package func stop() async {
        await ChildProcess.stop(process)
        try? FileManager.default.removeItem(at: directory)
    }
}
