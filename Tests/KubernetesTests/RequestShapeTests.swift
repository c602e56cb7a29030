// What the client puts on the wire for each operation: method, path, query, headers, body.
import Foundation
import HTTP
import Kubernetes
import Testing

@Suite struct RequestShapeTests {
    @Test func listNodesSendsTheSelectorEncodedAndTheTokenAsBearer() async throws {
        let transport = ScriptedTransport(json: listJSON(kind: "NodeList", items: [nodeJSON()]))
        let selector = "node-role.kubernetes.io/worker in (a,b),!spot"
        let nodes = try await client(transport).listNodes(labelSelector: selector)
        #expect(nodes.map(\.name) == ["ip-10-0-1-5.ec2.internal"])
        let request = try #require(transport.requests.first)
        #expect(request.method == "GET")
        #expect(request.sent.path == "/api/v1/nodes")
        #expect(request.sent.parameter("labelSelector") == selector)
        #expect(request.sent.parameter("limit") == "500")
        // Every reserved character is percent-encoded, spaces included.
        #expect(request.sent.rawQuery.hasPrefix("labelSelector=node-role.kubernetes.io%2Fworker%20in%20%28a%2Cb%29%2C%21spot&"))
        #expect(request.header("Authorization") == "Bearer \(testToken)")
        #expect(request.header("Accept") == "application/json")
        #expect(request.body.isEmpty)
    }

    @Test func listsFollowContinueTokensUntilTheLastPage() async throws {
        let transport = ScriptedTransport { request, number in
            switch number {
            case 0: json(listJSON(kind: "NodeList", items: [nodeJSON(name: "a")], continueToken: "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ=="))
            default: json(listJSON(kind: "NodeList", items: [nodeJSON(name: "b"), nodeJSON(name: "c")]))
            }
        }
        let nodes = try await client(transport).listNodes()
        #expect(nodes.map(\.name) == ["a", "b", "c"])
        #expect(transport.requests.count == 2)
        #expect(transport.requests[0].sent.parameter("continue") == nil)
        #expect(transport.requests[1].sent.parameter("continue") == "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==")
        #expect(transport.requests[1].sent.rawQuery.contains("continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ%3D%3D"))
    }

    @Test func anEmptyListMayComeAsNull() async throws {
        let transport = ScriptedTransport(json: #"{"kind":"PodList","metadata":{},"items":null}"#)
        #expect(try await client(transport).listPods().isEmpty)
    }

    @Test func getNodeEncodesTheNameAsOnePathSegment() async throws {
        let transport = ScriptedTransport(json: nodeJSON())
        _ = try await client(transport).getNode(name: "odd name/..")
        #expect(transport.requests.first?.sent.path == "/api/v1/nodes/odd%20name%2F..")
    }

    @Test func cordonIsAMergePatchCarryingTheResourceVersion() async throws {
        let transport = ScriptedTransport(json: nodeJSON(resourceVersion: "4712", unschedulable: true))
        let node = try await client(transport).cordon(name: "n1", resourceVersion: "4711")
        #expect(node.unschedulable)
        #expect(node.resourceVersion == "4712")
        let request = try #require(transport.requests.first)
        #expect(request.method == "PATCH")
        #expect(request.sent.path == "/api/v1/nodes/n1")
        #expect(request.header("Content-Type") == "application/merge-patch+json")
        #expect(request.jsonBody == ["metadata": ["resourceVersion": "4711"], "spec": ["unschedulable": true]])
    }

    @Test func uncordonDeletesTheFieldAndNoVersionMeansNoPrecondition() async throws {
        let transport = ScriptedTransport(json: nodeJSON())
        _ = try await client(transport).uncordon(name: "n1")
        #expect(transport.requests.first?.jsonBody == ["spec": ["unschedulable": nil]])
    }

    @Test func aPatchKeepsItsOwnMetadataBesideTheResourceVersion() async throws {
        let transport = ScriptedTransport(json: nodeJSON())
        let patch: JSONValue = ["metadata": ["labels": ["kscaler.io/draining": "true"], "annotations": ["a": nil]]]
        _ = try await client(transport).patchNode(name: "n1", mergePatch: patch, resourceVersion: "7")
        #expect(transport.requests.first?.jsonBody == [
            "metadata": ["labels": ["kscaler.io/draining": "true"], "annotations": ["a": nil], "resourceVersion": "7"],
        ])
        // Sorted keys, slashes as written: the body is deterministic and readable.
        let text = String(decoding: try #require(transport.requests.first).body, as: UTF8.self)
        #expect(text == #"{"metadata":{"annotations":{"a":null},"labels":{"kscaler.io/draining":"true"},"resourceVersion":"7"}}"#)
    }

