import AWS
import Foundation
import HTTP
import KScaler
import Testing
import TestSupport

/// The release binary against moto (signature checking on), a real Prometheus and the
/// stand-in Kubernetes API server (infra/local/ksandbox/kubeapi.py, kept honest by the real
/// kubectl in infra/local/tests/test_kubeapi_kubectl.py). The stand-in answers as a
/// kube-apiserver does for what kscaler asks; it runs no controllers (a deleted Node takes
/// nothing else with it) and authorises by deny rules rather than RBAC.
@Suite(.serialized) struct KubernetesEndToEndTests {
    static let serviceAccount = "system:serviceaccount:kube-system:kscaler"

    /// A harness whose kscaler reaches `api` with its token kubeconfig.
    static func with(_ api: KubeAPIProcess, minNodes: Int = 0, leaseTTL: String = "2m", ghostGrace: String = "2s", extraConfig: String = "",
                     _ body: (EndToEndHarness) async throws -> Void) async throws {
        try await EndToEndHarness.with(extraConfig: extraConfig, minNodes: minNodes, leaseTTL: leaseTTL,
                                       kubernetes: "{kubeconfig: \(api.kubeconfigToken), ghost_grace: \(ghostGrace)}", body)
    }

    /// Runs `body` with a fresh stand-in API server and always stops it.
    static func withAPI(_ body: (KubeAPIProcess) async throws -> Void) async throws {
        let api = try await KubeAPIProcess.start()
        do {
            try await body(api)
        } catch {
            await api.stop()
            throw error
        }
        await api.stop()
    }

    static func node(_ name: String, instance: EC2Instance? = nil, ready: Bool) -> String {
        let provider = instance.map { #", "provider_id": "aws:///\#($0.availabilityZone)/\#($0.id)""# } ?? ""
        return #"{"name": "\#(name)", "ready": \#(ready)\#(provider)}"#
    }

    static func events(_ api: KubeAPIProcess) async throws -> [(reason: String, node: String, source: String)] {
        let events = try await api.state()["events"] as? [[String: Any]] ?? []
        return events.map { event in
            ((event["reason"] as? String) ?? "", ((event["involvedObject"] as? [String: Any])?["name"] as? String) ?? "",
             ((event["source"] as? [String: Any])?["component"] as? String) ?? "")
        }
    }

    @Test func aGhostIsExcludedThenDeletedAfterTheGraceAndNothingForeignIsTouched() async throws {
        try await Self.withAPI { api in
        try await Self.with(api, minNodes: 1) { harness in
            let live = try #require(try await harness.launchWorkers(1).first)
            let dead = try #require(try await harness.launchWorkers(1).first)
            _ = try await harness.ec2.terminateInstances(ids: [dead.id])
            // The dead worker's Node stays NotReady; a foreign NotReady node and a node named like an
            // instance EC2 does not know are not provably this cluster's.
            try await api.seed(json: #"{"nodes": [\#(Self.node("k3s-server", ready: true)), \#(Self.node(live.id, instance: live, ready: true)), "#
                + #"\#(Self.node(dead.id, instance: dead, ready: false)), \#(Self.node("foreign-worker", ready: false)), "#
                + #"\#(Self.node("i-0123456789abcdef9", ready: false))]}"#)
            harness.exporter.update { $0.workers = [.init(instanceID: live.id, podCPU: [0.5, 0.5])] }
            try await harness.waitForMetrics()

            let (first, report) = try await harness.report("run", ["--timeout", "20"])
            #expect(first.status == 0, "\(first.combined)")
            let ghost = try #require(report?.nodeCleanup?.ghosts.first, "\(first.combined)")
            #expect(ghost.node.name == dead.id && !ghost.due)
            #expect(try await api.nodeNames().contains(dead.id), "deleted before its grace")

            try await Task.sleep(for: .seconds(2.1))
            let (second, later) = try await harness.report("run", ["--timeout", "20"])
            #expect(second.status == 0, "\(second.combined)")
            #expect(later?.actions.contains { $0.kind == .deleteNode && $0.nodes == [dead.id] && $0.result == .done } == true, "\(second.combined)")
            #expect(try await api.nodeNames() == ["foreign-worker", "i-0123456789abcdef9", "k3s-server", live.id].sorted())
            #expect(try await Self.events(api).contains { $0 == ("GhostNodeDeleted", dead.id, "kscaler") })
            #expect(try await harness.table.history(limit: 1).events.first?.actions.contains { $0.kind == .deleteNode } == true)
        }
        }
    }

    @Test func aNodeIsDeletedAfterKscalersOwnTerminateAlsoWhenTheRunIsKilledInBetween() async throws {
        try await Self.withAPI { api in
        try await Self.with(api, minNodes: 1, leaseTTL: "20s") { harness in
            let older = try #require(try await harness.launchWorkers(1).first)
            try await Task.sleep(for: .seconds(1.1))
            let newer = try #require(try await harness.launchWorkers(1).first)
            try await api.seed(json: #"{"nodes": [\#(Self.node(older.id, instance: older, ready: true)), \#(Self.node(newer.id, instance: newer, ready: true))]}"#)
            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: older.id, podCPU: [0.1]), .init(instanceID: newer.id, podCPU: [0.1])]
            }
            try await Task.sleep(for: .seconds(1.1))
            try await harness.waitForMetrics()
            // The first run drains the newer node: cordoned and tainted, nothing terminated yet.
            let (started, drained) = try await harness.report("run", ["--timeout", "18"])
            #expect(started.status == 0, "\(started.combined)")
            #expect(drained?.actions.map(\.kind) == [.drainStart], "\(started.combined)")
            #expect(drained?.actions.first?.nodes == [newer.id])
            #expect(try await harness.instances().count == 2)
            // It has no pod to evict (the stand-in lists none): the next run terminates it.
            // Deleting a node (and writing an event) hangs: that run is killed after its terminate.
            try await api.injectFaults(json: #"[{"method": "DELETE", "path_regex": "^/api/v1/nodes/", "delay_seconds": 60, "times": null}, "#
                + #"{"method": "POST", "path_regex": "/events", "delay_seconds": 60, "times": null}]"#)
            // A run's timeout generous enough that a loaded machine still gets it to its terminate.
            let run = try LeaseProcessTests.startRun(harness, extra: ["--timeout", "18"])
            let deadline = ContinuousClock.now + .seconds(60)
            while try await harness.instances().count == 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            kill(run.0.processIdentifier, SIGKILL)
            let killed = await LeaseProcessTests.finish(run)
            #expect(try await harness.instances().map(\.id) == [older.id], "\(killed.output)")
            #expect(try await api.nodeNames().contains(newer.id), "the node went before the kill: the test did not test anything")
            try await api.clearFaults()

            // The killed run's lease expires; the next run finds its record and deletes the Node at once.
            let holder = try await harness.table.holder()
            try await Task.sleep(for: .seconds(max(0, (holder.expiresAt ?? Date()).timeIntervalSinceNow) + 1.1))
            let (result, report) = try await harness.report("run", ["--timeout", "18"])
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.actions.contains { $0.kind == .deleteNode && $0.nodes == [newer.id] } == true, "\(result.combined)")
            #expect(try await api.nodeNames() == [older.id])
            #expect(try await Self.events(api).contains { $0.reason == "GhostNodeDeleted" && $0.node == newer.id })
        }
        }
    }

