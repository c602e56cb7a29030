import Foundation
import HTTP
import Testing
import TestSupport

/// The Runtime API stand-in answers as the published API says, for what a runtime may get wrong.
@Suite struct LambdaRuntimeStandInTests {
    static func send(_ method: String, _ url: String, body: String = "", headers: [HTTPHeader] = []) async throws -> HTTPResponse {
        try await CurlTransport().send(HTTPRequest(method: method, url: url, headers: headers, body: Data(body.utf8), timeout: .seconds(120)))
    }

    @Test func nextHandsOutQueuedEventsAndEachInvocationTakesOneResult() async throws {
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        let base = "http://\(runtime.address)/2018-06-01/runtime"
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let id = runtime.enqueue(#"{"mode":"plan"}"#, deadlineIn: .seconds(30))

        let next = try await Self.send("GET", "\(base)/invocation/next")
        #expect(next.status == 200)
        #expect(next.header("Lambda-Runtime-Aws-Request-Id") == id)
        let deadline = try #require(next.header("Lambda-Runtime-Deadline-Ms").flatMap { Int64($0) })
        #expect(deadline >= before + 29_000 && deadline <= before + 60_000, "\(deadline - before) ms")
        #expect(next.header("Lambda-Runtime-Invoked-Function-Arn") == LambdaRuntimeStandIn.functionARN)
        #expect(next.header("Lambda-Runtime-Trace-Id")?.hasPrefix("Root=") == true)
        #expect(String(decoding: next.body, as: UTF8.self) == #"{"mode":"plan"}"#)

        // init/error is refused once an invocation is out; results only for ids handed out, once.
        #expect(try await Self.send("POST", "\(base)/init/error", body: "{}").status == 403)
        #expect(try await Self.send("POST", "\(base)/invocation/not-handed-out/response", body: "{}").status == 400)
        #expect(try await Self.send("POST", "\(base)/invocation/\(id)/response", body: #"{"ok":true}"#).status == 202)
        #expect(try await Self.send("POST", "\(base)/invocation/\(id)/response", body: "{}").status == 403, "a second result")
        #expect(try await Self.send("POST", "\(base)/invocation/\(id)/error", body: "{}").status == 403, "a second result")
        #expect(try await Self.send("GET", "\(base)/invocation/\(id)/nothing").status == 404)
        let result = try #require(await runtime.result(of: id, within: .seconds(60)))
        #expect(result.kind == .response)
        #expect(result.text == #"{"ok":true}"#)
    }

    @Test func errorsAreRecordedWithTheirTypeAndOversizedResponsesRefused() async throws {
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        let base = "http://\(runtime.address)/2018-06-01/runtime"
        #expect(try await Self.send("POST", "\(base)/init/error", body: #"{"errorMessage":"m","errorType":"T"}"#,
                                    headers: [HTTPHeader("Lambda-Runtime-Function-Error-Type", "T")]).status == 202)
        #expect(runtime.initErrors.first?.errorType == "T")
        #expect(runtime.initErrors.first?.errorTypeHeader == "T")

        let big = runtime.enqueue("{}")
        let small = runtime.enqueue("{}")
        #expect(try await Self.send("GET", "\(base)/invocation/next").header("Lambda-Runtime-Aws-Request-Id") == big)
        #expect(try await Self.send("GET", "\(base)/invocation/next").header("Lambda-Runtime-Aws-Request-Id") == small)
        let tooLarge = String(repeating: "x", count: LambdaRuntimeStandIn.maxResponseBytes + 1)
        #expect(try await Self.send("POST", "\(base)/invocation/\(big)/response", body: tooLarge).status == 413)
        #expect(try await Self.send("POST", "\(base)/invocation/\(small)/error", body: #"{"errorMessage":"m","errorType":"KScaler.X"}"#,
                                    headers: [HTTPHeader("Lambda-Runtime-Function-Error-Type", "KScaler.X")]).status == 202)
        let error = try #require(await runtime.result(of: small, within: .seconds(60)))
        #expect(error.kind == .error && error.errorType == "KScaler.X" && error.errorMessage == "m")
        #expect(await runtime.result(of: big, within: .milliseconds(100)) == nil, "a refused response is no result")
    }

    /// `next` waits for an event (the runtime long-polls), and is answered as soon as one comes.
    @Test func nextWaitsForAnEvent() async throws {
        let runtime = try LambdaRuntimeStandIn()
        defer { runtime.stop() }
        let waiting = Task { try await Self.send("GET", "http://\(runtime.address)/2018-06-01/runtime/invocation/next") }
        #expect(await runtime.waitForNextRequests(1, within: .seconds(120)))
        try await Task.sleep(for: .milliseconds(300))
        let id = runtime.enqueue("{}")
        let next = try await waiting.value
        #expect(next.header("Lambda-Runtime-Aws-Request-Id") == id)
    }
}
