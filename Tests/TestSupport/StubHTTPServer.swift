import Dispatch
import HTTP
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One request as the stub server read it off the wire.
package struct RecordedRequest: Sendable {
    package var method: String
    /// Path and query exactly as sent (`/latest/api/token?x=1`).
    package var target: String
    /// In wire order, repeats kept.
    package var headers: [HTTPHeader]
    package var body: Data
    /// Which accepted TCP connection carried it (1 = the first).
    package var connection: Int

    /// Every value of a header, in order; names compare case-insensitively.
    package func values(of name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    package func header(_ name: String) -> String? { values(of: name).first }

    /// The form fields of a Query-protocol (AWS form-encoded) body, decoded.
    package var form: [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            fields[parts[0]] = parts.count > 1 ? parts[1].replacing("+", with: " ").removingPercentEncoding : ""
        }
        return fields
    }
}

/// What the stub does with one request.
package struct StubResponse: Sendable {
    package enum Delivery: Sendable {
        /// A well-formed HTTP/1.1 response from `status`, `headers` and `body`.
        case answer
        /// Close the connection without a byte of answer (a crashed or hung-up peer).
        case closeWithoutAnswer
        /// Send these bytes verbatim, then close (a peer that is not speaking HTTP).
        case raw(Data)
    }

    package var status: Int
    /// Sent as given; `Content-Length` is added unless present.
    package var headers: [HTTPHeader]
    package var body: Data
    /// Wait this long before acting (a slow peer; beyond the client's timeout, a hung one).
    package var delay: Duration
    package var delivery: Delivery

    package init(status: Int = 200, headers: [HTTPHeader] = [], body: Data = Data(), delay: Duration = .zero, delivery: Delivery = .answer) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
        self.delivery = delivery
    }

    package static func text(_ text: String, status: Int = 200, headers: [HTTPHeader] = [], delay: Duration = .zero) -> StubResponse {
        StubResponse(status: status, headers: headers, body: Data(text.utf8), delay: delay)
    }

    package static func closeWithoutAnswer(after delay: Duration = .zero) -> StubResponse {
        StubResponse(delay: delay, delivery: .closeWithoutAnswer)
    }

    package static func raw(_ bytes: String, after delay: Duration = .zero) -> StubResponse {
        StubResponse(delay: delay, delivery: .raw(Data(bytes.utf8)))
    }
}

package struct StubServerError: Error, CustomStringConvertible {
    package var description: String
}

