// The client against a stand-in server: answer shapes and failures a real Prometheus does
// not produce on demand (proxy pages, truncated bodies, silence, foreign JSON).
import Foundation
import HTTP
import Prometheus
import TestSupport
import Testing

/// Serves every request with the same reply.
func standIn(status: Int = 200, contentType: String = "application/json", body: String) throws -> StubHTTPServer {
    try StubHTTPServer { _ in .text(body, status: status, headers: [HTTPHeader("Content-Type", contentType)]) }
}

func client(of server: StubHTTPServer, auth: PrometheusAuth = .none, timeout: Duration = .seconds(5)) throws -> PrometheusClient {
    try PrometheusClient(baseURL: server.baseURL, auth: auth, timeout: timeout, transport: CurlTransport())
}

/// Runs `body`, which must throw a `PrometheusError`, and returns that error.
func prometheusError(_ body: () async throws -> Void) async -> PrometheusError? {
    do {
        try await body()
        Issue.record("expected a PrometheusError, got success")
    } catch let error as PrometheusError {
        return error
    } catch {
        Issue.record("expected a PrometheusError, got \(type(of: error)): \(error)")
    }
    return nil
}

@Suite struct ClientResponseTests {
    @Test func decodesVectorLabelsTimestampsAndSpecialValues() async throws {
        let server = try standIn(body: """
        {"status":"success","data":{"resultType":"vector","result":[
          {"metric":{"__name__":"x","node":"i-0a"},"value":[1795253657.431,"97.98"]},
          {"metric":{"node":"i-0b"},"value":[1795253657.431,"NaN"]},
          {"metric":{"node":"i-0c"},"value":[1795253657,"+Inf"]},
          {"metric":{},"value":[1795253657.5,"-Inf"]}]}}
        """)
        defer { server.stop() }
        let samples = try await client(of: server).query("x").samples
        try #require(samples.count == 4)
        #expect(samples[0].labels == ["__name__": "x", "node": "i-0a"])
        #expect(samples[0].value == 97.98)
        #expect(abs(samples[0].timestamp.timeIntervalSince1970 - 1795253657.431) < 1e-6)
        #expect(samples[1].value.isNaN)
        #expect(samples[2].value == .infinity)
        #expect(samples[2].timestamp == Date(timeIntervalSince1970: 1795253657))
        #expect(samples[3].labels.isEmpty)
        #expect(samples[3].value == -.infinity)
    }

