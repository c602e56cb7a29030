#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KScalerCore

/// `decide()` on a cluster of `workers` managed Ready workers holding 10 non-DaemonSet pods
/// each on average (and a DaemonSet pod), as Prometheus and the Kubernetes API list them, on a
/// scale-up run (busy) and on a scale-down run (idle: the victims' drainability and the first
/// fit of their pods are the work); and with two pools on a scale-up run, as many pending pods
/// as workers routed by their constraints (the routing and two pools' decisions are the work).
enum DecideBenchmark {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let gib: Int64 = 1 << 30

    static func observation(workers: Int, busy: Bool) -> Observation {
        var instances: [ManagedInstance] = []
        var nodes = [NodeObservation(name: "control-plane", instanceID: nil, ready: true, nonDaemonSetPods: 4)]
        var clusterNodes: [ClusterNode] = []
        var pods: [ClusterPod] = []
        for index in 0..<workers {
            let id = "i-\(String(0x10000000 + index, radix: 16))"
            instances.append(ManagedInstance(
                id: id, machineType: "t3.large", placement: index % 2 == 0 ? "subnet-a" : "subnet-b", zone: "us-east-1a",
                launchTime: now.addingTimeInterval(-Double(3600 + index * 7)), state: .running, protected: index % 50 == 0
            ))
            let count = (index * 37) % 21
            nodes.append(NodeObservation(name: id, instanceID: id, ready: true, nonDaemonSetPods: count))
            clusterNodes.append(ClusterNode(name: id, uid: "uid-\(id)", providerID: "aws:///us-east-1a/\(id)", ready: true, machineID: id,
                                            allocatable: Resources(cpu: 2, memory: 8 * Double(gib))))
            pods += (0..<count).map { ClusterPod(namespace: "default", name: "\(id)-\($0)", uid: "\(id)-\($0)", node: id,
                                                 owner: .controller(kind: "ReplicaSet"), requests: Resources(cpu: 0.05, memory: 1e8)) }
            pods.append(ClusterPod(namespace: "default", name: "ds-\(id)", uid: "ds-\(id)", node: id, owner: .daemonSet,
                                   requests: Resources(cpu: 0.01, memory: 5e7)))
        }
        let utilization = busy ? 0.85 : 0.1
        return Observation(
            readings: [
                .unschedulablePods: .value(busy ? Double(workers) : 0),
                .pendingCPURequestCores: .value(busy ? Double(workers) * 0.5 : 0),
                .pendingMemoryRequestBytes: .value(busy ? Double(workers) * 1e9 : 0),
                .cpuUtilization: .value(utilization), .memoryUtilization: .value(utilization),
                .cpuUtilizationWindowMax: .value(utilization), .memoryUtilizationWindowMax: .value(utilization),
                .nodeReady: .value(Double(nodes.count)), .podsPerNode: .value(Double(nodes.count)),
            ],
            nodes: nodes,
            instances: instances,
            state: ScalerState(lastScaleUpAt: now.addingTimeInterval(-7200), lastScaleDownAt: now.addingTimeInterval(-7200)),
            cluster: ClusterView(nodes: clusterNodes, pods: pods)
        )
    }

    static let policy = Policy(
        nodes: NodeBounds(min: 1, max: 50_000),
        scaleDown: ScaleDownPolicy(maxStep: 3),
        capacity: WorkerCapacity(machineTypes: ["t3.large", "t3.xlarge"], placements: ["subnet-a", "subnet-b"],
                                 sizes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib),
                                         "t3.xlarge": WorkerSize(cpuCores: 4, memoryBytes: 16 * gib)])
    )

    /// The busy cluster split into two pools (every other worker a tainted Spot `batch` one),
    /// with one unschedulable pod per worker: half select `general`, half tolerate `batch`.
    static func pooled(workers: Int) -> (Observation, Policy) {
        var observation = observation(workers: workers, busy: true)
        for index in observation.instances.indices { observation.instances[index].pool = index % 2 == 0 ? "general" : "batch" }
        let taint = Taint(key: "dedicated", value: "batch", effect: .noSchedule)
        let pending = (0..<workers).map { index in
            ClusterPod(namespace: "default", name: "pending-\(index)", uid: "pending-\(index)", node: nil, owner: .controller(kind: "ReplicaSet"),
                       requests: Resources(cpu: 0.5, memory: 1e9), unschedulable: true,
                       placement: index % 2 == 0 ? PlacementConstraints(nodeSelector: ["workload": "general"])
                           : PlacementConstraints(tolerations: [Toleration(key: "dedicated", value: "batch", effect: .noSchedule)]))
        }
        observation.cluster?.pods += pending
        let utilization: [Signal: Reading] = [.cpuUtilization: .value(0.85), .memoryUtilization: .value(0.85),
                                              .cpuUtilizationWindowMax: .value(0.85), .memoryUtilizationWindowMax: .value(0.85)]
        observation.poolReadings = ["general": utilization, "batch": utilization]
        var pooled = policy
        pooled.pools = [
            PoolPolicy(name: "general", nodes: NodeBounds(min: 1, max: 50_000), capacity: policy.capacity, priority: 10, labels: ["workload": "general"]),
            PoolPolicy(name: "batch", nodes: NodeBounds(min: 0, max: 50_000),
                       capacity: WorkerCapacity(machineTypes: ["c5.xlarge"], placements: ["subnet-a"],
                                                sizes: ["c5.xlarge": WorkerSize(cpuCores: 4, memoryBytes: 8 * gib)], markets: [.spot, .onDemand]),
                       capacityType: .spotThenOnDemand, labels: ["workload": "batch"], taints: [taint]),
        ]
        pooled.defaultPool = "general"
        return (observation, pooled)
    }

    static func run(sizes: [Int], plan: MeasurementPlan) async -> [Result] {
        var results: [Result] = []
        for workers in sizes {
            for busy in [true, false] {
                let input = observation(workers: workers, busy: busy)
                let expected = busy ? "scale-up" : "scale-down"
                let action = switch decide(input, policy: policy, now: now).action {
                case .scaleUp: "scale-up"
                case .scaleDown: "scale-down"
                default: "none"
                }
                // The figure means nothing if the case does not decide what it is named after.
                precondition(action == expected, "decide on \(workers) nodes (\(expected) case) decided \(action)")
                let timings = await plan.measure(budget: .milliseconds(300)) {
                    decide(input, policy: policy, now: now).counts.desired
                }
                results.append(Result(benchmark: "decide", variant: expected, items: workers, itemName: "nodes", timings: timings))
            }
            let (input, pooledPolicy) = pooled(workers: workers)
            let decision = decide(input, policy: pooledPolicy, now: now)
            precondition(decision.pools.allSatisfy { if case .scaleUp = $0.action { true } else { false } },
                         "decide on \(workers) nodes in two pools did not scale both up")
            let timings = await plan.measure(budget: .milliseconds(300)) {
                decide(input, policy: pooledPolicy, now: now).counts.desired
            }
            results.append(Result(benchmark: "decide", variant: "scale-up, 2 pools", items: workers, itemName: "nodes", timings: timings))
        }
        return results
    }
}
