#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the unschedulable pods routed to one pool ask of it.
package struct PoolDemand: Sendable, Equatable {
    package var pods: Int
    package var requests: Resources

    package init(pods: Int = 0, requests: Resources = .zero) {
        self.pods = pods
        self.requests = requests
    }

    mutating func add(_ pod: ClusterPod) {
        pods += 1
        requests.cpu += pod.requests.cpu
        requests.memory += pod.requests.memory
    }
}

/// Which pool grows for which unschedulable pod, and the pods no pool can take.
package struct PodRouting: Sendable, Equatable {
    package var demand: [String: PoolDemand]
    package var unservable: [UnservablePod]
    /// One line per group of pods several pools could take: which pool the expander chose, and why.
    package var choices: [String]

    package init(demand: [String: PoolDemand] = [:], unservable: [UnservablePod] = [], choices: [String] = []) {
        self.demand = demand
        self.unservable = unservable
        self.choices = choices
    }
}

extension PoolPolicy {
    /// The labels a new node of this pool will carry: its configured ones, kscaler's pool label
    /// (the user data sets it), and the well-known ones the kubelet sets that pods commonly
    /// select on (`kubernetes.io/os`, and the instance type and architecture when the pool has
    /// one instance type to launch first). Zone labels are unknown before launch: a pod that
    /// requires one fits no pool, and says so.
    package var nodeLabels: [String: String] {
        var labels = labels
        labels["kscaler.io/pool"] = name
        labels["kubernetes.io/os"] = "linux"
        if let type = sizingUnit(capacity: capacity, candidates: [])?.machineType {
            labels["node.kubernetes.io/instance-type"] = type
            labels["beta.kubernetes.io/instance-type"] = type
            labels["kubernetes.io/arch"] = isGraviton(type) ? "arm64" : "amd64"
        }
        return labels
    }

    /// Why one of this pool's nodes cannot take `pod`, or nil when it can: its constraints
    /// against the pool's labels and taints, and its requests against the largest size the pool
    /// launches (a pool with no size known takes any request).
    package func mismatch(_ pod: ClusterPod) -> String? { mismatch(pod, labels: nodeLabels) }

    /// `mismatch(_:)` with the pool's `nodeLabels` worked out once by the caller.
    func mismatch(_ pod: ClusterPod, labels: [String: String]) -> String? {
        if let problem = pod.placement.mismatch(labels: labels, taints: taints) { return problem }
        let sizes = capacity.machineTypes.isEmpty ? Array(capacity.sizes.values) : capacity.machineTypes.compactMap { capacity.sizes[$0] }
        guard !sizes.isEmpty else { return nil }
        if sizes.contains(where: { $0.cpuCores + 1e-9 >= pod.requests.cpu && Double($0.memoryBytes) >= pod.requests.memory }) { return nil }
        let largest = sizes.max { ($0.cpuCores, $0.memoryBytes) < ($1.cpuCores, $1.memoryBytes) }!
        return "requests \(formatNumber(pod.requests.cpu, decimals: 3)) cores / \(formatBytes(pod.requests.memory)) exceed one node "
            + "(\(formatNumber(largest.cpuCores)) vCPU, \(formatBytes(Double(largest.memoryBytes))))"
    }
}

/// AWS Graviton families (`m6g`, `c7gn`, `t4g`, `r8gd`…): an arm64 node.
private func isGraviton(_ instanceType: String) -> Bool {
    let family = instanceType.prefix { $0 != "." }
    guard let digit = family.firstIndex(where: \.isNumber) else { return false }
    return family[family.index(after: digit)...].first == "g"
}

