import AWS
import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// `kscaler protect` / `unprotect` as separate processes (the release binary) against moto
/// (signature checking on), a real Prometheus, and for the node annotation the stand-in
/// Kubernetes API server (infra/local/ksandbox/kubeapi.py: it stands in for kube-apiserver's
/// node GET, LIST and JSON merge PATCH, kept honest by the real kubectl in
/// infra/local/tests/test_kubeapi_kubectl.py).
@Suite(.serialized) struct ProtectEndToEndTests {
    struct Protected: Decodable {
        var instance_id: String
        var node_name: String?
        var protected: Bool
        var until: Date?
        var tag_changed: Bool
        var annotation: String
    }

    static func decode(_ result: KScalerProcess.Result) throws -> Protected {
        try EndToEndHarness.decoder.decode(Protected.self, from: Data(result.stdout.utf8))
    }

    /// Two calm workers; the newer (newest first: the natural victim) is protected.
    @Test func aProtectedMachineIsListedByPlanAndNeverAVictimUntilUnprotected() async throws {
        try await EndToEndHarness.with(minNodes: 0) { harness in
            let older = try #require(try await harness.launchWorkers(1).first)
            try await Task.sleep(for: .seconds(1.1))
            let newer = try #require(try await harness.launchWorkers(1).first)

            let first = try await harness.kscaler(["protect", newer.id, "--output", "json"])
            #expect(first.status == 0, "\(first.combined)")
            let protected = try Self.decode(first)
            #expect(protected.instance_id == newer.id && protected.protected && protected.until == nil && protected.tag_changed)
            #expect(protected.annotation == "Kubernetes API off")
            let tags = try #require(try await harness.ec2.describeInstances(filters: [], instanceIDs: [newer.id]).first?.tags)
            #expect(tags[EC2Fleet.protectedTag] == "true" && tags[EC2Fleet.protectedUntilTag] == nil)
            // Idempotent: the second time changes nothing, and says so.
            let again = try await harness.kscaler(["protect", newer.id], environment: harness.environment.merging(["USER": "alice"]) { _, new in new })
            #expect(again.status == 0 && again.stdout.contains("already so: nothing changed"), "\(again.combined)")
            // Both are in the history, newest first, with who and what came of them.
            let recorded = try await harness.table.history(limit: 5).events.flatMap(\.actions)
            #expect(recorded.map(\.kind) == [.protect, .protect])
            #expect(recorded.map(\.instanceIDs) == [[newer.id], [newer.id]])
            #expect(recorded.first?.detail == "by alice, for ever, already so")
            let history = try await harness.kscaler(["history"])
            #expect(history.stdout.contains("protected (by alice, for ever, already so) · \(newer.id)"), "\(history.stdout)")

            harness.exporter.update { cluster in
                cluster.workers = [.init(instanceID: older.id, podCPU: [0.1]), .init(instanceID: newer.id, podCPU: [0.1])]
            }
            try await Task.sleep(for: .seconds(1.1))  // past boot grace and the (1 s) cooldowns
            try await harness.waitForMetrics()

            let (planned, plan) = try await harness.report("plan")
            #expect(planned.status == 0, "\(planned.combined)")
            let listed = try #require(plan?.decision?.protectedMachines.first { $0.instanceID == newer.id }, "\(planned.stdout)")
            #expect(listed.isProtected && listed.marks.map(\.source) == [.tag])
            let human = try await harness.kscaler(["plan"])
            #expect(human.stdout.contains("protected   machines never chosen as victims"), "\(human.stdout)")
            #expect(human.stdout.contains("tag kscaler:protected: never a victim"))

            // The scale-down passes over the protected newer worker and takes the older one.
            let (ran, report) = try await harness.report()
            #expect(ran.status == 0, "\(ran.combined)")
            #expect(report?.actions.first?.kind == .terminate)
            #expect(report?.actions.first?.instanceIDs == [older.id])
            #expect(try await harness.instances().map(\.id) == [newer.id])

            // Unprotected, it goes next.
            let unprotected = try await harness.kscaler(["unprotect", newer.id, "--output", "json"])
            #expect(unprotected.status == 0, "\(unprotected.combined)")
            #expect(try Self.decode(unprotected).tag_changed)
            let cleared = try #require(try await harness.ec2.describeInstances(filters: [], instanceIDs: [newer.id]).first?.tags)
            #expect(cleared[EC2Fleet.protectedTag] == nil && cleared[EC2Fleet.protectedUntilTag] == nil)
            let twice = try await harness.kscaler(["unprotect", newer.id, "--output", "json"])
            #expect(twice.status == 0 && (try? Self.decode(twice).tag_changed) == false, "\(twice.combined)")
            harness.exporter.update { $0.workers = [.init(instanceID: newer.id, podCPU: [0.1])] }
            try await Task.sleep(for: .seconds(1.1))
            try await harness.waitForMetrics()
            let (last, lastReport) = try await harness.report()
            #expect(last.status == 0, "\(last.combined)")
            #expect(lastReport?.actions.first?.instanceIDs == [newer.id])
        }
    }

