import Foundation
import Synchronization
import TestSupport

/// A small simulated cluster that a real Prometheus scrapes: tests change it (workers, pending
/// pods) between runs. The series are rendered by the one simulated-cluster exporter
/// (infra/local/ksandbox/exporter.py, run as a process), which re-reads this cluster's
/// description from a file on every scrape; kube-state-metrics is at `target` +
/// `ClusterExporterProcess.kubeStateMetricsPath`.
final class ClusterExporter: Sendable {
    struct Worker: Sendable {
        var instanceID: String
        var ready = true
        /// CPU cores requested by each of its pods (64 MiB of memory each); one pod per entry.
        var podCPU: [Double] = [0.1]
        var allocatableCPU = 2.0
        var allocatableMemory = 8.0 * 1_073_741_824
        /// Its `node.kubernetes.io/instance-type` label (kube_node_labels); nil: none.
        var instanceType: String?
    }

    struct PendingPod: Sendable {
        var cpu: Double
        var memory: Double
    }

    struct Cluster: Sendable {
        var workers: [Worker] = []
        var pending: [PendingPod] = []
        /// When false, kube-state-metrics is "down": it answers an empty exposition.
        var kubeStateMetricsUp = true
    }

    private let cluster = Mutex(Cluster())
    private let file: URL
    private let process: ClusterExporterProcess

    private init(file: URL, process: ClusterExporterProcess) {
        self.file = file
        self.process = process
    }

    static func start() async throws -> ClusterExporter {
        let directory = try ChildProcess.temporaryDirectory("kscaler-cluster")
        let file = directory.appendingPathComponent("cluster.json")
        do {
            try write(Cluster(), to: file)
            return ClusterExporter(file: file, process: try await ClusterExporterProcess.start(["--cluster-file", file.path]))
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    var target: String { process.address }

    /// A PromQL expression that equals `scrapedSignature` once Prometheus's latest scrape shows
    /// the cluster as last updated: nodes, pods and Ready nodes, folded into one number, each
    /// counted once also when two jobs scrape the same exporter.
    static let scrapedSignatureQuery = """
        count(count by (node) (kube_node_info)) * 1000000 \
        + (count(count by (namespace, pod) (kube_pod_info)) or vector(0)) * 1000 \
        + count(max by (node) (kube_node_status_condition{condition="Ready",status="true"}) == 1)
        """

    /// What `scrapedSignatureQuery` answers for the cluster as it is now (exporter.py adds a
    /// control-plane node, and one DaemonSet pod per worker).
    var scrapedSignature: Int {
        cluster.withLock { cluster in
            let nodes = 1 + cluster.workers.count
            let pods = cluster.workers.reduce(0) { $0 + $1.podCPU.count + 1 } + cluster.pending.count
            let ready = 1 + cluster.workers.filter(\.ready).count
            return nodes * 1_000_000 + pods * 1_000 + ready
        }
    }

    /// Changes the cluster; the next scrape sees the change.
    func update(_ change: (inout Cluster) -> Void) {
        cluster.withLock { cluster in
            change(&cluster)
            // An error here is a broken temporary directory: the next scrape then fails the test.
            try? Self.write(cluster, to: file)
        }
    }

    func stop() async {
        await process.stop()
        try? FileManager.default.removeItem(at: file.deletingLastPathComponent())
    }

    /// The description exporter.py reads, written atomically (it never reads half a file).
    private static func write(_ cluster: Cluster, to file: URL) throws {
        let description: [String: Any] = [
            "workers": cluster.workers.map { worker in
                ["id": worker.instanceID, "ready": worker.ready, "cpu": worker.allocatableCPU, "memory": worker.allocatableMemory,
                 "instance_type": worker.instanceType ?? "",
                 "pods": worker.podCPU.map { ["cpu": $0, "memory": 64.0 * 1_048_576] }] as [String: Any]
            },
            "pending": cluster.pending.map { ["cpu": $0.cpu, "memory": $0.memory] },
            "kube_state_metrics": cluster.kubeStateMetricsUp ? "up" : "empty",
        ]
        try JSONSerialization.data(withJSONObject: description).write(to: file, options: .atomic)
    }
}
