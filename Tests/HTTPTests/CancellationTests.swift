import HTTP
import TestSupport
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A run's deadline and SIGTERM must stop requests in flight, not wait for them: a peer that
/// never answers would otherwise hold a run past its lease. Each stub here delays its answer
/// by a minute; every expectation on `requestsInFlight` proves the client gave up while the
/// peer was still "working", whatever the machine's speed.
@Suite struct CancellationTests {
    static func slowServer() throws -> StubHTTPServer {
        try StubHTTPServer(lifetime: .seconds(120)) { _ in .text("late", delay: .seconds(60)) }
    }

    /// Waits (a minute at most) until the server has read a request.
    static func untilReceived(_ server: StubHTTPServer) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while server.requests.isEmpty {
            guard ContinuousClock.now < deadline else { throw TestSupportError("the request never reached the server") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test func cancellingTheCallerAbortsATransferInFlight() async throws {
        let server = try Self.slowServer()
        defer { server.stop() }
        let transport = CurlTransport(totalTimeout: .seconds(90))
        let call = Task { try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/", body: Data("x".utf8))) }
        try await Self.untilReceived(server)
        call.cancel()
        let error = await #expect(throws: HTTPError.self) { try await call.value }
        #expect(error?.kind == .cancelled)
        #expect(error?.requestWasSent == true, "the peer read it: whether it acted is unknown")
        #expect(server.requestsInFlight == 1, "the answer was not waited for")
    }

    @Test func aCancelledCallerSendsNothing() async throws {
        let server = try Self.slowServer()
        defer { server.stop() }
        let call = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await CurlTransport().send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        }
        await #expect(throws: CancellationError.self) { try await call.value }
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.requests.isEmpty)
    }

    @Test func theDeadlineCutsARequestsOwnTimeoutShort() async throws {
        let server = try Self.slowServer()
        defer { server.stop() }
        let transport = CurlTransport(totalTimeout: .seconds(90))
        let error = await #expect(throws: HTTPError.self) {
            try await RequestDeadline.bounded(by: .now + .seconds(2)) {
                try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/", timeout: .seconds(90)))
            }
        }
        #expect(error?.kind == .timedOut)
        #expect(error?.detail.hasPrefix("the run's deadline came first: timed out") == true, "\(String(describing: error))")
        // (On a very loaded machine the request may not even have left in 2 s.)
        #expect(error?.requestWasSent == !server.requests.isEmpty)
        #expect(server.requests.isEmpty || server.requestsInFlight == 1, "the answer was not waited for")
    }

    @Test func noRequestStartsAfterTheDeadline() async throws {
        let server = try Self.slowServer()
        defer { server.stop() }
        let error = await #expect(throws: HTTPError.self) {
            try await RequestDeadline.bounded(by: .now - .seconds(1)) {
                try await CurlTransport().send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
            }
        }
        #expect(error?.detail == "the run's deadline passed before the request was sent")
        #expect(error?.requestWasSent == false)
        #expect(server.connectionCount == 0)
    }

    @Test func anInnerDeadlineNeverExtendsAnOuterOne() async throws {
        let outer = ContinuousClock.now + .seconds(5)
        let inner = await RequestDeadline.bounded(by: outer) {
            await RequestDeadline.bounded(by: outer + .seconds(60)) { RequestDeadline.current }
        }
        #expect(inner == outer)
    }

    @Test func enforcingCancelsTheBodyWhenTheInstantPasses() async throws {
        let server = try Self.slowServer()
        defer { server.stop() }
        let transport = CurlTransport(totalTimeout: .seconds(90))
        let outcome = await RequestDeadline.enforcing(.now + .seconds(1)) {
            do {
                _ = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
                return "answered"
            } catch let error as HTTPError {
                return "\(error.kind)"
            } catch {
                return "\(error)"
            }
        }
        // The transfer ends by whichever comes first on a loaded machine: libcurl's own
        // timeout (set to the deadline) or the cancellation at the deadline. Never the answer.
        #expect(outcome == "cancelled" || outcome == "timedOut", "\(outcome)")
        #expect(server.requests.isEmpty || server.requestsInFlight == 1, "the answer was not waited for")
    }

    @Test func aRefusedConnectionSentNothing() async throws {
        let port = try StubHTTPServer.unusedPort()
        let error = await #expect(throws: HTTPError.self) {
            try await CurlTransport().send(HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/"))
        }
        #expect(error?.kind == .couldNotConnect)
        #expect(error?.requestWasSent == false)
    }
}

/// libcurl re-sends a request by itself when a reused connection closes without an answer. For
/// a POST the peer may already have acted on (a launch, a conditional write), that hides
/// exactly what the caller must know; the transport refuses the second send instead.
@Suite struct ResendTests {
    @Test func aRequestIsNeverSentTwiceBehindTheCallersBack() async throws {
        let server = try StubHTTPServer { request in
            switch request.target {
            case "/first": .text("ok")
            case "/second": .closeWithoutAnswer()
            default: .text("resent")
            }
        }
        defer { server.stop() }
        // A generous timeout: what is checked is a closed connection, which answers at once; a
        // loaded CI machine once took longer than the default 10 s to get the stub to close it.
        let transport = CurlTransport(totalTimeout: .seconds(60))
        _ = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/first", body: Data("1".utf8)))
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/second", body: Data("2".utf8)))
        }
        #expect(error?.kind == .receiveFailed)
        #expect(error?.requestWasSent == true)
        #expect(error?.isTransient == true, "the caller's retry policy decides")
        #expect(server.requests.map(\.target) == ["/first", "/second"])
    }
}
