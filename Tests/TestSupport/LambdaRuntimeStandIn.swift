import Foundation
import HTTP
import Synchronization

/// A stateful stand-in for the AWS Lambda Runtime API, version 2018-06-01 — the HTTP API a
/// custom runtime (`provided.al2023`, the binary named `bootstrap`) finds at
/// `$AWS_LAMBDA_RUNTIME_API` — on a `StubHTTPServer` (127.0.0.1, an ephemeral port).
///
/// What it does, as the published reference (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
/// and its OpenAPI file) says the real one does:
/// - `GET /2018-06-01/runtime/invocation/next` blocks until an event is queued (`enqueue`), then
///   answers 200 with the event as body and the headers `Lambda-Runtime-Aws-Request-Id`,
///   `Lambda-Runtime-Deadline-Ms` (epoch milliseconds), `Lambda-Runtime-Invoked-Function-Arn`,
///   `Lambda-Runtime-Trace-Id`.
/// - `POST …/invocation/{id}/response` and `POST …/invocation/{id}/error` answer 202
///   `{"status":"OK"}` once per handed-out invocation; an id never handed out is 400
///   (`InvalidRequestID`), a second result for the same id is 403 (`InvalidStateTransition`), a
///   response body over 6 MB is 413 (`RequestEntityTooLarge`). Errors are recorded with their
///   `Lambda-Runtime-Function-Error-Type` header and their JSON body.
/// - `POST /2018-06-01/runtime/init/error` is 202 before the first invocation is handed out, 403
///   (`InvalidStateTransition`) after.
/// - Anything else is 404.
///
/// Where the real one differs (none of it is modelled here):
/// - Lambda freezes the process between invocations and kills it at the deadline (a timeout is
///   reported as `Sandbox.Timedout` by Lambda itself); here the deadline is only a header, and a
///   runtime that overruns it goes on running.
/// - After `init/error` or a 500 Lambda tears the execution environment down; here the server
///   stays up and keeps answering.
/// - The real API serves one invocation at a time per environment and does not hand out the next
///   event until the previous one has a result; here `next` hands out whatever is queued.
/// - Sizes other than the 6 MB response limit, the X-Ray header's contents, the client context
///   and Cognito identity headers, response streaming and `Lambda-Runtime-Function-Response-Mode`
///   are not modelled. The 410 status is not part of the published API, and is never sent here.
package final class LambdaRuntimeStandIn: Sendable {
    /// How an invocation ended, as the runtime posted it.
    package struct Result: Sendable {
        package enum Kind: Sendable { case response, error }
        package var kind: Kind
        package var body: Data
        /// `Lambda-Runtime-Function-Error-Type`, for an error.
        package var errorTypeHeader: String?

        /// The error body's `errorType` and `errorMessage`, when it is the JSON the API expects.
        package var errorType: String? { field("errorType") }
        package var errorMessage: String? { field("errorMessage") }
        package var text: String { String(decoding: body, as: UTF8.self) }

        private func field(_ name: String) -> String? {
            (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?[name] as? String
        }
    }

    private struct Queued: Sendable {
        var id: String
        var body: Data
        var deadlineIn: Duration
    }

    private struct State {
        var queue: [Queued] = []
        var handedOut: Set<String> = []
        var results: [String: Result] = [:]
        var initErrors: [Result] = []
        var nextRequests = 0
        var closed = false
    }

    private let state = Mutex(State())
    private let wakeUp = NSCondition()
    private let server: StubHTTPServer

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    package var address: String { "127.0.0.1:\(server.port)" }

    /// The function ARN handed out with every invocation.
    package static let functionARN = "arn:aws:lambda:us-east-1:123456789012:function:kscaler"
    /// The largest synchronous response the real API takes.
    package static let maxResponseBytes = 6 * 1024 * 1024

    package init(lifetime: Duration = .seconds(300)) throws {
        let box = Handler()
        server = try StubHTTPServer(lifetime: lifetime) { request in box.handle(request) }
        box.standIn.withLock { $0 = self }
    }

    /// Queues an event; `deadlineIn` is counted from when `next` hands it out. Returns its request id.
    @discardableResult
    package func enqueue(_ event: String, deadlineIn: Duration = .seconds(30)) -> String {
        let id = UUID().uuidString.lowercased()
        state.withLock { $0.queue.append(Queued(id: id, body: Data(event.utf8), deadlineIn: deadlineIn)) }
        wakeUp.lock()
        wakeUp.broadcast()
        wakeUp.unlock()
        return id
    }

    /// The result posted for `id`, waited for (polling, never blocking a thread) up to `timeout`.
    package func result(of id: String, within timeout: Duration = .seconds(60)) async -> Result? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let result = state.withLock({ $0.results[id] }) { return result }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return state.withLock { $0.results[id] }
    }

    /// `init/error` calls received, in order.
    package var initErrors: [Result] { state.withLock { $0.initErrors } }
    /// `GET next` requests received (answered or still waiting).
    package var nextRequests: Int { state.withLock { $0.nextRequests } }
    /// Every request received, as the server read it.
    package var requests: [RecordedRequest] { server.requests }

    /// Waits (polling) until `next` has been asked at least `count` times: the runtime is idle,
    /// between invocations.
    package func waitForNextRequests(_ count: Int, within timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if nextRequests >= count { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nextRequests >= count
    }

    /// Wakes every waiting `next` (its connection is closed without an answer) and stops the server.
    package func stop() {
        state.withLock { $0.closed = true }
        wakeUp.lock()
        wakeUp.broadcast()
        wakeUp.unlock()
        server.stop()
    }

    // MARK: - The API

    fileprivate func handle(_ request: RecordedRequest) -> StubResponse {
        let prefix = "/2018-06-01/runtime/"
        guard request.target.hasPrefix(prefix) else { return Self.json(404, #"{"errorMessage":"not found","errorType":"NotFound"}"#) }
        let path = request.target.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let method = request.method
        if method == "GET", path == ["invocation", "next"] { return next() }
        if method == "POST", path.count == 3, path[0] == "invocation", path[2] == "response" {
            guard request.body.count <= Self.maxResponseBytes else {
                return Self.json(413, #"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#)
            }
            return record(Result(kind: .response, body: request.body), for: path[1].removingPercentEncoding ?? path[1])
        }
        if method == "POST", path.count == 3, path[0] == "invocation", path[2] == "error" {
            return record(Result(kind: .error, body: request.body, errorTypeHeader: request.header("Lambda-Runtime-Function-Error-Type")),
                          for: path[1].removingPercentEncoding ?? path[1])
        }
        if method == "POST", path == ["init", "error"] {
            let accepted = state.withLock { state in
                guard state.handedOut.isEmpty else { return false }
                state.initErrors.append(Result(kind: .error, body: request.body, errorTypeHeader: request.header("Lambda-Runtime-Function-Error-Type")))
                return true
            }
            return accepted ? Self.json(202, #"{"status":"OK"}"#)
                : Self.json(403, #"{"errorMessage":"init/error after the first invocation","errorType":"InvalidStateTransition"}"#)
        }
        return Self.json(404, #"{"errorMessage":"unknown path","errorType":"NotFound"}"#)
    }

    /// Blocks this connection's own thread (never Swift's pool) until an event is queued or
    /// the stand-in stops; bounded by the server's lifetime.
    private func next() -> StubResponse {
        state.withLock { $0.nextRequests += 1 }
        wakeUp.lock()
        defer { wakeUp.unlock() }
        let giveUp = Date().addingTimeInterval(600)
        while true {
            let taken: Queued?? = state.withLock { state in
                if state.closed { return .some(nil) }
                guard !state.queue.isEmpty else { return nil }
                let event = state.queue.removeFirst()
                state.handedOut.insert(event.id)
                return .some(event)
            }
            switch taken {
            case .some(.some(let event)):
                let deadline = Int64(Date().timeIntervalSince1970 * 1000) + Int64(event.deadlineIn.components.seconds * 1000)
                    + Int64(event.deadlineIn.components.attoseconds / 1_000_000_000_000_000)
                return StubResponse(status: 200, headers: [
                    HTTPHeader("Content-Type", "application/json"),
                    HTTPHeader("Lambda-Runtime-Aws-Request-Id", event.id),
                    HTTPHeader("Lambda-Runtime-Deadline-Ms", "\(deadline)"),
                    HTTPHeader("Lambda-Runtime-Invoked-Function-Arn", Self.functionARN),
                    HTTPHeader("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"),
                ], body: event.body)
            case .some(.none):
                return .closeWithoutAnswer()
            case .none:
                if !wakeUp.wait(until: min(giveUp, Date().addingTimeInterval(0.2))) && Date() >= giveUp { return .closeWithoutAnswer() }
            }
        }
    }

    private func record(_ result: Result, for id: String) -> StubResponse {
        enum Verdict { case accepted, unknown, twice }
        let verdict: Verdict = state.withLock { state in
            guard state.handedOut.contains(id) else { return .unknown }
            guard state.results[id] == nil else { return .twice }
            state.results[id] = result
            return .accepted
        }
        switch verdict {
        case .accepted: return Self.json(202, #"{"status":"OK"}"#)
        case .unknown: return Self.json(400, #"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#)
        case .twice: return Self.json(403, #"{"errorMessage":"Invalid state transition: the invocation already has a result","errorType":"InvalidStateTransition"}"#)
        }
    }

    private static func json(_ status: Int, _ body: String) -> StubResponse {
        StubResponse(status: status, headers: [HTTPHeader("Content-Type", "application/json")], body: Data(body.utf8))
    }
}

/// The server's handler, made before the stand-in it calls exists.
private final class Handler: Sendable {
    let standIn = Mutex<LambdaRuntimeStandIn?>(nil)

    func handle(_ request: RecordedRequest) -> StubResponse {
        guard let standIn = standIn.withLock({ $0 }) else { return .closeWithoutAnswer() }
        return standIn.handle(request)
    }
}
