// The client against the stand-in API server (infra/local/ksandbox/kubeapi.py: HTTPS with its
// own CA, bearer-token and client-certificate users, real Status answers), through the
// kubeconfigs it writes, CurlTransport and TLS as in production.
import Foundation
import HTTP
import Kubernetes
import TestSupport
import Testing

private let serviceAccount = "system:serviceaccount:kube-system:kscaler"

private let seed = """
    {"nodes": [{"name": "i-0a", "provider_id": "aws:///us-east-1a/i-0a", "ready": true, "labels": {"pool": "workers"}},
               {"name": "i-0b", "provider_id": "aws:///us-east-1b/i-0b", "ready": false, "labels": {"pool": "workers"}},
               {"name": "server-0", "ready": true, "labels": {"node-role.kubernetes.io/control-plane": "true"}}],
     "pods": [{"namespace": "web", "name": "web-0", "node": "i-0a", "owner_kind": "ReplicaSet", "owner_name": "web-5d9", "labels": {"app": "web"}},
              {"namespace": "web", "name": "web-1", "node": "i-0b", "owner_kind": "ReplicaSet", "owner_name": "web-5d9", "labels": {"app": "web"}},
              {"namespace": "kube-system", "name": "svclb-traefik-a", "node": "i-0a", "owner_kind": "DaemonSet", "owner_name": "svclb-traefik"}],
     "pdbs": [{"namespace": "web", "name": "web-pdb", "match_labels": {"app": "web"}, "disruptions_allowed": 0}]}
    """

/// Starts the stand-in (seeded), runs `body`, stops it whatever happens.
private func withKubeAPI(_ arguments: [String] = [], seeded: Bool = true, _ body: (KubeAPIProcess) async throws -> Void) async throws {
    let api = try await KubeAPIProcess.start(arguments)
    do {
        if seeded { try await api.seed(json: seed) }
        try await body(api)
    } catch {
        await api.stop()
        throw error
    }
    await api.stop()
}

/// `spec.taints` of a node as the stand-in stores it.
private func storedTaints(_ api: KubeAPIProcess, _ node: String) async throws -> [JSONValue] {
    let response = try await api.request("GET", "/api/v1/nodes/\(node)")
    return try JSONDecoder().decode(JSONValue.self, from: response.body)["spec"]?["taints"].flatMap {
        if case .array(let taints) = $0 { return taints }
        return nil
    } ?? []
}

/// What the stand-in was asked since its log was last cleared (its own control calls left out).
private func loggedRequests(_ api: KubeAPIProcess) async throws -> [(method: String, path: String, status: Int)] {
    struct Requests: Decodable {
        struct Entry: Decodable { var method: String; var path: String; var status: Int }
        var requests: [Entry]
    }
    let log = try await api.request("GET", "/_standin/requests")
    return try JSONDecoder().decode(Requests.self, from: log.body).requests
        .filter { !$0.path.hasPrefix("/_standin/") }.map { ($0.method, $0.path, $0.status) }
}

/// Fault rules not used up yet.
private func pendingFaults(_ api: KubeAPIProcess) async throws -> Int {
    struct Faults: Decodable { var faults: [JSONValue] }
    return try JSONDecoder().decode(Faults.self, from: try await api.request("GET", "/_standin/faults").body).faults.count
}

/// A client for a kubeconfig, resolved without looking at this machine's environment or home.
private func client(kubeconfig: String, timeout: Duration = .seconds(30)) throws -> KubernetesClient {
    let endpoint = try KubernetesEndpointResolver(environment: [:], homeDirectory: "/nonexistent").fromKubeconfig(path: kubeconfig)
    // Generous connect timeout: a loaded 2-core machine can be slow to finish a handshake.
    return try KubernetesClient(endpoint: endpoint, timeout: timeout, makeTransport: { CurlTransport(connectTimeout: .seconds(20), tls: $0) })
}

