#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP
import Logging

/// Client for the Prometheus HTTP API's instant queries (`/api/v1/query`) and range queries
/// (`/api/v1/query_range`, for `kscaler backtest`).
///
/// Works with Prometheus, its API-compatible peers and Amazon Managed Prometheus
/// (base URL `https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>` with a SigV4 signer).
/// Credential files are read once, when the client is created: create one client per run.
///
/// At debug level it logs one line per request: method, API path, HTTP status, answer size and
/// elapsed time. Never the query string, headers or answer (the Authorization header, a
/// signature, a proxy's echo of them).
package struct PrometheusClient: Sendable {
    /// Queries whose form-encoded parameters are longer than this go in a POST body: proxies
    /// and servers commonly cap URLs at a few kilobytes.
    package static let maximumGETParametersLength = 2_000

    /// The base URL without trailing slashes; API paths are appended to it.
    package let baseURL: String
    package let timeout: Duration
    private let auth: ResolvedAuth
    private let transport: any HTTPTransport
    private let logger: Logger

    /// - Parameters:
    ///   - baseURL: `http(s)://host[:port][/path prefix]`, without credentials, query or fragment.
    ///   - timeout: Bound for one whole request.
    ///   - logger: Where the per-request debug lines go; by default nowhere.
    /// - Throws: `PrometheusError.invalidBaseURL` or `.invalidAuth` (e.g. a missing credential file).
    package init(baseURL: String, auth: PrometheusAuth = .none, timeout: Duration = .seconds(5), transport: any HTTPTransport,
                logger: Logger = Logger(label: "kscaler.prometheus", factory: { _ in SwiftLogNoOpLogHandler() })) throws(PrometheusError) {
        self.baseURL = try Self.validated(baseURL)
        self.auth = try ResolvedAuth(auth)
        self.timeout = timeout
        self.transport = transport
        self.logger = logger
    }

    /// Evaluates `promql` at `time` (Prometheus's own "now" when nil).
    /// - Returns: The vector (empty = no data) or scalar Prometheus answered.
    /// - Throws: `PrometheusError`, or whatever the request signer throws.
    package func query(_ promql: String, at time: Date? = nil) async throws -> QueryResult {
        var parameters = [("query", promql)]
        if let time { parameters.append(("time", Self.unixSeconds(time))) }
        let response = try await send(path: "/api/v1/query", parameters: parameters)
        if let samples = VectorReader.samples(in: response.body) { return .vector(samples) }
        switch try decode(response) {
        case .vector(let samples): return .vector(samples)
        case .scalar(let sample): return .scalar(sample)
        case .matrix: throw PrometheusError.unsupportedResultType("matrix")
        case .unsupported(let resultType): throw PrometheusError.unsupportedResultType(resultType)
        }
    }

    /// Evaluates `promql` at `start`, `start + step`, … up to `end` (`/api/v1/query_range`),
    /// for history (`kscaler backtest`). Prometheus refuses more than 11,000 points a series:
    /// callers split long ranges.
    /// - Returns: One series per label set, each with the steps it had a value at (a series
    ///   absent at a step is no data there, never zero).
    /// - Throws: `PrometheusError`, or whatever the request signer throws.
    package func queryRange(_ promql: String, start: Date, end: Date, step: Duration) async throws -> [RangeSeries] {
        let parameters = [("query", promql), ("start", Self.unixSeconds(start)), ("end", Self.unixSeconds(end)),
                          ("step", String(step.seconds))]
        let response = try await send(path: "/api/v1/query_range", parameters: parameters)
        switch try decode(response) {
        case .matrix(let series): return series
        case .vector: throw PrometheusError.unsupportedResultType("vector")
        case .scalar: throw PrometheusError.unsupportedResultType("scalar")
        case .unsupported(let resultType): throw PrometheusError.unsupportedResultType(resultType)
        }
    }

    /// Signs (per `auth`), sends and logs one request; its answer, whatever its status.
    private func send(path: String, parameters: [(String, String)]) async throws -> HTTPResponse {
        var request = makeRequest(path: path, parameters: parameters)
        switch auth {
        case .none: break
        case .header(let secret): request.headers.append(HTTPHeader("Authorization", secret.value))
        case .signer(let signer): request = try signer.sign(request, at: Date())
        }
        var metadata: Logger.Metadata = ["method": "\(request.method)", "path": "\(path)"]
        let started = ContinuousClock.now
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch let error as HTTPError {
            metadata["elapsed_ms"] = .stringConvertible((ContinuousClock.now - started).inMilliseconds)
            // An HTTPError names the host and libcurl's failure, never headers or bodies.
            metadata["reason"] = "\(error)"
            logger.debug("prometheus request failed", metadata: metadata)
            throw PrometheusError.transport(error)
        }
        metadata["elapsed_ms"] = .stringConvertible((ContinuousClock.now - started).inMilliseconds)
        metadata["status"] = "\(response.status)"
        metadata["bytes"] = .stringConvertible(response.body.count)
        logger.debug("prometheus request", metadata: metadata)
        return response
    }

    /// GET with the parameters in the URL, or POST with them as a form body when they are long.
    private func makeRequest(path: String, parameters: [(String, String)]) -> HTTPRequest {
        let form = parameters.map { "\($0.0.percentEncodedAllButUnreserved)=\($0.1.percentEncodedAllButUnreserved)" }.joined(separator: "&")
        let url = baseURL + path
        if form.utf8.count <= Self.maximumGETParametersLength {
            return HTTPRequest(method: "GET", url: url + "?" + form, headers: [HTTPHeader("Accept", "application/json")], timeout: timeout)
        }
        return HTTPRequest(
            method: "POST",
            url: url,
            headers: [HTTPHeader("Accept", "application/json"), HTTPHeader("Content-Type", "application/x-www-form-urlencoded")],
            body: Data(form.utf8),
            timeout: timeout
        )
    }

    /// The answer's data, or the error Prometheus (or whatever answered instead) gave.
    private func decode(_ response: HTTPResponse) throws(PrometheusError) -> ResultData {
        let envelope: APIResponse
        do {
            envelope = try JSONDecoder().decode(APIResponse.self, from: response.body)
        } catch let error as DecodingError {
            throw unreadable(response, reason: error.readableReason)
        } catch {
            throw unreadable(response, reason: "body could not be decoded")
        }
        switch (envelope.status, envelope.data) {
        case ("error", _):
            throw .api(
                httpStatus: response.status,
                errorType: envelope.errorType ?? "unknown",
                message: redacted(envelope.error ?? "(no message)")
            )
        case ("success", let data?): return data
        case ("success", nil): throw unreadable(response, reason: "status is success but there is no data")
        default: throw unreadable(response, reason: "unknown status \"\(envelope.status.prefix(40))\"")
        }
    }

    private func unreadable(_ response: HTTPResponse, reason: String) -> PrometheusError {
        .unreadableResponse(httpStatus: response.status, reason: redacted(reason), snippet: snippet(of: response.body))
    }

    /// The start of a body on one line, at most 200 characters, control characters replaced
    /// (it ends up in logs), the client's secrets cut out (a proxy may echo request headers).
    private func snippet(of body: Data) -> String {
        let longestSecret = auth.secrets.map(\.utf8.count).max() ?? 0
        let text = redacted(String(decoding: body.prefix(4_096 + longestSecret), as: UTF8.self))
        let printable = String(String.UnicodeScalarView(text.unicodeScalars.map {
            $0.properties.generalCategory == .control && !$0.properties.isWhitespace ? "\u{FFFD}" : $0
        }))
        let oneLine = printable.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        if oneLine.isEmpty { return "(empty body)" }
        return oneLine.count > 200 ? String(oneLine.prefix(200)) + "…" : oneLine
    }

    private func redacted(_ text: String) -> String {
        auth.secrets.reduce(text) { $0.replacing($1, with: "<redacted>") }
    }

    private static func validated(_ baseURL: String) throws(PrometheusError) -> String {
        guard let url = URL(string: baseURL), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw .invalidBaseURL(reason: "\"\(baseURL)\" is not an absolute URL like http://prometheus:9090")
        }
        guard scheme == "http" || scheme == "https" else {
            throw .invalidBaseURL(reason: "scheme \(scheme) is not supported; use http or https")
        }
        guard url.user == nil, url.password == nil else {
            // Not echoing the URL: it holds a credential.
            throw .invalidBaseURL(reason: "the URL contains credentials; configure them under prometheus.auth instead")
        }
        guard url.query == nil, url.fragment == nil else {
            throw .invalidBaseURL(reason: "\"\(baseURL)\" has a query or fragment; give only scheme, host, port and path prefix")
        }
        var trimmed = Substring(baseURL)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }

    /// Unix seconds with millisecond precision, the form Prometheus itself uses.
    static func unixSeconds(_ time: Date) -> String {
        String((time.timeIntervalSince1970 * 1_000).rounded() / 1_000)
    }
}