/// An in-process HTTP/1.1 server on 127.0.0.1 and an ephemeral port: the stand-in for
/// instance metadata (IMDS), the ECS credentials endpoint, and peers that misbehave.
///
/// Real sockets, so the client under test does real connects, keep-alive and timeouts.
/// One thread accepts; each connection gets its own thread, so delayed answers overlap.
/// `stop()` wakes every waiting thread at once; the loops also wake every 50 ms to check
/// `lifetime`, after which the server stops by itself even if a test forgets to. The default
/// is generous: on a loaded 2-core CI machine a test can wait minutes between creating its
/// stub and sending the first request, and a stub that had stopped by then read as "could not
/// connect" instead of the answer the test scripted.
package final class StubHTTPServer: Sendable {
    package let port: Int
    package var baseURL: String { "http://127.0.0.1:\(port)" }

    private let state: ServerState

    /// Starts listening immediately; `handler` may run on several threads at once.
    package init(lifetime: Duration = .seconds(600), handler: @escaping @Sendable (RecordedRequest) -> StubResponse) throws {
        let state = try ServerState(handler: handler, deadline: .now + lifetime)
        let listener = try Self.listenOnLoopback()
        port = listener.port
        self.state = state
        state.serve(listener: listener.fd)
    }

    deinit { stop() }

    /// Every request received so far, in arrival order.
    package var requests: [RecordedRequest] { state.record.withLock { $0.requests } }
    /// TCP connections accepted so far.
    package var connectionCount: Int { state.record.withLock { $0.connections } }
    /// Most requests being handled at the same moment (read but not yet answered).
    package var maxConcurrentRequests: Int { state.record.withLock { $0.maxInFlight } }
    /// Requests read but not answered yet (a handler's delay still running).
    package var requestsInFlight: Int { state.record.withLock { $0.inFlight } }

    /// Closes the listener and every connection. The threads are woken rather than left to
    /// notice on their next poll, and they are not waited for: tests call this on Swift's
    /// cooperative pool (one thread per core), which must never block (a handler may still be
    /// inside a long delay; it ends by itself).
    package func stop() {
        state.record.withLock { $0.stopped = true }
        state.wakeWaitingThreads()
    }

    /// A loopback port held bound but not listening for as long as the returned value lives:
    /// a connection to it is refused, and no other server can take it meanwhile (a port merely
    /// released, as `unusedPort()` gives, was taken by another test's server on a loaded CI
    /// machine, which then answered). Keep it alive with `withExtendedLifetime`.
    package static func closedPort() throws -> ClosedPort {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StubServerError(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw StubServerError(description: "cannot bind 127.0.0.1: \(reason)")
        }
        return ClosedPort(fd: fd, port: Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A loopback port that nothing listens on (bound, read back, released): for
    /// "connection refused" tests.
    package static func unusedPort() throws -> Int {
        let listener = try listenOnLoopback()
        close(listener.fd)
        return listener.port
    }

    private static func listenOnLoopback() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StubServerError(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0
                    && listen(fd, 64) == 0
                    && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw StubServerError(description: "cannot listen on 127.0.0.1: \(reason)")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// Everything the server threads share; they hold this, not the server, so the server's
/// deinit can run (and stop them) while they are still going.
private final class ServerState: Sendable {
    struct Record {
        var requests: [RecordedRequest] = []
        var connections = 0
        var inFlight = 0
        var maxInFlight = 0
        var stopped = false
    }

    let record = Mutex(Record())
    private let handler: @Sendable (RecordedRequest) -> StubResponse
    private let deadline: ContinuousClock.Instant
    /// A connected socket pair: every wait also polls `wakeUpReader`, which `stop()` makes
    /// readable for good by writing a byte to `wakeUpWriter`.
    private let wakeUpReader: Int32
    private let wakeUpWriter: Int32

    private static let pollInterval: Int32 = 50  // ms
    private static let maxHeaderBytes = 64 << 10
    private static let maxBodyBytes = 16 << 20

    init(handler: @escaping @Sendable (RecordedRequest) -> StubResponse, deadline: ContinuousClock.Instant) throws {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw StubServerError(description: "socketpair: \(String(cString: strerror(errno)))")
        }
        wakeUpReader = pair[0]
        wakeUpWriter = pair[1]
        self.handler = handler
        self.deadline = deadline
    }

    /// Runs once the server and all its threads are gone.
    deinit {
        close(wakeUpReader)
        close(wakeUpWriter)
    }

    func wakeWaitingThreads() {
        var byte: UInt8 = 1
        _ = send(wakeUpWriter, &byte, 1, Int32(MSG_NOSIGNAL))
    }

    private var shouldStop: Bool {
        record.withLock { $0.stopped } || ContinuousClock.now >= deadline
    }

    func serve(listener: Int32) {
        spawn { [self] in
            defer { close(listener) }
            while waitUntilReadable(listener) {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { continue }
                let number = record.withLock { record in
                    record.connections += 1
                    return record.connections
                }
                spawn { [self] in
                    defer { close(connection) }
                    serveConnection(connection, number: number)
                }
            }
        }
    }

    /// A thread of its own for the accept loop and for each connection. Not a Dispatch queue:
    /// Dispatch runs at most ~255 threads per process, and a whole test run holds more blocked
    /// connections than that at times (keep-alive, two-minute answers), after which a new
    /// connection waited seconds for a thread (measured: 300 blocked → 4.9 s; 600 → 9.9 s).
    private func spawn(_ body: @escaping @Sendable () -> Void) {
        startDetachedThread(body)
    }

    /// Answers requests on one connection until the peer or a response closes it.
    private func serveConnection(_ fd: Int32, number: Int) {
        var buffer: [UInt8] = []
        while let request = readRequest(fd, buffer: &buffer, connection: number) {
            let response = beginHandling(request)
            defer { record.withLock { $0.inFlight -= 1 } }
            guard pause(response.delay) else { return }
            switch response.delivery {
            case .closeWithoutAnswer:
                return
            case .raw(let bytes):
                writeAll(fd, Array(bytes))
                return
            case .answer:
                let closing = Self.wantsClose(request.headers) || Self.wantsClose(response.headers)
                writeAll(fd, Self.serialize(response, closing: closing, omitBody: request.method == "HEAD"))
                if closing { return }
            }
        }
    }

    private func beginHandling(_ request: RecordedRequest) -> StubResponse {
        record.withLock { record in
            record.requests.append(request)
            record.inFlight += 1
            record.maxInFlight = max(record.maxInFlight, record.inFlight)
        }
        return handler(request)
    }

    /// Reads one request (head plus `Content-Length` body); nil at EOF, on stop, or on a
    /// request this stub does not handle (it then just closes, like a strict server).
    private func readRequest(_ fd: Int32, buffer: inout [UInt8], connection: Int) -> RecordedRequest? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while true {
            headEnd = buffer.firstRange(of: separator)?.lowerBound
            if headEnd != nil || buffer.count > Self.maxHeaderBytes { break }
            guard receive(fd, into: &buffer) else { return nil }
        }
        guard let headEnd else { return nil }
        let lines = String(decoding: buffer[..<headEnd], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines[0].split(separator: " ")
        guard requestLine.count == 3 else { return nil }
        let headers = lines.dropFirst().compactMap { line -> HTTPHeader? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            return HTTPHeader(String(line[..<colon]), String(value.reversed().drop { $0 == " " || $0 == "\t" }.reversed()))
        }
        if headers.contains(where: { $0.name.lowercased() == "transfer-encoding" }) { return nil }
        let bodyLength = headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) } ?? 0
        guard bodyLength <= Self.maxBodyBytes else { return nil }
        let bodyStart = headEnd + separator.count
        while buffer.count < bodyStart + bodyLength {
            guard receive(fd, into: &buffer) else { return nil }
        }
        let body = Data(buffer[bodyStart..<(bodyStart + bodyLength)])
        buffer.removeFirst(bodyStart + bodyLength)
        return RecordedRequest(method: String(requestLine[0]), target: String(requestLine[1]),
                               headers: headers, body: body, connection: connection)
    }

    /// Appends what the socket has; false at EOF, on error, or when the server stops.
    private func receive(_ fd: Int32, into buffer: inout [UInt8]) -> Bool {
        guard waitUntilReadable(fd) else { return false }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let count = recv(fd, &chunk, chunk.count, 0)
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[..<count])
        return true
    }

    /// Waits until `fd` is readable; false once the server stops (at once on `stop()`, within
    /// 50 ms at the end of its lifetime) or on error.
    private func waitUntilReadable(_ fd: Int32) -> Bool {
        var descriptors = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: wakeUpReader, events: Int16(POLLIN), revents: 0)]
        while !shouldStop {
            let ready = poll(&descriptors, 2, Self.pollInterval)
            if ready > 0 && descriptors[0].revents != 0 { return !shouldStop }
            if ready < 0 && errno != EINTR { return false }
        }
        return false
    }

    /// Sleeps for `delay`; false if the server stopped meanwhile.
    private func pause(_ delay: Duration) -> Bool {
        let end = ContinuousClock.now + delay
        var wakeUp = pollfd(fd: wakeUpReader, events: Int16(POLLIN), revents: 0)
        while ContinuousClock.now < end {
            if shouldStop { return false }
            let left = end - ContinuousClock.now
            let (seconds, attoseconds) = min(left, .milliseconds(Int(Self.pollInterval))).components
            // Rounded up, so a sub-millisecond remainder does not spin.
            _ = poll(&wakeUp, 1, Int32(seconds * 1_000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
        }
        return !shouldStop
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a client that already hung up must not SIGPIPE the test process.
            let count = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return }
            sent += count
        }
    }

    private static func wantsClose(_ headers: [HTTPHeader]) -> Bool {
        headers.contains { $0.name.lowercased() == "connection" && $0.value.lowercased() == "close" }
    }

    private static func serialize(_ response: StubResponse, closing: Bool, omitBody: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(response.status) \(reasonPhrase(response.status))\r\n"
        for header in response.headers { head += "\(header.name): \(header.value)\r\n" }
        let names = Set(response.headers.map { $0.name.lowercased() })
        if !names.contains("content-length") { head += "Content-Length: \(response.body.count)\r\n" }
        if closing && !names.contains("connection") { head += "Connection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (omitBody ? [] : Array(response.body))
    }

    private static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "Status"
        }
    }
}

/// A port bound on 127.0.0.1 and never listened on (`StubHTTPServer.closedPort()`): refused to
/// every connection until this is released.
package final class ClosedPort: Sendable {
    package let port: Int
    private let fd: Int32

    init(fd: Int32, port: Int) {
        self.fd = fd
        self.port = port
    }

    deinit { close(fd) }
}
