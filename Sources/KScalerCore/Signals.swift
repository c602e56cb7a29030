/// The signals kscaler reads from Prometheus. Each is one instant PromQL query, configurable
/// under `signals.<rawValue>`; the defaults below fit kube-state-metrics + node-exporter.
///
/// Shapes: `.scalar` signals answer one number (a one-element vector or a scalar);
/// `.perNode` signals answer one sample per node, labelled `node` (and, for `nodeReady`,
/// `provider_id`). An empty answer is *no data*, never zero: the defaults therefore add
/// an explicit zero only when kube-state-metrics is visibly alive.
package enum Signal: String, CaseIterable, Sendable, Codable {
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

    package enum Shape: Sendable { case scalar, perNode }

    package var shape: Shape {
        switch self {
        case .nodeReady, .podsPerNode: .perNode
        default: .scalar
        }
    }

    /// Why a finite sample value cannot be what this signal measures, or nil. A count of pods
    /// is whole and a readiness is 0 or 1: anything else means the query is not what kscaler
    /// expects (an `avg`, a rate, an unaggregated series), and acting on it would be guessing.
    package func problem(with value: Double) -> String? {
        switch self {
        case .unschedulablePods, .podsPerNode:
            value >= 0 && value == value.rounded() ? nil : "\(formatNumber(value)) is not a whole number of pods"
        case .nodeReady:
            value == 0 || value == 1 ? nil : "\(formatNumber(value)) is not 0 or 1 (not Ready or Ready)"
        default:
            nil
        }
    }
}

/// How "utilisation" is measured.
package enum UtilizationMode: String, CaseIterable, Sendable, Codable {
    /// Requested CPU/memory over allocatable (cluster-autoscaler, escalator): what the scheduler can place.
    case requests
    /// Actual usage from node-exporter (the simple Lambda autoscalers' signal).
    case usage
}

