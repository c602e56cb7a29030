import HTTP

/// Everything that can go wrong between a PromQL string and a `QueryResult`.
/// No case carries a credential: response snippets are redacted of the client's secrets.
package enum PrometheusError: Error, Sendable, CustomStringConvertible {
    /// `prometheus.url` is unusable; `reason` says why and how to fix it.
    case invalidBaseURL(reason: String)
    /// The auth settings or a credential file are unusable; `reason` names the file, never its content.
    case invalidAuth(reason: String)
    /// No HTTP exchange happened (DNS, connect, TLS, timeout, …).
    case transport(HTTPError)
    /// Prometheus answered with its own error, e.g. `bad_data` (HTTP 400, a PromQL syntax
    /// error) or `execution` (HTTP 422, e.g. a many-to-many match at run time).
    case api(httpStatus: Int, errorType: String, message: String)
    /// The body is not a Prometheus API answer: an HTML error page from a proxy, plain text,
    /// truncated or otherwise malformed JSON. `snippet` is the start of the body, secrets removed.
    case unreadableResponse(httpStatus: Int, reason: String, snippet: String)
    /// Prometheus answered with a result type kscaler does not use (`matrix` or `string`):
    /// the query must evaluate to an instant vector or a scalar.
    case unsupportedResultType(String)

    package var description: String {
        switch self {
        case .invalidBaseURL(let reason):
            "invalid Prometheus URL: \(reason)"
        case .invalidAuth(let reason):
            "invalid Prometheus auth: \(reason)"
        case .transport(let error):
            "Prometheus unreachable: \(error)"
        case .api(let httpStatus, let errorType, let message):
            "Prometheus rejected the query (HTTP \(httpStatus), \(errorType)): \(message)"
        case .unreadableResponse(let httpStatus, let reason, let snippet):
            "unreadable answer from Prometheus (HTTP \(httpStatus)): \(reason); body starts: \(snippet)"
        case .unsupportedResultType(let type):
            "Prometheus answered with a \(type) result; the query must yield an instant vector or a scalar"
        }
    }
}
