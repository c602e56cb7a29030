#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP

/// Signs a finished request, e.g. with AWS SigV4 (service `aps`) for Amazon Managed
/// Prometheus. Kept as a protocol so this target needs no signing code of its own.
package protocol RequestSigner: Sendable {
    /// Returns `request` with the signature headers added. Errors are passed to the caller unchanged.
    func sign(_ request: HTTPRequest, at time: Date) throws -> HTTPRequest
}

/// How kscaler authenticates to Prometheus. Secrets live in files so they never sit in the
/// config or the environment; the files are read each time a client is created.
package enum PrometheusAuth: Sendable {
    case none
    /// HTTP basic auth; the password is the file's content minus trailing line breaks.
    case basic(username: String, passwordFile: String)
    /// `Authorization: Bearer <token>`; the token is the file's content minus trailing line breaks.
    case bearer(tokenFile: String)
    case signed(any RequestSigner)
}

/// The auth of one client, ready to apply to each request.
enum ResolvedAuth: Sendable {
    case none
    case header(Secret)
    case signer(any RequestSigner)

    init(_ auth: PrometheusAuth) throws(PrometheusError) {
        switch auth {
        case .none:
            self = .none
        case .basic(let username, let passwordFile):
            guard !username.isEmpty, !username.contains(":") else {
                throw .invalidAuth(reason: "basic auth needs a username without ':' (RFC 7617)")
            }
            let password = try readSecret(from: passwordFile, purpose: "password")
            let credentials = Data("\(username):\(password)".utf8).base64EncodedString()
            self = .header(Secret("Basic \(credentials)", also: [credentials, password]))
        case .bearer(let tokenFile):
            let token = try readSecret(from: tokenFile, purpose: "bearer token")
            self = .header(Secret("Bearer \(token)", also: [token]))
        case .signed(let signer):
            self = .signer(signer)
        }
    }

    /// Strings that must never appear in an error: the header value and the raw secret in it.
    var secrets: [String] {
        if case .header(let secret) = self { return secret.redactable }
        return []
    }
}

/// A one-line secret file's content (`SecretFile`), its problems as `invalidAuth`.
private func readSecret(from path: String, purpose: String) throws(PrometheusError) -> String {
    do {
        return try SecretFile.read(path, purpose: purpose)
    } catch {
        throw .invalidAuth(reason: error.description)
    }
}

/// A credential that prints as `<redacted>` in descriptions, debug output and `dump`.
struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String
    /// The value and its parts as they could appear verbatim in a peer's answer.
    let redactable: [String]

    init(_ value: String, also parts: [String]) {
        self.value = value
        self.redactable = [value] + parts
    }

    var description: String { "<redacted>" }
    var debugDescription: String { "<redacted>" }
    var customMirror: Mirror { Mirror(self, children: [:]) }
}
