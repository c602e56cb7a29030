#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import PropertyBased
import Testing
@testable import KScalerCore

// `headroom:`: spare requested capacity kept free, sized into scale-ups and a floor for scale-downs.

extension Policy {
    /// `Policy.test` with a headroom, and scale-up thresholds out of the way (no "+1 for hot
    /// utilisation") unless a test sets them.
    static func headroom(_ headroom: Headroom?, min: Int = 0, max: Int = 10, maxStep: Int = 10, scaleDownStep: Int = 1) -> Policy {
        var policy = Policy.test(min: min, max: max, scaleUp: ScaleUpPolicy(cpuThreshold: 0.99, memoryThreshold: 0.99, maxStep: maxStep),
                                 scaleDown: ScaleDownPolicy(maxStep: scaleDownStep))
        policy.headroom = headroom
        return policy
    }
}

extension Cluster {
    /// `workers` Ready t3.large (2 vCPU, 8 GiB each) at the given requested shares, nothing pending, window high (no scale-down).
    static func requested(workers: Int, cpu: Double, memory: Double) -> Cluster {
        var cluster = Cluster(workers: workers)
        cluster.set(.cpuUtilization, .value(cpu))
        cluster.set(.memoryUtilization, .value(memory))
        return cluster
    }
}

@Suite("headroom: scale-up sizing")
struct HeadroomSizingTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var headroom: Headroom
        var workers = 2
        var cpu = 0.5, memory = 0.5
        var pendingPods = 0, pendingCPU = 0.0, pendingMemory = 0.0
        var booting = 0
        var maxStep = 10, max = 10
        var expected: Int?
        var testDescription: String { name }
    }

    // Two Ready t3.large: 4 cores and 16 GiB allocatable; t3.large is the sizing unit.
    static let rows: [Row] = [
        Row(name: "cpu: 2 wanted, 0.5 free (87.5 % of 4 requested) → +1", headroom: .resources(cpu: 2, memory: nil), cpu: 0.875, expected: 1),
        Row(name: "cpu: 2 wanted, 2 free → nothing", headroom: .resources(cpu: 2, memory: nil), cpu: 0.5, expected: nil),
        Row(name: "cpu: 5 wanted, 0.5 free → 4.5 cores = +3", headroom: .resources(cpu: 5, memory: nil), cpu: 0.875, expected: 3),
        Row(name: "memory: 20 GiB wanted, 8 free → 12 GiB = +2", headroom: .resources(cpu: nil, memory: 20 * gib), expected: 2),
        Row(name: "memory and cpu: the larger need wins", headroom: .resources(cpu: 3, memory: 9 * gib), expected: 1),
        Row(name: "nodes: 1 (2 cores, 8 GiB) with 2 cores / 8 GiB free → nothing", headroom: .nodes(1), expected: nil),
        Row(name: "nodes: 2 (4 cores, 16 GiB) with 2 cores / 8 GiB free → +1", headroom: .nodes(2), expected: 1),
        Row(name: "nodes: 1 on a full cluster → +1", headroom: .nodes(1), cpu: 1, memory: 0.9, expected: 1),
        Row(name: "pending 3 cores + 1.5 missing → 4.5 cores = +3 (pods alone: +2)", headroom: .resources(cpu: 2, memory: nil), cpu: 0.875,
            pendingPods: 2, pendingCPU: 3, pendingMemory: Double(gib), expected: 3),
        Row(name: "pending pods, headroom kept → pods alone", headroom: .resources(cpu: 1, memory: nil), pendingPods: 2, pendingCPU: 3,
            pendingMemory: Double(gib), expected: 2),
        Row(name: "a booting node covers the shortfall", headroom: .resources(cpu: 2, memory: nil), cpu: 0.875, booting: 1, expected: nil),
        Row(name: "one booting node of two needed → +1", headroom: .resources(cpu: 4, memory: nil), cpu: 0.875, booting: 1, expected: 1),
        Row(name: "max_step caps the shortfall", headroom: .resources(cpu: 20, memory: nil), cpu: 0.875, maxStep: 3, expected: 3),
        Row(name: "nodes.max caps the shortfall", headroom: .resources(cpu: 20, memory: nil), cpu: 0.875, max: 4, expected: 2),
        Row(name: "at nodes.max nothing is launched", headroom: .resources(cpu: 20, memory: nil), cpu: 0.875, max: 2, expected: nil),
        Row(name: "no Ready worker: the whole headroom is missing", headroom: .nodes(1), workers: 0, expected: 1),
    ]

    @Test("cpu, memory and nodes forms; with and without pending pods; booting capacity; max_step and max", arguments: rows)
    func sizing(row: Row) {
        var cluster = Cluster.requested(workers: row.workers, cpu: row.cpu, memory: row.memory)
        for _ in 0..<row.booting { cluster.addWorker(age: 60, ready: nil) }
        cluster.set(.unschedulablePods, .value(Double(row.pendingPods)))
        cluster.set(.pendingCPURequestCores, .value(row.pendingCPU))
        cluster.set(.pendingMemoryRequestBytes, .value(row.pendingMemory))
        let decision = cluster.decide(.headroom(row.headroom, max: row.max, maxStep: row.maxStep))
        #expect(decision.scaleUpCount == row.expected, "\(decision.reasons)")
        #expect(decision.headroom != nil)
        if row.expected == nil { #expect(decision.action == .none) }
    }

    @Test("a shortfall alone is a reason to scale up, and says wanted, free and how many nodes")
    func reasonSaysWantedAndFree() throws {
        let decision = Cluster.requested(workers: 2, cpu: 0.875, memory: 0.5).decide(.headroom(.resources(cpu: 2, memory: nil)))
        #expect(decision.scaleUpCount == 1)
        let reason = try #require(decision.reasons(.headroom).first)
        #expect(reason.hasPrefix("headroom cpu 2 wanted, 0.5 free: +1 node of t3.large"), "\(reason)")
        let status = try #require(decision.headroom)
        #expect(status.wanted == Resources(cpu: 2, memory: 0))
        #expect(status.freeReady.cpu == 0.5 && status.booting == .zero && status.shortfall.cpu == 1.5)
    }

    @Test("the shortfall is held by the scale-up cooldown like any other need, and then no scale-down either")
    func cooldownHolds() {
        var cluster = Cluster.requested(workers: 2, cpu: 0.875, memory: 0.1)
        cluster.set(.cpuUtilizationWindowMax, .value(0.1))
        cluster.set(.memoryUtilizationWindowMax, .value(0.1))
        cluster.state.lastScaleUpAt = t0.addingTimeInterval(-10)
        let decision = cluster.decide(.headroom(.resources(cpu: 2, memory: nil)))
        #expect(decision.action == .none)
        #expect(decision.has(.scaleUpCooldown) && decision.has(.headroom))
    }

    @Test("a drain cancelled for pending pods counts once: as the node kept, not also as free room")
    func cancelledDrainCountsOnce() {
        var cluster = Cluster.requested(workers: 2, cpu: 0.5, memory: 0.1)
        let draining = cluster.instances[0].id
        cluster.cluster = ClusterView(nodes: cluster.instances.map { instance in
            ClusterNode(name: instance.id, uid: "uid-\(instance.id)", providerID: nil, ready: true, machineID: instance.id,
                        unschedulable: instance.id == draining, hasDrainTaint: instance.id == draining, drainTaintedAt: instance.id == draining ? t0 : nil,
                        allocatable: Resources(cpu: 2, memory: 8 * Double(gib)))
        }, pods: [])
        cluster.drains = [OpenDrain(node: draining, machine: draining, startedAt: t0, deadline: t0.addingTimeInterval(600))]
        cluster.set(.unschedulablePods, .value(1))
        cluster.set(.pendingCPURequestCores, .value(0.5))
        cluster.set(.pendingMemoryRequestBytes, .value(Double(gib) / 4))
        var policy = Policy.headroom(.resources(cpu: 2, memory: nil))
        policy.scaleDown.withoutDrain = false
        let decision = cluster.decide(policy)
        #expect(decision.drain.steps.map(\.action) == [.cancel])
        // 2 of 4 cores requested; the kept node is 2 cores, so 0 free besides it: 0.5 pending + 2
        // missing = 2 nodes, one of them the kept node: 1 launch (4 + 2 - 2.5 = 3.5 ≥ 2 free after).
        #expect(decision.scaleUpCount == 1, "\(decision.reasons)")
    }

    @Test("without a headroom nothing changes: no status, no reason")
    func absent() {
        let decision = Cluster.requested(workers: 2, cpu: 0.875, memory: 0.5).decide(.headroom(nil))
        #expect(decision.headroom == nil && !decision.has(.headroom) && decision.action == .none)
    }
}

