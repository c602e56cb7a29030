import AWS
import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// A config with no `workers.sizes`: the release binary learns each instance type's size from
/// the Ready nodes of that type (a real Prometheus scraping the simulated kube-state-metrics),
/// else from EC2 (moto's DescribeInstanceTypes, signature checking on), and launches nothing it
/// cannot size.
@Suite struct SizesEndToEndTests {
    /// Four pending pods of one core each.
    static let fourCores = Array(repeating: ClusterExporter.PendingPod(cpu: 1, memory: 512 * 1_048_576), count: 4)

    @Test func sizedByTheReadyNodesOfTheType() async throws {
        try await EndToEndHarness.with(sizes: nil) { harness in
            // A Ready t3.large (2 cores, 8 GiB allocatable) of another node group: 4 cores → 2 nodes.
            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: "i-0feedfeedfeedfeed", podCPU: [], instanceType: "t3.large")]
                cluster.pending = Self.fourCores
            }
            try await harness.waitForMetrics()

            let checked = try await harness.kscaler(["config", "check"])
            #expect(checked.status == 0, "\(checked.combined)")
            #expect(checked.stdout.split(separator: "\n").contains { $0.contains("t3.large") && $0.hasSuffix("learned at run time") },
                    "\(checked.stdout)")

            let plan = try await harness.kscaler(["plan"])
            #expect(plan.stdout.contains("sizes       t3.large 2 cores, 8 GiB (nodes)"), "\(plan.stdout)")

            let (result, report) = try await harness.report()
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.decision?.sizes == [TypeSize(machineType: "t3.large", size: WorkerSize(cpuCores: 2, memoryBytes: 8 << 30), source: .nodes)])
            #expect(report?.decision?.action == .scaleUp(count: 2))
            let launched = try await harness.instances()
            #expect(launched.count == 2)
            #expect(launched.allSatisfy { $0.instanceType == "t3.large" })
        }
    }

    @Test func sizedByEC2WhenNoNodeOfTheTypeReports() async throws {
        try await EndToEndHarness.with(sizes: nil) { harness in
            // The only Ready worker carries no instance-type label: EC2's t3.large is 2 vCPU, 8192 MiB,
            // less the kubelet's reservation: 1.93 cores → 3 nodes for 4 cores.
            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: "i-0feedfeedfeedfeed", podCPU: [])]
                cluster.pending = Self.fourCores
            }
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report()
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.decision?.sizes == [TypeSize(machineType: "t3.large", size: WorkerSize(cpuCores: 1.93, memoryBytes: 6627 << 20), source: .ec2)])
            #expect(report?.observation?.learnedSizes.ec2.keys.sorted() == ["t3.large"])
            #expect(try await harness.instances().count == 3)
        }
    }

    @Test func aTypeNobodyCanSizeIsNeverLaunched() async throws {
        // "t3.largest" is no EC2 instance type: DescribeInstanceTypes refuses, nothing sizes it.
        try await EndToEndHarness.with(instanceTypes: "[t3.largest]", sizes: nil) { harness in
            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: "i-0feedfeedfeedfeed", podCPU: [], instanceType: "t3.large")]
                cluster.pending = Self.fourCores
            }
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report()
            #expect(result.status == 3, "\(result.combined)")
            #expect(report?.decision?.halt == .unknownSizes)
            #expect(report?.decision?.action == Decision.Action.none)
            let reason = try #require(report?.decision?.reasons.first?.message)
            #expect(reason.contains("no instance type of known size (t3.largest)"), "\(reason)")
            #expect(reason.contains("InvalidInstanceType"), "\(reason)")
            #expect(try await harness.instances().isEmpty)
            #expect(try await harness.table.holder().owner == nil)
        }
    }
}
