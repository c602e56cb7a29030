// The client against a real Prometheus: the answers and errors it really gives.
import Foundation
import HTTP
import Prometheus
import Synchronization
import TestSupport
import Testing

/// Passes requests to libcurl and remembers their methods.
final class MethodRecordingTransport: HTTPTransport {
    private let transport = CurlTransport()
    private let methods = Mutex<[String]>([])
    var sentMethods: [String] { methods.withLock { $0 } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        methods.withLock { $0.append(request.method) }
        return try await transport.send(request)
    }
}

@Suite(.fakeCluster(.busy)) struct ClientAgainstPrometheusTests {
    @Test func vectorCarriesLabelsAndAFreshEvaluationTime() async throws {
        let samples = try await fakeClusterPrometheus().client().query("kube_node_info").samples
        #expect(Set(samples.compactMap { $0.labels["node"] }) == [
            "ip-10-0-1-10", "i-0123456789abcdef0", "i-0123456789abcdef1", "i-0123456789abcdef2", "i-0123456789abcdef3",
        ])
        #expect(samples.allSatisfy { $0.labels["provider_id"]?.hasPrefix("aws:///us-east-1") == true && $0.value == 1 })
        #expect(samples.allSatisfy { $0.freshness(now: Date(), staleness: .seconds(30)) == .fresh })
    }

    @Test func scalarsAndSpecialValues() async throws {
        let prometheus = try fakeClusterPrometheus().client()
        #expect(try await prometheus.query("scalar(count(kube_node_info))").samples.map(\.value) == [5])
        guard case .scalar(let notANumber) = try await prometheus.query("0/0") else {
            Issue.record("0/0 should be a scalar")
            return
        }
        #expect(notANumber.value.isNaN)
        #expect(try await prometheus.query("vector(1/0)").samples.map(\.value) == [.infinity])
        #expect(try await prometheus.query("vector(-1/0)").samples.map(\.value) == [-.infinity])
    }

    @Test func noMatchingSeriesIsNoData() async throws {
        let result = try await fakeClusterPrometheus().client().query(#"kube_node_info{node="i-0fffffffffffffff0"}"#)
        #expect(result.isNoData)
    }

    @Test func syntaxErrorIsBadData() async throws {
        let error = await prometheusError { _ = try await fakeClusterPrometheus().client().query("sum(kube_node_info") }
        guard case .api(400, "bad_data", let message)? = error else {
            Issue.record("expected api(400, bad_data), got \(String(describing: error))")
            return
        }
        #expect(message.contains("unclosed left parenthesis"))
    }

    @Test func runtimeMatchErrorIsExecution() async throws {
        let error = await prometheusError {
            _ = try await fakeClusterPrometheus().client().query("kube_pod_info * on(namespace) kube_pod_info")
        }
        guard case .api(422, "execution", let message)? = error else {
            Issue.record("expected api(422, execution), got \(String(describing: error))")
            return
        }
        #expect(message.contains("duplicate series"))
    }

    /// `kscaler backtest`'s range queries: one point a step, at exactly start + k × step.
    @Test func rangeQueryAnswersAPointAStep() async throws {
        let prometheus = try fakeClusterPrometheus().client()
        // The suite's Prometheus may hold less than the range's history yet: ask again until it
        // covers it (generous bound: a loaded machine scrapes late).
        var (start, end, series) = (Date(), Date(), [RangeSeries]())
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
            end = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            start = end.addingTimeInterval(-2)
            series = try await prometheus.queryRange("count(kube_node_info)", start: start, end: end, step: .seconds(1))
            if series.first?.points.count == 3 { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < deadline
        #expect(series.count == 1)
        #expect(series.first?.points.map(\.timestamp) == [start, start.addingTimeInterval(1), end])
        #expect(series.first?.points.map(\.value) == [5, 5, 5])
        let perNode = try await prometheus.queryRange("max by (node) (kube_node_info)", start: start, end: end, step: .seconds(1))
        #expect(perNode.count == 5)
        #expect(perNode.allSatisfy { $0.labels["node"] != nil && $0.points.count == 3 })

        let error = await prometheusError { _ = try await prometheus.queryRange("sum(up", start: start, end: end, step: .seconds(1)) }
        guard case .api(400, "bad_data", _)? = error else {
            Issue.record("expected api(400, bad_data), got \(String(describing: error))")
            return
        }
    }

    @Test(arguments: [("up[5s]", "matrix"), (#""kscaler""#, "string")])
    func rangeAndStringResultsAreUnsupported(query: String, resultType: String) async throws {
        let error = await prometheusError { _ = try await fakeClusterPrometheus().client().query(query) }
        guard case .unsupportedResultType(let type)? = error else {
            Issue.record("expected unsupportedResultType, got \(String(describing: error))")
            return
        }
        #expect(type == resultType)
    }

    @Test func wrongPathPrefixGivesPlainText404() async throws {
        let prometheus = try PrometheusClient(baseURL: fakeClusterPrometheus().baseURL + "/no-such-prefix", transport: CurlTransport())
        let error = await prometheusError { _ = try await prometheus.query("up") }
        guard case .unreadableResponse(404, "body is not valid JSON", "404 page not found")? = error else {
            Issue.record("expected unreadableResponse(404), got \(String(describing: error))")
            return
        }
    }

    @Test func longQueryIsPostedAndAnswered() async throws {
        let transport = MethodRecordingTransport()
        let prometheus = try PrometheusClient(baseURL: fakeClusterPrometheus().baseURL, transport: transport)
        let decoys = (0..<250).map { "i-0deadbeef\($0)" }
        let promql = "count(kube_node_info{node=~\"" + (decoys + ["i-0123456789abcdef1"]).joined(separator: "|") + "\"})"
        #expect(promql.utf8.count > PrometheusClient.maximumGETParametersLength)
        #expect(try await prometheus.query(promql).samples.map(\.value) == [1])
        #expect(transport.sentMethods == ["POST"])
    }

    @Test func timeParameterEvaluatesInThePastAndShowsAsStale() async throws {
        let past = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1_000).rounded() / 1_000 - 30.25)
        let sample = try #require(try await fakeClusterPrometheus().client().query("vector(time())", at: past).samples.first)
        #expect(sample.timestamp == past)
        #expect(abs(sample.value - past.timeIntervalSince1970) < 0.000_5)
        guard case .stale(let age) = sample.freshness(now: Date(), staleness: .seconds(10)) else {
            Issue.record("a 30 s old evaluation should be stale under a 10 s bound")
            return
        }
        #expect(age >= .seconds(30) && age < .seconds(40))
    }

    @Test func labelValuesSurviveEncodingBothWays() async throws {
        let text = #"a+b &c=%20é"q/?#"#
        let promql = "label_replace(vector(1), \"text\", `\(text)`, \"\", \"\")"
        let samples = try await fakeClusterPrometheus().client().query(promql).samples
        #expect(samples.map { $0.labels["text"] } == [text])
    }

    /// At debug level: method, API path, status and elapsed time of each request; never the
    /// bearer token (nor the query string, headers or answer that could carry it).
    @Test func requestsAreLoggedWithPathStatusAndElapsedTimeButNoToken() async throws {
        let token = "bearer-\(UUID().uuidString)"
        let tokenFile = FileManager.default.temporaryDirectory.appending(path: "kscaler-token-\(UUID().uuidString)").path
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        let log = CapturedLog()
        let prometheus = try PrometheusClient(baseURL: fakeClusterPrometheus().baseURL, auth: .bearer(tokenFile: tokenFile),
                                              transport: CurlTransport(), logger: log.logger())
        _ = try await prometheus.query("kube_node_info")
        let unreachable = try PrometheusClient(baseURL: "http://127.0.0.1:\(StubHTTPServer.unusedPort())", auth: .bearer(tokenFile: tokenFile),
                                               transport: CurlTransport(), logger: log.logger())
        _ = await prometheusError { _ = try await unreachable.query("up") }

        let answered = try #require(log.records("prometheus request").first)
        #expect(answered.level == .debug)
        #expect(answered.metadata["method"] == "GET" && answered.metadata["path"] == "/api/v1/query" && answered.metadata["status"] == "200")
        #expect(answered.metadata["elapsed_ms"].flatMap(Double.init) != nil)
        let failed = try #require(log.records("prometheus request failed").first)
        #expect(failed.metadata["path"] == "/api/v1/query" && failed.metadata["reason"]?.contains("127.0.0.1") == true)
        #expect(!log.text.contains(token), "\(log.text)")
    }
}

@Suite struct BasicAuthAgainstPrometheusTests {
    // bcrypt of "fixture-basic-password" (cost 4), made with Python's crypt.crypt and METHOD_BLOWFISH.
    static let passwordHash = "$2b$04$KTj8yViFzio8WYMjT0EMHOsfd1QzllS3jGHwWHkGTk7gWves96VPS"

    @Test func rightPasswordIsAnsweredWrongOneRefusedWithoutEcho() async throws {
        let server = try await RunningPrometheus.withBasicAuth(
            username: "kscaler", password: "fixture-basic-password", bcryptHash: Self.passwordHash
        )
        do {
            try await check(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    private func check(_ server: RunningPrometheus) async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-basic")
        defer { try? FileManager.default.removeItem(at: directory) }
        let right = directory.appending(path: "right").path, wrong = directory.appending(path: "wrong").path
        try "fixture-basic-password\n".write(toFile: right, atomically: true, encoding: .utf8)
        try "not-the-password\n".write(toFile: wrong, atomically: true, encoding: .utf8)

        let authorized = try server.client(auth: .basic(username: "kscaler", passwordFile: right))
        #expect(try await authorized.query("vector(7)").samples.map(\.value) == [7])

        for auth in [PrometheusAuth.basic(username: "kscaler", passwordFile: wrong), .none] {
            let error = await prometheusError { _ = try await server.client(auth: auth).query("vector(7)") }
            guard case .unreadableResponse(401, _, let snippet)? = error else {
                Issue.record("expected unreadableResponse(401), got \(String(describing: error))")
                continue
            }
            #expect(snippet == "Unauthorized")
            #expect(!error!.description.contains("not-the-password"))
        }
    }
}