    /// Every refusal and every garbled answer of the node list: a typed error, exit 3, and no
    /// EC2 action although pods are pending. No credential in any output.
    @Test func aFailingAPIActsOnNothing() async throws {
        try await Self.withAPI { api in
        try await Self.with(api) { harness in
            harness.exporter.update { $0.pending = [.init(cpu: 1, memory: 512 * 1_048_576)] }
            try await harness.waitForMetrics()
            let cases: [(fault: String, words: String)] = [
                (#""status": 401"#, "refused the credentials"), (#""status": 403"#, "forbids list nodes"), (#""status": 404"#, "not found"),
                (#""status": 409"#, "conflict"), (#""status": 429"#, "for now (HTTP 429)"), (#""status": 500"#, "500"),
                (#""status": 200, "body": "<html>not json""#, "not"),
            ]
            for (fault, words) in cases {
                try await api.clearFaults()
                try await api.injectFaults(json: #"[{"method": "GET", "path_regex": "^/api/v1/nodes", \#(fault), "times": null}]"#)
                let result = try await harness.kscaler(["run", "--timeout", "20", "--log-level", "debug"])
                #expect(result.status == 3, "\(fault): \(result.combined)")
                #expect(result.combined.contains("Kubernetes API: listing the nodes and pods failed"), "\(fault): \(result.combined)")
                #expect(result.combined.lowercased().contains(words.lowercased()), "\(fault): \(result.combined)")
                #expect(!result.combined.contains(api.token), "\(fault): the token leaked")
                #expect(try await harness.instances().isEmpty, "\(fault): launched although the API failed")
            }
        }
        }
    }

    /// The token-in-SSM shape (ECS, systemd): server + CA from the configuration, the token
    /// read from a SecureString in moto; `doctor` proves each permission and names a missing one.
    @Test func doctorWithTheTokenInSSMChecksIdentityAndEveryPermission() async throws {
        try await Self.withAPI { api in
        let ca = try Data(contentsOf: URL(fileURLWithPath: api.caFile)).base64EncodedString()
        let parameter = "/kscaler/\(Peers.uniqueName("kube"))/kube-token"
        try await EndToEndHarness.with(kubernetes: "{server: \"\(api.server)\", ca_data: \(ca), token_parameter: \(parameter)}") { harness in
            _ = try await harness.fixture.context.ssm.putParameter(name: parameter, value: api.token)
            let check = try await harness.kscaler(["config", "check"])
            #expect(check.status == 0, "\(check.combined)")
            #expect(check.stdout.contains("kubernetes API: server \(api.server), bearer token from SSM \(parameter)"), "\(check.combined)")

            let doctor = try await harness.kscaler(["doctor"])
            #expect(doctor.stdout.contains("ok   k8s user     authenticated as \(Self.serviceAccount)"), "\(doctor.combined)")
            #expect(doctor.stdout.contains("ok   k8s rbac"), "\(doctor.combined)")
            #expect(!doctor.combined.contains(api.token))

            try await api.setPermissions(json: #"{"\#(Self.serviceAccount)": [{"verb": "delete", "group": "", "resource": "nodes"}]}"#)
            let denied = try await harness.kscaler(["doctor"])
            #expect(denied.status == 5)
            #expect(denied.stdout.contains("FAIL k8s rbac"), "\(denied.combined)")
            #expect(denied.stdout.contains(#"delete nodes: grant a ClusterRole rule {apiGroups: [""], resources: ["nodes"], verbs: ["delete"]}"#),
                    "\(denied.combined)")
            #expect(!denied.combined.contains(api.token))
        }
        }
    }
}
