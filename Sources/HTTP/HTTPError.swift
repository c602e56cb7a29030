/// A failure to exchange an HTTP request and response. Names the host and what failed;
/// never carries headers or bodies, so it cannot leak a credential into a log.
package struct HTTPError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        case invalidURL
        case unsupportedScheme
        case couldNotResolveHost
        case couldNotConnect
        case timedOut
        /// The calling task was cancelled (a signal, a run's deadline) while the exchange ran.
        case cancelled
        case tls
        case sendFailed
        case receiveFailed
        case other
    }

    package var kind: Kind
    /// Host (and port, if given) of the URL that failed; empty when the URL did not parse.
    package var host: String
    /// What went wrong, in words; for libcurl failures this includes the CURLcode and libcurl's message.
    package var detail: String
    /// Whether any byte of the request went out. When it did, the peer may have acted on the
    /// request (launched, terminated, written) although no answer arrived: the result of the
    /// call is unknown, not "nothing happened".
    package var requestWasSent: Bool

    package init(kind: Kind, host: String, detail: String, requestWasSent: Bool = false) {
        self.kind = kind
        self.host = host
        self.detail = detail
        self.requestWasSent = requestWasSent
    }

    /// Connection-level failures that a retry may cure.
    package var isTransient: Bool {
        switch kind {
        case .couldNotConnect, .timedOut, .sendFailed, .receiveFailed, .couldNotResolveHost: true
        case .invalidURL, .unsupportedScheme, .tls, .cancelled, .other: false
        }
    }

    package var description: String {
        host.isEmpty ? "HTTP request failed: \(detail)" : "HTTP request to \(host) failed: \(detail)"
    }
}
