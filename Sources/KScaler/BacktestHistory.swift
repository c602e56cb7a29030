import AWS
import HTTP
import KScalerCore
import Logging
import Prometheus

/// Reads what `kscaler backtest` replays from Prometheus with range queries: the demand (pods
/// wanting a worker, with their requests) and what the cluster really had. Needs only read
/// access to Prometheus: no AWS (unless Prometheus itself is reached with SigV4), no lease,
/// no Kubernetes API.
package struct BacktestHistory: Sendable {
    package let client: PrometheusClient
    /// The workers' node names (RE2), as `MachineIdentity.workerNodeNames`.
    package let workerNodeNames: String

    package init(client: PrometheusClient, workerNodeNames: String = EC2Fleet.machines.workerNodeNames) {
        self.client = client
        self.workerNodeNames = workerNodeNames
    }

    /// Prometheus refuses more than 11,000 points a series; longer ranges go in parts.
    static let maximumPointsPerQuery = 10_000

    /// The client `backtest` uses: built from `prometheus.*` alone. AWS credentials are looked
    /// up only when Prometheus is Amazon Managed Prometheus (`prometheus.auth.type: sigv4`).
    package static func client(config: KScalerConfig, environment: AWSEnvironment, transport: any HTTPTransport,
                               logger: Logger) async throws -> PrometheusClient {
        try await Runtime.prometheusClient(config: config, transport: transport, logger: logger) {
            try await AWSContext.resolve(environment: environment, configuredRegion: config.region, transport: transport, logger: logger)
        }
    }

    /// PromQL for each series the replay reads (kube-state-metrics v2, as `DefaultQueries`).
    package var queries: (demand: String, reporting: String, nodes: String, ready: String, unschedulable: String) {
        let workers = "node=~\"\(workerNodeNames)\""
        // A pod wants a worker while Pending or Running, unless a DaemonSet owns it (every node
        // runs its own) or it sits on a node that is not a worker (the control plane's pods). The
        // inner max counts a container once while its series is doubled: two kube-state-metrics
        // pods (a rollout), or its `node` label changing when it is scheduled.
        let demand = """
        sum by (namespace, pod, resource) (max by (namespace, pod, container, resource) \
        (kube_pod_container_resource_requests{resource=~"cpu|memory"}) \
        and on(namespace, pod) (kube_pod_status_phase{phase=~"Pending|Running"} == 1) \
        and on(namespace, pod) kube_pod_info{created_by_kind!="DaemonSet",node=~"\(workerNodeNames)|"})
        """
        return (demand, "count(kube_node_info)", "max by (node) (kube_node_info{\(workers)})",
                "max by (node) (kube_node_status_condition{condition=\"Ready\",status=\"true\",\(workers)})",
                "sum(kube_pod_status_unschedulable) or vector(0)")
    }

    /// The history at `from`, `from + step`, … up to `to`.
    package func steps(from: Date, to: Date, step: TimeInterval) async throws -> [BacktestStep] {
        let times = stride(from: from.timeIntervalSince1970, through: to.timeIntervalSince1970 + 1e-6, by: step).map { Date(timeIntervalSince1970: $0) }
        let queries = queries
        async let demand = range(queries.demand, times: times, step: step)
        async let reporting = range(queries.reporting, times: times, step: step)
        async let nodes = range(queries.nodes, times: times, step: step)
        async let ready = range(queries.ready, times: times, step: step)
        async let unschedulable = range(queries.unschedulable, times: times, step: step)
        return Self.steps(times: times, demand: try await demand, reporting: try await reporting, nodes: try await nodes,
                          ready: try await ready, unschedulable: try await unschedulable)
    }

    /// The answers put together step by step; a step is matched by its millisecond.
    static func steps(times: [Date], demand: [RangeSeries], reporting: [RangeSeries], nodes: [RangeSeries], ready: [RangeSeries],
                      unschedulable: [RangeSeries]) -> [BacktestStep] {
        func key(_ time: Date) -> Int64 { Int64((time.timeIntervalSince1970 * 1000).rounded()) }
        var pods: [Int64: [String: PodDemand]] = [:]
        for series in demand {
            guard let namespace = series.labels["namespace"], let pod = series.labels["pod"], let resource = series.labels["resource"] else { continue }
            let id = "\(namespace)/\(pod)"
            for point in series.points where point.value.isFinite && point.value >= 0 {
                var entry = pods[key(point.timestamp), default: [:]][id] ?? PodDemand(id: id, cpuCores: 0, memoryBytes: 0)
                if resource == "cpu" { entry.cpuCores += point.value } else { entry.memoryBytes += point.value }
                pods[key(point.timestamp), default: [:]][id] = entry
            }
        }
        let reportingAt = Set(reporting.flatMap(\.points).filter { $0.value > 0 }.map { key($0.timestamp) })
        var realNodes: [Int64: [String: Bool]] = [:]
        for series in nodes {
            guard let node = series.labels["node"] else { continue }
            for point in series.points { realNodes[key(point.timestamp), default: [:]][node] = false }
        }
        for series in ready {
            guard let node = series.labels["node"] else { continue }
            for point in series.points where point.value == 1 && realNodes[key(point.timestamp)]?[node] != nil {
                realNodes[key(point.timestamp)]?[node] = true
            }
        }
        var unschedulableAt: [Int64: Int] = [:]
        for point in unschedulable.flatMap(\.points) where point.value.isFinite && point.value >= 0 {
            unschedulableAt[key(point.timestamp)] = Int(point.value.rounded())
        }
        return times.map { time in
            let at = key(time)
            return BacktestStep(time: time, reporting: reportingAt.contains(at), pods: pods[at].map { Array($0.values) } ?? [],
                                realNodes: realNodes[at] ?? [:], realUnschedulablePods: unschedulableAt[at])
        }
    }

    /// One range query over `times`, in parts of at most `maximumPointsPerQuery` steps.
    private func range(_ promql: String, times: [Date], step: TimeInterval) async throws -> [RangeSeries] {
        var all: [RangeSeries] = []
        var start = 0
        while start < times.count {
            let end = min(times.count, start + Self.maximumPointsPerQuery) - 1
            all += try await client.queryRange(promql, start: times[start], end: times[end], step: .milliseconds(Int64((step * 1000).rounded())))
            start = end + 1
        }
        return all
    }
}