// One stand-in at a time: each starts a Python process and mints certificates with openssl, and
// a dozen of those at once on a loaded 2-core machine starved every other test for seconds.
@Suite(.serialized, .timeLimit(.minutes(3))) struct KubeAPIIntegrationTests {
    @Test func aTokenKubeconfigListsNodesAndIsTheServiceAccount() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            #expect(kube.endpoint.description == "kubeconfig \(api.kubeconfigToken), context kscaler-standin, user kscaler (token)")
            #expect(try await kube.version() == "v1.31.0")
            #expect(try await kube.whoAmI() == serviceAccount)

            let nodes = try await kube.listNodes()
            #expect(nodes.map(\.name).sorted() == ["i-0a", "i-0b", "server-0"])
            let a = try #require(nodes.first { $0.name == "i-0a" })
            #expect(a.providerID == "aws:///us-east-1a/i-0a")
            #expect(a.ready == true)
            #expect(!a.uid.isEmpty && !a.resourceVersion.isEmpty)
            #expect(nodes.first { $0.name == "i-0b" }?.ready == false)
            #expect(try await kube.listNodes(labelSelector: "pool=workers").map(\.name).sorted() == ["i-0a", "i-0b"])
            #expect(try await kube.listNodes(labelSelector: "!node-role.kubernetes.io/control-plane").count == 2)

            let pods = try await kube.listPods(nodeName: "i-0a")
            #expect(pods.map(\.name).sorted() == ["svclb-traefik-a", "web-0"])
            #expect(pods.first { $0.name == "svclb-traefik-a" }?.isDaemonSetPod == true)
            #expect(try await kube.listPods(nodeName: "i-0a", namespace: "web").map(\.name) == ["web-0"])

            let budgets = try await kube.listPodDisruptionBudgets(namespace: "web")
            let budget = try #require(budgets.first)
            #expect(budget.name == "web-pdb")
            #expect(budget.disruptionsAllowed == 0)
            #expect(budget.selects(try #require(pods.first { $0.name == "web-0" })))
            #expect(!budget.selects(try #require(pods.first { $0.name == "svclb-traefik-a" })))

            let wrongToken = try String(contentsOfFile: api.kubeconfigToken, encoding: .utf8).replacingOccurrences(of: api.token, with: "not-the-token")
            let scratch = try ScratchDirectory()
            let refused = try client(kubeconfig: try scratch.write("config", wrongToken))
            let error = await kubernetesError { _ = try await refused.listNodes() }
            guard case .unauthorized? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(error?.description.contains("not-the-token") == false)
        }
    }

    @Test func clientCertificateKubeconfigsWithDataFilesAndRelativePaths() async throws {
        try await withKubeAPI { api in
            let scratch = try ScratchDirectory()
            for name in ["ca.crt", "client.crt", "client.key"] {
                let source = (api.caFile as NSString).deletingLastPathComponent + "/" + name
                try scratch.write("pki/\(name)", try String(contentsOfFile: source, encoding: .utf8))
            }
            let relative = try scratch.write("config", kubeconfigYAML(
                cluster: "server: \(api.server)\ncertificate-authority: pki/ca.crt",
                user: "client-certificate: pki/client.crt\nclient-key: ./pki/client.key"))
            for kubeconfig in [api.kubeconfigCert, api.kubeconfigCertFiles, relative] {
                let kube = try client(kubeconfig: kubeconfig)
                #expect(kube.endpoint.description.hasSuffix("(client certificate)"))
                #expect(kube.endpoint.tls.clientCertificate != nil)
                #expect(try await kube.whoAmI() == "kscaler-test", "\(kubeconfig)")
                #expect(try await kube.listNodes().count == 3)
            }

            // Without the certificate (and no token) the server sees an anonymous client.
            let anonymous = try scratch.write("anonymous", kubeconfigYAML(cluster: "server: \(api.server)\ncertificate-authority: pki/ca.crt", user: "{}"))
            let error = await kubernetesError { _ = try await client(kubeconfig: anonymous).listNodes() }
            #expect(error?.httpStatus == 401 || error?.httpStatus == 403, "\(String(describing: error))")

            // Another CA's certificate for the server: the TLS handshake fails.
            let otherCA = try scratch.write("other", kubeconfigYAML(cluster: "server: \(api.server)\ncertificate-authority-data: \(base64(caPEM))",
                                                                    user: "client-certificate: pki/client.crt\nclient-key: pki/client.key"))
            let tlsError = await kubernetesError { _ = try await client(kubeconfig: otherCA).version() }
            guard case .transport(let httpError, _)? = tlsError else { Issue.record("got \(String(describing: tlsError))"); return }
            #expect(httpError.kind == .tls)
        }
    }

    @Test func cordonWithAStaleResourceVersionIsAConflict() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let before = try await kube.getNode(name: "i-0a")
            #expect(!before.unschedulable)
            let cordoned = try await kube.cordon(name: "i-0a", resourceVersion: before.resourceVersion)
            #expect(cordoned.unschedulable)
            #expect(cordoned.resourceVersion != before.resourceVersion)

            let error = await kubernetesError { _ = try await kube.uncordon(name: "i-0a", resourceVersion: before.resourceVersion) }
            guard case .conflict(let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(failure.status?.reason == "Conflict")
            #expect(failure.message.contains("the object has been modified"))
            #expect(try await kube.getNode(name: "i-0a").unschedulable)

            let uncordoned = try await kube.uncordon(name: "i-0a", resourceVersion: cordoned.resourceVersion)
            #expect(!uncordoned.unschedulable)
        }
    }

    @Test func deleteWithAnotherUIDIsAConflictAndWithItsOwnDeletes() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let node = try await kube.getNode(name: "i-0b")
            let error = await kubernetesError { try await kube.deleteNode(name: "i-0b", uid: "00000000-0000-4000-8000-000000000000") }
            guard case .conflict(let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(failure.message.contains("Precondition failed: UID in precondition"), "\(failure.message)")
            #expect(error?.requestMayHaveTakenEffect == false)

            try await kube.deleteNode(name: "i-0b", uid: node.uid)
            let gone = await kubernetesError { _ = try await kube.getNode(name: "i-0b") }
            guard case .notFound? = gone else { Issue.record("got \(String(describing: gone))"); return }
        }
    }

    @Test func anEvictionABudgetRefusesIsTooManyRequestsNamingTheBudget() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let pod = try #require(try await kube.listPods(nodeName: "i-0a", namespace: "web").first)
            let error = await kubernetesError { try await kube.evict(namespace: "web", pod: "web-0", gracePeriodSeconds: 30, uid: pod.uid) }
            guard case .tooManyRequests(let failure, _)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(failure.message.hasPrefix("Cannot evict pod as it would violate the pod's disruption budget."))
            #expect(failure.message.contains("The disruption budget web-pdb needs"), "\(failure.message)")
            #expect(error?.requestMayHaveTakenEffect == false)

            // The budget allows one: the eviction goes through and the pod is gone.
            try await api.seed(json: #"{"pdbs": [{"namespace": "web", "name": "web-pdb", "match_labels": {"app": "web"}, "disruptions_allowed": 1}]}"#)
            #expect(try await kube.listPodDisruptionBudgets().first?.disruptionsAllowed == 1)
            try await kube.evict(namespace: "web", pod: "web-0", gracePeriodSeconds: 30, uid: pod.uid)
            #expect(try await kube.listPods(nodeName: "i-0a").map(\.name) == ["svclb-traefik-a"])

            let again = await kubernetesError { try await kube.evict(namespace: "web", pod: "web-0") }
            guard case .notFound? = again else { Issue.record("got \(String(describing: again))"); return }
        }
    }

    @Test func aTaintIsSetReplacedAndRemovedLeavingOtherTaintsAlone() async throws {
        try await withKubeAPI { api in
            // Someone else's taint, with a field kscaler does not model (timeAdded).
            try await api.seed(json: #"{"nodes": [{"name": "i-0a", "ready": true, "taints": [{"key": "dedicated", "value": "batch", "effect": "NoExecute", "timeAdded": "2024-05-01T11:00:00Z"}]}]}"#)
            let theirs: JSONValue = ["key": "dedicated", "value": "batch", "effect": "NoExecute", "timeAdded": "2024-05-01T11:00:00Z"]
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let before = try await kube.getNode(name: "i-0a")

            let mark = KubeNode.Taint(key: "kscaler.io/to-be-deleted", value: "1714560000", effect: "NoSchedule")
            let tainted = try await kube.setTaint(node: "i-0a", taint: mark)
            #expect(tainted.taints == [KubeNode.Taint(key: "dedicated", value: "batch", effect: "NoExecute"), mark])
            #expect(tainted.resourceVersion != before.resourceVersion)
            #expect(try await storedTaints(api, "i-0a") == [theirs, ["key": "kscaler.io/to-be-deleted", "value": "1714560000", "effect": "NoSchedule"]])

            // The same taint again: nothing to write.
            #expect(try await kube.setTaint(node: "i-0a", taint: mark).resourceVersion == tainted.resourceVersion)

            // Same key and effect: replaced in place. Same key, another effect: a taint of its own.
            let later = KubeNode.Taint(key: "kscaler.io/to-be-deleted", value: "1714560060", effect: "NoSchedule")
            #expect(try await kube.setTaint(node: "i-0a", taint: later).taints.map(\.value) == ["batch", "1714560060"])
            let soft = KubeNode.Taint(key: "kscaler.io/to-be-deleted", effect: "PreferNoSchedule")
            #expect(try await kube.setTaint(node: "i-0a", taint: soft).taints.count == 3)

            // Removing the key removes it whatever the effect; removing it again writes nothing.
            let removed = try await kube.removeTaint(node: "i-0a", key: "kscaler.io/to-be-deleted")
            #expect(removed.taints == [KubeNode.Taint(key: "dedicated", value: "batch", effect: "NoExecute")])
            #expect(try await storedTaints(api, "i-0a") == [theirs])
            _ = try await api.request("DELETE", "/_standin/requests")
            #expect(try await kube.removeTaint(node: "i-0a", key: "kscaler.io/to-be-deleted").resourceVersion == removed.resourceVersion)
            #expect(try await loggedRequests(api).map(\.method) == ["GET"])

            let missing = await kubernetesError { _ = try await kube.setTaint(node: "i-0zz", taint: mark) }
            guard case .notFound? = missing else { Issue.record("got \(String(describing: missing))"); return }
        }
    }

    /// Someone edits the node between kscaler's read and its write: the write is refused for
    /// its stale resourceVersion, and the edit is redone on the node as it now is.
    @Test func aTaintEditRacedByAnotherWriterIsRedoneAndKeepsTheirEdit() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            _ = try await api.request("DELETE", "/_standin/requests")
            // kscaler's patch is held 5 s in the server, after its read.
            try await api.injectFaults(json: #"[{"method": "PATCH", "path_regex": "^/api/v1/nodes/i-0a$", "delay_seconds": 5, "times": 1}]"#)
            let mark = KubeNode.Taint(key: "kscaler.io/to-be-deleted", value: "1714560000", effect: "NoSchedule")
            let tainting = Task { try await kube.setTaint(node: "i-0a", taint: mark) }
            // The rule is used up once the held patch has arrived; then the other writer edits.
            let deadline = ContinuousClock.now + .seconds(30)
            while try await pendingFaults(api) > 0 {
                guard ContinuousClock.now < deadline else { Issue.record("kscaler's patch never arrived"); break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let edit = try await api.request("PATCH", "/api/v1/nodes/i-0a", body: #"{"metadata": {"labels": {"edited": "meanwhile"}}}"#,
                                             contentType: "application/merge-patch+json")
            #expect(edit.status == 200)

            let node = try await tainting.value
            #expect(node.taints.contains(mark))
            #expect(node.labels["edited"] == "meanwhile")
            let patches = try await loggedRequests(api).filter { $0.method == "PATCH" }
            #expect(patches.map(\.status) == [200, 409, 200], "\(patches)")  // theirs, kscaler's stale one, kscaler's again
        }
    }

    @Test func aTaintEditGivesUpAfterThreeConflicts() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let conflict = statusJSON(code: 409, reason: "Conflict", message: #"Operation cannot be fulfilled on nodes \"i-0a\": the object has been modified; please apply your changes to the latest version and try again"#)
            let body = String(decoding: try JSONEncoder().encode(conflict), as: UTF8.self)
            try await api.injectFaults(json: #"[{"method": "PATCH", "path_regex": "^/api/v1/nodes/i-0a$", "status": 409, "body": \#(body), "times": 3}]"#)
            _ = try await api.request("DELETE", "/_standin/requests")
            let error = await kubernetesError { _ = try await kube.setTaint(node: "i-0a", taint: KubeNode.Taint(key: "k", effect: "NoSchedule")) }
            guard case .conflict(let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(failure.request.operation == "patch node i-0a")
            #expect(try await loggedRequests(api).map(\.method) == ["GET", "PATCH", "GET", "PATCH", "GET", "PATCH"])
            #expect(try await kube.getNode(name: "i-0a").taints.isEmpty)
        }
    }

    @Test func aPodIsDeletedOnlyByItsOwnUID() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let pod = try #require(try await kube.listPods(namespace: "web").first { $0.name == "web-1" })
            let error = await kubernetesError { try await kube.deletePod(namespace: "web", name: "web-1", uid: "00000000-0000-4000-8000-000000000000") }
            guard case .conflict(let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(failure.httpStatus == 409)
            #expect(failure.message.contains("Precondition failed: UID in precondition"), "\(failure.message)")
            #expect(try await kube.listPods(namespace: "web").map(\.name) == ["web-0", "web-1"])

            try await kube.deletePod(namespace: "web", name: "web-1", uid: pod.uid, gracePeriodSeconds: 0)
            #expect(try await kube.listPods(namespace: "web").map(\.name) == ["web-0"])
            let gone = await kubernetesError { try await kube.deletePod(namespace: "web", name: "web-1", uid: pod.uid) }
            guard case .notFound? = gone else { Issue.record("got \(String(describing: gone))"); return }

            try await api.setPermissions(json: #"{"\#(serviceAccount)": [{"verb": "delete", "group": "", "resource": "pods"}]}"#)
            let denied = await kubernetesError { try await kube.deletePod(namespace: "web", name: "web-0", uid: "u") }
            guard case .forbidden(_, let rule)? = denied else { Issue.record("got \(String(describing: denied))"); return }
            #expect(rule == RBACRule(verb: "delete", resource: "pods", namespace: "web"))
        }
    }

    @Test func podsAreSizedAsTheSchedulerCountsThem() async throws {
        try await withKubeAPI { api in
            try await api.seed(json: """
                {"pods": [{"namespace": "web", "name": "web-0", "node": "i-0a", "owner_kind": "ReplicaSet", "requests": {"cpu": "500m", "memory": "256Mi"},
                           "init_requests": [{"cpu": 2, "memory": "64Mi"}], "overhead": {"cpu": "250m", "memory": "64Mi"},
                           "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "config", "configMap": {"name": "web"}},
                                       {"name": "host", "hostPath": {"path": "/var/lib/web"}}]},
                          {"namespace": "web", "name": "web-1", "node": "i-0a", "owner_kind": "ReplicaSet"}]}
                """)
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let pods = try await kube.listPods(nodeName: "i-0a")
            let sized = try #require(pods.first { $0.name == "web-0" })
            #expect(sized.requests == ResourceRequests(cpu: 2.25, memory: 320 * 1_048_576))
            #expect(sized.localStorageVolumes == ["cache", "host"])
            #expect(pods.first { $0.name == "web-1" }?.requests == .zero)
            let node = try await kube.getNode(name: "i-0a")
            #expect(node.allocatableCPU == 2)
            #expect(node.allocatableMemory == Double(8 * 1_073_741_824))
        }
    }

    /// A pending pod seeded by the stand-in's shorthand, and one created as kubectl creates it
    /// (the decoding fixture's object, POSTed whole): both list with their constraints, as
    /// unschedulable once a scheduler said so; a scheduled pod is not.
    @Test func pendingPodsListWithTheirPlacementConstraints() async throws {
        try await withKubeAPI { api in
            try await api.seed(json: #"""
                {"pods": [{"namespace": "web", "name": "web-0", "node": "i-0a", "owner_kind": "ReplicaSet", "tolerations": [{"operator": "Exists"}]},
                          {"namespace": "web", "name": "web-pending", "node": null, "phase": "Pending", "owner_kind": "ReplicaSet",
                           "node_selector": {"kscaler.io/pool": "gpu"},
                           "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                               {"matchExpressions": [{"key": "example.com/cores", "operator": "Lt", "values": ["64"]}]}]}}},
                           "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}]}
                """#)
            // What a client sends: no uid, resourceVersion, creation time or status.
            guard case .object(var pod) = try JSONDecoder().decode(JSONValue.self, from: Data(pendingPodJSON.utf8)),
                  case .object(var metadata)? = pod["metadata"] else { Issue.record("the fixture is no object"); return }
            for field in ["uid", "resourceVersion", "creationTimestamp"] { metadata[field] = nil }
            pod["metadata"] = .object(metadata)
            pod["status"] = nil
            let created = try await api.request("POST", "/api/v1/namespaces/ml/pods",
                                                body: String(decoding: try JSONEncoder().encode(JSONValue.object(pod)), as: UTF8.self))
            #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self).prefix(300))")

            let kube = try client(kubeconfig: api.kubeconfigToken)
            let pods = try await kube.listPods()
            #expect(pods.map(\.name).sorted() == ["trainer", "web-0", "web-pending"])

            let pending = try #require(pods.first { $0.name == "web-pending" })
            #expect(pending.unschedulable)
            #expect(pending.nodeSelector == ["kscaler.io/pool": "gpu"])
            #expect(pending.requiredNodeAffinity == [KubePod.NodeSelectorTerm(matchExpressions: [.init(key: "example.com/cores", operator: "Lt", values: ["64"])])])
            #expect(pending.tolerations == [KubePod.Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule")])

            let running = try #require(pods.first { $0.name == "web-0" })
            #expect(!running.unschedulable)
            #expect(running.tolerations == [KubePod.Toleration(operator: "Exists")])
            #expect(running.requiredNodeAffinity == nil && running.nodeSelector.isEmpty)

            let trainer = try #require(pods.first { $0.name == "trainer" })
            let fixture = try JSONDecoder().decode(KubePod.self, from: Data(pendingPodJSON.utf8))
            #expect(trainer.nodeSelector == fixture.nodeSelector)
            #expect(trainer.requiredNodeAffinity == fixture.requiredNodeAffinity)
            #expect(trainer.tolerations == fixture.tolerations)
            // No scheduler runs behind the stand-in: nothing has found it unschedulable yet.
            #expect(!trainer.unschedulable && trainer.nodeName == nil)
        }
    }

    @Test func accessReviewsAndAForbiddenCallNameThePermission() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let allowed = try await kube.accessReview(verb: "create", group: "", resource: "pods", subresource: "eviction", namespace: "web")
            #expect(allowed.allowed)

            try await api.setPermissions(json: #"{"\#(serviceAccount)": [{"verb": "create", "group": "", "resource": "pods/eviction"}, {"verb": "patch", "group": "", "resource": "nodes"}]}"#)
            let denied = try await kube.accessReview(verb: "create", group: "", resource: "pods", subresource: "eviction", namespace: "web")
            #expect(!denied.allowed)
            #expect(denied.reason?.contains("denies create on pods/eviction") == true, "\(String(describing: denied.reason))")
            #expect(try await kube.accessReview(verb: "list", group: "", resource: "nodes").allowed)

            let error = await kubernetesError { _ = try await kube.cordon(name: "i-0a") }
            guard case .forbidden(let failure, let rule)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(rule == RBACRule(verb: "patch", resource: "nodes"))
            #expect(failure.message.contains(#"User "\#(serviceAccount)" cannot patch resource "nodes""#), "\(failure.message)")
            #expect(error?.description.contains(#"grant it with a ClusterRole rule {apiGroups: [""], resources: ["nodes"], verbs: ["patch"]}"#) == true)
        }
    }

    @Test func whoAmIOnA127ServerUsesV1beta1() async throws {
        try await withKubeAPI(["--server-version", "1.27.6"], seeded: false) { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            #expect(try await kube.whoAmI() == serviceAccount)
            #expect(try await kube.version() == "v1.27.6")
        }
    }

    @Test func aNodeEventIsRecordedInDefault() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let node = try await kube.getNode(name: "i-0a")
            let event = KubeEvent.node(node.name, uid: node.uid, reason: "ScaleDownBlocked",
                                       message: "web/web-0 is protected by PodDisruptionBudget web-pdb", type: .warning)
            try await kube.createEvent(event)
            let response = try await api.request("GET", "/api/v1/namespaces/default/events")
            struct Events: Decodable { var items: [JSONValue] }
            let stored = try #require(try JSONDecoder().decode(Events.self, from: response.body).items.first)
            #expect(stored["metadata"]?["name"] == .string(event.name))
            #expect(stored["involvedObject"] == ["kind": "Node", "name": "i-0a", "uid": .string(node.uid), "apiVersion": "v1"])
            #expect(stored["reason"] == "ScaleDownBlocked")
            #expect(stored["type"] == "Warning")
            #expect(stored["source"]?["component"] == "kscaler")
            #expect(stored["count"] == 1)

            // The same name again is refused as existing: a conflict, not a silent duplicate.
            let again = await kubernetesError { try await kube.createEvent(event) }
            guard case .conflict(let failure)? = again else { Issue.record("got \(String(describing: again))"); return }
            #expect(failure.status?.reason == "AlreadyExists")
        }
    }

    @Test func listsArePagedWithContinueTokens() async throws {
        try await withKubeAPI(seeded: false) { api in
            let nodes = (0..<(KubernetesClient.pageSize + 20)).map { #"{"name": "n-\#($0)"}"# }.joined(separator: ",")
            try await api.seed(json: #"{"nodes": [\#(nodes)]}"#)
            _ = try await api.request("DELETE", "/_standin/requests")
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let listed = try await kube.listNodes()
            #expect(listed.count == KubernetesClient.pageSize + 20)
            #expect(Set(listed.map(\.name)).count == listed.count)
            let log = try await api.request("GET", "/_standin/requests")
            struct Requests: Decodable { struct Entry: Decodable { var method: String; var path: String }; var requests: [Entry] }
            let lists = try JSONDecoder().decode(Requests.self, from: log.body).requests.filter { $0.path.hasPrefix("/api/v1/nodes") }
            #expect(lists.count == 2, "\(lists.map(\.path))")
        }
    }

    @Test func aFailedDeleteMayHaveTakenEffectAndASlowAnswerTimesOut() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let node = try await kube.getNode(name: "i-0a")
            try await api.injectFaults(json: #"[{"method": "DELETE", "path_regex": "^/api/v1/nodes/", "status": 500, "body": "upstream hiccup", "times": 1}]"#)
            let error = await kubernetesError { try await kube.deleteNode(name: "i-0a", uid: node.uid) }
            guard case .server(500, let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
            #expect(failure.message == "upstream hiccup")
            #expect(error?.requestMayHaveTakenEffect == true)

            try await api.injectFaults(json: #"[{"path_regex": "^/api/v1/pods", "delay_seconds": 5, "times": 1}]"#)
            let impatient = try client(kubeconfig: api.kubeconfigToken, timeout: .seconds(1))
            let slow = await kubernetesError { _ = try await impatient.listPods() }
            guard case .transport(let httpError, let request)? = slow else { Issue.record("got \(String(describing: slow))"); return }
            #expect(httpError.kind == .timedOut)
            #expect(request.operation == "list pods")
        }
    }
}

/// The credential shapes a kubeconfig or a pod can hold, each against the stand-in: the server
/// must see the service account, whatever carried its token there.
@Suite(.serialized, .timeLimit(.minutes(3))) struct KubeAPICredentialShapesTests {
    @Test func aTokenFileAnExecPluginAndThePodsServiceAccountAllAuthenticate() async throws {
        try await withKubeAPI(seeded: false) { api in
            let scratch = try ScratchDirectory()
            let ca = "certificate-authority: \(api.caFile)"
            // tokenFile: read when the kubeconfig is resolved.
            let tokenFile = try scratch.write("token-file", kubeconfigYAML(cluster: "server: \(api.server)\n\(ca)", user: "tokenFile: \(api.tokenFile)"))
            #expect(try await client(kubeconfig: tokenFile).whoAmI() == serviceAccount)

            // An exec plugin that prints the service account's token (never on a command line).
            let plugin = try scratch.write("bin/token-plugin", """
                #!/bin/sh
                printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat '\(api.tokenFile)')"
                """, executable: true)
            let exec = try scratch.write("exec", kubeconfigYAML(cluster: "server: \(api.server)\n\(ca)", user: """
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: \(plugin)
                  interactiveMode: Never
                """))
            let viaPlugin = try client(kubeconfig: exec)
            #expect(viaPlugin.endpoint.description.contains("exec plugin"))
            #expect(try await viaPlugin.whoAmI() == serviceAccount)

            // In a pod: KUBERNETES_SERVICE_HOST/PORT and the mounted token and CA.
            let root = scratch.path + "/pod"
            let mounted = root + KubernetesEndpointResolver.serviceAccountDirectory
            try FileManager.default.createDirectory(atPath: mounted, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: api.tokenFile, toPath: mounted + "/token")
            try FileManager.default.copyItem(atPath: api.caFile, toPath: mounted + "/ca.crt")
            let resolver = KubernetesEndpointResolver(environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "\(api.port)"],
                                                      homeDirectory: "/nonexistent", inClusterRoot: root)
            let inPod = try KubernetesClient(endpoint: try resolver.resolve(), timeout: .seconds(30),
                                             makeTransport: { CurlTransport(connectTimeout: .seconds(20), tls: $0) })
            #expect(try await inPod.whoAmI() == serviceAccount)
        }
    }

    @Test func aDryRunDeletionIsCheckedAndChangesNothing() async throws {
        try await withKubeAPI { api in
            let kube = try client(kubeconfig: api.kubeconfigToken)
            let node = try await kube.getNode(name: "i-0b")
            try await kube.deleteNode(name: "i-0b", uid: node.uid, dryRun: true)
            #expect(try await api.nodeNames().contains("i-0b"))
            try await api.setPermissions(json: #"{"\#(serviceAccount)": [{"verb": "delete", "group": "", "resource": "nodes"}]}"#)
            let refused = await kubernetesError { try await kube.deleteNode(name: "i-0b", uid: node.uid, dryRun: true) }
            guard case .forbidden? = refused else { Issue.record("got \(String(describing: refused))"); return }
        }
    }
}
