// Every refusal becomes its own typed case, with the Status message and never the token.
import Foundation
import HTTP
import Kubernetes
import Testing

@Suite struct ErrorTests {
    @Test func unauthorizedNamesWhereTheCredentialsCameFrom() async throws {
        let transport = ScriptedTransport(status: 401, json: statusJSON(code: 401, reason: "Unauthorized", message: "Unauthorized"))
        let endpoint = KubernetesEndpoint(server: testServer, auth: .bearerToken(testToken), description: "kubeconfig /k/config, context k3s, user admin (token)")
        let kube = try KubernetesClient(endpoint: endpoint, transport: transport)
        let error = await kubernetesError { _ = try await kube.listNodes() }
        guard case .unauthorized(let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(failure.httpStatus == 401)
        #expect(failure.status?.reason == "Unauthorized")
        #expect(failure.request.operation == "list nodes")
        let text = "\(error!)"
        #expect(text.contains("HTTP 401"))
        #expect(text.contains("kubeconfig /k/config, context k3s, user admin (token)"))
        #expect(!text.contains(testToken))
        #expect(error?.requestMayHaveTakenEffect == false)
    }

    @Test func forbiddenSaysWhichPermissionIsMissingAndTheRuleThatGrantsIt() async throws {
        let message = #"pods \"web-0\" is forbidden: User \"system:serviceaccount:kube-system:kscaler\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"web\""#
        let transport = ScriptedTransport(status: 403, json: statusJSON(code: 403, reason: "Forbidden", message: message,
                                                                        details: #"{"name":"web-0","kind":"pods"}"#))
        let error = await kubernetesError { try await client(transport).evict(namespace: "web", pod: "web-0") }
        guard case .forbidden(let failure, let rule)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(rule == RBACRule(verb: "create", resource: "pods/eviction", namespace: "web"))
        #expect(failure.status?.details?.name == "web-0")
        let text = "\(error!)"
        #expect(text.contains("cannot create resource \"pods/eviction\""))
        #expect(text.contains("needs permission to create pods/eviction"))
        #expect(text.contains(#"{apiGroups: [""], resources: ["pods/eviction"], verbs: ["create"]} in a Role in namespace web"#))

        let nodes = ScriptedTransport(status: 403, json: statusJSON(code: 403, reason: "Forbidden", message: "forbidden"))
        let nodeError = await kubernetesError { _ = try await client(nodes).cordon(name: "n1") }
        #expect(nodeError?.description.contains(#"a ClusterRole rule {apiGroups: [""], resources: ["nodes"], verbs: ["patch"]}"#) == true)
        let pdbError = await kubernetesError { _ = try await client(nodes).listPodDisruptionBudgets() }
        #expect(pdbError?.description.contains(#"{apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: ["list"]}"#) == true)
        let versionError = await kubernetesError { _ = try await client(nodes).version() }
        #expect(versionError?.description.contains(#"{nonResourceURLs: ["/version"], verbs: ["get"]}"#) == true)
    }

    @Test func notFoundAndConflictAreTheirOwnCases() async throws {
        let notFound = ScriptedTransport(status: 404, json: statusJSON(code: 404, reason: "NotFound", message: #"nodes \"n9\" not found"#))
        let missing = await kubernetesError { _ = try await client(notFound).getNode(name: "n9") }
        guard case .notFound(let failure)? = missing else { Issue.record("got \(String(describing: missing))"); return }
        #expect(failure.message == #"nodes "n9" not found"#)

        let message = #"Operation cannot be fulfilled on nodes \"n1\": the object has been modified; please apply your changes to the latest version and try again"#
        let conflict = ScriptedTransport(status: 409, json: statusJSON(code: 409, reason: "Conflict", message: message))
        let stale = await kubernetesError { _ = try await client(conflict).cordon(name: "n1", resourceVersion: "1") }
        guard case .conflict(let conflictFailure)? = stale else { Issue.record("got \(String(describing: stale))"); return }
        #expect(conflictFailure.status?.reason == "Conflict")
        #expect(stale?.description.contains("the object has been modified") == true)
        #expect(stale?.requestMayHaveTakenEffect == false)
    }

    @Test func aPDBRefusalIsTooManyRequestsWithItsMessageAndRetryAfter() async throws {
        let message = "Cannot evict pod as it would violate the pod's disruption budget."
        let body = statusJSON(code: 429, reason: "TooManyRequests", message: message,
                              details: #"{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]}"#)
        let withHeader = ScriptedTransport(status: 429, json: body, headers: [HTTPHeader("Retry-After", "10")])
        let error = await kubernetesError { try await client(withHeader).evict(namespace: "web", pod: "web-0") }
        guard case .tooManyRequests(let failure, let retryAfter)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(failure.message == message + ": The disruption budget web-pdb needs 2 healthy pods and has 2 currently")
        #expect(failure.status?.details?.causes?.first?.reason == "DisruptionBudget")
        #expect(retryAfter == .seconds(10))
        #expect(error?.description.contains("disruption budget") == true)
        #expect(error?.description.contains("retry after 10 s") == true)

        let fromDetails = ScriptedTransport(status: 429, json: statusJSON(code: 429, reason: "TooManyRequests", message: "throttled",
                                                                          details: #"{"retryAfterSeconds":3}"#))
        let throttled = await kubernetesError { _ = try await client(fromDetails).listNodes() }
        guard case .tooManyRequests(_, let seconds)? = throttled else { Issue.record("got \(String(describing: throttled))"); return }
        #expect(seconds == .seconds(3))
    }

    @Test(arguments: [(500, "GET", false), (500, "POST", true), (503, "DELETE", true), (504, "PATCH", true), (422, "POST", false)])
    func otherStatusesAreServerErrors(code: Int, method: String, mayHaveTakenEffect: Bool) async throws {
        let transport = ScriptedTransport(status: code, json: statusJSON(code: code, reason: "InternalError", message: "etcdserver: request timed out"))
        let kube = try client(transport)
        let error: KubernetesError? = switch method {
        case "GET": await kubernetesError { _ = try await kube.listNodes() }
        case "POST": await kubernetesError { try await kube.evict(namespace: "a", pod: "b") }
        case "DELETE": await kubernetesError { try await kube.deleteNode(name: "n1", uid: "u") }
        default: await kubernetesError { _ = try await kube.cordon(name: "n1") }
        }
        guard case .server(let reported, let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(reported == code)
        #expect(failure.request.method == method)
        #expect(failure.message == "etcdserver: request timed out")
        #expect(error?.requestMayHaveTakenEffect == mayHaveTakenEffect)
    }

    @Test func aBodyThatIsNotAStatusIsQuotedShortAndWithoutTheToken() async throws {
        // A proxy that echoes the request headers into its error page.
        let transport = ScriptedTransport { request, _ in
            let echoed = request.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
            return HTTPResponse(status: 502, headers: [HTTPHeader("Content-Type", "text/html")], body: Data("<pre>\(echoed)</pre>".utf8))
        }
        let error = await kubernetesError { _ = try await client(transport).listNodes() }
        guard case .server(502, let failure)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(failure.status == nil)
        #expect(failure.message.contains("Authorization: Bearer <redacted>"))
        #expect(!"\(error!)".contains(testToken))
        var dumped = ""
        dump(error, to: &dumped)
        #expect(!dumped.contains(testToken))
    }

    @Test func aStatusMessageThatRepeatsTheTokenIsRedacted() async throws {
        let transport = ScriptedTransport(status: 401, json: statusJSON(code: 401, reason: "Unauthorized", message: "token \(testToken) is expired"))
        let error = await kubernetesError { _ = try await client(transport).listNodes() }
        #expect(error?.description.contains("token <redacted> is expired") == true)
        #expect(error?.description.contains(testToken) == false)
    }

    @Test func garbageOrAnotherShapeOnSuccessIsMalformedAndNamesTheOperation() async throws {
        let garbage = ScriptedTransport { _, _ in HTTPResponse(status: 200, body: Data("<html>captive portal</html>".utf8)) }
        let error = await kubernetesError { _ = try await client(garbage).listNodes() }
        guard case .malformedResponse(let request, 200, let reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(request.operation == "list nodes")
        #expect(reason == "the body is not valid JSON")
        #expect(error?.description.contains("list nodes (GET /api/v1/nodes)") == true)

        let shape = ScriptedTransport(json: #"{"kind":"Status","status":"Success"}"#)
        let shapeError = await kubernetesError { _ = try await client(shape).listNodes() }
        #expect(shapeError?.description.contains("no \"items\"") == true, "\(String(describing: shapeError))")

        let badNode = ScriptedTransport(json: listJSON(kind: "NodeList", items: [#"{"metadata":{"name":"n1"}}"#]))
        let nodeError = await kubernetesError { _ = try await client(badNode).listNodes() }
        #expect(nodeError?.description.contains("the JSON has no \"uid\" at items[0].metadata") == true, "\(String(describing: nodeError))")

        let badTime = ScriptedTransport(json: nodeJSON().replacingOccurrences(of: "2024-05-01T10:00:00Z", with: "yesterday"))
        let timeError = await kubernetesError { _ = try await client(badTime).getNode(name: "n1") }
        #expect(timeError?.description.contains("\"yesterday\" is not an RFC 3339 time at metadata.creationTimestamp") == true, "\(String(describing: timeError))")

        // A write whose success arrived garbled did take effect.
        let patched = ScriptedTransport(json: "not json")
        let patchError = await kubernetesError { _ = try await client(patched).cordon(name: "n1") }
        #expect(patchError?.requestMayHaveTakenEffect == true)
    }

    @Test func aTransportFailureKeepsWhetherTheRequestWentOut() async throws {
        let lost = ScriptedTransport { request, _ in
            throw HTTPError(kind: .receiveFailed, host: "kube.test:6443", detail: "connection reset", requestWasSent: true)
        }
        let kube = try client(lost)
        let write = await kubernetesError { try await kube.deleteNode(name: "n1", uid: "u") }
        guard case .transport(let error, let request)? = write else { Issue.record("got \(String(describing: write))"); return }
        #expect(error.kind == .receiveFailed)
        #expect(request.method == "DELETE")
        #expect(write?.requestMayHaveTakenEffect == true)
        let read = await kubernetesError { _ = try await kube.listNodes() }
        #expect(read?.requestMayHaveTakenEffect == false)

        let refused = ScriptedTransport { _, _ in throw HTTPError(kind: .couldNotConnect, host: "kube.test:6443", detail: "refused", requestWasSent: false) }
        let notSent = await kubernetesError { try await client(refused).deleteNode(name: "n1", uid: "u") }
        #expect(notSent?.requestMayHaveTakenEffect == false)
        #expect(notSent?.description.contains("Kubernetes API unreachable for delete node n1 (DELETE /api/v1/nodes/n1)") == true)
    }

    @Test func anEndpointNeverShowsItsToken() throws {
        let endpoint = KubernetesEndpoint(server: testServer, auth: .bearerToken(testToken))
        var dumped = ""
        dump(endpoint, to: &dumped)
        for text in [dumped, "\(endpoint)", "\(endpoint.auth)", String(reflecting: endpoint)] {
            #expect(!text.contains(testToken), "\(text)")
        }
        #expect(endpoint.description == "server https://kube.test:6443 (bearer token)")
    }
}
