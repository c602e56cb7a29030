#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
@testable import KScalerCore

/// A fixed clock: tests never read the real one.
let t0 = Date(timeIntervalSince1970: 1_800_000_000)

let gib: Int64 = 1 << 30

/// A backend that is not EC2, as the core sees one: workers named `worker-<n>`, the machine
/// id in the provider id `test://<id>` when there is one.
let workerMachines = MachineIdentity(backend: "test", providerID: try! IdentityTemplate("test://{id}"),
                                     nodeName: try! IdentityTemplate("{id}"), machineIDs: "worker-[0-9]+",
                                     isMachineID: { ["worker-", "vm-", "i-"].contains(where: $0.hasPrefix) })

extension Policy {
    /// Defaults from the schema; t3.large (2 vCPU, 8 GiB) then t3.xlarge (4 vCPU, 16 GiB) in two subnets.
    static func test(
        min: Int = 1, max: Int = 10,
        scaleUp: ScaleUpPolicy = ScaleUpPolicy(), scaleDown: ScaleDownPolicy = ScaleDownPolicy(),
        health: HealthGate = HealthGate(), victims: VictimPolicy = VictimPolicy(),
        instanceTypes: [String] = ["t3.large", "t3.xlarge"], subnets: [String] = ["subnet-a", "subnet-b"],
        withoutDrain: Bool = true, drain: DrainPolicy = DrainPolicy()
    ) -> Policy {
        // Most tests here observe no Kubernetes API: they exercise the terminate-only scale-down.
        var scaleDown = scaleDown
        scaleDown.withoutDrain = withoutDrain
        return Policy(
            nodes: NodeBounds(min: min, max: max), scaleUp: scaleUp, scaleDown: scaleDown, health: health, victims: victims, drain: drain,
            capacity: WorkerCapacity(
                machineTypes: instanceTypes, placements: subnets,
                sizes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib), "t3.xlarge": WorkerSize(cpuCores: 4, memoryBytes: 16 * gib)]
            )
        )
    }
}

/// A cluster under test: a Ready control-plane node, workers added one by one, and readings that
/// by default ask for nothing (50 % utilisation, nothing pending).
struct Cluster {
    var now = t0
    var readings: [Signal: Reading] = [
        .unschedulablePods: .value(0), .pendingCPURequestCores: .value(0), .pendingMemoryRequestBytes: .value(0),
        .cpuUtilization: .value(0.5), .memoryUtilization: .value(0.5),
        .cpuUtilizationWindowMax: .value(0.5), .memoryUtilizationWindowMax: .value(0.5),
        .nodeReady: .value(1), .podsPerNode: .value(1),
    ]
    var nodes: [NodeObservation] = [NodeObservation(name: "control-plane", instanceID: nil, ready: true, nonDaemonSetPods: 4)]
    var instances: [ManagedInstance] = []
    var endedMachines: Set<String> = []
    var state = ScalerState()
    private var nextID = 0x1000

    init(workers: Int = 0) {
        for _ in 0..<workers { addWorker() }
    }

    /// Adds a managed instance launched `age` seconds ago. `ready: nil` means no node registered.
    @discardableResult
    mutating func addWorker(
        age: TimeInterval = 86_400, ready: Bool? = true, pods: Int? = 3, type: String = "t3.large",
        subnet: String = "subnet-a", state: ManagedInstance.State = .running, protected: Bool = false
    ) -> String {
        nextID += 1
        let id = "i-\(String(nextID, radix: 16))00000000"
        instances.append(ManagedInstance(id: id, machineType: type, placement: subnet, zone: "us-east-1a",
                                         launchTime: now.addingTimeInterval(-age), state: state, protected: protected))
        if let ready {
            nodes.append(NodeObservation(name: id, instanceID: id, ready: ready, nonDaemonSetPods: pods))
        }
        return id
    }

    /// Adds the Node object an instance of ours left behind when it was terminated: NotReady
    /// for ever (k3s without a cloud controller), its machine no longer live.
    @discardableResult
    mutating func addGhost() -> String {
        nextID += 1
        let id = "i-\(String(nextID, radix: 16))00000000"
        nodes.append(NodeObservation(name: id, instanceID: id, ready: false, nonDaemonSetPods: 0))
        endedMachines.insert(id)
        return id
    }

    /// Adds a node that is not one of ours (another node group, say).
    mutating func addForeignNode(ready: Bool) {
        nodes.append(NodeObservation(name: "foreign-\(nodes.count)", instanceID: nil, ready: ready, nonDaemonSetPods: 1))
    }

    mutating func set(_ signal: Signal, _ reading: Reading) { readings[signal] = reading }

    /// The Kubernetes API's view; nil: kscaler runs without the API.
    var cluster: ClusterView?
    var drains: [OpenDrain] = []
    var abortedDrains: [AbortedDrain] = []
    /// An operator's hold (`kscaler scale --hold`).
    var hold: Hold?

    var observation: Observation {
        Observation(readings: readings, nodes: nodes, instances: instances, endedMachines: endedMachines, state: state,
                    cluster: cluster, drains: drains, abortedDrains: abortedDrains, hold: hold)
    }

    func decide(_ policy: Policy = .test()) -> Decision {
        KScalerCore.decide(observation, policy: policy, now: now)
    }
}

extension Decision {
    var scaleUpCount: Int? {
        if case .scaleUp(let count) = action { return count }
        return nil
    }

    var victimIDs: [String]? {
        if case .scaleDown(let victims) = action { return victims.map(\.instanceID) }
        return nil
    }

    var isNone: Bool { action == .none }

    func reasons(_ code: Reason.Code) -> [String] { reasons.filter { $0.code == code }.map(\.message) }

    func has(_ code: Reason.Code) -> Bool { reasons.contains { $0.code == code } }
}
