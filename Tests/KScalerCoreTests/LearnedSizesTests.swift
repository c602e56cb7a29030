#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

private let mib: Int64 = 1 << 20

@Suite("Sizes without typing: config first, then Ready nodes, then EC2")
struct LearnedSizesTests {
    /// The EKS AMI's kube-reserved CPU: 6 % of the first core, 1 % of the second, 0.5 % of the
    /// third and fourth, 0.25 % above (the figures EKS and eksctl document).
    @Test("kube-reserved CPU by core count", arguments: [(1, 60), (2, 70), (3, 75), (4, 80), (8, 90), (16, 110), (32, 150), (48, 190), (64, 230), (96, 310)])
    func reservedCPU(vcpus: Int, millicores: Int) {
        #expect(KubeletReservation.cpuMillicores(vcpus: vcpus) == millicores)
    }

    /// 255 MiB + 11 MiB per pod: 574 MiB at an m5.large's 29 pods (EKS's documented example),
    /// 1465 MiB at the 110 pods assumed for k3s and kubeadm.
    @Test("kube-reserved memory by max pods")
    func reservedMemory() {
        #expect(KubeletReservation.memoryMiB(maxPods: 29) == 574)
        #expect(KubeletReservation.memoryMiB(maxPods: 110) == 1465)
    }

