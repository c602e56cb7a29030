import Foundation
import Synchronization
import TestSupport

/// A small simulated cluster that a real Prometheus scrapes: kube-state-metrics series in the
/// shapes kscaler's default queries expect (see Signals.swift), served from `/metrics` on
/// 127.0.0.1. Tests change the cluster (workers, pending pods) between runs.
final class ClusterExporter: Sendable {
    struct Worker: Sendable {
        var instanceID: String
        var ready = true
        /// CPU cores requested by each of its pods; one pod per entry.
        var podCPU: [Double] = [0.1]
        var allocatableCPU = 2.0
        var allocatableMemory = 8.0 * 1_073_741_824
    }

    struct PendingPod: Sendable {
        var cpu: Double
        var memory: Double
    }

    struct Cluster: Sendable {
        var workers: [Worker] = []
        var pending: [PendingPod] = []
        /// When false, kube-state-metrics is "down": /metrics answers an empty exposition.
        var kubeStateMetricsUp = true
    }

    /// Shared with the server's handler thread.
    final class State: Sendable { let cluster = Mutex(Cluster()) }

    let state = State()
    let server: StubHTTPServer

    init() throws {
        let state = self.state
        server = try StubHTTPServer(lifetime: .seconds(600)) { request in
            guard request.target.hasPrefix("/metrics") else { return .text("not found", status: 404) }
            return .text(ClusterExporter.exposition(state.cluster.withLock { $0 }),
                         headers: [.init("Content-Type", "text/plain; version=0.0.4")])
        }
    }

    var target: String { "127.0.0.1:\(server.port)" }

    func update(_ change: (inout Cluster) -> Void) { state.cluster.withLock { change(&$0) } }

    func stop() { server.stop() }

    static func exposition(_ cluster: Cluster) -> String {
        guard cluster.kubeStateMetricsUp else { return "" }
        var lines: [String] = []
        func node(_ name: String, provider: String, ready: Bool, cpu: Double, memory: Double) {
            lines.append(#"kube_node_info{node="\#(name)",provider_id="\#(provider)"} 1"#)
            for status in ["true", "false", "unknown"] {
                let value = (status == "true") == ready && status != "unknown" ? 1 : 0
                lines.append(#"kube_node_status_condition{node="\#(name)",condition="Ready",status="\#(status)"} \#(value)"#)
            }
            lines.append(#"kube_node_status_allocatable{node="\#(name)",resource="cpu",unit="core"} \#(cpu)"#)
            lines.append(#"kube_node_status_allocatable{node="\#(name)",resource="memory",unit="byte"} \#(memory)"#)
        }
        func pod(_ name: String, node: String?, phase: String, cpu: Double, memory: Double, kind: String = "ReplicaSet") {
            let nodeLabel = node.map { #",node="\#($0)""# } ?? ""
            lines.append(#"kube_pod_info{namespace="default",pod="\#(name)",node="\#(node ?? "")",created_by_kind="\#(kind)"} 1"#)
            lines.append(#"kube_pod_status_phase{namespace="default",pod="\#(name)",phase="\#(phase)"} 1"#)
            lines.append(#"kube_pod_container_resource_requests{namespace="default",pod="\#(name)",container="app"\#(nodeLabel),resource="cpu",unit="core"} \#(cpu)"#)
            lines.append(#"kube_pod_container_resource_requests{namespace="default",pod="\#(name)",container="app"\#(nodeLabel),resource="memory",unit="byte"} \#(memory)"#)
            if node == nil { lines.append(#"kube_pod_status_unschedulable{namespace="default",pod="\#(name)"} 1"#) }
        }
        node("k3s-server", provider: "k3s://k3s-server", ready: true, cpu: 2, memory: 4 * 1_073_741_824)
        for worker in cluster.workers {
            node(worker.instanceID, provider: "aws:///us-east-1a/\(worker.instanceID)", ready: worker.ready,
                 cpu: worker.allocatableCPU, memory: worker.allocatableMemory)
            for (index, cpu) in worker.podCPU.enumerated() {
                pod("app-\(worker.instanceID)-\(index)", node: worker.instanceID, phase: "Running", cpu: cpu, memory: 64 * 1_048_576)
            }
            pod("ds-\(worker.instanceID)", node: worker.instanceID, phase: "Running", cpu: 0.01, memory: 1_048_576, kind: "DaemonSet")
        }
        for (index, pending) in cluster.pending.enumerated() {
            pod("pending-\(index)", node: nil, phase: "Pending", cpu: pending.cpu, memory: pending.memory)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
