import Foundation
@testable import KScaler
import KScalerCore
import Prometheus
import Testing

/// How `BacktestHistory` turns range answers into the steps the replay reads (the queries
/// themselves run against a real Prometheus in `BacktestCommandTests`).
@Suite struct BacktestHistoryTests {
    let times = (0..<3).map { Date(timeIntervalSince1970: 1_800_000_000 + Double($0) * 60) }

    func series(_ labels: [String: String], _ values: [Int: Double]) -> RangeSeries {
        RangeSeries(labels: labels, points: values.sorted { $0.key < $1.key }.map { RangePoint(timestamp: times[$0.key], value: $0.value) })
    }

    @Test("a pod's resources become one demand; a step kube-state-metrics did not answer is not reporting; readiness joins by node")
    func assembly() {
        let steps = BacktestHistory.steps(
            times: times,
            demand: [series(["namespace": "web", "pod": "web-1", "resource": "cpu"], [0: 0.5, 1: 0.5, 2: 0.5]),
                     series(["namespace": "web", "pod": "web-1", "resource": "memory"], [0: 1_073_741_824, 2: 1_073_741_824]),
                     series(["namespace": "batch", "pod": "job-1", "resource": "cpu"], [2: 2]),
                     series(["namespace": "batch", "pod": "job-2", "resource": "cpu"], [2: .nan])],
            reporting: [series([:], [0: 3, 2: 3])],
            nodes: [series(["node": "i-0a"], [0: 1, 1: 1, 2: 1]), series(["node": "i-0b"], [2: 1])],
            ready: [series(["node": "i-0a"], [0: 1, 1: 1, 2: 1]), series(["node": "i-0b"], [2: 0]), series(["node": "i-0c"], [2: 1])],
            unschedulable: [series([:], [0: 0, 1: 0, 2: 1])])

        #expect(steps.map(\.time) == times)
        #expect(steps.map(\.reporting) == [true, false, true])
        #expect(steps[0].pods == [PodDemand(id: "web/web-1", cpuCores: 0.5, memoryBytes: 1_073_741_824)])
        // A NaN request is not demand; a pod without a memory request requests none.
        #expect(steps[2].pods.sorted { $0.id < $1.id } == [PodDemand(id: "batch/job-1", cpuCores: 2, memoryBytes: 0),
                                                           PodDemand(id: "web/web-1", cpuCores: 0.5, memoryBytes: 1_073_741_824)])
        // i-0c is Ready but has no kube_node_info: not one of the cluster's worker nodes at that step.
        #expect(steps[2].realNodes == ["i-0a": true, "i-0b": false])
        #expect(steps.map(\.realUnschedulablePods) == [0, 0, 1])
    }
}