    @Test("EC2 estimate: hardware less kube-reserved and the 100Mi hard eviction threshold")
    func estimate() {
        // m5.large: 2 vCPU, 8192 MiB; EKS's own node: 1930m and 8192 - 574 - 100 MiB.
        #expect(KubeletReservation.allocatable(vcpus: 2, memoryMiB: 8192, maxPods: 29)
            == WorkerSize(cpuCores: 1.93, memoryBytes: 7518 * mib))
        // The default (110 pods): t3.large.
        #expect(KubeletReservation.allocatable(vcpus: 2, memoryMiB: 8192) == WorkerSize(cpuCores: 1.93, memoryBytes: 6627 * mib))
        #expect(KubeletReservation.allocatable(vcpus: 16, memoryMiB: 65536)?.cpuCores == 15.89)
        // t3.nano (512 MiB) at 110 pods: the reservation takes it all; no size rather than a negative one.
        #expect(KubeletReservation.allocatable(vcpus: 2, memoryMiB: 512) == nil)
        #expect(KubeletReservation.allocatable(vcpus: 0, memoryMiB: 8192) == nil)
    }

    @Test("precedence: the config wins, then nodes, then EC2; a type nobody knows is dropped")
    func precedence() {
        let configured = WorkerSize(cpuCores: 4, memoryBytes: 16 * gib)
        let fromNodes = WorkerSize(cpuCores: 1.9, memoryBytes: 7 * gib)
        let fromEC2 = WorkerSize(cpuCores: 1.93, memoryBytes: 6627 * mib)
        let capacity = WorkerCapacity(machineTypes: ["a", "b", "c", "d"], placements: [], sizes: ["a": configured])
        let learned = LearnedSizes(nodes: ["a": fromNodes, "b": fromNodes], ec2: ["a": fromEC2, "b": fromEC2, "c": fromEC2])
        let (sized, sizes) = capacity.sized(by: learned)
        #expect(sizes == [TypeSize(machineType: "a", size: configured, source: .config),
                          TypeSize(machineType: "b", size: fromNodes, source: .nodes),
                          TypeSize(machineType: "c", size: fromEC2, source: .ec2),
                          TypeSize(machineType: "d", size: nil, source: nil)])
        #expect(sized.machineTypes == ["a", "b", "c"])
        #expect(sized.sizes == ["a": configured, "b": fromNodes, "c": fromEC2])
    }

    @Test("a launch template alone keeps its configured sizes and learns nothing")
    func templateOnly() {
        let size = WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)
        let capacity = WorkerCapacity(machineTypes: [], placements: [], sizes: ["t3.large": size])
        let (sized, sizes) = capacity.sized(by: LearnedSizes(nodes: ["t3.large": WorkerSize(cpuCores: 1, memoryBytes: gib)]))
        #expect(sized == capacity)
        #expect(sizes == [TypeSize(machineType: "t3.large", size: size, source: .config)])
    }

    /// Five pending pods asking 5 cores and 10 GiB in all.
    private func pending() -> Cluster {
        var cluster = Cluster(workers: 1)
        cluster.set(.unschedulablePods, .value(5))
        cluster.set(.pendingCPURequestCores, .value(5))
        cluster.set(.pendingMemoryRequestBytes, .value(Double(10 * gib)))
        return cluster
    }

    private func unsized(_ types: [String] = ["t3.large"]) -> Policy {
        var policy = Policy.test(max: 20, instanceTypes: types)
        policy.capacity.sizes = [:]
        policy.scaleUp.maxStep = 10
        return policy
    }

    @Test("no sizes configured: a burst is sized by the Ready nodes' allocatable, and the plan says so")
    func sizedByNodes() {
        let cluster = pending()
        let observation = { (learned: LearnedSizes) -> Observation in
            var observation = cluster.observation
            observation.learnedSizes = learned
            return observation
        }
        let nodes = WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)
        let decision = decide(observation(LearnedSizes(nodes: ["t3.large": nodes])), policy: unsized(), now: t0)
        #expect(decision.action == .scaleUp(count: 3))
        #expect(decision.sizing == SizingUnit(machineType: "t3.large", size: nodes))
        #expect(decision.sizes == [TypeSize(machineType: "t3.large", size: nodes, source: .nodes)])
        // The configured size wins over the nodes': 4 cores, 16 GiB → 2 nodes.
        var configured = unsized()
        configured.capacity.sizes = ["t3.large": WorkerSize(cpuCores: 4, memoryBytes: 16 * gib)]
        let withConfig = decide(observation(LearnedSizes(nodes: ["t3.large": nodes])), policy: configured, now: t0)
        #expect(withConfig.action == .scaleUp(count: 2))
        #expect(withConfig.sizes.map(\.source) == [.config])
        // EC2's estimate only when no node reports: 1.93 cores → 3 nodes.
        let ec2 = decide(observation(LearnedSizes(ec2: ["t3.large": KubeletReservation.allocatable(vcpus: 2, memoryMiB: 8192)!])),
                         policy: unsized(), now: t0)
        #expect(ec2.action == .scaleUp(count: 3))
        #expect(ec2.sizes.map(\.source) == [.ec2])
    }

    @Test("a type of unknown size is skipped with a reason; the next one launches")
    func skipsUnknown() throws {
        var observation = pending().observation
        observation.learnedSizes = LearnedSizes(nodes: ["m5.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)],
                                                problems: ["EC2 DescribeInstanceTypes failed: AccessDenied"])
        let decision = decide(observation, policy: unsized(["t3.large", "m5.large"]), now: t0)
        #expect(decision.action == .scaleUp(count: 3))
        #expect(decision.launchCandidates.allSatisfy { $0.machineType == "m5.large" })
        #expect(!decision.launchCandidates.isEmpty)
        let reason = try #require(decision.reasons.first { $0.code == .unknownSize })
        #expect(reason.message.hasPrefix("t3.large skipped: no size known"))
        #expect(reason.message.contains("AccessDenied"))
    }

    @Test("no type of known size: no action at all, and why")
    func noUsableType() throws {
        let decision = pending().decide(unsized(["t3.large", "m5.large"]))
        #expect(decision.action == .none)
        #expect(decision.halt == .unknownSizes)
        #expect(decision.launchCandidates.isEmpty)
        #expect(decision.sizes.map(\.machineType) == ["t3.large", "m5.large"])
        #expect(decision.sizes.allSatisfy { $0.size == nil })
        let reason = try #require(decision.reasons.first)
        #expect(reason.message.hasPrefix("no action: workers has no instance type of known size (t3.large, m5.large)"))
        // A steady cluster halts too: nothing is decided on doubt (the run then asks EC2).
        #expect(Cluster(workers: 1).decide(unsized()).halt == .unknownSizes)
    }

    @Test("pools: each pool's types are sized; a pool with none known halts the decision")
    func pools() {
        var policy = unsized()
        let general = PoolPolicy(name: "general", nodes: NodeBounds(min: 0, max: 10),
                                 capacity: WorkerCapacity(machineTypes: ["t3.large"], placements: ["subnet-a"], sizes: [:]))
        let batch = PoolPolicy(name: "batch", nodes: NodeBounds(min: 0, max: 10),
                               capacity: WorkerCapacity(machineTypes: ["c5.xlarge"], placements: ["subnet-a"],
                                                        sizes: ["c5.xlarge": WorkerSize(cpuCores: 4, memoryBytes: 8 * gib)]))
        policy.pools = [general, batch]
        let (_, resolution) = policy.sized(by: LearnedSizes())
        #expect(resolution.unusable == ["pools.general"])
        #expect(resolution.unknownTypes == ["t3.large"])
        let (sized, known) = policy.sized(by: LearnedSizes(ec2: ["t3.large": WorkerSize(cpuCores: 1.93, memoryBytes: 6627 * mib)]))
        #expect(known.unusable.isEmpty)
        #expect(known.sizes.map(\.source) == [.ec2, .config])
        #expect(sized.pools?.first?.capacity.sizes["t3.large"]?.cpuCores == 1.93)
    }

    @Test("the learned sizes travel in the observation's JSON (the run report), and only when there are some")
    func codable() throws {
        var observation = Cluster(workers: 1).observation
        let plain = String(decoding: try JSONEncoder().encode(observation), as: UTF8.self)
        #expect(!plain.contains("learned_sizes"))
        observation.learnedSizes = LearnedSizes(nodes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)], problems: ["x"])
        let decoded = try JSONDecoder().decode(Observation.self, from: try JSONEncoder().encode(observation))
        #expect(decoded.learnedSizes == observation.learnedSizes)
    }
}