@Suite("headroom: the floor for scale-down")
struct HeadroomFloorTests {
    /// Three Ready t3.large, calm for the whole window: 10 % of 6 cores requested, 5.4 free.
    static func calm() -> Cluster {
        var cluster = Cluster.requested(workers: 3, cpu: 0.1, memory: 0.1)
        cluster.set(.cpuUtilizationWindowMax, .value(0.1))
        cluster.set(.memoryUtilizationWindowMax, .value(0.1))
        return cluster
    }

    @Test("a node goes only while the free room left stays at the headroom", arguments: [
        (nil as Double?, 2, 2), (1, 2, 2), (2, 2, 1), (3, 2, 1), (3.4, 2, 1), (3.5, 2, 0), (4, 2, 0), (6, 2, 0),
    ])
    func floor(cpu: Double?, step: Int, expected: Int) {
        let headroom = cpu.map { Headroom.resources(cpu: $0, memory: nil) }
        let decision = Self.calm().decide(.headroom(headroom, scaleDownStep: step))
        #expect((decision.victimIDs ?? []).count == expected, "\(decision.reasons)")
        if let cpu, expected < step { #expect(decision.reasons(.headroom).contains { $0.contains("headroom cpu \(formatNumber(cpu)) wanted") }) }
    }

    @Test("the nodes form: one node's room kept means the last spare node stays")
    func nodesForm() throws {
        // 3 nodes, 5.4 cores and 21.6 GiB free: one victim leaves 3.4 / 13.6 ≥ 2 / 8; a second would leave 1.4 < 2.
        let decision = Self.calm().decide(.headroom(.nodes(1), scaleDownStep: 3))
        #expect(decision.victimIDs?.count == 1)
        let reason = try #require(decision.reasons(.headroom).first)
        #expect(reason.hasPrefix("scale-down stops at 1: headroom 1 node: cpu 2 wanted"), "\(reason)")
    }

    @Test("a resource the headroom does not name keeps a floor of 0: the requests that move must fit")
    func unnamedResourceFloor() throws {
        // Found by the property below (seed a3jRYMac…): memory-only headroom, 4 workers at 27.6 % cpu
        // requested (2.2 of 8 cores). Three victims would leave 2 cores for 2.2 cores of requests.
        var cluster = Cluster.requested(workers: 4, cpu: 0.276, memory: 0.07)
        cluster.set(.cpuUtilizationWindowMax, .value(0.276))
        cluster.set(.memoryUtilizationWindowMax, .value(0.07))
        let decision = cluster.decide(.headroom(.resources(cpu: nil, memory: 4 * gib), scaleDownStep: 3))
        #expect(decision.victimIDs?.count == 2, "\(decision.reasons)")
        let reason = try #require(decision.reasons(.headroom).first)
        #expect(reason.contains("scale-down stops at 2") && reason.contains("cpu requests over allocatable by 0.208 cores"), "\(reason)")
    }

    @Test("bounds above nodes.max go whatever the headroom")
    func boundsWin() {
        let decision = Self.calm().decide(.headroom(.nodes(3), max: 2))
        #expect(decision.victimIDs?.count == 1)
    }
}

@Suite("headroom: pools")
struct HeadroomPoolTests {
    @Test("each pool keeps its own headroom: the pool short of it grows, the other does not")
    func perPool() throws {
        var cluster = Cluster(workers: 1)
        cluster.instances[0].pool = "general"
        let sizes = ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)]
        let general = PoolPolicy(name: "general", nodes: NodeBounds(min: 1, max: 5),
                                 scaleUp: ScaleUpPolicy(cpuThreshold: 0.99, memoryThreshold: 0.99),
                                 capacity: WorkerCapacity(machineTypes: ["t3.large"], placements: ["subnet-a"], sizes: sizes), priority: 10,
                                 headroom: .nodes(1))
        let batch = PoolPolicy(name: "batch", nodes: NodeBounds(min: 0, max: 5),
                               capacity: WorkerCapacity(machineTypes: ["t3.large"], placements: ["subnet-b"], sizes: sizes))
        var policy = Policy.test(max: 10)
        policy.pools = [general, batch]
        policy.defaultPool = "general"
        var observation = cluster.observation
        observation.poolReadings["general"] = [.cpuUtilization: .value(0.5), .memoryUtilization: .value(0.5),
                                               .cpuUtilizationWindowMax: .value(0.5), .memoryUtilizationWindowMax: .value(0.5)]
        let decision = decide(observation, policy: policy, now: t0)
        let generalOutcome = try #require(decision.pools.first { $0.name == "general" })
        #expect(generalOutcome.action == .scaleUp(count: 1))
        #expect(generalOutcome.headroom?.freeReady == Resources(cpu: 1, memory: 4 * Double(gib)))
        #expect(decision.pools.first { $0.name == "batch" }?.action == Decision.Action.none)
        #expect(decision.pools.first { $0.name == "batch" }?.headroom == nil)
        #expect(decision.reasons(.headroom).contains { $0.hasPrefix("pool general: headroom 1 node") })
    }
}

