#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

// Node pools: the configuration, which pool takes which pending pod, and the pooled decision.

private let twoPools: ConfigValue = [
    "cluster_id": "demo",
    "table": "kscaler",
    "prometheus": ["url": "http://127.0.0.1:9090"],
    "nodes": ["max": 12],
    "pools": [
        "general": [
            "image_id": "ami-0123456789abcdef0", "instance_types": ["t3.large"], "subnets": ["subnet-0a"],
            "sizes": ["t3.large": ["cpu": 2, "memory": "8Gi"]], "labels": ["workload": "general"],
            "min": 1, "max": 6, "priority": 10,
        ],
        "batch": [
            "capacity_type": "spot-then-on-demand", "image_id": "ami-0123456789abcdef0", "instance_types": ["c5.xlarge"],
            "subnets": ["subnet-0b"], "sizes": ["c5.xlarge": ["cpu": 4, "memory": "8Gi"]], "labels": ["workload": "batch"],
            "taints": ["dedicated=batch:NoSchedule"], "max": 6, "prices": ["c5.xlarge": 0.068],
            "scale_down": ["cpu_threshold": 20],
        ],
    ],
]

@Suite("pools: configuration")
struct PoolConfigTests {
    @Test("a two-pool configuration parses into pools with their own bounds, market, priority and overrides")
    func twoPoolsParse() throws {
        let config = try KScalerConfig.parse(twoPools).get()
        #expect(config.workerPools.map(\.name) == ["general", "batch"])  // priority 10 before 0
        let batch = try #require(config.pools?["batch"])
        #expect(batch.workers.pool == "batch")
        #expect(batch.workers.taints == [Taint(key: "dedicated", value: "batch", effect: .noSchedule)])
        #expect(batch.nodes == NodeBounds(min: 0, max: 6))
        #expect(batch.capacityType == .spotThenOnDemand)
        #expect(batch.prices == ["c5.xlarge": 0.068])
        #expect(batch.scaleDown.cpuThreshold == 0.2)
        #expect(batch.scaleDown.memoryThreshold == ScaleDownPolicy().memoryThreshold)  // not overridden: the top level's
        #expect(batch.workers.join == JoinParameters.defaults(clusterID: "demo"))
        let policy = config.policy
        #expect(policy.pools?.map(\.name) == ["general", "batch"])
        #expect(policy.pools?[1].capacity.markets == [.spot, .onDemand])
        #expect(policy.defaultPool == "general")
    }

    @Test("workers: is the one pool named default, exactly as before")
    func workersIsOnePool() throws {
        let config = try KScalerConfig.parse(minimalConfig).get()
        #expect(config.pools == nil)
        #expect(config.policy.pools == nil)
        #expect(config.workerPools.map(\.name) == ["default"])
        #expect(config.workerPools[0].nodes == config.nodes)
        #expect(config.workerPools[0].capacityType == .onDemand)
    }

