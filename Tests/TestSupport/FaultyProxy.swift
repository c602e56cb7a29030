import Dispatch
import HTTP
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Stands in for the network between kscaler and a real peer (moto): forwards each request to
/// `upstream` byte for byte (the SigV4 signature, Host header included, stays valid) and, where
/// the test's `fault` says, breaks it the way real networks do:
///
/// - `.badGatewayPage`: a load balancer's HTML 502 instead of forwarding (the peer never saw it);
/// - `.dropAnswer`: forwards, lets the peer act, then closes the connection without a byte of
///   answer — the client cannot know that its request took effect;
/// - `.delayAnswer(d)`: forwards at once, holds the answer for `d` (a peer that acts, then
///   answers after the client's deadline).
///
/// What it cannot show: a real network can also drop a request before the peer reads it; that
/// is the plain "connection failed" every client already retries.
package final class FaultyProxy: Sendable {
    package enum Fault: Sendable, Equatable { case none, badGatewayPage, dropAnswer, delayAnswer(Duration) }

    private let server: StubHTTPServer
    package var baseURL: String { server.baseURL }
    /// Every request seen (its operation) with the fault applied to it, in order.
    package var log: [(operation: String?, fault: Fault)] { record.entries.withLock { $0 } }
    private let record = Log()

    private final class Log: Sendable {
        let entries = Mutex<[(operation: String?, fault: Fault)]>([])
    }

    /// `fault` gets each request and the number of earlier requests of the same operation
    /// (`X-Amz-Target` for JSON protocols, `Action` for Query ones), so "the first UpdateItem" is
    /// `{ $0 == "DynamoDB_20120810.UpdateItem" && $1 == 0 ? .dropAnswer : .none }`.
    /// `beforeForwarding` runs with the same arguments just before a request goes on (on the
    /// proxy's own thread, so it may block): another writer acting between two requests.
    package init(upstream: String,
                 beforeForwarding: @escaping @Sendable (_ operation: String?, _ earlierOfTheSame: Int) -> Void = { _, _ in },
                 fault: @escaping @Sendable (_ operation: String?, _ earlierOfTheSame: Int) -> Fault) throws {
        let record = self.record
        let transport = CurlTransport(totalTimeout: .seconds(60), acceptsCompressedResponses: false)
        server = try StubHTTPServer(lifetime: .seconds(300)) { request in
            let operation = Self.operation(of: request)
            let (chosen, earlier) = record.entries.withLock { log in
                let earlier = log.filter { $0.operation == operation }.count
                let chosen = fault(operation, earlier)
                log.append((operation, chosen))
                return (chosen, earlier)
            }
            if chosen == .badGatewayPage {
                return .text("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
                             status: 502, headers: [HTTPHeader("Content-Type", "text/html")])
            }
            beforeForwarding(operation, earlier)
            var answer = Self.forward(request, to: upstream, with: transport)
            switch chosen {
            case .dropAnswer: return .closeWithoutAnswer()
            case .delayAnswer(let delay): answer.delay = delay; return answer
            default: return answer
            }
        }
    }

    package func stop() { server.stop() }

    private static func operation(of request: RecordedRequest) -> String? {
        if let target = request.header("X-Amz-Target") { return target }
        let form = String(decoding: request.body, as: UTF8.self)
        return form.split(separator: "&").first { $0.hasPrefix("Action=") }.map { String($0.dropFirst("Action=".count)) }
    }

    /// Runs on the stub server's own thread (never the cooperative pool), so waiting is allowed.
    private static func forward(_ request: RecordedRequest, to upstream: String, with transport: CurlTransport) -> StubResponse {
        let hopByHop: Set<String> = ["content-length", "connection", "transfer-encoding", "keep-alive"]
        let forwarded = HTTPRequest(method: request.method, url: upstream + request.target,
                                    headers: request.headers.filter { !hopByHop.contains($0.name.lowercased()) }, body: request.body)
        let answer = Mutex<Result<HTTPResponse, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let result: Result<HTTPResponse, any Error>
            do { result = .success(try await transport.send(forwarded)) } catch { result = .failure(error) }
            answer.withLock { $0 = result }
            done.signal()
        }
        _ = done.wait(timeout: .now() + 90)
        switch answer.withLock({ $0 }) {
        case .success(let response)?:
            return StubResponse(status: response.status,
                                headers: response.headers.filter { !hopByHop.contains($0.name.lowercased()) && $0.name.lowercased() != "content-encoding" },
                                body: response.body)
        case .failure(let error)?:
            return .text("proxy: upstream failed: \(error)", status: 599)
        case nil:
            return .text("proxy: upstream did not answer within 90 s", status: 599)
        }
    }
}
