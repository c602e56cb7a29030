// kscaler-bench: how long `decide` takes for 10, 100 and 1,000 worker nodes (10× as many
// pods), on a scale-up run and on a scale-down run. Prints median and p90 per call.
// Build in release mode for meaningful figures: swift run -c release kscaler-bench
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KScalerCore

let now = Date(timeIntervalSince1970: 1_800_000_000)
let gib: Int64 = 1 << 30

/// A cluster of `workers` managed Ready workers holding 10 non-DaemonSet pods each on average.
func observation(workers: Int, busy: Bool) -> Observation {
    var instances: [ManagedInstance] = []
    var nodes = [NodeObservation(name: "control-plane", instanceID: nil, ready: true, nonDaemonSetPods: 4)]
    for index in 0..<workers {
        let id = "i-\(String(0x10000000 + index, radix: 16))"
        instances.append(ManagedInstance(
            id: id, instanceType: "t3.large", subnetID: index % 2 == 0 ? "subnet-a" : "subnet-b", availabilityZone: "us-east-1a",
            launchTime: now.addingTimeInterval(-Double(3600 + index * 7)), state: .running, protected: index % 50 == 0
        ))
        nodes.append(NodeObservation(name: id, providerID: "aws:///us-east-1a/\(id)", ready: true, nonDaemonSetPods: (index * 37) % 21))
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
        state: ScalerState(lastScaleUpAt: now.addingTimeInterval(-7200), lastScaleDownAt: now.addingTimeInterval(-7200))
    )
}

let policy = Policy(
    nodes: NodeBounds(min: 1, max: 5000),
    scaleDown: ScaleDownPolicy(maxStep: 3),
    capacity: WorkerCapacity(instanceTypes: ["t3.large", "t3.xlarge"], subnets: ["subnet-a", "subnet-b"],
                             sizes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib),
                                     "t3.xlarge": WorkerSize(cpuCores: 4, memoryBytes: 16 * gib)])
)

func microseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
}

func format(_ value: Double) -> String {
    let rounded = (value * 10).rounded() / 10
    return rounded >= 100 ? String(Int(rounded)) : String(rounded)
}

func pad(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

let clock = ContinuousClock()
var checksum = 0
print("decide() per call, µs (ContinuousClock; pods = 10 × nodes)")
print("\(pad("nodes", 6)) \(pad("pods", 6)) \(pad("run", 11)) \(pad("calls", 6)) \(pad("median", 8)) \(pad("p90", 8))  action")
for (workers, iterations) in [(10, 20_000), (100, 5_000), (1_000, 500)] {
    for busy in [true, false] {
        let input = observation(workers: workers, busy: busy)
        for _ in 0..<(iterations / 10) { checksum &+= decide(input, policy: policy, now: now).counts.desired }
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        var last: Decision?
        for _ in 0..<iterations {
            let start = clock.now
            let decision = decide(input, policy: policy, now: now)
            samples.append(microseconds(clock.now - start))
            checksum &+= decision.counts.desired
            last = decision
        }
        samples.sort()
        let action = switch last?.action {
        case .scaleUp(let count)?: "scale up \(count)"
        case .scaleDown(let victims)?: "scale down \(victims.count)"
        default: "none"
        }
        let pods = input.nodes.compactMap(\.nonDaemonSetPods).reduce(0, +)
        print("\(pad(String(workers), 6)) \(pad(String(pods), 6)) \(pad(busy ? "scale-up" : "scale-down", 11)) \(pad(String(iterations), 6)) "
            + "\(pad(format(samples[samples.count / 2]), 8)) \(pad(format(samples[samples.count * 9 / 10]), 8))  \(action)")
    }
}
print("(checksum \(checksum))")
