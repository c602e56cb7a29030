import AWS
import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// Safe scale-down across `kscaler run` processes (the release binary) against moto, a real
/// Prometheus and the stand-in Kubernetes API server (kubeapi.py: it computes PodDisruptionBudget
/// status from pod readiness and refuses evictions with 429 as a kube-apiserver does, but runs
/// no controllers: a test plays the ReplicaSet that replaces an evicted pod).
@Suite(.serialized) struct DrainEndToEndTests {
    typealias K = KubernetesEndToEndTests

    /// Two workers, `older` and `newer`, Ready in the API, with web pods: `web-1` on the newer
    /// (the victim: newest first), two on the older; a budget keeping 2 web pods available.
    struct Fleet {
        var older: EC2Instance
        var newer: EC2Instance

        func pods(web3Ready: Bool = true, extra: String = "", web1: Bool = true) -> String {
            let web1Pod = web1 ? #"{"namespace": "default", "name": "web-1", "node": "\#(newer.id)", "owner_kind": "ReplicaSet", "owner_name": "web", "labels": {"app": "web"}, "requests": {"cpu": 0.1, "memory": 67108864}},"# : ""
            return #"{"pods": [\#(web1Pod)"#
                + #"{"namespace": "default", "name": "web-2", "node": "\#(older.id)", "owner_kind": "ReplicaSet", "owner_name": "web", "labels": {"app": "web"}, "requests": {"cpu": 0.1, "memory": 67108864}},"#
                + #"{"namespace": "default", "name": "web-3", "node": "\#(older.id)", "owner_kind": "ReplicaSet", "owner_name": "web", "labels": {"app": "web"}, "requests": {"cpu": 0.1, "memory": 67108864}, "ready": \#(web3Ready)}"#
                + extra + "]}"
        }
    }

    static func start(_ harness: EndToEndHarness, _ api: KubeAPIProcess) async throws -> Fleet {
        let older = try #require(try await harness.launchWorkers(1).first)
        try await Task.sleep(for: .seconds(1.1))
        let newer = try #require(try await harness.launchWorkers(1).first)
        let fleet = Fleet(older: older, newer: newer)
        try await api.seed(json: #"{"nodes": [\#(K.node(older.id, instance: older, ready: true)), \#(K.node(newer.id, instance: newer, ready: true))], "#
            + #""pdbs": [{"namespace": "default", "name": "web", "match_labels": {"app": "web"}, "min_available": 2}]}"#)
        try await api.seed(json: fleet.pods())
        harness.exporter.update { cluster in
            cluster.workers = [.init(instanceID: older.id, podCPU: [0.1, 0.1]), .init(instanceID: newer.id, podCPU: [0.1])]
        }
        try await Task.sleep(for: .seconds(1.1))  // past boot grace and the (1 s) cooldowns
        try await harness.waitForMetrics()
        return fleet
    }

    /// The node's cordon and kscaler's taint, as the API server stores them.
    static func drainMarks(_ api: KubeAPIProcess, _ node: String) async throws -> (cordoned: Bool, tainted: Bool) {
        let nodes = try await api.state()["nodes"] as? [[String: Any]] ?? []
        let spec = nodes.first { (($0["metadata"] as? [String: Any])?["name"] as? String) == node }?["spec"] as? [String: Any] ?? [:]
        let taints = spec["taints"] as? [[String: Any]] ?? []
        return (spec["unschedulable"] as? Bool ?? false, taints.contains { $0["key"] as? String == "kscaler.io/to-be-deleted" && $0["effect"] as? String == "NoSchedule" })
    }

    static func podNames(_ api: KubeAPIProcess) async throws -> [String] {
        (try await api.state()["pods"] as? [[String: Any]] ?? []).compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }.sorted()
    }

