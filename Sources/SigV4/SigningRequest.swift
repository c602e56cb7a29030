#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What gets signed.
///
/// - `path` is the unencoded path (`/example space/`); the signer percent-encodes it once. For paths
///   of unreserved characters and `/` (everything kscaler sends) that is exactly what AWS computes.
///   Other paths: S3 (`normalizePath: false`) signs the path encoded once, so pass it unencoded;
///   other services encode the already-encoded wire path again, so pass the path as sent (`/a%20b`).
/// - `query` holds decoded name/value pairs in any order; duplicates are kept and all signed.
/// - `headers` are the headers as they will be sent and must include `host`.
package struct SigningRequest: Sendable {
    package var method: String
    package var path: String
    package var query: [(name: String, value: String)]
    package var headers: [(name: String, value: String)]
    package var body: Data

    package init(
        method: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)],
        body: Data = Data()
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}

/// The first stage of signing, exposed so it can be checked (and logged when AWS answers
/// `SignatureDoesNotMatch`: AWS's error message contains the canonical request it computed).
package struct CanonicalRequest: Sendable, Equatable {
    /// The canonical request itself: six lines joined by `\n`, no final newline.
    package var text: String
    /// The `;`-separated, sorted, lower-case names of the signed headers.
    package var signedHeaders: String
    /// Hex SHA-256 of the body, or the request's own `x-amz-content-sha256` value.
    package var payloadHash: String
}

/// A signed request: the headers to send plus every intermediate value, for tests and diagnostics.
package struct SignedRequest: Sendable {
    /// The request's own headers plus `X-Amz-Date`, `X-Amz-Security-Token` (when the credentials
    /// carry a token), `x-amz-content-sha256` (when asked for) and, last, `Authorization`.
    package var headers: [(name: String, value: String)]
    package var canonicalRequest: String
    package var stringToSign: String
    /// The full `Authorization` header value. Secret-bearing: never log it.
    package var authorization: String
    /// The 64-character lowercase hex signature inside `authorization`.
    package var signature: String
}

// Requests carry `Authorization` and `X-Amz-Security-Token`; their printed and reflected forms hide
// those values so a request can be logged or shown in a test failure without leaking.

extension SigningRequest: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    package var description: String {
        "SigningRequest(\(method) \(path), query: \(query.count) pairs, headers: \(redacted(headers)), body: \(body.count) bytes)"
    }
    package var debugDescription: String { description }
    package var customMirror: Mirror {
        Mirror(self, children: ["method": method, "path": path, "headers": redacted(headers), "body": body])
    }
}

extension SignedRequest: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    package var description: String { "SignedRequest(headers: \(redacted(headers)))" }
    package var debugDescription: String { description }
    package var customMirror: Mirror { Mirror(self, children: ["headers": redacted(headers)]) }
}

/// The headers as `[Name: value, …]` with secret-bearing values replaced by `<redacted>`.
private func redacted(_ headers: [(name: String, value: String)]) -> String {
    let secretNames: Set<String> = ["authorization", "x-amz-security-token"]
    let shown = headers.map { "\($0.name): \(secretNames.contains($0.name.lowercased()) ? "<redacted>" : $0.value)" }
    return "[\(shown.joined(separator: ", "))]"
}
