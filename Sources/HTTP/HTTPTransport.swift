#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One header line. Order and repetition are kept: AWS signing and some peers care.
package struct HTTPHeader: Sendable, Hashable {
    package var name: String
    package var value: String
    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A request as the layers above build it: absolute URL, headers in send order, body bytes.
package struct HTTPRequest: Sendable {
    package var method: String
    /// Absolute `http://` or `https://` URL, already percent-encoded as it goes on the wire.
    package var url: String
    package var headers: [HTTPHeader]
    package var body: Data
    /// Overrides the transport's total timeout for this request (connect timeout stays).
    package var timeout: Duration?

    package init(method: String, url: String, headers: [HTTPHeader] = [], body: Data = Data(), timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

package struct HTTPResponse: Sendable {
    package var status: Int
    package var headers: [HTTPHeader]
    package var body: Data
    /// The status line's reason phrase, when the peer sent one. Most peers say only "OK"; Proxmox
    /// VE puts its error message there.
    package var reason: String?

    package init(status: Int, headers: [HTTPHeader] = [], body: Data = Data(), reason: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.reason = reason
    }

    /// First value of a header, compared case-insensitively as HTTP requires.
    package func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// The one seam between kscaler and the network. Production uses `CurlTransport`;
/// unit tests may script answers. Any HTTP status is a response, not an error:
/// only a failure to exchange bytes (DNS, connect, TLS, timeout, …) throws, and what it
/// throws is always an `HTTPError`.
package protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}