    @Test func anExpiredProtectionIsNoProtection() async throws {
        try await EndToEndHarness.with(minNodes: 0) { harness in
            let worker = try #require(try await harness.launchWorkers(1).first)
            let protect = try await harness.kscaler(["protect", worker.id, "--until", "10s", "--output", "json"])
            #expect(protect.status == 0, "\(protect.combined)")
            let until = try #require(try Self.decode(protect).until)
            let tags = try #require(try await harness.ec2.describeInstances(filters: [], instanceIDs: [worker.id]).first?.tags)
            #expect(tags[EC2Fleet.protectedTag] == "true" && tags[EC2Fleet.protectedUntilTag].flatMap(Protection.parseTime) == until)

            // Still protected: plan lists it with its end (whatever else it has to say).
            let (_, before) = try await harness.report("plan")
            let mark = try #require(before?.decision?.protectedMachines.first?.marks.first, "\(String(describing: before))")
            #expect(!mark.expired && mark.until == until)

            harness.exporter.update { $0.workers = [.init(instanceID: worker.id, podCPU: [0.1])] }
            // Past its end: plan says it expired, and the run takes it.
            let wait = until.timeIntervalSinceNow + 0.5
            if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
            try await harness.waitForMetrics()
            let (_, after) = try await harness.report("plan")
            let expired = try #require(after?.decision?.protectedMachines.first)
            #expect(!expired.isProtected && expired.marks.first?.expired == true)
            let human = try await harness.kscaler(["plan"])
            #expect(human.stdout.contains("expired") && human.stdout.contains("a victim again"), "\(human.stdout)")
            let (ran, report) = try await harness.report()
            #expect(ran.status == 0, "\(ran.combined)")
            #expect(report?.actions.first?.instanceIDs == [worker.id])
        }
    }

