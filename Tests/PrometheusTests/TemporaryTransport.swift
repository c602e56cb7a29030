// TEMPORARY: a test-only HTTPTransport on URLSession, until the libcurl CurlTransport lands
// from the HTTP branch. The integrator replaces every use of `TemporaryTransport()` with
// `CurlTransport()` and deletes this file.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTP

struct TemporaryTransport: HTTPTransport {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let url = URL(string: request.url), let host = url.host else {
            throw HTTPError(kind: .invalidURL, host: "", detail: "not an absolute URL")
        }
        let hostAndPort = url.port.map { "\(host):\($0)" } ?? host
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        for header in request.headers { urlRequest.addValue(header.value, forHTTPHeaderField: header.name) }
        if !request.body.isEmpty { urlRequest.httpBody = request.body }
        if let timeout = request.timeout {
            // URLSession on Linux fails at once with a timeout below one second: round up.
            let parts = timeout.components
            urlRequest.timeoutInterval = max(1, (Double(parts.seconds) + Double(parts.attoseconds) / 1e18).rounded(.up))
        }
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        do {
            let (body, response) = try await session.data(for: urlRequest)
            guard let http = response as? HTTPURLResponse else {
                throw HTTPError(kind: .other, host: hostAndPort, detail: "not an HTTP response")
            }
            let headers = http.allHeaderFields.map { HTTPHeader("\($0.key)", "\($0.value)") }
            return HTTPResponse(status: http.statusCode, headers: headers, body: body)
        } catch let error as URLError {
            let kind: HTTPError.Kind = switch error.code {
            case .timedOut: .timedOut
            case .cannotConnectToHost: .couldNotConnect
            case .cannotFindHost, .dnsLookupFailed: .couldNotResolveHost
            case .networkConnectionLost: .receiveFailed
            default: .other
            }
            throw HTTPError(kind: kind, host: hostAndPort, detail: "URLError \(error.code.rawValue)")
        }
    }
}
