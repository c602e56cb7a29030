import HTTP

/// The API's `Status` object, sent with most refusals: `{"kind":"Status","status":"Failure",
/// "reason":"Conflict","code":409,"message":"…","details":{…}}`.
package struct KubeStatus: Sendable, Equatable, Decodable {
    package struct Details: Sendable, Equatable, Decodable {
        /// One reason among several: a refused eviction names its budget here
        /// (`DisruptionBudget`: "The disruption budget web-pdb needs 2 healthy pods …").
        package struct Cause: Sendable, Equatable, Decodable {
            package var reason: String?
            package var message: String?
            package var field: String?
        }
        package var name: String?
        package var group: String?
        package var kind: String?
        package var causes: [Cause]?
        package var retryAfterSeconds: Int?
    }

    /// `Conflict`, `NotFound`, `Forbidden`, `TooManyRequests`, `AlreadyExists`, …
    package var reason: String?
    package var code: Int?
    package var message: String?
    package var details: Details?

    package init(reason: String? = nil, code: Int? = nil, message: String? = nil, details: Details? = nil) {
        self.reason = reason
        self.code = code
        self.message = message
        self.details = details
    }
}

/// Which request failed, in words and on the wire (never with its query, headers or body).
package struct KubeRequest: Sendable, Equatable, CustomStringConvertible {
    /// `patch node ip-10-0-1-5`, `evict pod default/web-1`.
    package var operation: String
    package var method: String
    package var path: String

    package var description: String { "\(operation) (\(method) \(path))" }

    /// A GET changes nothing; any other verb may have.
    var writes: Bool { method != "GET" && method != "HEAD" }
}

/// The RBAC permission an operation needs, worded as the rule that grants it.
package struct RBACRule: Sendable, Equatable, CustomStringConvertible {
    package var verb: String
    /// `""` for the core group.
    package var apiGroup: String
    /// `nodes`, `pods/eviction` (resource and subresource).
    package var resource: String
    /// nil: cluster-wide (a ClusterRole); a name: a Role in that namespace is enough.
    package var namespace: String?
    /// For non-resource URLs such as `/version`.
    package var nonResourceURL: String?

    package init(verb: String, apiGroup: String = "", resource: String, namespace: String? = nil) {
        self.verb = verb
        self.apiGroup = apiGroup
        self.resource = resource
        self.namespace = namespace
    }

    package init(verb: String, nonResourceURL: String) {
        self.verb = verb
        self.apiGroup = ""
        self.resource = ""
        self.nonResourceURL = nonResourceURL
    }

    package var description: String {
        if let url = nonResourceURL {
            return "a ClusterRole rule {nonResourceURLs: [\"\(url)\"], verbs: [\"\(verb)\"]} bound to this identity"
        }
        let rule = "{apiGroups: [\"\(apiGroup)\"], resources: [\"\(resource)\"], verbs: [\"\(verb)\"]}"
        if let namespace {
            return "a rule \(rule) in a Role in namespace \(namespace) (or a ClusterRole) bound to this identity"
        }
        return "a ClusterRole rule \(rule) bound to this identity with a ClusterRoleBinding"
    }
}

/// A refusal from the API server: the request, its HTTP status, and the `Status` body if it sent one.
package struct APIFailure: Sendable, Equatable {
    package var request: KubeRequest
    package var httpStatus: Int
    package var status: KubeStatus?
    /// The Status message and its causes' messages, or the start of a body that was not a
    /// Status; the client's credentials cut out.
    package var message: String
    /// Where the credentials came from (`kubeconfig …, user admin (token)`), never the credentials.
    package var credentials: String

    package init(request: KubeRequest, httpStatus: Int, status: KubeStatus? = nil, message: String, credentials: String) {
        self.request = request
        self.httpStatus = httpStatus
        self.status = status
        self.message = message
        self.credentials = credentials
    }
}