/// Default PromQL for every signal, written for kube-state-metrics v2 and node-exporter and
/// checked against a real Prometheus (Tests/PrometheusTests). kscaler's workers are the nodes
/// whose names match the fleet's `MachineIdentity.workerNodeNames` (EC2: the instance id).
///
/// No-data rules: a signal is empty when its source is absent (kube-state-metrics down, no
/// worker to measure, less history than the stabilization window) and is never silently 0;
/// where "none" is a real answer (no unschedulable pods, an idle worker) the query says 0
/// explicitly, but only while kube-state-metrics is visibly reporting.
package enum DefaultQueries {
    /// - Parameters:
    ///   - windowSeconds: the scale-down stabilization window, in whole seconds.
    ///   - workerNodes: the workers' node names, as `MachineIdentity.workerNodeNames`.
    package static func query(for signal: Signal, mode: UtilizationMode, windowSeconds: Int, workerNodes: String) -> String {
        switch signal {
        case .unschedulablePods:
            // kube_pod_status_unschedulable exists only for unschedulable pods: none at all means 0.
            return "(sum(kube_pod_status_unschedulable) or vector(0)) and \(kubeStateMetricsReporting)"
        case .pendingCPURequestCores:
            return pendingRequests("cpu")
        case .pendingMemoryRequestBytes:
            return pendingRequests("memory")
        case .cpuUtilization:
            return utilization("cpu", mode: mode, workerNodes: workerNodes)
        case .memoryUtilization:
            return utilization("memory", mode: mode, workerNodes: workerNodes)
        case .cpuUtilizationWindowMax:
            return windowMax(utilization("cpu", mode: mode, workerNodes: workerNodes), windowSeconds: windowSeconds)
        case .memoryUtilizationWindowMax:
            return windowMax(utilization("memory", mode: mode, workerNodes: workerNodes), windowSeconds: windowSeconds)
        case .nodeReady:
            // One series per node with status true/false/unknown; "true" is 1 only when Ready. The
            // inner max keeps the join valid while two kube-state-metrics pods report (a rollout).
            return """
            max by (node, provider_id) (kube_node_status_condition{condition="Ready",status="true"} \
            * on(node) group_left(provider_id) max by (node, provider_id) (kube_node_info))
            """
        case .podsPerNode:
            // Nodes running no such pod answer 0 (they are the best scale-down victims), not nothing.
            return """
            count by (node) (kube_pod_info{node!="",created_by_kind!="DaemonSet"} \
            and on(namespace, pod) (kube_pod_status_phase{phase=~"Pending|Running"} == 1)) \
            or (max by (node) (kube_node_info) * 0)
            """
        }
    }

    /// Allocatable CPU (cores) and memory (bytes) per instance type: the smallest among the
    /// Ready nodes of the type, one series per (type, resource), labelled
    /// `label_node_kubernetes_io_instance_type` and `resource`. kube-state-metrics exports the
    /// node's `node.kubernetes.io/instance-type` label only when allowed
    /// (`--metric-labels-allowlist=nodes=[node.kubernetes.io/instance-type]`); without it
    /// the answer is empty and sizes come from the config or EC2. The inner `max by` keep the
    /// join valid while two kube-state-metrics pods report (a rollout).
    package static let allocatableByInstanceType = """
        min by (label_node_kubernetes_io_instance_type, resource) (\
        max by (node, resource) (kube_node_status_allocatable{resource=~"cpu|memory"}) \
        * on(node) group_left(label_node_kubernetes_io_instance_type) \
        max by (node, label_node_kubernetes_io_instance_type) (kube_node_labels{label_node_kubernetes_io_instance_type!=""}) \
        and on(node) (max by (node) (kube_node_status_condition{condition="Ready",status="true"}) == 1))
        """

    /// Right-hand side of `and`: keeps the left side only while kube-state-metrics reports nodes.
    private static let kubeStateMetricsReporting = "on() (count(kube_node_info) > 0)"

    /// Summed container requests of the unschedulable pods; such pods have no `node` label yet.
    private static func pendingRequests(_ resource: String) -> String {
        """
        (sum(kube_pod_container_resource_requests{resource="\(resource)"} \
        and on(namespace, pod) (kube_pod_status_unschedulable == 1)) or vector(0)) \
        and \(kubeStateMetricsReporting)
        """
    }

    /// Fraction 0…1 of the Ready workers' CPU or memory; empty when there is no Ready worker.
    private static func utilization(_ resource: String, mode: UtilizationMode, workerNodes: String) -> String {
        let workers = "node=~\"\(workerNodes)\""
        switch mode {
        case .requests:
            // Pending pods already bound to a node hold their requests too; finished pods hold none.
            // Only Ready workers count, as for cluster-autoscaler: a ghost (a terminated instance's
            // Node object, NotReady for ever) would add allocatable nobody can use, and a booting
            // node none that is usable yet.
            let ready = "on(node) (kube_node_status_condition{condition=\"Ready\",status=\"true\",\(workers)} == 1)"
            return """
            (sum(kube_pod_container_resource_requests{resource="\(resource)",\(workers)} \
            and on(namespace, pod) (kube_pod_status_phase{phase=~"Pending|Running"} == 1) and \(ready)) or vector(0)) \
            / sum(kube_node_status_allocatable{resource="\(resource)",\(workers)} and \(ready))
            """
        case .usage:
            let onWorkers = "on(instance) node_uname_info{nodename=~\"\(workerNodes)\"}"
            if resource == "cpu" {
                // Per worker the idle share of all CPU time, weighted by its CPU count, over the
                // workers that have a rate yet. A ratio of rates from the same scrapes stays exact
                // while rate() under-reports a young series (a new node, a restarted Prometheus).
                let cpus = "count by (instance) (node_cpu_seconds_total{mode=\"idle\"})"
                let weightedIdle = """
                (sum by (instance) (rate(node_cpu_seconds_total{mode="idle"}[2m])) \
                / sum by (instance) (rate(node_cpu_seconds_total[2m]))) * \(cpus) and \(onWorkers)
                """
                return "1 - sum(\(weightedIdle)) / sum(\(cpus) and on(instance) (\(weightedIdle)))"
            }
            return """
            1 - sum(node_memory_MemAvailable_bytes and \(onWorkers)) \
            / sum(node_memory_MemTotal_bytes and \(onWorkers))
            """
        }
    }

    /// The expression's maximum over the window, sampled at ten points, and only when every
    /// point has data: a maximum over part of the window would claim "low for the whole window"
    /// after a gap or a Prometheus restart.
    private static func windowMax(_ expression: String, windowSeconds: Int) -> String {
        let window = max(1, windowSeconds)
        let step = max(1, window / 10)
        let range = "[\(window)s:\(step)s]"
        return "max_over_time((\(expression))\(range)) and on() (count_over_time((\(expression))\(range)) >= \(window / step))"
    }
}