    @Test("config check lists each pool's effective values; a workers: configuration shows the pool it became")
    func listing() throws {
        let pooled = try KScalerConfig.parse(twoPools).get().effectiveSettings(machines: workerMachines)
        let values = Dictionary(pooled.map { ($0.path, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(values["pools.batch.taints"] == "dedicated=batch:NoSchedule")
        #expect(values["pools.batch.scale_down.cpu_threshold"] == "20" && values["pools.general.scale_down.cpu_threshold"] == "30")
        #expect(values["pools.batch.capacity_type"] == "spot-then-on-demand" && values["pools.general.min"] == "1")
        #expect(!pooled.contains { $0.path.hasPrefix("workers.") || $0.path == "nodes.min" }, "meaningless with pools")
        let single = try KScalerConfig.parse(minimalConfig).get().effectiveSettings(machines: workerMachines)
        let became = single.filter { $0.path.hasPrefix("pools.") }.map { "\($0.path)=\($0.value)" }
        #expect(became == ["pools.default.min=1", "pools.default.max=10", "pools.default.capacity_type=on-demand", "pools.default.priority=0"])
    }

    @Test("a pool's problems name the pool: its sizes, its bounds, its market")
    func poolProblemsArePlaced() {
        var config = twoPools
        config = config.setting(["t3.large": ["cpu": 2, "memory": "8Gi"]], at: ["pools", "batch", "sizes"])
        config = config.setting(7, at: ["pools", "general", "min"])
        config = config.setting("cheap", at: ["pools", "batch", "capacity_type"])
        let found = problems(config)
        // c5.xlarge without a size is no problem: it is learned at run time.
        #expect(!found.contains { $0.path == "pools.batch.sizes.c5.xlarge" }, "\(found)")
        #expect(found.contains { $0.path == "pools.batch.sizes.t3.large" && $0.message.contains("pools.batch.instance_types") })
        #expect(found.contains { $0.path == "pools.general.min" && $0.fix.contains("pools.general.min at most pools.general.max") }, "\(found)")
        #expect(found.contains { $0.path == "pools.batch.capacity_type" })
    }

    @Test("workers and pools together, nodes.min with pools, an unknown pool key, a bad pool name and a utilisation override are refused")
    func poolsReplaceWorkers() {
        var config = twoPools.setting(minimalConfig.value(at: ["workers"])!, at: ["workers"])
        config = config.setting(1, at: ["nodes", "min"])
        config = config.setting(["cpu_treshold": 20], at: ["pools", "batch", "scale_up"])
        config = config.setting(["image_id": "ami-0123456789abcdef0"], at: ["pools", "Bad_Name"])
        config = config.setting("avg(up)", at: ["signals", "cpu_utilization_window_max"])
        let found = problems(config)
        #expect(found.contains { $0.path == "signals.cpu_utilization_window_max" && $0.message.contains("with pools") })
        #expect(found.contains { $0.path == "workers" && $0.message.contains("together with pools") })
        #expect(found.contains { $0.path == "nodes.min" })
        #expect(found.contains { $0.path == "pools.batch.scale_up.cpu_treshold" && $0.fix.contains("cpu_threshold") })
        #expect(found.contains { $0.path == "pools.Bad_Name" })
    }

    @Test("moving a problem's words under a pool moves each spelling once, and only where a word starts")
    func movedSpellings() {
        #expect(PoolSection.moved("make nodes.min at most nodes.max", under: "pools.a") == "make pools.a.min at most pools.a.max")
        #expect(PoolSection.moved("add workers.sizes.t3.large: {…}", under: "pools.a") == "add pools.a.sizes.t3.large: {…}")
        #expect(PoolSection.moved("scale_down.cpu_threshold is not below scale_up.cpu_threshold", under: "pools.a")
            == "pools.a.scale_down.cpu_threshold is not below pools.a.scale_up.cpu_threshold")
        #expect(PoolSection.moved("pools.a.scale_up.max_step", under: "pools.a") == "pools.a.scale_up.max_step")
    }
}

// MARK: - Routing

private func pool(_ name: String, type: String = "t3.large", cpu: Double = 2, memory: Int64 = 8 * gib, labels: [String: String] = [:],
                  taints: [Taint] = [], min: Int = 0, max: Int = 10, priority: Int = 0, prices: [String: Double] = [:],
                  market: CapacityType = .onDemand) -> PoolPolicy {
    PoolPolicy(name: name, nodes: NodeBounds(min: min, max: max),
               capacity: WorkerCapacity(machineTypes: [type], placements: ["subnet-\(name)"], sizes: [type: WorkerSize(cpuCores: cpu, memoryBytes: memory)],
                                        markets: market.markets),
               capacityType: market, priority: priority, labels: labels, taints: taints, prices: prices)
}

private let batchTaint = Taint(key: "dedicated", value: "batch", effect: .noSchedule)
private let general = pool("general", labels: ["workload": "general"], min: 1, max: 6, priority: 10)
private let batch = pool("batch", type: "c5.xlarge", cpu: 4, labels: ["workload": "batch"], taints: [batchTaint], max: 6, market: .spot)

private func pending(_ name: String, cpu: Double = 1, memory: Double = Double(gib), selector: [String: String] = [:],
                     tolerations: [Toleration] = [], affinity: [NodeSelectorTerm] = []) -> ClusterPod {
    ClusterPod(namespace: "default", name: name, uid: "uid-\(name)", node: nil, owner: .controller(kind: "ReplicaSet"),
               requests: Resources(cpu: cpu, memory: memory), unschedulable: true,
               placement: PlacementConstraints(nodeSelector: selector, requiredNodeAffinity: affinity, tolerations: tolerations))
}

private let toleratesBatch = [Toleration(key: "dedicated", operator: .equal, value: "batch", effect: .noSchedule)]

@Suite("pools: which pool takes a pending pod")
struct PodRoutingTests {
    @Test("pods go to the one pool whose labels and taints they fit; a pod no pool fits is reported with each pool's reason")
    func routesByConstraints() {
        let pods = [pending("web-1", selector: ["workload": "general"]), pending("web-2", selector: ["workload": "general"]),
                    pending("job-1", cpu: 1.5, selector: ["workload": "batch"], tolerations: toleratesBatch),
                    pending("gpu-1", selector: ["gpu": "true"]),
                    pending("huge", cpu: 8, tolerations: toleratesBatch)]
        let routing = routePendingPods(pods, pools: [general, batch], expander: .priority, full: [])
        #expect(routing.demand["general"] == PoolDemand(pods: 2, requests: Resources(cpu: 2, memory: 2 * Double(gib))))
        #expect(routing.demand["batch"] == PoolDemand(pods: 1, requests: Resources(cpu: 1.5, memory: Double(gib))))
        #expect(routing.unservable.map(\.pod) == ["default/gpu-1", "default/huge"])
        let gpu = routing.unservable[0].reasons
        #expect(gpu.contains { $0.hasPrefix("general: nodeSelector gpu=true") } && gpu.contains { $0.hasPrefix("batch: nodeSelector gpu=true") })
        #expect(routing.unservable[1].reasons.contains { $0.hasPrefix("batch: requests 8 cores") })
    }

    @Test("a pod without the toleration never goes to the tainted pool; pods that fit both go where the expander says")
    func expanders() {
        let any = (1...3).map { pending("any-\($0)", cpu: 1.5, tolerations: toleratesBatch) }
        // Both fit: general by priority (10 > 0).
        #expect(routePendingPods(any, pools: [general, batch], expander: .priority, full: []).demand["general"]?.pods == 3)
        // 4.5 cores: 3 t3.large (2 cores) leave 1.5 of 6 free, 2 c5.xlarge (4 cores) 3.5 of 8: general wastes less of its CPU,
        // but memory (3 GiB of 24 vs 3 of 16) favours batch: the mean decides (general 0.125+0.875, batch 0.4375+0.8125).
        let waste = routePendingPods(any, pools: [general, batch], expander: .leastWaste, full: [])
        #expect(waste.demand["general"]?.pods == 3, "\(waste)")
        // Cheapest: only batch has a price; pools without one come last.
        let priced = pool("batch", type: "c5.xlarge", cpu: 4, labels: ["workload": "batch"], taints: [batchTaint], prices: ["c5.xlarge": 0.068])
        #expect(routePendingPods(any, pools: [general, priced], expander: .cheapest, full: []).demand["batch"]?.pods == 3)
        // A full pool is passed over while another can grow.
        #expect(routePendingPods(any, pools: [general, batch], expander: .priority, full: ["general"]).demand["batch"]?.pods == 3)
        // Without the toleration, only general.
        let plain = routePendingPods([pending("plain", cpu: 1.5)], pools: [general, batch], expander: .cheapest, full: ["general"])
        #expect(plain.demand["general"]?.pods == 1 && plain.demand["batch"] == nil)
    }

    @Test("the well-known labels a new node carries: pool, os, instance type and architecture")
    func wellKnownLabels() {
        let arm = pool("arm", type: "m7g.large")
        #expect(arm.nodeLabels["kubernetes.io/arch"] == "arm64" && general.nodeLabels["kubernetes.io/arch"] == "amd64")
        #expect(general.nodeLabels["kscaler.io/pool"] == "general" && general.nodeLabels["kubernetes.io/os"] == "linux")
        let wantsArm = pending("arm-only", affinity: [NodeSelectorTerm(matchExpressions: [
            NodeSelectorRequirement(key: "kubernetes.io/arch", operator: .in, values: ["arm64"])])])
        #expect(routePendingPods([wantsArm], pools: [general, arm], expander: .priority, full: []).demand["arm"]?.pods == 1)
    }
}

// MARK: - The pooled decision

/// A two-pool cluster: `general` (min 1) with one Ready node, `batch` (Spot, tainted) empty.
private struct Pools {
    var cluster = Cluster()
    var pools = [general, batch]
    var pods: [ClusterPod] = []
    var poolReadings: [String: [Signal: Reading]] = [:]
    var cap = 12
    /// The labels and taints of nodes by name (the API's view); unlisted nodes have none.
    var nodeLabels: [String: [String: String]] = [:]
    var nodeTaints: [String: [Taint]] = [:]
    var allocatable = Resources(cpu: 2, memory: 8 * Double(gib))
    /// Nodes carrying kscaler's drain taint (put on an hour ago), cordoned.
    var drainTainted: Set<String> = []

    init() {
        let id = cluster.addWorker()
        cluster.instances[cluster.instances.count - 1].pool = "general"
        poolReadings["general"] = [.cpuUtilization: .value(0.5), .memoryUtilization: .value(0.5),
                                   .cpuUtilizationWindowMax: .value(0.5), .memoryUtilizationWindowMax: .value(0.5)]
        _ = id
    }

    var policy: Policy {
        var policy = Policy.test(max: cap)
        policy.pools = pools
        policy.defaultPool = pools.first?.name
        return policy
    }

    func decide(api: Bool = true) -> Decision {
        var observation = cluster.observation
        observation.poolReadings = poolReadings
        if api {
            let nodes = cluster.nodes.map { node in
                ClusterNode(name: node.name, uid: "uid-\(node.name)", providerID: nil, ready: node.ready, machineID: node.instanceID,
                            unschedulable: drainTainted.contains(node.name), hasDrainTaint: drainTainted.contains(node.name),
                            drainTaintedAt: drainTainted.contains(node.name) ? t0.addingTimeInterval(-3600) : nil,
                            hasOtherNoScheduleTaint: !(nodeTaints[node.name] ?? []).isEmpty, allocatable: allocatable,
                            labels: nodeLabels[node.name] ?? [:], taints: nodeTaints[node.name] ?? [])
            }
            observation.cluster = ClusterView(nodes: nodes, pods: pods)
        }
        return KScalerCore.decide(observation, policy: policy, now: cluster.now)
    }
}

extension Decision {
    fileprivate func pool(_ name: String) -> PoolOutcome? { pools.first { $0.name == name } }
}

@Suite("pools: the decision")
struct PooledDecideTests {
    @Test("one run grows each pool by what its own pods need, and launches nothing for a pod no pool takes")
    func eachPoolGrowsForItsPods() throws {
        var setup = Pools()
        setup.cluster.set(.unschedulablePods, .value(9))
        setup.pods = (1...3).map { pending("web-\($0)", selector: ["workload": "general"]) }
            + (1...5).map { pending("job-\($0)", cpu: 1.5, selector: ["workload": "batch"], tolerations: toleratesBatch) }
            + [pending("gpu", selector: ["gpu": "true"])]
        let split = setup.decide()
        #expect(try #require(split.pool("general")).action == .scaleUp(count: 2))
        #expect(try #require(split.pool("batch")).action == .scaleUp(count: 2))  // 7.5 cores on 4-core nodes
        #expect(split.action == .scaleUp(count: 4))
        #expect(split.unservablePods.map(\.pod) == ["default/gpu"])
        #expect(split.has(.unservablePods))
        let launches = split.launches
        #expect(launches.map(\.pool) == ["general", "batch"] && launches.map(\.count) == [2, 2])
        #expect(launches[1].candidates.allSatisfy { $0.market == .spot && $0.machineType == "c5.xlarge" })
        #expect(launches[0].candidates.allSatisfy { $0.market == .onDemand && $0.machineType == "t3.large" })
    }

    @Test("nodes.max caps the pools together, the higher priority first")
    func clusterCap() throws {
        var setup = Pools()
        setup.cap = 3
        setup.pods = (1...6).map { pending("web-\($0)", selector: ["workload": "general"]) }
            + (1...8).map { pending("job-\($0)", cpu: 2, selector: ["workload": "batch"], tolerations: toleratesBatch) }
        setup.cluster.set(.unschedulablePods, .value(14))
        let decision = setup.decide()
        #expect(try #require(decision.pool("general")).action == .scaleUp(count: 2))  // 3 wanted, 2 left under the cap of 3
        #expect(try #require(decision.pool("batch")).action == .none)
        #expect(decision.reasons(.capped).contains { $0.hasPrefix("pool batch:") })
        #expect(decision.counts.desired == 3)
    }

    @Test("each pool's min is held on its own; a pool's scale-down waits while another pool scales up")
    func minAndOneDirection() throws {
        var setup = Pools()
        setup.pools[1].nodes.min = 1
        setup.poolReadings["general"] = [.cpuUtilization: .value(0.05), .memoryUtilization: .value(0.05),
                                         .cpuUtilizationWindowMax: .value(0.05), .memoryUtilizationWindowMax: .value(0.05)]
        setup.pools[0].nodes.min = 0
        let decision = setup.decide(api: false)
        #expect(try #require(decision.pool("batch")).action == .scaleUp(count: 1))  // below its min of 1
        #expect(try #require(decision.pool("general")).action == .none)
        #expect(decision.reasons(.pools).contains { $0.contains("pool general: its scale-down waits") }, "\(decision.reasons)")
    }

    @Test("without the API every pending pod is assumed to fit the default pool, and the decision says so")
    func withoutAPIDefaultPool() throws {
        var setup = Pools()
        setup.cluster.set(.unschedulablePods, .value(3))
        setup.cluster.set(.pendingCPURequestCores, .value(3))
        setup.cluster.set(.pendingMemoryRequestBytes, .value(3 * Double(gib)))
        let decision = setup.decide(api: false)
        #expect(try #require(decision.pool("general")).action == .scaleUp(count: 2))
        #expect(try #require(decision.pool("batch")).action == .none)
        #expect(decision.reasons(.pools).contains { $0.contains("assumed to fit pool general") })
    }

    @Test("a pool's failed utilisation reading halts everything (no action on doubt)")
    func poolSignalHalts() {
        var setup = Pools()
        setup.poolReadings["general"]?[.cpuUtilization] = .failed("HTTP 500")
        let decision = setup.decide()
        #expect(decision.halt == .missingSignals)
        #expect(decision.action == .none && decision.failedBoots.isEmpty)
    }

    @Test("a pool whose nodes are younger than the window has no window maximum yet: its scale-down waits, nothing halts")
    func youngPoolDoesNotHalt() throws {
        var setup = Pools()
        setup.poolReadings["general"]?[.cpuUtilizationWindowMax] = .noData
        setup.pods = [pending("web", selector: ["workload": "general"])]
        setup.cluster.set(.unschedulablePods, .value(1))
        let decision = setup.decide()
        #expect(decision.halt == nil)
        #expect(try #require(decision.pool("general")).action == .scaleUp(count: 1))
        // …and with nothing pending it is steady, not scaled down.
        setup.pods = []
        setup.cluster.set(.unschedulablePods, .value(0))
        setup.poolReadings["general"]?[.memoryUtilizationWindowMax] = .value(0.01)
        setup.poolReadings["general"]?[.cpuUtilization] = .value(0.01)
        let idle = setup.decide()
        #expect(idle.halt == nil && idle.action == .none)
        #expect(idle.reasons(.steady).contains { $0.contains("no scale-down without utilisation data for the window") }, "\(idle.reasons)")
    }

    @Test("property: no pool grows for pods it cannot take, no pool passes its max, the cluster never passes nodes.max, every min is held")
    func properties() {
        var random = SplitMix(state: 0x9001)
        for round in 0..<300 {
            var setup = Pools()
            setup.cap = random.int(1...14)
            setup.pools[0].nodes = NodeBounds(min: random.int(0...2), max: random.int(2...6))
            setup.pools[1].nodes = NodeBounds(min: random.int(0...2), max: random.int(2...6))
            for _ in 0..<random.int(0...4) {
                let id = setup.cluster.addWorker(type: "c5.xlarge")
                setup.cluster.instances[setup.cluster.instances.count - 1].pool = "batch"
                _ = id
            }
            setup.poolReadings["batch"] = setup.poolReadings["general"]
            setup.pods = (0..<random.int(0...12)).map { index in
                pending("p\(index)", cpu: random.double(0.1...5),
                        selector: random.pick([[:], ["workload": "general"], ["workload": "batch"], ["gpu": "true"]]),
                        tolerations: random.chance(0.5) ? toleratesBatch : [])
            }
            setup.cluster.set(.unschedulablePods, .value(Double(setup.pods.count)))
            let decision = setup.decide()
            let current = setup.cluster.instances.count
            #expect(decision.counts.desired <= max(setup.cap, current), "round \(round)")
            for outcome in decision.pools {
                let policy = setup.pools.first { $0.name == outcome.name }!
                let canTake = setup.pods.contains { policy.mismatch($0) == nil }
                if case .scaleUp(let count) = outcome.action {
                    let below = outcome.counts.current < policy.nodes.min
                    #expect(canTake || below, "round \(round): \(outcome.name) grew for no pod of its own")
                    #expect(outcome.counts.current + count <= policy.nodes.max, "round \(round)")
                }
                if case .scaleDown(let victims) = outcome.action {
                    #expect(outcome.counts.current - victims.count >= policy.nodes.min, "round \(round)")
                }
            }
            for pod in decision.unservablePods {
                #expect(setup.pods.first { $0.reference == pod.pod }.map { pod in setup.pools.allSatisfy { $0.mismatch(pod) != nil } } == true)
            }
        }
    }
}

@Suite("pools: scale-down of a tainted pool")
struct TaintedPoolScaleDownTests {
    /// Two idle batch nodes (tainted, labelled) and a general one. Batch pods tolerate the
    /// taint and select batch nodes: they fit on the other batch node, never on the general one.
    fileprivate func idleBatch(secondBatchRoom: Double) -> (Pools, String, String) {
        var setup = Pools()
        setup.pools[0].nodes.min = 1
        let general = setup.cluster.instances[0].id
        setup.nodeLabels[general] = ["workload": "general"]
        var ids: [String] = []
        for index in 0..<2 {
            // Fewest pods first: the second node (one pod) is the candidate victim.
            let id = setup.cluster.addWorker(pods: index == 0 ? 2 : 1, type: "c5.xlarge")
            setup.cluster.instances[setup.cluster.instances.count - 1].pool = "batch"
            setup.nodeLabels[id] = ["workload": "batch"]
            setup.nodeTaints[id] = [batchTaint]
            ids.append(id)
        }
        let idle: [Signal: Reading] = [.cpuUtilization: .value(0.05), .memoryUtilization: .value(0.05),
                                       .cpuUtilizationWindowMax: .value(0.05), .memoryUtilizationWindowMax: .value(0.05)]
        setup.poolReadings["batch"] = idle
        setup.allocatable = Resources(cpu: 4, memory: 8 * Double(gib))
        let job = { (name: String, node: String, cpu: Double) in
            ClusterPod(namespace: "default", name: name, uid: name, node: node, owner: .controller(kind: "Job"), requests: Resources(cpu: cpu, memory: 1e9),
                       placement: PlacementConstraints(nodeSelector: ["workload": "batch"], tolerations: toleratesBatch))
        }
        // The newest batch node is the victim; the other keeps `4 - secondBatchRoom` cores busy.
        setup.pods = [job("job-a", ids[1], 1), job("filler", ids[0], 4 - secondBatchRoom)]
        return (setup, ids[1], ids[0])
    }

    @Test("a batch node's pods move to another batch node they tolerate: the tainted pool scales down")
    func tolerantPodsFitOnTaintedNodes() throws {
        let (setup, victim, _) = idleBatch(secondBatchRoom: 2)
        let decision = setup.decide()
        #expect(try #require(decision.pool("batch")).action.victims == [victim], "\(decision.reasons)")
    }

    @Test("a pod that selects batch nodes is never placed on a general node: with no batch room left, nothing is drained")
    func selectorsHoldInTheFitCheck() throws {
        let (setup, victim, _) = idleBatch(secondBatchRoom: 0.5)  // the general node has 2 free cores, the other batch node 0.5
        let decision = setup.decide()
        #expect(try #require(decision.pool("batch")).action == .none)
        #expect(decision.reasons(.notDrainable).contains { $0.contains("node \(victim): pod default/job-a") }, "\(decision.reasons)")
    }
}

extension Decision.Action {
    fileprivate var victims: [String]? { if case .scaleDown(let victims) = self { victims.map(\.instanceID) } else { nil } }
}

@Suite("pools: kscaler's taints")
struct PooledTaintTests {
    @Test("a drain open in one pool is no orphaned taint to another; a taint with no drain anywhere is removed once")
    func orphanTaintsAreJudgedAgainstEveryDrain() throws {
        var setup = Pools()
        let draining = setup.cluster.addWorker(pods: 0, type: "c5.xlarge")
        setup.cluster.instances[setup.cluster.instances.count - 1].pool = "batch"
        setup.poolReadings["batch"] = setup.poolReadings["general"]
        setup.cluster.drains = [OpenDrain(node: draining, machine: draining, startedAt: t0.addingTimeInterval(-3600),
                                          deadline: t0.addingTimeInterval(600), podsLeft: 0)]
        setup.drainTainted = [draining]
        let kept = setup.decide()
        #expect(kept.drain.untaint.isEmpty)
        #expect(!kept.reasons.contains { $0.message.contains("carries kscaler's taint with no open drain") }, "\(kept.reasons)")

        setup.cluster.drains = []
        let orphaned = setup.decide()
        #expect(orphaned.drain.untaint == [draining])
        #expect(orphaned.reasons.filter { $0.message.contains("node \(draining) carries kscaler's taint") }.count == 1, "\(orphaned.reasons)")
    }
}

@Suite("pools: Spot interruptions")
struct InterruptionTests {
    @Test("an interrupted machine is no capacity, is never a victim, and its node starts draining at once")
    func interruptedMachineIsDrained() throws {
        var setup = Pools()
        let spot = setup.cluster.addWorker(type: "c5.xlarge")
        setup.cluster.instances[setup.cluster.instances.count - 1].pool = "batch"
        setup.cluster.instances[setup.cluster.instances.count - 1].market = .spot
        setup.cluster.instances[setup.cluster.instances.count - 1].interrupted = true
        setup.pools[1].nodes.min = 1
        setup.poolReadings["batch"] = setup.poolReadings["general"]
        let decision = setup.decide()
        let batch = try #require(decision.pool("batch"))
        #expect(batch.counts.current == 0, "an interrupted machine is not counted")
        #expect(batch.action == .scaleUp(count: 1), "its replacement keeps the pool at its min")
        #expect(decision.drain.interrupted.map(\.instanceID) == [spot])
        #expect(decision.reasons(.drainsOpen).contains { $0.contains("pool batch: \(spot) is being taken back") })
    }

    @Test("pending pods never cancel the drain of an interrupted machine, and it is not started twice")
    func interruptedDrainIsNotCancelled() throws {
        var setup = Pools()
        let spot = setup.cluster.addWorker(type: "c5.xlarge")
        setup.cluster.instances[setup.cluster.instances.count - 1].pool = "batch"
        setup.cluster.instances[setup.cluster.instances.count - 1].interrupted = true
        setup.poolReadings["batch"] = setup.poolReadings["general"]
        setup.cluster.drains = [OpenDrain(node: spot, machine: spot, startedAt: t0.addingTimeInterval(-30), deadline: t0.addingTimeInterval(570),
                                          podsLeft: 1)]
        setup.pods = [pending("job", cpu: 1, selector: ["workload": "batch"], tolerations: toleratesBatch)]
        setup.cluster.set(.unschedulablePods, .value(1))
        let decision = setup.decide()
        let step = try #require(decision.drain.steps.first { $0.drain.machine == spot })
        if case .cancel = step.action { Issue.record("the drain of an interrupted machine was cancelled") }
        #expect(decision.drain.interrupted.isEmpty, "already draining: not started twice")
    }
}