/// Routes the unschedulable pods (no node, not finished, not terminating) to pools. A pod one
/// pool alone can take goes to it; pods several pools can take go, group by group (the same
/// set of pools), to the pool the expander picks, preferring pools below their max (`full`
/// lists those at it). A pod no pool can take is reported with each pool's reason.
package func routePendingPods(_ pods: [ClusterPod], pools: [PoolPolicy], expander: Expander, full: Set<String>) -> PodRouting {
    var routing = PodRouting()
    var shared: [[String]: [ClusterPod]] = [:]
    let labels = pools.map(\.nodeLabels)
    for pod in pods where pod.unschedulable && pod.node == nil && !pod.finished && !pod.terminating {
        var fits: [String] = []
        var why: [String] = []
        for (pool, poolLabels) in zip(pools, labels) {
            if let problem = pool.mismatch(pod, labels: poolLabels) { why.append("\(pool.name): \(problem)") } else { fits.append(pool.name) }
        }
        switch fits.count {
        case 0: routing.unservable.append(UnservablePod(pod: pod.reference, reasons: why))
        case 1: routing.demand[fits[0], default: PoolDemand()].add(pod)
        default: shared[fits, default: []].append(pod)
        }
    }
    let byName = Dictionary(pools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    for (names, group) in shared.sorted(by: { $0.key.joined(separator: ",") < $1.key.joined(separator: ",") }) {
        let candidates = names.compactMap { byName[$0] }
        let growable = candidates.filter { !full.contains($0.name) }
        var demand = PoolDemand()
        for pod in group { demand.add(pod) }
        let (chosen, why) = expand(demand, among: growable.isEmpty ? candidates : growable, by: expander)
        routing.demand[chosen.name, default: PoolDemand()].add(contentsOf: demand)
        routing.choices.append("\(group.count) pod\(group.count == 1 ? "" : "s") fit\(group.count == 1 ? "s" : "") pools "
            + "\(names.joined(separator: ", ")): \(chosen.name) by the \(expander.rawValue) expander (\(why))")
    }
    routing.unservable.sort { $0.pod < $1.pod }
    return routing
}

extension PoolDemand {
    fileprivate mutating func add(contentsOf other: PoolDemand) {
        pods += other.pods
        requests.cpu += other.requests.cpu
        requests.memory += other.requests.memory
    }
}

/// The pool the expander picks for `demand` among `pools` (not empty), and a few words on why.
/// Ties always go to the higher priority, then the name.
func expand(_ demand: PoolDemand, among pools: [PoolPolicy], by expander: Expander) -> (PoolPolicy, String) {
    func priorityOrder(_ a: PoolPolicy, _ b: PoolPolicy) -> Bool { (b.priority, a.name) < (a.priority, b.name) }
    switch expander {
    case .priority:
        let chosen = pools.min(by: priorityOrder)!
        return (chosen, "priority \(chosen.priority)")
    case .leastWaste:
        let scored = pools.map { pool in (pool, waste(of: demand, in: pool)) }
        let chosen = scored.min { a, b in a.1 != b.1 ? a.1 < b.1 : priorityOrder(a.0, b.0) }!
        return (chosen.0, "\(formatPercent(chosen.1)) of its new nodes left unrequested")
    case .cheapest:
        let scored = pools.map { pool in (pool, hourlyCost(of: demand, in: pool)) }
        let chosen = scored.min { a, b in (a.1 ?? .infinity) != (b.1 ?? .infinity) ? (a.1 ?? .infinity) < (b.1 ?? .infinity) : priorityOrder(a.0, b.0) }!
        return (chosen.0, chosen.1.map { "\(formatNumber($0, decimals: 4)) per hour" } ?? "no pool has a price for its instance type")
    }
}

/// Nodes of the pool's sizing unit the demand needs, at least one; nil when no size is known.
private func nodes(for demand: PoolDemand, in pool: PoolPolicy) -> (Int, WorkerSize)? {
    guard let size = sizingUnit(capacity: pool.capacity, candidates: [])?.size, size.cpuCores > 0, size.memoryBytes > 0 else { return nil }
    let count = max(1, Int((demand.requests.cpu / size.cpuCores - 1e-9).rounded(.up)),
                    Int((demand.requests.memory / Double(size.memoryBytes) - 1e-9).rounded(.up)))
    return (min(count, 1_000_000), size)
}

/// cluster-autoscaler's least-waste score: the mean of the CPU and memory shares of the new
/// nodes that the pods would leave unrequested (1 when the pool's size is unknown).
private func waste(of demand: PoolDemand, in pool: PoolPolicy) -> Double {
    guard let (count, size) = nodes(for: demand, in: pool) else { return 1 }
    let cpu = Double(count) * size.cpuCores, memory = Double(count) * Double(size.memoryBytes)
    return ((cpu - demand.requests.cpu) / cpu + (memory - demand.requests.memory) / memory) / 2
}

/// The hourly price of the nodes the demand needs in the pool; nil without a price.
private func hourlyCost(of demand: PoolDemand, in pool: PoolPolicy) -> Double? {
    guard let (count, _) = nodes(for: demand, in: pool), let type = sizingUnit(capacity: pool.capacity, candidates: [])?.machineType,
          let price = pool.prices[type] else { return nil }
    return Double(count) * price
}
