import HTTP
import TestSupport
import Testing

@Suite struct RecordingTransportTests {
    @Test func countsRequestsPeakConcurrencyAndSequentialBursts() async throws {
        let server = try StubHTTPServer { _ in .text("ok", delay: .milliseconds(200)) }
        let recorder = RecordingTransport(wrapping: CurlTransport())
        let request = HTTPRequest(method: "GET", url: server.baseURL + "/")

        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 { group.addTask { _ = try await recorder.send(request) } }
            try await group.waitForAll()
        }
        _ = try await recorder.send(request)
        _ = try await recorder.send(request)

        let counts = recorder.counts
        #expect(counts.requests == 5)
        #expect(counts.maxInFlight == 3)
        #expect(counts.bursts == 3)
    }

    @Test func failedRequestsCountAndLeaveNothingInFlight() async throws {
        let recorder = RecordingTransport(wrapping: CurlTransport())
        let port = try StubHTTPServer.unusedPort()
        for _ in 0..<2 {
            await #expect(throws: HTTPError.self) {
                try await recorder.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/"))
            }
        }
        #expect(recorder.counts.requests == 2)
        #expect(recorder.counts.bursts == 2, "a failure must not leave a request counted as in flight")
    }
}
