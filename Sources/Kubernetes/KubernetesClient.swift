#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP
import Logging
import Synchronization

/// One-shot calls to the Kubernetes API: what a run needs to read nodes, pods and budgets,
/// cordon, evict, delete, record events and check its own permissions. No watches, no
/// informers, no retries: each call is one request (two when an exec plugin's credential is
/// refused and the plugin is run again), and the caller decides what a failure means.
///
/// At debug level it logs one line per request: method, path, HTTP status, answer size and
/// elapsed time. Never the query string, headers or bodies.
package struct KubernetesClient: Sendable {
    package let endpoint: KubernetesEndpoint
    /// Bound for one whole request.
    package let timeout: Duration
    private let transports: TransportSource
    private let logger: Logger

    /// Over a transport the caller built, which must already trust `endpoint.tls` (CA, client
    /// certificate). An exec plugin that returns a client certificate needs the other
    /// initialiser, which can build a transport for it.
    /// - Throws: `KubernetesError.credentials` when `endpoint.server` is not a usable URL.
    package init(endpoint: KubernetesEndpoint, transport: any HTTPTransport, timeout: Duration = .seconds(15),
                 logger: Logger = Logger(label: "kscaler.kubernetes", factory: { _ in SwiftLogNoOpLogHandler() })) throws(KubernetesError) {
        try self.init(endpoint: endpoint, transports: TransportSource(fixed: transport, tls: endpoint.tls), timeout: timeout, logger: logger)
    }

    /// Builds its transports from the endpoint's TLS options (and, for an exec plugin's client
    /// certificate, from that): `CurlTransport` unless told otherwise.
    package init(endpoint: KubernetesEndpoint, timeout: Duration = .seconds(15),
                 logger: Logger = Logger(label: "kscaler.kubernetes", factory: { _ in SwiftLogNoOpLogHandler() }),
                 makeTransport: @escaping @Sendable (TLSOptions) -> any HTTPTransport = { CurlTransport(tls: $0) }) throws(KubernetesError) {
        try self.init(endpoint: endpoint, transports: TransportSource(make: makeTransport), timeout: timeout, logger: logger)
    }

    private init(endpoint: KubernetesEndpoint, transports: TransportSource, timeout: Duration, logger: Logger) throws(KubernetesError) {
        var endpoint = endpoint
        endpoint.server = try Self.validated(server: endpoint.server)
        self.endpoint = endpoint
        self.transports = transports
        self.timeout = timeout
        self.logger = logger
    }

    // MARK: - One exchange

    /// What goes on the wire besides method and path.
    struct Call {
        var request: KubeRequest
        var rule: RBACRule
        var query: [(String, String)] = []
        var body: JSONValue?
        var contentType = "application/json"
    }

    /// Sends `call` and returns a 2xx answer; anything else becomes the matching `KubernetesError`.
    /// A 401 with an exec plugin's credential runs the plugin once more and repeats the
    /// request: the server refused it before acting, so repeating any verb is safe.
    func exchange(_ call: Call) async throws(KubernetesError) -> HTTPResponse {
        var refreshed = false
        while true {
            let credential = try await currentCredential()
            let response = try await send(call, with: credential)
            if response.status == 401, !refreshed, case .exec(let plugin) = endpoint.auth, let used = credential.exec {
                await ExecCredentialCache.shared.discard(used, for: plugin)
                refreshed = true
                logger.debug("kubernetes credential refused; running the exec plugin again", metadata: ["command": "\(plugin.command)"])
                continue
            }
            if (200..<300).contains(response.status) { return response }
            throw failure(response, call, secrets: credential.secrets)
        }
    }

    private func send(_ call: Call, with credential: RequestCredential) async throws(KubernetesError) -> HTTPResponse {
        let transport = try transports.transport(for: credential.tls)
        var headers = [HTTPHeader("Accept", "application/json"), HTTPHeader("User-Agent", "kscaler")]
        if let authorization = credential.authorization { headers.append(HTTPHeader("Authorization", authorization.value)) }
        var body = Data()
        if let json = call.body {
            headers.append(HTTPHeader("Content-Type", call.contentType))
            body = json.encoded()
        }
        let query = call.query.map { "\($0.0.percentEncodedAllButUnreserved)=\($0.1.percentEncodedAllButUnreserved)" }.joined(separator: "&")
        let url = endpoint.server + call.request.path + (query.isEmpty ? "" : "?" + query)
        let request = HTTPRequest(method: call.request.method, url: url, headers: headers, body: body, timeout: timeout)

        var metadata: Logger.Metadata = ["method": "\(call.request.method)", "path": "\(call.request.path)"]
        let started = ContinuousClock.now
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch {
            metadata["elapsed_ms"] = .stringConvertible((ContinuousClock.now - started).inMilliseconds)
            let httpError = error as? HTTPError ?? HTTPError(kind: .other, host: "", detail: "\(type(of: error))")
            // An HTTPError names the host and libcurl's failure, never headers or bodies.
            metadata["reason"] = "\(httpError)"
            logger.debug("kubernetes request failed", metadata: metadata)
            throw .transport(httpError, call.request)
        }
        metadata["elapsed_ms"] = .stringConvertible((ContinuousClock.now - started).inMilliseconds)
        metadata["status"] = "\(response.status)"
        metadata["bytes"] = .stringConvertible(response.body.count)
        logger.debug("kubernetes request", metadata: metadata)
        return response
    }

    /// The refusal as its typed case, with the Status body's message when there is one.
    private func failure(_ response: HTTPResponse, _ call: Call, secrets: [String]) -> KubernetesError {
        let status = (try? JSONDecoder().decode(KubeStatus.self, from: response.body)).flatMap { $0.message == nil && $0.reason == nil ? nil : $0 }
        let causes = (status?.details?.causes ?? []).compactMap(\.message).filter { !$0.isEmpty && $0 != status?.message }
        let text = status.map { ([$0.message ?? "(no message)"] + causes).joined(separator: ": ") }
            ?? Self.snippet(of: response.body, longestSecret: secrets.map(\.utf8.count).max() ?? 0)
        let message = Self.redacted(text, secrets)
        let failure = APIFailure(request: call.request, httpStatus: response.status, status: status, message: message, credentials: endpoint.description)
        switch response.status {
        case 401: return .unauthorized(failure)
        case 403: return .forbidden(failure, missing: call.rule)
        case 404: return .notFound(failure)
        case 409: return .conflict(failure)
        case 429:
            let header = response.header("Retry-After").flatMap { Int($0.trimmingWhitespace()) }
            let seconds = header ?? status?.details?.retryAfterSeconds
            return .tooManyRequests(failure, retryAfter: seconds.map { .seconds($0) })
        default: return .server(code: response.status, failure)
        }
    }

    /// Decodes a success; a body of another shape names the operation and where it differs.
    func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponse, _ call: Call) throws(KubernetesError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch let error as DecodingError {
            throw .malformedResponse(call.request, httpStatus: response.status, reason: error.readableReason)
        } catch {
            throw .malformedResponse(call.request, httpStatus: response.status, reason: "the body could not be decoded")
        }
    }

    // MARK: - Credentials

    struct RequestCredential {
        var authorization: Secret?
        var tls: TLSOptions
        /// The exec plugin's credential this came from, to discard on a 401.
        var exec: ExecCredential?
        /// Strings no message may repeat.
        var secrets: [String]
    }

    private func currentCredential() async throws(KubernetesError) -> RequestCredential {
        switch endpoint.auth {
        case .none:
            return RequestCredential(tls: endpoint.tls, secrets: [])
        case .bearerToken(let token):
            return RequestCredential(authorization: Secret("Bearer \(token)"), tls: endpoint.tls, secrets: [token])
        case .exec(let plugin):
            let credential = try await ExecCredentialCache.shared.credential(for: plugin, logger: logger)
            var tls = endpoint.tls
            if let certificate = credential.clientCertificate { tls.clientCertificate = certificate }
            return RequestCredential(authorization: credential.token.map { Secret("Bearer \($0)") }, tls: tls, exec: credential,
                                     secrets: credential.token.map { [$0] } ?? [])
        }
    }

    // MARK: - Text

    private static func redacted(_ text: String, _ secrets: [String]) -> String {
        secrets.filter { !$0.isEmpty }.reduce(text) { $0.replacing($1, with: "<redacted>") }
    }

    /// The start of a body that is not a Status, on one line, at most 200 characters.
    private static func snippet(of body: Data, longestSecret: Int) -> String {
        let text = String(decoding: body.prefix(4_096 + longestSecret), as: UTF8.self)
        let printable = String(String.UnicodeScalarView(text.unicodeScalars.map {
            $0.properties.generalCategory == .control && !$0.properties.isWhitespace ? "\u{FFFD}" : $0
        }))
        let oneLine = printable.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        if oneLine.isEmpty { return "(empty body)" }
        return oneLine.count > 200 ? String(oneLine.prefix(200)) + "…" : oneLine
    }

    /// `https://host[:port][/prefix]` without trailing slashes; no credentials, query or fragment.
    static func validated(server: String) throws(KubernetesError) -> String {
        guard let url = URL(string: server), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw .credentials("the API server URL \"\(server.prefix(200))\" is not an absolute URL like https://10.0.0.1:6443")
        }
        guard scheme == "https" || scheme == "http" else {
            throw .credentials("the API server URL's scheme \(scheme) is not supported; use https://")
        }
        guard url.user == nil, url.password == nil else {
            throw .credentials("the API server URL contains credentials; give them as a token or client certificate instead")
        }
        guard url.query == nil, url.fragment == nil else {
            throw .credentials("the API server URL \"\(server.prefix(200))\" has a query or fragment; give scheme, host, port and path prefix only")
        }
        var trimmed = Substring(server)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }
}

/// The transport for a TLS configuration: the caller's own, or one built for it (kept, so
/// connections are reused while the configuration stays the same).
private final class TransportSource: Sendable {
    private let fixed: (transport: any HTTPTransport, tls: TLSOptions)?
    private let make: (@Sendable (TLSOptions) -> any HTTPTransport)?
    private let built = Mutex<(tls: TLSOptions, transport: any HTTPTransport)?>(nil)

    init(fixed transport: any HTTPTransport, tls: TLSOptions) {
        fixed = (transport, tls)
        make = nil
    }

    init(make: @escaping @Sendable (TLSOptions) -> any HTTPTransport) {
        fixed = nil
        self.make = make
    }

    func transport(for tls: TLSOptions) throws(KubernetesError) -> any HTTPTransport {
        if let fixed {
            guard fixed.tls == tls else {
                throw .credentials("the exec plugin returned a client certificate, which the transport given to the client cannot present; "
                    + "create the client with init(endpoint:timeout:logger:makeTransport:)")
            }
            return fixed.transport
        }
        return built.withLock { built in
            if let built, built.tls == tls { return built.transport }
            let transport = make!(tls)
            built = (tls, transport)
            return transport
        }
    }
}