    @Test func deleteNodeSendsTheUIDAsAPrecondition() async throws {
        let transport = ScriptedTransport(json: nodeJSON())
        try await client(transport).deleteNode(name: "n1", uid: "6f1c2d3e-0000-4000-8000-000000000001")
        let request = try #require(transport.requests.first)
        #expect(request.method == "DELETE")
        #expect(request.sent.path == "/api/v1/nodes/n1")
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.jsonBody == ["kind": "DeleteOptions", "apiVersion": "v1",
                                     "preconditions": ["uid": "6f1c2d3e-0000-4000-8000-000000000001"]])
    }

    @Test func deletePodSendsTheUIDAsAPreconditionAndTheGracePeriod() async throws {
        let transport = ScriptedTransport(json: #"{"kind":"Pod","metadata":{"name":"web-0","namespace":"web","uid":"p1"}}"#)
        try await client(transport).deletePod(namespace: "web", name: "web-0", uid: "p1", gracePeriodSeconds: 30)
        let request = try #require(transport.requests.first)
        #expect(request.method == "DELETE")
        #expect(request.sent.path == "/api/v1/namespaces/web/pods/web-0")
        #expect(request.jsonBody == ["kind": "DeleteOptions", "apiVersion": "v1", "preconditions": ["uid": "p1"], "gracePeriodSeconds": 30])
    }

    /// The whole list goes back (a merge patch replaces lists), other taints as they came,
    /// at the resourceVersion read.
    @Test func setTaintPatchesTheWholeListAtTheVersionRead() async throws {
        let transport = ScriptedTransport { request, _ in
            json(request.method == "GET" ? nodeJSON(resourceVersion: "4711") : nodeJSON(resourceVersion: "4712"))
        }
        let taint = KubeNode.Taint(key: "kscaler.io/to-be-deleted", value: "1714560000", effect: "NoSchedule")
        _ = try await client(transport).setTaint(node: "n1", taint: taint)
        #expect(transport.requests.map(\.method) == ["GET", "PATCH"])
        let patch = transport.requests[1]
        #expect(patch.sent.path == "/api/v1/nodes/n1")
        #expect(patch.header("Content-Type") == "application/merge-patch+json")
        #expect(patch.jsonBody == ["metadata": ["resourceVersion": "4711"], "spec": ["taints": [
            ["key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2024-05-01T11:00:00Z"],
            ["key": "dedicated", "value": "batch", "effect": "NoExecute"],
            ["key": "kscaler.io/to-be-deleted", "value": "1714560000", "effect": "NoSchedule"],
        ]]])
    }

    @Test func removeTaintSendsTheRestAndNullForNone() async throws {
        let transport = ScriptedTransport { request, _ in json(nodeJSON()) }
        _ = try await client(transport).removeTaint(node: "n1", key: "dedicated")
        _ = try await client(transport).removeTaint(node: "n1", key: "node.kubernetes.io/unschedulable")
        #expect(transport.requests.map(\.method) == ["GET", "PATCH", "GET", "PATCH"])
        #expect(transport.requests[1].jsonBody?["spec"] == ["taints": [["key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                                                                        "timeAdded": "2024-05-01T11:00:00Z"]]])
        let single = ScriptedTransport { request, _ in
            json(request.method == "GET" ? #"{"metadata":{"name":"n1","uid":"u","resourceVersion":"7"},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}"# : nodeJSON())
        }
        _ = try await client(single).removeTaint(node: "n1", key: "k")
        #expect(single.requests.last?.jsonBody == ["metadata": ["resourceVersion": "7"], "spec": ["taints": nil]])
    }

    @Test func listPodsOnANodeUsesTheFieldSelector() async throws {
        let transport = ScriptedTransport(json: listJSON(kind: "PodList", items: []))
        let kube = try client(transport)
        _ = try await kube.listPods(nodeName: "ip-10-0-1-5.ec2.internal")
        _ = try await kube.listPods(nodeName: "n1", namespace: "kube-system")
        _ = try await kube.listPods()
        let sent = transport.requests.map(\.sent)
        #expect(sent[0].path == "/api/v1/pods")
        #expect(sent[0].rawQuery == "fieldSelector=spec.nodeName%3Dip-10-0-1-5.ec2.internal&limit=500")
        #expect(sent[1].path == "/api/v1/namespaces/kube-system/pods")
        #expect(sent[1].parameter("fieldSelector") == "spec.nodeName=n1")
        #expect(sent[2].rawQuery == "limit=500")
    }

    @Test func evictionIsAPolicyV1EvictionPostedToThePod() async throws {
        let transport = ScriptedTransport(status: 201, json: #"{"kind":"Status","apiVersion":"v1","status":"Success","code":201}"#)
        let kube = try client(transport)
        try await kube.evict(namespace: "web", pod: "web-0", gracePeriodSeconds: 30, uid: "pod-uid-1")
        try await kube.evict(namespace: "web", pod: "web-1")
        let first = try #require(transport.requests.first)
        #expect(first.method == "POST")
        #expect(first.sent.path == "/api/v1/namespaces/web/pods/web-0/eviction")
        #expect(first.jsonBody == [
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": ["name": "web-0", "namespace": "web"],
            "deleteOptions": ["gracePeriodSeconds": 30, "preconditions": ["uid": "pod-uid-1"]],
        ])
        #expect(transport.requests[1].jsonBody == [
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": ["name": "web-1", "namespace": "web"],
        ])
    }

    @Test func pdbsAreListedFromPolicyV1() async throws {
        let transport = ScriptedTransport(json: listJSON(kind: "PodDisruptionBudgetList", items: []))
        let kube = try client(transport)
        _ = try await kube.listPodDisruptionBudgets()
        _ = try await kube.listPodDisruptionBudgets(namespace: "web")
        #expect(transport.requests.map(\.sent.path) == ["/apis/policy/v1/poddisruptionbudgets", "/apis/policy/v1/namespaces/web/poddisruptionbudgets"])
    }

    @Test func aNodeEventGoesToDefaultNamedAsClientGoNamesThem() async throws {
        let transport = ScriptedTransport(status: 201, json: "{}")
        let time = Date(timeIntervalSince1970: 1_714_564_800.25)
        let event = KubeEvent.node("n1", uid: "uid-1", reason: "ScaleDown", message: "draining: idle for 10m", type: .normal, time: time)
        #expect(event.name == "n1.17cb5b9a074a3200")
        try await client(transport).createEvent(event)
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(request.sent.path == "/api/v1/namespaces/default/events")
        #expect(request.jsonBody == [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": "n1.17cb5b9a074a3200", "namespace": "default"],
            "involvedObject": ["kind": "Node", "name": "n1", "uid": "uid-1", "apiVersion": "v1"],
            "reason": "ScaleDown", "message": "draining: idle for 10m", "type": "Normal",
            "source": ["component": "kscaler"],
            "firstTimestamp": "2024-05-01T12:00:00Z", "lastTimestamp": "2024-05-01T12:00:00Z", "count": 1,
        ])
    }

    @Test func accessReviewAsksAboutTheClientsOwnIdentity() async throws {
        let transport = ScriptedTransport(status: 201, json: """
            {"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{},
             "spec":{"resourceAttributes":{"verb":"create","resource":"pods","subresource":"eviction"}},
             "status":{"allowed":false,"denied":true,"reason":"no RBAC policy matched","evaluationError":""}}
            """)
        let result = try await client(transport).accessReview(verb: "create", group: "", resource: "pods", subresource: "eviction", namespace: "web")
        #expect(result == AccessReviewResult(allowed: false, denied: true, reason: "no RBAC policy matched"))
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(request.sent.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        #expect(request.jsonBody == [
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": ["resourceAttributes": ["verb": "create", "group": "", "resource": "pods", "subresource": "eviction", "namespace": "web"]],
        ])
    }

    @Test func whoAmIFallsBackToV1beta1AndIsNilWhenNeitherIsServed() async throws {
        let review = #"{"kind":"SelfSubjectReview","status":{"userInfo":{"username":"system:serviceaccount:kube-system:kscaler","groups":["system:serviceaccounts"]}}}"#
        let v1 = ScriptedTransport(status: 201, json: review)
        #expect(try await client(v1).whoAmI() == "system:serviceaccount:kube-system:kscaler")
        #expect(v1.requests.map(\.sent.path) == ["/apis/authentication.k8s.io/v1/selfsubjectreviews"])
        #expect(v1.requests.first?.jsonBody == ["apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"])

        let beta = ScriptedTransport { request, _ in
            request.url.contains("/v1beta1/") ? json(review, status: 201) : json(statusJSON(code: 404, reason: "NotFound", message: "the server could not find the requested resource"), status: 404)
        }
        #expect(try await client(beta).whoAmI() == "system:serviceaccount:kube-system:kscaler")
        #expect(beta.requests.count == 2)

        let neither = ScriptedTransport(status: 404, json: statusJSON(code: 404, reason: "NotFound", message: "the server could not find the requested resource"))
        #expect(try await client(neither).whoAmI() == nil)
    }

    @Test func versionReadsGitVersion() async throws {
        let transport = ScriptedTransport(json: #"{"major":"1","minor":"30","gitVersion":"v1.30.4+k3s1","platform":"linux/amd64"}"#)
        #expect(try await client(transport).version() == "v1.30.4+k3s1")
        #expect(transport.requests.first?.sent.path == "/version")
    }

    @Test func anEmptyNameIsRefusedBeforeAnythingIsSent() async throws {
        let transport = ScriptedTransport(json: "{}")
        let kube = try client(transport)
        let errors: [KubernetesError?] = [
            await kubernetesError { try await kube.deleteNode(name: "", uid: "u") },
            await kubernetesError { try await kube.deleteNode(name: "n1", uid: "") },
            await kubernetesError { _ = try await kube.getNode(name: "") },
            await kubernetesError { try await kube.evict(namespace: "", pod: "p") },
            await kubernetesError { _ = try await kube.listPods(nodeName: "") },
            await kubernetesError { _ = try await kube.patchNode(name: "n1", mergePatch: ["a", "b"]) },
            await kubernetesError { try await kube.deletePod(namespace: "web", name: "web-0", uid: "") },
            await kubernetesError { try await kube.deletePod(namespace: "web", name: "", uid: "u") },
            await kubernetesError { try await kube.deletePod(namespace: "web", name: "web-0", uid: "u", gracePeriodSeconds: -1) },
            await kubernetesError { _ = try await kube.setTaint(node: "n1", taint: KubeNode.Taint(key: "", effect: "NoSchedule")) },
            await kubernetesError { _ = try await kube.setTaint(node: "", taint: KubeNode.Taint(key: "k", effect: "NoSchedule")) },
            await kubernetesError { _ = try await kube.removeTaint(node: "n1", key: "") },
        ]
        for error in errors {
            guard case .invalidRequest? = error else {
                Issue.record("expected invalidRequest, got \(String(describing: error))")
                continue
            }
        }
        #expect(transport.requests.isEmpty)
    }

    @Test func theServerURLKeepsItsPathPrefixAndLosesTrailingSlashes() async throws {
        let transport = ScriptedTransport(json: #"{"gitVersion":"v1"}"#)
        let kube = try KubernetesClient(endpoint: KubernetesEndpoint(server: "https://rancher.test/k8s/clusters/c-1//", auth: .none), transport: transport)
        _ = try await kube.version()
        #expect(transport.requests.first?.url == "https://rancher.test/k8s/clusters/c-1/version")
        #expect(transport.requests.first?.header("Authorization") == nil)

        for (server, expected) in [("kube.test:6443", "not an absolute URL"), ("ftp://kube.test", "scheme ftp"),
                                   ("https://admin:pw@kube.test", "contains credentials"), ("https://kube.test/?a=1", "query or fragment")] {
            let error = kubernetesError(sync: { _ = try KubernetesClient(endpoint: KubernetesEndpoint(server: server, auth: .none), transport: transport) })
            #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
            #expect(error?.description.contains("pw@") != true)
        }
    }
}
