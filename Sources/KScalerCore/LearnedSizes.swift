#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a machine type's allocatable size came from. Precedence is the order of the cases:
/// what the user wrote wins, then what Ready nodes of the type report, then the estimate from
/// the type's hardware.
package enum SizeSource: String, Sendable, Equatable, Codable, CaseIterable {
    /// `workers.sizes` (or a pool's `sizes`).
    case config
    /// Ready nodes of the type: `kube_node_status_allocatable` by `node.kubernetes.io/instance-type`.
    case nodes
    /// EC2 `DescribeInstanceTypes` less the kubelet's reservation (`KubeletReservation`).
    case ec2
}

/// Sizes learned at run time: the run layer reads them (Prometheus, EC2), `decide` picks by
/// precedence (`SizeSource`). A source that could not answer leaves its map empty and says why
/// in `problems`, which the reasons repeat beside a type left without a size.
package struct LearnedSizes: Sendable, Equatable, Codable {
    /// The smallest allocatable among the Ready nodes of each instance type.
    package var nodes: [String: WorkerSize]
    /// Estimated from the instance type's vCPUs and memory.
    package var ec2: [String: WorkerSize]
    package var problems: [String]

    package init(nodes: [String: WorkerSize] = [:], ec2: [String: WorkerSize] = [:], problems: [String] = []) {
        self.nodes = nodes
        self.ec2 = ec2
        self.problems = problems
    }

    package var isEmpty: Bool { nodes.isEmpty && ec2.isEmpty && problems.isEmpty }
}

/// One machine type's size as this run used it, and where it came from; no size (and no
/// source) when nothing knew it: the type is then never launched.
package struct TypeSize: Sendable, Equatable, Codable {
    package var machineType: String
    package var size: WorkerSize?
    package var source: SizeSource?

    package init(machineType: String, size: WorkerSize?, source: SizeSource?) {
        self.machineType = machineType
        self.size = size
        self.source = source
    }

    private enum CodingKeys: String, CodingKey { case machineType = "instance_type", size, source }
}

/// The sizes a decision was made with.
package struct SizeResolution: Sendable, Equatable {
    /// Every type of every capacity, in configured order (first seen), with its size or none.
    package var sizes: [TypeSize]
    /// The capacities (`workers`, or `pools.<name>`) left with no type of known size.
    package var unusable: [String]

    /// The types without a size: the ones another source (EC2) could still tell.
    package var unknownTypes: [String] { sizes.filter { $0.size == nil }.map(\.machineType) }
}

extension WorkerCapacity {
    /// This capacity with each machine type's size picked by precedence (config, nodes, EC2);
    /// types no source knows are dropped from `machineTypes` (never launched on doubt). A
    /// capacity without machine types (a launch template alone) keeps its configured sizes.
    package func sized(by learned: LearnedSizes) -> (capacity: WorkerCapacity, sizes: [TypeSize]) {
        guard !machineTypes.isEmpty else {
            return (self, sizes.keys.sorted().map { TypeSize(machineType: $0, size: sizes[$0], source: .config) })
        }
        var capacity = self
        var resolved: [TypeSize] = []
        for type in machineTypes {
            let picked: (WorkerSize, SizeSource)? = if let size = sizes[type] { (size, .config) }
                else if let size = learned.nodes[type] { (size, .nodes) }
                else if let size = learned.ec2[type] { (size, .ec2) }
                else { nil }
            resolved.append(TypeSize(machineType: type, size: picked?.0, source: picked?.1))
            if let picked { capacity.sizes[type] = picked.0 }
        }
        capacity.machineTypes = machineTypes.filter { capacity.sizes[$0] != nil }
        return (capacity, resolved)
    }
}

