/// A failure to exchange an HTTP request and response. Names the host and what failed;
/// never carries headers or bodies, so it cannot leak a credential into a log.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case invalidURL
        case unsupportedScheme
        case couldNotResolveHost
        case couldNotConnect
        case timedOut
        case tls
        case sendFailed
        case receiveFailed
        case other
    }

    public var kind: Kind
    /// Host (and port, if given) of the URL that failed; empty when the URL did not parse.
    public var host: String
    /// What went wrong, in words; for libcurl failures this includes the CURLcode and libcurl's message.
    public var detail: String

    public init(kind: Kind, host: String, detail: String) {
        self.kind = kind
        self.host = host
        self.detail = detail
    }

    /// Connection-level failures that a retry may cure.
    public var isTransient: Bool {
        switch kind {
        case .couldNotConnect, .timedOut, .sendFailed, .receiveFailed, .couldNotResolveHost: true
        case .invalidURL, .unsupportedScheme, .tls, .other: false
        }
    }

    public var description: String {
        host.isEmpty ? "HTTP request failed: \(detail)" : "HTTP request to \(host) failed: \(detail)"
    }
}
