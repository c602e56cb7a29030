#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

@Suite("observation and decision encoding")
struct ObservationTests {
    @Test("a node's machine is what the fleet's identity says, from its name and provider id")
    func identifiedByTheFleet() {
        let reported = NodeObservation(name: "worker-7", instanceID: nil, providerID: "test://vm-107", ready: true, nonDaemonSetPods: 2)
        let node = reported.identified(by: workerMachines)
        #expect(node.instanceID == "vm-107")
        #expect(node.name == "worker-7" && node.ready && node.nonDaemonSetPods == 2)
        #expect(NodeObservation(name: "control-plane", instanceID: "stale", ready: true, nonDaemonSetPods: 0)
            .identified(by: workerMachines).instanceID == nil)
    }

    @Test("the default queries select the workers the fleet names, and no other pattern")
    func defaultQueriesUseTheFleetsSelector() {
        for signal in [Signal.cpuUtilization, .memoryUtilization] {
            for mode in UtilizationMode.allCases {
                let query = DefaultQueries.query(for: signal, mode: mode, windowSeconds: 600, workerNodes: workerMachines.workerNodeNames)
                #expect(query.contains("=~\"worker-[0-9]+\""))
                #expect(!query.contains("i-["))
            }
        }
    }

    @Test("the last scale-up is the later of the recorded stamp and the newest launch")
    func lastScaleUp() {
        var cluster = Cluster()
        #expect(cluster.observation.lastScaleUpAt == nil)
        cluster.state.lastScaleUpAt = t0.addingTimeInterval(-100)
        #expect(cluster.observation.lastScaleUpAt == t0.addingTimeInterval(-100))
        cluster.addWorker(age: 50)
        #expect(cluster.observation.lastScaleUpAt == t0.addingTimeInterval(-50))
        cluster.addWorker(age: 500)
        #expect(cluster.observation.lastScaleUpAt == t0.addingTimeInterval(-50))
    }

    @Test("a decision encodes with stable snake_case keys and decodes back")
    func decisionJSON() throws {
        var cluster = Cluster(workers: 2)
        cluster.addWorker(age: 3600, ready: nil)
        cluster.set(.unschedulablePods, .value(3))
        cluster.set(.pendingCPURequestCores, .value(3))
        cluster.set(.pendingMemoryRequestBytes, .value(1e9))
        cluster.set(.podsPerNode, .notANumber)
        let decision = cluster.decide()
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(decision)
        let json = try #require(String(data: data, encoding: .utf8))
        for key in ["\"action\":{\"count\":2,\"type\":\"scale_up\"}", "\"failed_boots\":[{", "\"launch_candidates\":[{",
                    "\"instance_type\":\"t3.large\"", "\"subnet_id\":\"subnet-a\"", "\"cluster_not_ready\":0",
                    "\"ends_at\":\"", "\"name\":\"scale_up_cooldown\"", "\"code\":\"unschedulable_pods\"",
                    "\"reading\":{\"status\":\"not_a_number\"}", "\"verdict\":\"triggers_scale_up\"", "\"cpu_cores\":2"] {
            #expect(json.contains(key), "missing \(key) in \(json)")
        }
        #expect(!json.contains("Id\"") && !json.contains("At\""), "camelCase key leaked: \(json)")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        #expect(try decoder.decode(Decision.self, from: data) == decision)
    }

    @Test("an observation round-trips through JSON, readings keyed by signal")
    func observationJSON() throws {
        var cluster = Cluster(workers: 1)
        cluster.set(.cpuUtilization, .stale(ageSeconds: 42))
        cluster.set(.memoryUtilization, .failed("timeout"))
        cluster.set(.nodeReady, .noData)
        cluster.state.unavailableOfferings = [UnavailableOffering(machineType: "t3.large", placement: nil, until: t0)]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(cluster.observation)
        let json = try #require(String(data: data, encoding: .utf8))
        #expect(json.contains("\"cpu_utilization\":{\"age_seconds\":42,\"status\":\"stale\"}"))
        #expect(json.contains("\"unavailable_offerings\":[{"))
        #expect(json.contains("\"non_daemonset_pods\":3"))
        #expect(try JSONDecoder().decode(Observation.self, from: data) == cluster.observation)
    }

    @Test("a non-finite value encodes as not_a_number instead of failing the encoder")
    func nonFiniteEncodes() throws {
        let data = try JSONEncoder().encode(Reading.value(.infinity))
        #expect(try JSONDecoder().decode(Reading.self, from: data) == .notANumber)
    }
}