extension Policy {
    /// This policy with every capacity sized by `learned` (`WorkerCapacity.sized(by:)`), and
    /// what was picked.
    package func sized(by learned: LearnedSizes) -> (policy: Policy, resolution: SizeResolution) {
        var policy = self
        var resolution = SizeResolution(sizes: [], unusable: [])
        func record(_ sizes: [TypeSize], of original: WorkerCapacity, as name: String, sized: WorkerCapacity) {
            for size in sizes where !resolution.sizes.contains(where: { $0.machineType == size.machineType }) {
                resolution.sizes.append(size)
            }
            if !original.machineTypes.isEmpty && sized.machineTypes.isEmpty { resolution.unusable.append(name) }
        }
        if let pools {
            policy.pools = pools.map { pool in
                var pool = pool
                let (capacity, sizes) = pool.capacity.sized(by: learned)
                record(sizes, of: pool.capacity, as: "pools.\(pool.name)", sized: capacity)
                pool.capacity = capacity
                return pool
            }
        } else {
            let (capacity, sizes) = capacity.sized(by: learned)
            record(sizes, of: self.capacity, as: "workers", sized: capacity)
            policy.capacity = capacity
        }
        return (policy, resolution)
    }
}

/// The kubelet's reservation as the EKS optimized AMI sets it (its bootstrap, and eksctl's
/// `reserved.go`), and the kubelet's default hard eviction threshold: what an instance type's
/// allocatable is estimated from when no node of it has reported yet.
///
/// - CPU (`kube-reserved`): 6 % of the first core, 1 % of the second, 0.5 % of the third and
///   fourth, 0.25 % of every core above four (2 vCPUs: 70m, 4: 80m, 8: 90m, 16: 110m).
/// - Memory (`kube-reserved`): 255 MiB + 11 MiB per pod the node may run, plus the hard
///   eviction threshold `memory.available<100Mi`.
///
/// Max pods is assumed 110, the kubelet's default and k3s's (EKS derives it from the ENIs
/// instead, e.g. 29 on an m5.large). k3s and kubeadm reserve nothing by default, so on them
/// the estimate is low: a burst gets a node more rather than pods that do not fit, and once a
/// node of the type is Ready its own figure is used.
package enum KubeletReservation {
    package static let defaultMaxPods = 110
    package static let evictionHardMemoryMiB: Int64 = 100

    /// Millicores reserved on a machine of `vcpus` cores.
    package static func cpuMillicores(vcpus: Int) -> Int {
        let steps: [(upTo: Int, percent: Double)] = [(1, 6), (2, 1), (4, 0.5), (Int.max, 0.25)]
        var reserved = 0.0, counted = 0
        for step in steps where vcpus > counted {
            let cores = min(vcpus, step.upTo) - counted
            reserved += Double(cores) * 1000 * step.percent / 100
            counted += cores
        }
        return Int(reserved.rounded(.down))
    }

    /// MiB reserved for the kubelet and the container runtime with `maxPods` pods.
    package static func memoryMiB(maxPods: Int) -> Int64 { 255 + 11 * Int64(maxPods) }

    /// The allocatable of a machine with `vcpus` cores and `memoryMiB` of memory; nil when the
    /// reservation leaves nothing (no such worker could run a pod).
    package static func allocatable(vcpus: Int, memoryMiB: Int64, maxPods: Int = defaultMaxPods) -> WorkerSize? {
        let cpu = vcpus * 1000 - cpuMillicores(vcpus: vcpus)
        let memory = memoryMiB - Self.memoryMiB(maxPods: maxPods) - evictionHardMemoryMiB
        guard vcpus > 0, cpu > 0, memory > 0 else { return nil }
        return WorkerSize(cpuCores: Double(cpu) / 1000, memoryBytes: memory * 1_048_576)
    }
}

extension KScalerConfig {
    /// The listed instance types without a configured size, in pool order: what a run learns
    /// (Ready nodes, then EC2). Empty when every size is configured: the run then asks nothing.
    package var typesToLearn: [String] {
        var types: [String] = []
        for pool in workerPools {
            for type in pool.workers.instanceTypes where pool.workers.sizes[type] == nil && !types.contains(type) { types.append(type) }
        }
        return types
    }
}