    @Test func decodesMatrixSeriesWithTheirPointsAndSpecialValues() async throws {
        let server = try standIn(body: """
        {"status":"success","data":{"resultType":"matrix","result":[
          {"metric":{"namespace":"web","pod":"web-1","resource":"cpu"},"values":[[1795253640,"0.5"],[1795253700,"NaN"]]},
          {"metric":{},"values":[]}]}}
        """)
        defer { server.stop() }
        let series = try await client(of: server).queryRange("x", start: Date(timeIntervalSince1970: 1_795_253_640),
                                                               end: Date(timeIntervalSince1970: 1_795_253_700), step: .seconds(60))
        #expect(series.count == 2)
        #expect(series[0].labels == ["namespace": "web", "pod": "web-1", "resource": "cpu"])
        #expect(series[0].points.map(\.timestamp) == [Date(timeIntervalSince1970: 1_795_253_640), Date(timeIntervalSince1970: 1_795_253_700)])
        #expect(series[0].points[0].value == 0.5)
        #expect(series[0].points[1].value.isNaN)
        #expect(series[1].points.isEmpty)
        // An instant vector where a range was asked for is not read as one.
        let vector = try standIn(body: #"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
        defer { vector.stop() }
        let error = await prometheusError { _ = try await client(of: vector).queryRange("x", start: Date(), end: Date(), step: .seconds(1)) }
        guard case .unsupportedResultType("vector")? = error else {
            Issue.record("expected unsupportedResultType(vector), got \(String(describing: error))")
            return
        }
    }

    @Test func emptyVectorIsNoDataNotZero() async throws {
        let server = try standIn(body: #"{"status":"success","data":{"resultType":"vector","result":[]}}"#)
        defer { server.stop() }
        let result = try await client(of: server).query("absent_metric")
        #expect(result == .vector([]))
        #expect(result.isNoData)
        #expect(result.samples.isEmpty)
    }

    @Test func decodesScalar() async throws {
        let server = try standIn(body: #"{"status":"success","data":{"resultType":"scalar","result":[1795253657.453,"2"]}}"#)
        defer { server.stop() }
        let result = try await client(of: server).query("1+1")
        #expect(result == .scalar(Sample(timestamp: Date(timeIntervalSince1970: 1795253657.453), value: 2)))
        #expect(!result.isNoData)
    }

    @Test func htmlErrorPageNamesStatusAndShowsItsStart() async throws {
        let page = """
        <html>
        <head><title>502 Bad Gateway</title></head>
        <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.22.1</center></body>
        </html>
        """ + String(repeating: "<!-- padding -->\n", count: 100)
        let server = try standIn(status: 502, contentType: "text/html", body: page)
        defer { server.stop() }
        let error = await prometheusError { _ = try await client(of: server).query("up") }
        guard case .unreadableResponse(let status, let reason, let snippet)? = error else {
            Issue.record("expected unreadableResponse, got \(String(describing: error))")
            return
        }
        #expect(status == 502)
        #expect(reason == "body is not valid JSON")
        #expect(snippet.hasPrefix("<html> <head><title>502 Bad Gateway</title></head>"))
        #expect(snippet.count <= 201, "snippet is short")
        #expect(error!.description.contains("HTTP 502"))
    }

    @Test func truncatedJSONIsUnreadable() async throws {
        let server = try standIn(body: #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"node":"i-0a"},"val"#)
        defer { server.stop() }
        let error = await prometheusError { _ = try await client(of: server).query("up") }
        guard case .unreadableResponse(200, "body is not valid JSON", let snippet)? = error else {
            Issue.record("expected unreadableResponse for HTTP 200, got \(String(describing: error))")
            return
        }
        #expect(snippet.hasPrefix(#"{"status":"success""#))
    }

    @Test func garbageAndEmptyBodiesAreUnreadable() async throws {
        for (body, expectedSnippet) in [("\u{1}\u{1b}[31mgarbage\u{ff}", "\u{FFFD}\u{FFFD}[31mgarbage\u{ff}"), ("", "(empty body)")] {
            let server = try standIn(status: 500, contentType: "application/octet-stream", body: body)
            defer { server.stop() }
            let error = await prometheusError { _ = try await client(of: server).query("up") }
            guard case .unreadableResponse(500, _, let snippet)? = error else {
                Issue.record("expected unreadableResponse for HTTP 500, got \(String(describing: error))")
                continue
            }
            #expect(snippet == expectedSnippet)
        }
    }

    @Test func foreignJSONIsNotAPrometheusAnswer() async throws {
        // What an AWS endpoint says to an unsigned request.
        let server = try standIn(status: 403, body: #"{"message":"Missing Authentication Token"}"#)
        defer { server.stop() }
        let error = await prometheusError { _ = try await client(of: server).query("up") }
        guard case .unreadableResponse(403, let reason, let snippet)? = error else {
            Issue.record("expected unreadableResponse for HTTP 403, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("\"status\""))
        #expect(snippet.contains("Missing Authentication Token"))
    }

    @Test func sampleValueThatIsNotANumberIsUnreadable() async throws {
        let server = try standIn(body: #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"lots"]}]}}"#)
        defer { server.stop() }
        let error = await prometheusError { _ = try await client(of: server).query("up") }
        guard case .unreadableResponse(200, let reason, _)? = error else {
            Issue.record("expected unreadableResponse, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("sample value \"lots\" is not a number"))
        #expect(reason.contains("data.result[0].value"))
    }

    @Test func prometheusErrorBodyKeepsItsTypeAndMessage() async throws {
        let server = try standIn(status: 503, body: #"{"status":"error","errorType":"unavailable","error":"query queue full"}"#)
        defer { server.stop() }
        let error = await prometheusError { _ = try await client(of: server).query("up") }
        guard case .api(503, "unavailable", "query queue full")? = error else {
            Issue.record("expected api error, got \(String(describing: error))")
            return
        }
    }

    @Test func silentServerTimesOutWithinTheClientTimeout() async throws {
        let server = try StubHTTPServer { _ in .closeWithoutAnswer(after: .seconds(4)) }
        defer { server.stop() }
        let started = ContinuousClock.now
        let error = await prometheusError { _ = try await client(of: server, timeout: .seconds(1)).query("up") }
        guard case .transport(let transportError)? = error else {
            Issue.record("expected a transport error, got \(String(describing: error))")
            return
        }
        // Without the 1 s timeout the server's hang-up at 4 s would be a receive failure, so the
        // error kind proves the timeout; only a lower bound is safe on a loaded machine.
        #expect(transportError.kind == .timedOut)
        #expect(transportError.isTransient)
        #expect(ContinuousClock.now - started >= .seconds(1))
    }

    @Test func refusedConnectionIsATransportError() async throws {
        let prometheus = try PrometheusClient(baseURL: "http://127.0.0.1:\(StubHTTPServer.unusedPort())", transport: CurlTransport())
        let error = await prometheusError { _ = try await prometheus.query("up") }
        guard case .transport(let transportError)? = error else {
            Issue.record("expected a transport error, got \(String(describing: error))")
            return
        }
        #expect(transportError.kind == .couldNotConnect)
    }

    @Test func decodesTenThousandSeries() async throws {
        let count = 10_000
        var body = #"{"status":"success","data":{"resultType":"vector","result":["#
        for index in 0..<count {
            if index > 0 { body += "," }
            body += #"{"metric":{"__name__":"kube_pod_info","namespace":"ns-\#(index % 50)","pod":"pod-\#(index)","node":"i-0123456789abcdef\#(index % 10)","created_by_kind":"ReplicaSet","uid":"\#(UUID().uuidString)","instance":"10.0.0.1:8080","job":"kube-state-metrics"},"value":[1795253657.431,"\#(index).5"]}"#
        }
        body += "]}}"
        let server = try standIn(body: body)
        defer { server.stop() }
        let prometheus = try client(of: server)
        let started = ContinuousClock.now
        let samples = try await prometheus.query("kube_pod_info").samples
        let elapsed = ContinuousClock.now - started
        print("10,000-series vector (\(body.utf8.count) bytes): fetched and decoded in \(elapsed)")
        try #require(samples.count == count)
        #expect(samples[9_999].labels["pod"] == "pod-9999")
        #expect(samples[9_999].value == 9_999.5)
        #expect(samples.allSatisfy { $0.labels.count == 8 })
    }
}