    @Test func aMachineOfAnotherClusterOrNoneIsRefusedAndNothingChanges() async throws {
        let port = try StubHTTPServer.unusedPort()  // no Prometheus needed: protect reads none
        try await EndToEndHarness.with(prometheusURL: "http://127.0.0.1:\(port)") { harness in
            let foreign = try #require(try await harness.ec2.runInstances(RunInstancesRequest(
                imageID: "ami-760aaa0f", instanceType: "t3.large", count: 1, subnetID: harness.subnet,
                instanceTags: ["kscaler:cluster": "someone-else"])).first)
            let refused = try await harness.kscaler(["protect", foreign.id])
            #expect(refused.status == 6, "\(refused.combined)")
            #expect(refused.stderr.contains("not tagged kscaler:cluster=\(harness.clusterID)") && refused.stderr.contains("Nothing was changed"))
            let tags = try #require(try await harness.ec2.describeInstances(filters: [], instanceIDs: [foreign.id]).first?.tags)
            #expect(tags[EC2Fleet.protectedTag] == nil && tags["kscaler:cluster"] == "someone-else")
            #expect(try await harness.kscaler(["unprotect", foreign.id]).status == 6)

            let unknown = try await harness.kscaler(["protect", "i-0123456789abcdef0"])
            #expect(unknown.status == 6 && unknown.stderr.contains("EC2 knows no instance"), "\(unknown.combined)")
            // Without the Kubernetes API a node name cannot be resolved.
            let node = try await harness.kscaler(["protect", "worker-7"])
            #expect(node.status == 6 && node.stderr.contains("without the Kubernetes API"), "\(node.combined)")
            // A terminated machine of ours is no live machine.
            let ours = try #require(try await harness.launchWorkers(1).first)
            _ = try await harness.ec2.terminateInstances(ids: [ours.id])
            let gone = try await harness.kscaler(["protect", ours.id])
            #expect(gone.status == 6, "\(gone.combined)")
            // --until must be a time or a duration, in the future.
            let badUntil = try await harness.kscaler(["protect", ours.id, "--until", "next week"])
            #expect(badUntil.status == 64 && badUntil.stderr.contains("RFC 3339"), "\(badUntil.combined)")
        }
    }

    @Test func withTheAPIOnANodeNameIsResolvedAndAnnotated() async throws {
        try await KubernetesEndToEndTests.withAPI { api in
        try await KubernetesEndToEndTests.with(api) { harness in
            let worker = try #require(try await harness.launchWorkers(1).first)
            // The node is named unlike its instance: only its provider id says which it is.
            try await api.seed(json: #"{"nodes": [\#(KubernetesEndToEndTests.node("worker-a", instance: worker, ready: true))]}"#)
            let protect = try await harness.kscaler(["protect", "worker-a", "--until", "2h", "--output", "json"])
            #expect(protect.status == 0, "\(protect.combined)")
            let result = try Self.decode(protect)
            #expect(result.instance_id == worker.id && result.node_name == "worker-a" && result.annotation == "set")
            let until = try #require(result.until)
            #expect(try await Self.annotation(api, "worker-a") == formatDate(until))
            let tags = try #require(try await harness.ec2.describeInstances(filters: [], instanceIDs: [worker.id]).first?.tags)
            #expect(tags[EC2Fleet.protectedUntilTag] == formatDate(until))

            // By instance id, the node is found too; for ever replaces the end, in both places.
            let forever = try await harness.kscaler(["protect", worker.id, "--output", "json"])
            #expect(forever.status == 0 && (try? Self.decode(forever).annotation) == "set", "\(forever.combined)")
            #expect(try await Self.annotation(api, "worker-a") == "true")
            let retagged = try #require(try await harness.ec2.describeInstances(filters: [], instanceIDs: [worker.id]).first?.tags)
            #expect(retagged[EC2Fleet.protectedTag] == "true" && retagged[EC2Fleet.protectedUntilTag] == nil)

            let unprotect = try await harness.kscaler(["unprotect", "worker-a", "--output", "json"])
            #expect(unprotect.status == 0 && (try? Self.decode(unprotect).annotation) == "removed", "\(unprotect.combined)")
            #expect(try await Self.annotation(api, "worker-a") == nil)

            let missing = try await harness.kscaler(["protect", "no-such-node"])
            #expect(missing.status == 6 && missing.stderr.contains("no node of that name"), "\(missing.combined)")
        }
        }
    }

    static func annotation(_ api: KubeAPIProcess, _ node: String) async throws -> String? {
        let nodes = try await api.state()["nodes"] as? [[String: Any]] ?? []
        let object = nodes.first { (($0["metadata"] as? [String: Any])?["name"] as? String) == node }
        return ((object?["metadata"] as? [String: Any])?["annotations"] as? [String: Any])?[Protection.annotation] as? String
    }
}
