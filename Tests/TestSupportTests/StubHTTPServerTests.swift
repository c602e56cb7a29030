import Foundation
import HTTP
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The stub server under the load a whole test run puts on it: hundreds of connections held
/// at once (keep-alive, answers that take minutes) across the suites of one process.
@Suite struct StubHTTPServerTests {
    /// More held requests than Dispatch runs threads (about 255 per process): a server thread
    /// per connection taken from Dispatch left the next connection waiting seconds for one, and
    /// an unrelated test's request timed out.
    @Test func aRequestIsAnsweredWhileHundredsAreHeld() async throws {
        let held = 300
        let server = try StubHTTPServer(lifetime: .seconds(120)) { request in
            request.target == "/hold" ? .text("late", delay: .seconds(90)) : .text("now")
        }
        defer { server.stop() }
        var sockets: [Int32] = []
        defer { for socket in sockets { close(socket) } }
        for _ in 0..<held { sockets.append(try Self.sendRequest(target: "/hold", port: server.port)) }
        let deadline = ContinuousClock.now + .seconds(60)
        while server.requestsInFlight < held, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(server.requestsInFlight == held)
        let answer = try await CurlTransport().send(HTTPRequest(method: "GET", url: server.baseURL + "/now", timeout: .seconds(5)))
        #expect(answer.status == 200)
        #expect(String(decoding: answer.body, as: UTF8.self) == "now")
    }

    /// Connects to 127.0.0.1:`port` and sends one GET; the socket stays open for the caller.
    static func sendRequest(target: String, port: Int) throws -> Int32 {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw TestSupportError("connect() failed: errno \(errno)") }
        let request = Array("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            close(fd)
            throw TestSupportError("send() failed: errno \(errno)")
        }
        return fd
    }
}