    @Test func aDrainCordonsWaitsForTheBudgetThenEvictsTerminatesAndDeletesTheNode() async throws {
        try await K.withAPI { api in
        try await K.with(api, minNodes: 1) { harness in
            let fleet = try await Self.start(harness, api)

            // Run 1: the drain starts (3 web pods Ready, the budget allows 1): cordon and taint, nothing else.
            let (first, started) = try await harness.report("run", ["--timeout", "20"])
            #expect(first.status == 0, "\(first.combined)")
            #expect(started?.actions.map(\.kind) == [.drainStart], "\(first.combined)")
            #expect(started?.actions.first?.nodes == [fleet.newer.id])
            #expect(try await Self.drainMarks(api, fleet.newer.id) == (true, true))
            #expect(try await harness.instances().count == 2)
            #expect(try await K.events(api).contains { $0.reason == "ScaleDownDrainStarted" && $0.node == fleet.newer.id })

            // Run 2: another web pod is not Ready, so the budget allows nothing: 429, the drain waits.
            try await api.seed(json: fleet.pods(web3Ready: false))
            let (second, blocked) = try await harness.report("run", ["--timeout", "20"])
            #expect(second.status == 0, "\(second.combined)")
            let refused = try #require(blocked?.actions.first { $0.kind == .evict }, "\(second.combined)")
            #expect(refused.pods == [])
            #expect(refused.detail?.contains("disruption budget") == true, "\(refused)")
            #expect(try await Self.podNames(api).contains("web-1"))
            #expect(try await harness.instances().count == 2)

            // Run 3: the pod is Ready again and a replacement runs elsewhere: web-1 is evicted.
            try await api.seed(json: fleet.pods(extra: #",{"namespace": "default", "name": "web-4", "node": "\#(fleet.older.id)", "owner_kind": "ReplicaSet", "owner_name": "web", "labels": {"app": "web"}}"#))
            let (third, evicted) = try await harness.report("run", ["--timeout", "20"])
            #expect(third.status == 0, "\(third.combined)")
            #expect(evicted?.actions.first { $0.kind == .evict }?.pods == ["default/web-1"], "\(third.combined)")
            #expect(try await !Self.podNames(api).contains("web-1"))
            #expect(try await harness.instances().count == 2, "terminated in the run that evicted")

            // Run 4: nothing left to move: the instance is terminated and its Node deleted, in one run.
            let (fourth, finished) = try await harness.report("run", ["--timeout", "20"])
            #expect(fourth.status == 0, "\(fourth.combined)")
            #expect(finished?.actions.map(\.kind) == [.terminate, .deleteNode], "\(fourth.combined)")
            #expect(try await harness.instances().map(\.id) == [fleet.older.id])
            #expect(try await api.nodeNames() == [fleet.older.id])
            #expect(finished?.drainDurations.count == 1)
            let state = try await harness.table.readState()
            #expect(state.drains.isEmpty)
            #expect(state.pool("default").lastScaleDownAt != nil)
            let kinds = try await harness.table.history(limit: 10).events.flatMap { $0.actions.map(\.kind) }
            #expect(Set(kinds).isSuperset(of: [.drainStart, .evict, .terminate, .deleteNode]))
        }
        }
    }

    @Test func aDrainThatTimesOutIsAbortedTheNodeUncordonedAndSkipped() async throws {
        try await K.withAPI { api in
        try await K.with(api, minNodes: 1, extraConfig: "drain: {timeout: 3s}") { harness in
            let fleet = try await Self.start(harness, api)
            let (first, started) = try await harness.report("run", ["--timeout", "20"])
            #expect(started?.actions.map(\.kind) == [.drainStart], "\(first.combined)")
            try await api.seed(json: fleet.pods(web3Ready: false))  // the budget allows nothing from now on
            try await Task.sleep(for: .seconds(3.1))

            let (second, aborted) = try await harness.report("run", ["--timeout", "20"])
            #expect(second.status == 0, "\(second.combined)")
            let abort = try #require(aborted?.actions.first { $0.kind == .drainAbort }, "\(second.combined)")
            #expect(abort.detail?.contains("not drained within drain.timeout 3s") == true, "\(abort)")
            #expect(try await Self.drainMarks(api, fleet.newer.id) == (false, false))
            #expect(try await harness.instances().count == 2)
            #expect(try await Self.podNames(api).contains("web-1"))
            #expect(try await K.events(api).contains { $0.reason == "ScaleDownDrainAborted" && $0.node == fleet.newer.id })

            // The budget allows a disruption again, but the aborted node is not chosen for drain.abort_backoff.
            try await api.seed(json: fleet.pods())
            try await Task.sleep(for: .seconds(1.1))  // the scale-down cooldown
            let (_, later) = try await harness.report("plan")
            #expect(later?.decision?.reasons.contains { $0.message.contains("its drain was aborted") } == true, "\(later?.decision?.reasons ?? [])")
            #expect(later?.decision.map { if case .scaleDown(let victims) = $0.action { !victims.contains { $0.instanceID == fleet.newer.id } } else { true } } == true)
        }
        }
    }

    @Test func withForceAfterTimeoutThePodsLeftAreDeletedAndTheNodeGoes() async throws {
        try await K.withAPI { api in
        try await K.with(api, minNodes: 1, extraConfig: "drain: {timeout: 3s, force_after_timeout: true}") { harness in
            let fleet = try await Self.start(harness, api)
            let (first, started) = try await harness.report("run", ["--timeout", "20"])
            #expect(started?.actions.map(\.kind) == [.drainStart], "\(first.combined)")
            try await api.seed(json: fleet.pods(web3Ready: false))
            try await Task.sleep(for: .seconds(3.1))

            let (second, forced) = try await harness.report("run", ["--timeout", "20"])
            #expect(second.status == 0, "\(second.combined)")
            #expect(forced?.actions.map(\.kind) == [.forceDelete, .terminate, .deleteNode], "\(second.combined)")
            #expect(forced?.actions.first?.pods == ["default/web-1"])
            #expect(try await !Self.podNames(api).contains("web-1"))
            #expect(try await harness.instances().map(\.id) == [fleet.older.id])
        }
        }
    }

    @Test func aRunKilledBetweenRecordingTheDrainAndCordoningIsFinishedByTheNext() async throws {
        try await K.withAPI { api in
        try await K.with(api, minNodes: 1, leaseTTL: "20s") { harness in
            let fleet = try await Self.start(harness, api)
            // Every node write hangs: the run records its drain, then is killed before the cordon lands.
            try await api.injectFaults(json: #"[{"method": "PATCH", "path_regex": "^/api/v1/nodes/", "delay_seconds": 60, "times": null}]"#)
            let run = try LeaseProcessTests.startRun(harness, extra: ["--timeout", "18"])
            let deadline = ContinuousClock.now + .seconds(60)
            while try await harness.table.readState().drains.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            kill(run.0.processIdentifier, SIGKILL)
            _ = await LeaseProcessTests.finish(run)
            #expect(try await harness.table.readState().drains.map(\.node) == [fleet.newer.id])
            #expect(try await Self.drainMarks(api, fleet.newer.id) == (false, false), "the cordon landed before the kill: nothing tested")
            try await api.clearFaults()

            // The lease expires; the next run finds the recorded drain, cordons again and evicts.
            let holder = try await harness.table.holder()
            try await Task.sleep(for: .seconds(max(0, (holder.expiresAt ?? Date()).timeIntervalSinceNow) + 1.1))
            let (result, report) = try await harness.report("run", ["--timeout", "18"])
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.actions.map(\.kind) == [.evict], "\(result.combined)")
            #expect(report?.actions.first?.pods == ["default/web-1"])
            #expect(try await Self.drainMarks(api, fleet.newer.id) == (true, true))
            #expect(try await harness.instances().count == 2)
        }
        }
    }
}
