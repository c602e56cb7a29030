/// The signals kscaler reads from Prometheus. Each is one instant PromQL query, configurable
/// under `signals.<rawValue>`; the defaults below fit kube-state-metrics + node-exporter.
///
/// Shapes: `.scalar` signals answer one number (a one-element vector or a scalar);
/// `.perNode` signals answer one sample per node, labelled `node` (and, for `nodeReady`,
/// `provider_id`). An empty answer is *no data*, never zero: the defaults therefore add
/// an explicit zero only when kube-state-metrics is visibly alive.
public enum Signal: String, CaseIterable, Sendable, Codable {
    case unschedulablePods = "unschedulable_pods"
    case pendingCPURequestCores = "pending_cpu_requests"
    case pendingMemoryRequestBytes = "pending_memory_requests"
    /// Fraction 0…1 of the managed workers' CPU, now (requested or used: `utilization` mode).
    case cpuUtilization = "cpu_utilization"
    case memoryUtilization = "memory_utilization"
    /// The same fractions' maximum over the scale-down stabilization window.
    case cpuUtilizationWindowMax = "cpu_utilization_window_max"
    case memoryUtilizationWindowMax = "memory_utilization_window_max"
    /// Per node: 1 when Ready, 0 otherwise; labels `node`, `provider_id`.
    case nodeReady = "node_ready"
    /// Per node: pods not owned by a DaemonSet; label `node`.
    case podsPerNode = "pods_per_node"

    public enum Shape: Sendable { case scalar, perNode }

    public var shape: Shape {
        switch self {
        case .nodeReady, .podsPerNode: .perNode
        default: .scalar
        }
    }
}

/// How "utilisation" is measured.
public enum UtilizationMode: String, CaseIterable, Sendable, Codable {
    /// Requested CPU/memory over allocatable (cluster-autoscaler, escalator): what the scheduler can place.
    case requests
    /// Actual usage from node-exporter (the simple Lambda autoscalers' signal).
    case usage
}

/// Default PromQL for every signal. `workerSelector` is a PromQL label matcher body that selects
/// kscaler's workers by node name (workers are named after their instance id, see DESIGN.md
/// "Workers"); `window` is the stabilization window in whole seconds.
public enum DefaultQueries {
    public static let workerNodePattern = "i-[0-9a-f]+"

    public static func query(for signal: Signal, mode: UtilizationMode, windowSeconds: Int) -> String {
        let workers = "node=~\"\(workerNodePattern)\""
        let ksmAlive = "on() (count(kube_node_info) > 0)"
        func windowMax(_ expression: String) -> String {
            let step = max(1, windowSeconds / 10)
            return "max_over_time((\(expression))[\(windowSeconds)s:\(step)s])"
        }
        func utilization(_ resource: String) -> String {
            switch mode {
            case .requests:
                return """
                sum(kube_pod_container_resource_requests{resource="\(resource)",\(workers)} \
                and on(namespace, pod) (kube_pod_status_phase{phase=~"Pending|Running"} == 1)) \
                / sum(kube_node_status_allocatable{resource="\(resource)",\(workers)})
                """
            case .usage:
                if resource == "cpu" {
                    return """
                    1 - avg(rate(node_cpu_seconds_total{mode="idle"}[2m]) \
                    * on(instance) group_left(nodename) node_uname_info{nodename=~"\(workerNodePattern)"})
                    """
                }
                return """
                1 - sum(node_memory_MemAvailable_bytes * on(instance) group_left(nodename) node_uname_info{nodename=~"\(workerNodePattern)"}) \
                / sum(node_memory_MemTotal_bytes * on(instance) group_left(nodename) node_uname_info{nodename=~"\(workerNodePattern)"})
                """
            }
        }
        switch signal {
        case .unschedulablePods:
            return "(sum(kube_pod_status_unschedulable) or vector(0)) and \(ksmAlive)"
        case .pendingCPURequestCores, .pendingMemoryRequestBytes:
            let resource = signal == .pendingCPURequestCores ? "cpu" : "memory"
            return """
            (sum(kube_pod_container_resource_requests{resource="\(resource)"} \
            and on(namespace, pod) (kube_pod_status_unschedulable == 1)) or vector(0)) and \(ksmAlive)
            """
        case .cpuUtilization: return utilization("cpu")
        case .memoryUtilization: return utilization("memory")
        case .cpuUtilizationWindowMax: return windowMax(utilization("cpu"))
        case .memoryUtilizationWindowMax: return windowMax(utilization("memory"))
        case .nodeReady:
            return """
            max by (node, provider_id) (kube_node_status_condition{condition="Ready",status="true"} \
            * on(node) group_left(provider_id) kube_node_info)
            """
        case .podsPerNode:
            return """
            count by (node) (kube_pod_info{node!="",created_by_kind!="DaemonSet"} \
            and on(namespace, pod) (kube_pod_status_phase{phase=~"Pending|Running"} == 1))
            """
        }
    }
}