/// Everything that can go wrong talking to the Kubernetes API. No case carries a token, key
/// or certificate: messages from the server have the client's secrets cut out, and an exec
/// plugin's output (which holds its token) is never quoted.
package enum KubernetesError: Error, Sendable, CustomStringConvertible {
    /// 401: the credentials were not accepted (expired token, certificate from another CA).
    case unauthorized(APIFailure)
    /// 403: the identity lacks the RBAC permission `missing`.
    case forbidden(APIFailure, missing: RBACRule)
    /// 404: the object (or, for a whole API, the resource type) does not exist.
    case notFound(APIFailure)
    /// 409: a precondition failed — a stale `resourceVersion`, another object's `uid` — or
    /// the object already exists.
    case conflict(APIFailure)
    /// 429: throttled, or an eviction refused by a PodDisruptionBudget (the message says which).
    case tooManyRequests(APIFailure, retryAfter: Duration?)
    /// Any other status: 5xx, 400 (a request the server could not read), 422 (an invalid object), …
    case server(code: Int, APIFailure)
    /// A success whose body is not what the operation expects (garbage, another JSON shape).
    case malformedResponse(KubeRequest, httpStatus: Int, reason: String)
    /// No answer: DNS, connect, TLS, timeout, cancellation.
    case transport(HTTPError, KubeRequest)
    /// The credentials could not be resolved: kubeconfig, exec plugin, in-cluster files, server URL.
    case credentials(String)
    /// The call itself is unusable (an empty name would address the whole collection).
    case invalidRequest(String)

    /// Whether a failed write may still have been carried out: the request went out and no
    /// answer says it was refused (a lost connection, a 5xx or a garbled success). The next
    /// step must look (get the node, list the pods) rather than assume nothing happened.
    /// Always false for reads.
    package var requestMayHaveTakenEffect: Bool {
        switch self {
        case .transport(let error, let request): request.writes && error.requestWasSent
        case .server(let code, let failure): failure.request.writes && code >= 500
        case .malformedResponse(let request, let status, _): request.writes && (200..<300).contains(status)
        case .unauthorized, .forbidden, .notFound, .conflict, .tooManyRequests, .credentials, .invalidRequest: false
        }
    }

    /// The HTTP status the API server answered with, if it answered.
    package var httpStatus: Int? {
        switch self {
        case .unauthorized(let failure), .forbidden(let failure, _), .notFound(let failure), .conflict(let failure),
             .tooManyRequests(let failure, _), .server(_, let failure):
            failure.httpStatus
        case .malformedResponse(_, let status, _): status
        case .transport, .credentials, .invalidRequest: nil
        }
    }

    package var description: String {
        switch self {
        case .unauthorized(let failure):
            "Kubernetes API refused the credentials for \(failure.request) (HTTP 401): \(failure.message). "
                + "They came from \(failure.credentials); renew the token or client certificate, or point kscaler at valid ones"
        case .forbidden(let failure, let rule):
            "Kubernetes API forbids \(failure.request) (HTTP 403): \(failure.message). "
                + "kscaler needs permission to \(rule.verb) \(rule.nonResourceURL ?? rule.resource); grant it with \(rule)"
        case .notFound(let failure):
            "Kubernetes API: not found for \(failure.request) (HTTP 404): \(failure.message)"
        case .conflict(let failure):
            "Kubernetes API refused \(failure.request) with a conflict (HTTP 409): \(failure.message). "
                + "The object changed or was replaced since it was read; read it again before deciding"
        case .tooManyRequests(let failure, let retryAfter):
            "Kubernetes API refused \(failure.request) for now (HTTP 429): \(failure.message)"
                + (retryAfter.map { "; retry after \($0.components.seconds) s" } ?? "")
        case .server(let code, let failure):
            "Kubernetes API failed \(failure.request) (HTTP \(code)): \(failure.message)"
        case .malformedResponse(let request, let status, let reason):
            "unreadable answer from the Kubernetes API to \(request) (HTTP \(status)): \(reason)"
        case .transport(let error, let request):
            "Kubernetes API unreachable for \(request): \(error)"
        case .credentials(let reason):
            "Kubernetes credentials: \(reason)"
        case .invalidRequest(let reason):
            "invalid Kubernetes request: \(reason)"
        }
    }
}
