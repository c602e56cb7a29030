#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP

extension KubernetesClient {
    /// Lists are read in pages of this many objects (as kubectl does), so a large cluster's
    /// pod list never arrives as one huge body.
    package static let pageSize = 500

    // MARK: - Nodes

    /// All nodes, or those matching `labelSelector` (`node-role.kubernetes.io/worker=true`, the
    /// API's selector syntax).
    package func listNodes(labelSelector: String? = nil) async throws(KubernetesError) -> [KubeNode] {
        var query: [(String, String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        return try await list(Call(request: KubeRequest(operation: "list nodes", method: "GET", path: "/api/v1/nodes"),
                                   rule: RBACRule(verb: "list", resource: "nodes"), query: query))
    }

    package func getNode(name: String) async throws(KubernetesError) -> KubeNode {
        let call = try getNodeCall(name)
        return try decode(KubeNode.self, from: try await exchange(call), call)
    }

    /// Applies a JSON merge patch (RFC 7386: objects merge, `null` deletes) and returns the
    /// node as it now is. With `resourceVersion`, the patch carries it in
    /// `metadata.resourceVersion` and the server refuses it (409, `.conflict`) if the node
    /// changed since that version was read.
    package func patchNode(name: String, mergePatch: JSONValue, resourceVersion: String? = nil) async throws(KubernetesError) -> KubeNode {
        guard case .object(var members) = mergePatch else {
            throw .invalidRequest("a merge patch for node \(name) must be a JSON object")
        }
        if let resourceVersion {
            guard !resourceVersion.isEmpty else { throw .invalidRequest("the resourceVersion to patch node \(name) at is empty") }
            var metadata: [String: JSONValue] = [:]
            if case .object(let given)? = members["metadata"] { metadata = given }
            metadata["resourceVersion"] = .string(resourceVersion)
            members["metadata"] = .object(metadata)
        }
        let path = "/api/v1/nodes/" + (try segment(name, "node name"))
        let call = Call(request: KubeRequest(operation: "patch node \(name)", method: "PATCH", path: path),
                        rule: RBACRule(verb: "patch", resource: "nodes"), body: .object(members), contentType: "application/merge-patch+json")
        return try decode(KubeNode.self, from: try await exchange(call), call)
    }

    /// Marks the node unschedulable (`spec.unschedulable: true`), as `kubectl cordon` does.
    package func cordon(name: String, resourceVersion: String? = nil) async throws(KubernetesError) -> KubeNode {
        try await patchNode(name: name, mergePatch: ["spec": ["unschedulable": true]], resourceVersion: resourceVersion)
    }

    /// Removes `spec.unschedulable`, as `kubectl uncordon` does.
    package func uncordon(name: String, resourceVersion: String? = nil) async throws(KubernetesError) -> KubeNode {
        try await patchNode(name: name, mergePatch: ["spec": ["unschedulable": nil]], resourceVersion: resourceVersion)
    }

    /// Taints the node with `taint`, replacing any taint with the same key and effect (as
    /// `kubectl taint --overwrite` does; other taints stay as they are, fields kscaler does not
    /// model included), and returns the node as it now is. The write carries the
    /// resourceVersion it was based on, so an edit made in between is never overwritten: on a
    /// conflict the node is read again and the edit redone, at most three times in all, then
    /// the conflict is thrown. A node that has the taint already is returned without a write.
    package func setTaint(node name: String, taint: KubeNode.Taint) async throws(KubernetesError) -> KubeNode {
        guard !taint.key.isEmpty, !taint.effect.isEmpty else {
            throw .invalidRequest("a taint for node \(name) needs a key and an effect")
        }
        var wanted: [String: JSONValue] = ["key": .string(taint.key), "effect": .string(taint.effect)]
        if let value = taint.value, !value.isEmpty { wanted["value"] = .string(value) }
        // The API documents timeAdded as written for NoExecute taints only (eviction counts
        // tolerationSeconds from it).
        if taint.effect == "NoExecute" { wanted["timeAdded"] = .string(KubeTime.format(Date())) }
        return try await editTaints(of: name) { taints in
            let same = { (raw: JSONValue) in raw["key"] == .string(taint.key) && raw["effect"] == .string(taint.effect) }
            let matching = taints.filter(same)
            // Absent and "" are the same value to the API.
            if matching.count == 1, Self.string(matching[0]["value"]) == (taint.value ?? "") { return nil }
            guard let first = taints.firstIndex(where: same) else { return taints + [.object(wanted)] }
            var edited = taints
            edited[first] = .object(wanted)
            return edited.enumerated().filter { $0.offset == first || !same($0.element) }.map(\.element)
        }
    }

    /// Removes every taint with `key`, whatever its effect, under the same resourceVersion
    /// precondition and retries as `setTaint`; returns the node as it now is. A node without
    /// such a taint is returned without a write.
    package func removeTaint(node name: String, key: String) async throws(KubernetesError) -> KubeNode {
        guard !key.isEmpty else { throw .invalidRequest("the taint key to remove from node \(name) is empty") }
        return try await editTaints(of: name) { taints in
            let kept = taints.filter { $0["key"] != .string(key) }
            return kept.count == taints.count ? nil : kept
        }
    }

    /// Deletes the node object, only if it is still the one with `uid` (a node re-registered
    /// under the same name is refused with 409, `.conflict`). `dryRun` asks the server to check
    /// everything, authorisation and preconditions included, and persist nothing (`dryRun=All`).
    package func deleteNode(name: String, uid: String, dryRun: Bool = false) async throws(KubernetesError) {
        guard !uid.isEmpty else { throw .invalidRequest("deleting node \(name) needs its uid, to be sure it is the node that was read") }
        let path = "/api/v1/nodes/" + (try segment(name, "node name"))
        let body: JSONValue = ["kind": "DeleteOptions", "apiVersion": "v1", "preconditions": ["uid": .string(uid)]]
        _ = try await exchange(Call(request: KubeRequest(operation: "delete node \(name)", method: "DELETE", path: path),
                                    rule: RBACRule(verb: "delete", resource: "nodes"), query: dryRun ? [("dryRun", "All")] : [], body: body))
    }

    // MARK: - Pods

    /// Pods on `nodeName` (all nodes when nil), in `namespace` (all when nil): the list
    /// `kubectl drain` makes (`fieldSelector=spec.nodeName=<node>`).
    package func listPods(nodeName: String? = nil, namespace: String? = nil) async throws(KubernetesError) -> [KubePod] {
        var query: [(String, String)] = []
        if let nodeName {
            guard !nodeName.isEmpty else { throw .invalidRequest("listing the pods of a node needs the node's name") }
            query.append(("fieldSelector", "spec.nodeName=\(nodeName)"))
        }
        var path = "/api/v1/pods"
        if let namespace { path = "/api/v1/namespaces/\(try segment(namespace, "namespace"))/pods" }
        let scope = [nodeName.map { "on node \($0)" }, namespace.map { "in namespace \($0)" }].compactMap { $0 }.joined(separator: " ")
        return try await list(Call(request: KubeRequest(operation: "list pods" + (scope.isEmpty ? "" : " \(scope)"), method: "GET", path: path),
                                   rule: RBACRule(verb: "list", resource: "pods", namespace: namespace), query: query))
    }

    /// Deletes a pod outright, with no PodDisruptionBudget consulted (that is `evict`), only
    /// if it is still the instance with `uid`: a replacement under the same name (a
    /// StatefulSet's) is refused with 409, `.conflict`, and kept. A pod already gone is
    /// `.notFound`. `gracePeriodSeconds` overrides the pod's own termination grace period.
    package func deletePod(namespace: String, name: String, uid: String, gracePeriodSeconds: Int? = nil) async throws(KubernetesError) {
        guard !uid.isEmpty else { throw .invalidRequest("deleting pod \(namespace)/\(name) needs its uid, to be sure it is the pod that was read") }
        let path = "/api/v1/namespaces/\(try segment(namespace, "namespace"))/pods/\(try segment(name, "pod name"))"
        var body: [String: JSONValue] = ["kind": "DeleteOptions", "apiVersion": "v1", "preconditions": ["uid": .string(uid)]]
        if let gracePeriodSeconds {
            guard gracePeriodSeconds >= 0 else { throw .invalidRequest("the grace period to delete pod \(namespace)/\(name) is negative") }
            body["gracePeriodSeconds"] = .int(gracePeriodSeconds)
        }
        _ = try await exchange(Call(request: KubeRequest(operation: "delete pod \(namespace)/\(name)", method: "DELETE", path: path),
                                    rule: RBACRule(verb: "delete", resource: "pods", namespace: namespace), body: .object(body)))
    }

    /// Asks the API server to evict a pod (policy/v1 Eviction), which it does only if every
    /// PodDisruptionBudget selecting the pod allows it; otherwise `.tooManyRequests` whose
    /// message names the budget. With `uid`, only that instance of the pod is evicted (a
    /// StatefulSet's replacement has the same name).
    package func evict(namespace: String, pod: String, gracePeriodSeconds: Int? = nil, uid: String? = nil) async throws(KubernetesError) {
        let path = "/api/v1/namespaces/\(try segment(namespace, "namespace"))/pods/\(try segment(pod, "pod name"))/eviction"
        var deleteOptions: [String: JSONValue] = [:]
        if let gracePeriodSeconds {
            guard gracePeriodSeconds >= 0 else { throw .invalidRequest("the grace period to evict pod \(namespace)/\(pod) is negative") }
            deleteOptions["gracePeriodSeconds"] = .int(gracePeriodSeconds)
        }
        if let uid { deleteOptions["preconditions"] = ["uid": .string(uid)] }
        var body: [String: JSONValue] = [
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": ["name": .string(pod), "namespace": .string(namespace)],
        ]
        if !deleteOptions.isEmpty { body["deleteOptions"] = .object(deleteOptions) }
        _ = try await exchange(Call(request: KubeRequest(operation: "evict pod \(namespace)/\(pod)", method: "POST", path: path),
                                    rule: RBACRule(verb: "create", resource: "pods/eviction", namespace: namespace), body: .object(body)))
    }

    // MARK: - Disruption budgets

    package func listPodDisruptionBudgets(namespace: String? = nil) async throws(KubernetesError) -> [KubePDB] {
        var path = "/apis/policy/v1/poddisruptionbudgets"
        if let namespace { path = "/apis/policy/v1/namespaces/\(try segment(namespace, "namespace"))/poddisruptionbudgets" }
        return try await list(Call(request: KubeRequest(operation: "list pod disruption budgets" + (namespace.map { " in namespace \($0)" } ?? ""),
                                                        method: "GET", path: path),
                                   rule: RBACRule(verb: "list", apiGroup: "policy", resource: "poddisruptionbudgets", namespace: namespace)))
    }

    // MARK: - Events

    /// Records `event` (core/v1) in its namespace.
    package func createEvent(_ event: KubeEvent) async throws(KubernetesError) {
        let path = "/api/v1/namespaces/\(try segment(event.namespace, "event namespace"))/events"
        _ = try await exchange(Call(request: KubeRequest(operation: "create event \(event.reason) for \(event.involvedObject.kind.lowercased()) \(event.involvedObject.name)",
                                                         method: "POST", path: path),
                                    rule: RBACRule(verb: "create", resource: "events", namespace: event.namespace), body: event.body))
    }

    // MARK: - Who am I, what may I do

    /// Whether kscaler's own identity may `verb` the `resource` (`nodes`, `pods` with
    /// subresource `eviction`) of `group` (`""` for core), cluster-wide or in `namespace`.
    package func accessReview(verb: String, group: String, resource: String, subresource: String? = nil,
                              namespace: String? = nil) async throws(KubernetesError) -> AccessReviewResult {
        var attributes: [String: JSONValue] = ["verb": .string(verb), "group": .string(group), "resource": .string(resource)]
        if let subresource { attributes["subresource"] = .string(subresource) }
        if let namespace { attributes["namespace"] = .string(namespace) }
        let body: JSONValue = [
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": ["resourceAttributes": .object(attributes)],
        ]
        let what = "\(verb) \(resource)\(subresource.map { "/\($0)" } ?? "")"
        let call = Call(request: KubeRequest(operation: "review access to \(what)", method: "POST",
                                             path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
                        rule: RBACRule(verb: "create", apiGroup: "authorization.k8s.io", resource: "selfsubjectaccessreviews"), body: body)
        struct Review: Decodable {
            struct Status: Decodable {
                var allowed: Bool
                var denied: Bool?
                var reason: String?
                var evaluationError: String?
            }
            var status: Status
        }
        let status = try decode(Review.self, from: try await exchange(call), call).status
        return AccessReviewResult(allowed: status.allowed, denied: status.denied ?? false,
                                  reason: status.reason.flatMap { $0.isEmpty ? nil : $0 },
                                  evaluationError: status.evaluationError.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The username the API server sees (SelfSubjectReview: v1 since 1.28, v1beta1 in 1.27);
    /// nil when the server serves neither.
    package func whoAmI() async throws(KubernetesError) -> String? {
        for version in ["v1", "v1beta1"] {
            let call = Call(request: KubeRequest(operation: "review own identity", method: "POST",
                                                 path: "/apis/authentication.k8s.io/\(version)/selfsubjectreviews"),
                            rule: RBACRule(verb: "create", apiGroup: "authentication.k8s.io", resource: "selfsubjectreviews"),
                            body: ["apiVersion": .string("authentication.k8s.io/\(version)"), "kind": "SelfSubjectReview"])
            let response: HTTPResponse
            do {
                response = try await exchange(call)
            } catch .notFound {
                continue
            }
            struct Review: Decodable {
                struct Status: Decodable {
                    struct UserInfo: Decodable { var username: String }
                    var userInfo: UserInfo
                }
                var status: Status
            }
            return try decode(Review.self, from: response, call).status.userInfo.username
        }
        return nil
    }

    /// The server's `gitVersion` (`v1.30.4+k3s1`): the cheapest proof that it is reachable,
    /// trusted and answering.
    package func version() async throws(KubernetesError) -> String {
        let call = Call(request: KubeRequest(operation: "read the server version", method: "GET", path: "/version"),
                        rule: RBACRule(verb: "get", nonResourceURL: "/version"))
        struct Version: Decodable { var gitVersion: String }
        return try decode(Version.self, from: try await exchange(call), call).gitVersion
    }

    // MARK: - Helpers

    /// Reads and writes in one taint edit, conflicts included.
    private static let taintEditAttempts = 3

    /// Reads the node, applies `edit` to its `spec.taints` as the API wrote them (nil: nothing
    /// to change), and writes the list whole (a merge patch replaces lists) at the
    /// resourceVersion read; a conflict starts over, up to `taintEditAttempts` times.
    private func editTaints(of name: String, _ edit: ([JSONValue]) -> [JSONValue]?) async throws(KubernetesError) -> KubeNode {
        var attempt = 1
        while true {
            let call = try getNodeCall(name)
            let response = try await exchange(call)
            let node = try decode(KubeNode.self, from: response, call)
            struct Raw: Decodable {
                struct Spec: Decodable { var taints: [JSONValue]? }
                var spec: Spec?
            }
            guard let edited = edit(try decode(Raw.self, from: response, call).spec?.taints ?? []) else { return node }
            do {
                // null rather than [] for none: the field goes, as the API would omit it anyway.
                return try await patchNode(name: name, mergePatch: ["spec": ["taints": edited.isEmpty ? .null : .array(edited)]],
                                           resourceVersion: node.resourceVersion)
            } catch .conflict where attempt < Self.taintEditAttempts {
                attempt += 1
            }
        }
    }

    private func getNodeCall(_ name: String) throws(KubernetesError) -> Call {
        let path = "/api/v1/nodes/" + (try segment(name, "node name"))
        return Call(request: KubeRequest(operation: "get node \(name)", method: "GET", path: path), rule: RBACRule(verb: "get", resource: "nodes"))
    }

    private static func string(_ value: JSONValue?) -> String {
        if case .string(let text)? = value { return text }
        return ""
    }

    /// Follows `metadata.continue` until the list is complete.
    private func list<Item: Decodable & Sendable>(_ call: Call) async throws(KubernetesError) -> [Item] {
        var items: [Item] = []
        var token: String?
        repeat {
            var page = call
            page.query.append(("limit", String(Self.pageSize)))
            if let token { page.query.append(("continue", token)) }
            let decoded = try decode(ListPage<Item>.self, from: try await exchange(page), page)
            items += decoded.items
            token = decoded.continueToken
        } while token != nil
        return items
    }

    /// A name as one path segment. Empty would address the whole collection (a DELETE of
    /// `/api/v1/nodes/` is a delete-collection), so it is refused.
    private func segment(_ name: String, _ what: String) throws(KubernetesError) -> String {
        guard !name.isEmpty else { throw .invalidRequest("the \(what) is empty") }
        return name.percentEncodedAllButUnreserved
    }
}

/// `{"kind":"NodeList","metadata":{"continue":"…"},"items":[…]}`. `items` must be there (it
/// tells a list from another JSON answer), though it may be null when empty.
private struct ListPage<Item: Decodable>: Decodable {
    var items: [Item]
    var continueToken: String?

    private enum CodingKeys: String, CodingKey { case items, metadata }
    private struct Metadata: Decodable {
        var `continue`: String?
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        items = try container.decodeNil(forKey: .items) ? [] : try container.decode([Item].self, forKey: .items)
        continueToken = try container.decodeIfPresent(Metadata.self, forKey: .metadata)?.continue.flatMap { $0.isEmpty ? nil : $0 }
    }
}