@Suite("headroom: configuration")
struct HeadroomConfigTests {
    @Test("the cpu/memory form and the nodes form parse; config check lists them; the environment round-trips")
    func parses() throws {
        let resources = try KScalerConfig.parse(minimalConfig.with("headroom", ["cpu": "1500m", "memory": "4Gi"])).get()
        #expect(resources.headroom == .resources(cpu: 1.5, memory: 4 * gib))
        #expect(resources.policy.headroom == resources.headroom)
        let listed = Dictionary(resources.effectiveSettings(machines: workerMachines).map { ($0.path, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(listed["headroom.cpu"] == "1.5" && listed["headroom.memory"] == "4Gi" && listed["headroom.nodes"] == "")
        let nodes = try KScalerConfig.parse(minimalConfig.with("headroom", ["nodes": 2])).get()
        #expect(nodes.headroom == .nodes(2))
        #expect(KScalerConfig.environmentVariables["KSCALER_HEADROOM_NODES"] == ["headroom", "nodes"])
        for config in [resources, nodes] {
            var tree = minimalConfig
            for (name, value) in config.environment() where name.hasPrefix("KSCALER_HEADROOM_") {
                tree = tree.setting(.string(value), at: try #require(KScalerConfig.environmentVariables[name]))
            }
            #expect(try KScalerConfig.parse(tree).get().headroom == config.headroom)
        }
        #expect(parse(minimalConfig)?.headroom == nil)
    }

    static let bad: [(ConfigValue, String, String)] = [
        (["cpu": 0], "headroom.cpu", "more than 0"),
        (["cpu": -1], "headroom.cpu", "more than 0"),
        (["cpu": "lots"], "headroom.cpu", "expected CPU cores"),
        (["memory": 0], "headroom.memory", "more than 0"),
        (["memory": "4Gx"], "headroom.memory", "expected a memory size"),
        (["nodes": 0], "headroom.nodes", "at least 1"),
        (["nodes": 1.5], "headroom.nodes", "whole number"),
        (["nodes": 1, "cpu": 2], "headroom.nodes", "together with headroom.cpu"),
        (["cpus": 2], "headroom.cpus", "unknown key"),
        ([:], "headroom", "is empty"),
        ("2", "headroom", "expected a map"),
    ]

    @Test("bad headroom: field, value and fix", arguments: bad)
    func problems(value: ConfigValue, path: String, message: String) throws {
        let found = try #require(problem(at: path, in: minimalConfig.with("headroom", value)), "\(KScalerCoreTests.problems(minimalConfig.with("headroom", value)))")
        #expect(found.message.contains(message), "\(found)")
        #expect(!found.fix.isEmpty)
        if path == "headroom.cpus" { #expect(found.fix.contains("did you mean \"cpu\"")) }
    }

    @Test("a headroom more than nodes.max nodes could hold is refused, for workers: and for a pool")
    func mustFit() throws {
        // max 10 t3.large: 20 cores, 80 GiB.
        #expect(parse(minimalConfig.with("headroom", ["cpu": 20])) != nil)
        let cpu = try #require(problem(at: "headroom", in: minimalConfig.with("headroom", ["cpu": 21])))
        #expect(cpu.message.contains("can never be kept free: nodes.max 10 nodes") && cpu.fix.contains("raise nodes.max"), "\(cpu)")
        #expect(problem(at: "headroom", in: minimalConfig.with("headroom", ["nodes": 11])) != nil)
        #expect(problem(at: "headroom", in: minimalConfig.with("headroom", ["memory": "81Gi"])) != nil)
        let pool: ConfigValue = ["image_id": "ami-0123456789abcdef0", "instance_types": ["t3.large"], "subnets": ["subnet-0a"],
                                 "sizes": ["t3.large": ["cpu": 2, "memory": "8Gi"]], "max": 2, "headroom": ["nodes": 3]]
        let pooled = minimalConfig.without("workers").with(["pools", "small"], pool)
        let found = try #require(problem(at: "pools.small.headroom", in: pooled), "\(KScalerCoreTests.problems(pooled))")
        #expect(found.fix.contains("raise pools.small.max"))
    }

    @Test("utilization: usage is refused with a headroom: it is requested capacity")
    func usageRefused() throws {
        let found = try #require(problem(at: "headroom", in: minimalConfig.with("headroom", ["cpu": 2]).with("utilization", "usage")))
        #expect(found.message.contains("utilization: requests") && found.fix.contains("set utilization: requests"))
    }

    @Test("a pool's headroom overrides the top level's; its problems name the pool")
    func pools() throws {
        let pool: ConfigValue = ["image_id": "ami-0123456789abcdef0", "instance_types": ["t3.large"], "subnets": ["subnet-0a"],
                                 "sizes": ["t3.large": ["cpu": 2, "memory": "8Gi"]], "max": 4]
        var tree = minimalConfig.without("workers").with("headroom", ["cpu": 1])
        tree = tree.with(["pools", "general"], pool.with("headroom", ["nodes": 1])).with(["pools", "batch"], pool)
        let config = try KScalerConfig.parse(tree).get()
        #expect(config.pools?["general"]?.headroom == .nodes(1))
        #expect(config.pools?["batch"]?.headroom == .resources(cpu: 1, memory: nil))
        #expect(config.policy.pools?.first { $0.name == "general" }?.headroom == .nodes(1))
        let listed = Dictionary(config.effectiveSettings(machines: workerMachines).map { ($0.path, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(listed["pools.general.headroom.nodes"] == "1" && listed["pools.batch.headroom.cpu"] == "1")

        let bad = tree.with(["pools", "general", "headroom"], ["nodes": 0])
        #expect(problem(at: "pools.general.headroom.nodes", in: bad) != nil, "\(KScalerCoreTests.problems(bad))")
    }
}

// MARK: - Properties

/// A random cluster of t3.large workers with a headroom and random requested shares.
struct HeadroomScenario: Sendable, CustomStringConvertible {
    var cluster: Cluster
    var policy: Policy
    var description: String {
        "headroom \(String(describing: policy.headroom)), \(cluster.instances.count) instances, max \(policy.nodes.max), "
            + "step \(policy.scaleUp.maxStep), readings \(cluster.readings.sorted { $0.key.rawValue < $1.key.rawValue })"
    }
}

/// The checker's seeded generator, as the standard library's `random(in:using:)` wants it.
private struct HeadroomRandom: RandomNumberGenerator {
    var base: any SeededRandomNumberGenerator
    mutating func next() -> UInt64 { base.next() }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func double(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &self) }
    mutating func chance(_ probability: Double) -> Bool { double(0...1) < probability }
}

let headroomScenarios = Generator<HeadroomScenario, Shrink.None<HeadroomScenario>> { rng in
    var random = HeadroomRandom(base: rng)
    defer { rng = random.base }
    func int(_ range: ClosedRange<Int>) -> Int { random.int(range) }
    func double(_ range: ClosedRange<Double>) -> Double { random.double(range) }
    func chance(_ probability: Double) -> Bool { random.chance(probability) }
    let headroom: Headroom = chance(0.3) ? .nodes(int(1...3))
        : .resources(cpu: chance(0.8) ? double(0.1...8) : nil, memory: chance(0.5) ? Int64(double(0.1...32) * Double(gib)) : 4 * gib)
    let maximum = int(1...12)
    var policy = Policy.headroom(headroom, min: int(0...min(2, maximum)), max: maximum, maxStep: int(1...6), scaleDownStep: int(1...3))
    policy.capacity.machineTypes = ["t3.large"]
    var cluster = Cluster()
    for _ in 0..<int(0...maximum) { cluster.addWorker(age: chance(0.05) ? 60 : 86_400, ready: chance(0.05) ? nil : true) }
    let calm = chance(0.5)
    let cpu = calm ? double(0...0.25) : double(0...1), memory = calm ? double(0...0.25) : double(0...1)
    cluster.set(.cpuUtilization, .value(cpu))
    cluster.set(.memoryUtilization, .value(memory))
    cluster.set(.cpuUtilizationWindowMax, .value(cpu))
    cluster.set(.memoryUtilizationWindowMax, .value(memory))
    let pods = chance(0.3) ? int(1...10) : 0
    cluster.set(.unschedulablePods, .value(Double(pods)))
    cluster.set(.pendingCPURequestCores, .value(pods > 0 ? double(0.1...10) : 0))
    cluster.set(.pendingMemoryRequestBytes, .value(pods > 0 ? double(0.1...20) * Double(gib) : 0))
    if chance(0.2) { cluster.state.lastScaleUpAt = t0.addingTimeInterval(-10) }
    return HeadroomScenario(cluster: cluster, policy: policy)
}

@Suite("headroom: properties over random clusters")
struct HeadroomProperties {
    static let cases = 3000
    static let unit = Resources(cpu: 2, memory: 8 * Double(gib))

    @Test("after a decision the projected free room is at least the headroom, unless max, max_step or the cooldown held it back")
    func scaleUpKeepsHeadroom() async {
        await propertyCheck(count: Self.cases, input: headroomScenarios) { scenario in
            let decision = scenario.cluster.decide(scenario.policy)
            guard decision.halt == nil, let status = decision.headroom, let wanted = scenario.policy.headroom?.wanted(unit: decision.sizing) else {
                Issue.record("no headroom status: \(scenario)")
                return
            }
            let launched = Double(decision.scaleUpCount ?? 0)
            let pending = Resources(cpu: scenario.cluster.readings[.pendingCPURequestCores]?.usableValue ?? 0,
                                    memory: scenario.cluster.readings[.pendingMemoryRequestBytes]?.usableValue ?? 0)
            // Booting nodes are t3.large too: the sizing subtracts them in whole nodes.
            let projected = status.free + Resources(cpu: launched * Self.unit.cpu, memory: launched * Self.unit.memory) - pending
            let short = projected.cpu < wanted.cpu - 1e-6 || projected.memory < wanted.memory - 1e-6
            let heldBack = decision.has(.capped) || decision.has(.atMaximum) || decision.has(.scaleUpCooldown) || decision.has(.noLaunchCandidates)
            if short { #expect(heldBack, "projected \(projected) < \(wanted): \(decision.reasons) — \(scenario)") }
        }
    }

    @Test("a scale-down never leaves less free room than the headroom")
    func scaleDownKeepsTheFloor() async {
        var scaleDowns = 0
        await propertyCheck(count: Self.cases, input: headroomScenarios) { scenario in
            let decision = scenario.cluster.decide(scenario.policy)
            guard let victims = decision.victimIDs, let status = decision.headroom,
                  let wanted = scenario.policy.headroom?.wanted(unit: decision.sizing) else { return }
            scaleDowns += 1
            let left = status.free - Resources(cpu: Double(victims.count) * Self.unit.cpu, memory: Double(victims.count) * Self.unit.memory)
            #expect(left.cpu >= wanted.cpu - 1e-6 && left.memory >= wanted.memory - 1e-6, "\(left) < \(wanted): \(scenario)")
        }
        // Not vacuous: calm random clusters do scale down.
        #expect(scaleDowns >= Self.cases / 50, "\(scaleDowns) scale-downs")
    }
}
