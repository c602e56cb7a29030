// What the client sends: method, URL, parameters, auth headers; and what it refuses to start with.
import Foundation
import HTTP
import Prometheus
import TestSupport
import Testing

private let emptyVector = #"{"status":"success","data":{"resultType":"vector","result":[]}}"#

/// Decodes an application/x-www-form-urlencoded string the way Prometheus (Go's url.ParseQuery) does.
private func formParameters(_ encoded: String) -> [String: String] {
    var parameters: [String: String] = [:]
    for pair in encoded.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1).map { $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
        parameters[parts[0]] = parts.count > 1 ? parts[1] : ""
    }
    return parameters
}

private func queryParameters(of request: RecordedRequest) -> [String: String] {
    guard let questionMark = request.target.firstIndex(of: "?") else { return [:] }
    return formParameters(String(request.target[request.target.index(after: questionMark)...]))
}

/// A file holding `content`, removed when the test ends.
private struct TemporaryFile: ~Copyable {
    let path: String
    init(_ content: String) throws {
        path = FileManager.default.temporaryDirectory.appending(path: "kscaler-secret-\(UUID().uuidString)").path
        try content.write(toFile: path, atomically: true, encoding: .utf8)
    }
    func replace(with content: String) throws { try content.write(toFile: path, atomically: true, encoding: .utf8) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct ClientRequestTests {
    @Test func shortQueryIsAGetWithEveryCharacterEncoded() async throws {
        let server = try standIn(body: emptyVector)
        defer { server.stop() }
        let promql = #"sum by (node) (rate(x{a=~"b|c", d!="e f"}[5m])) + 1 & é/%?#"#
        let time = Date(timeIntervalSince1970: 1_795_253_657.431)
        _ = try await client(of: server).query(promql, at: time)
        let request = try #require(server.requests.first)
        #expect(request.method == "GET")
        #expect(request.target.hasPrefix("/api/v1/query?"))
        #expect(queryParameters(of: request) == ["query": promql, "time": "1795253657.431"])
        #expect(request.body.isEmpty)
    }

    @Test func longQueryIsAFormPost() async throws {
        let server = try standIn(body: emptyVector)
        defer { server.stop() }
        let promql = "count(kube_node_info{node=~\"" + (0..<300).map { "i-\($0)" }.joined(separator: "|") + "\"})"
        _ = try await client(of: server).query(promql)
        let request = try #require(server.requests.first)
        #expect(request.method == "POST")
        #expect(request.target == "/api/v1/query")
        #expect(request.header("Content-Type") == "application/x-www-form-urlencoded")
        #expect(formParameters(String(decoding: request.body, as: UTF8.self)) == ["query": promql])
    }

    @Test func basePathPrefixIsKeptAndTrailingSlashesDropped() async throws {
        let server = try standIn(body: emptyVector)
        defer { server.stop() }
        let prometheus = try PrometheusClient(baseURL: server.baseURL + "/workspaces/ws-1//", transport: CurlTransport())
        #expect(prometheus.baseURL == server.baseURL + "/workspaces/ws-1")
        _ = try await prometheus.query("up")
        #expect(server.requests.first?.target.hasPrefix("/workspaces/ws-1/api/v1/query?query=up") == true)
    }

    @Test(arguments: [
        ("prometheus:9090", "not an absolute URL"),
        ("ftp://prometheus:9090", "scheme ftp is not supported"),
        ("http://prometheus:9090/?x=1", "has a query or fragment"),
        ("http://admin:hunter2@prometheus:9090", "contains credentials"),
    ])
    func unusableBaseURLIsRefused(url: String, expected: String) throws {
        do {
            _ = try PrometheusClient(baseURL: url, transport: CurlTransport())
            Issue.record("accepted \(url)")
        } catch {
            #expect(error.description.contains(expected))
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func bearerTokenIsReadFromItsFileOnEveryClientCreation() async throws {
        let server = try standIn(body: emptyVector)
        defer { server.stop() }
        let tokenFile = try TemporaryFile("first-token\n")
        _ = try await client(of: server, auth: .bearer(tokenFile: tokenFile.path)).query("up")
        try tokenFile.replace(with: "rotated-token\r\n")
        _ = try await client(of: server, auth: .bearer(tokenFile: tokenFile.path)).query("up")
        #expect(server.requests.map { $0.header("Authorization") } == ["Bearer first-token", "Bearer rotated-token"])
    }

    @Test func basicAuthSendsUsernameAndPasswordFromFile() async throws {
        let server = try standIn(body: emptyVector)
        defer { server.stop() }
        let passwordFile = try TemporaryFile("pa:ss wörd\n")
        _ = try await client(of: server, auth: .basic(username: "kscaler", passwordFile: passwordFile.path)).query("up")
        let header = try #require(server.requests.first?.header("Authorization"))
        #expect(header == "Basic " + Data("kscaler:pa:ss wörd".utf8).base64EncodedString())
    }

    @Test func unusableCredentialsAreRefusedWithoutShowingThem() throws {
        let empty = try TemporaryFile("\n")
        let twoLines = try TemporaryFile("secret-line-one\nInjected: header\n")
        let password = try TemporaryFile("hunter2")
        let cases: [(PrometheusAuth, String)] = [
            (.bearer(tokenFile: "/nonexistent/kscaler/token"), "bearer token file /nonexistent/kscaler/token does not exist"),
            (.bearer(tokenFile: empty.path), "bearer token file \(empty.path) is empty"),
            (.bearer(tokenFile: twoLines.path), "holds more than one line"),
            (.basic(username: "ks:caler", passwordFile: password.path), "username without ':'"),
            (.basic(username: "kscaler", passwordFile: ""), "password file path is empty"),
        ]
        for (auth, expected) in cases {
            do {
                _ = try PrometheusClient(baseURL: "http://127.0.0.1:9", auth: auth, transport: CurlTransport())
                Issue.record("accepted \(expected)")
            } catch {
                guard case .invalidAuth = error else {
                    Issue.record("expected invalidAuth, got \(error)")
                    continue
                }
                #expect(error.description.contains(expected))
                #expect(!error.description.contains("secret-line-one"))
            }
        }
    }

    @Test func secretsNeverAppearInDescriptionsOrErrors() async throws {
        // A broken proxy that echoes the request headers into its error page.
        let server = try StubHTTPServer { request in
            let echoed = request.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
            return .text("<pre>\(echoed)</pre>", status: 502, headers: [HTTPHeader("Content-Type", "text/html")])
        }
        defer { server.stop() }
        let tokenFile = try TemporaryFile("s3cr3t-t0ken\n")
        let passwordFile = try TemporaryFile("hunter2\n")
        let encodedBasic = Data("kscaler:hunter2".utf8).base64EncodedString()
        for auth in [PrometheusAuth.bearer(tokenFile: tokenFile.path), .basic(username: "kscaler", passwordFile: passwordFile.path)] {
            let prometheus = try client(of: server, auth: auth)
            var dumped = ""
            dump(prometheus, to: &dumped)
            let error = await prometheusError { _ = try await prometheus.query("up") }
            guard case .unreadableResponse(502, _, let snippet)? = error else {
                Issue.record("expected unreadableResponse, got \(String(describing: error))")
                continue
            }
            #expect(snippet.contains("Authorization: <redacted>"))
            for text in [String(describing: prometheus), String(reflecting: prometheus), dumped, error!.description] {
                for secret in ["s3cr3t-t0ken", "hunter2", encodedBasic] {
                    #expect(!text.contains(secret), "\(secret) leaked into: \(text)")
                }
            }
        }
    }

    /// Stands in for the SigV4 signer the AWS layer provides.
    struct RecordingSigner: RequestSigner {
        func sign(_ request: HTTPRequest, at time: Date) throws -> HTTPRequest {
            var signed = request
            let summary = "\(request.method) \(request.url) body=\(request.body.count) at=\(Int(time.timeIntervalSince1970))"
            signed.headers.append(HTTPHeader("X-Test-Signature", summary))
            return signed
        }
    }

    @Test func signerSignsTheFinalRequest() async throws {
        let server = try standIn(body: emptyVector)
        defer { server.stop() }
        let longQuery = "vector(1)" + String(repeating: " + vector(1)", count: 200)
        let before = Int(Date().timeIntervalSince1970)
        _ = try await client(of: server, auth: .signed(RecordingSigner())).query(longQuery)
        let request = try #require(server.requests.first)
        let signature = try #require(request.header("X-Test-Signature"))
        #expect(signature.hasPrefix("POST \(server.baseURL)/api/v1/query body=\(request.body.count) at="))
        let signedAt = try #require(Int(signature.split(separator: "=").last!))
        #expect(signedAt >= before && signedAt <= before + 5)
        #expect(request.header("Authorization") == nil)
    }

    struct FailingSigner: RequestSigner {
        struct NoCredentials: Error {}
        func sign(_ request: HTTPRequest, at time: Date) throws -> HTTPRequest { throw NoCredentials() }
    }

    @Test func signerErrorsReachTheCallerAndNothingIsSent() async throws {
        let server = try standIn(body: emptyVector)
        defer { server.stop() }
        await #expect(throws: FailingSigner.NoCredentials.self) {
            _ = try await client(of: server, auth: .signed(FailingSigner())).query("up")
        }
        #expect(server.requests.isEmpty)
    }
}

@Suite struct FreshnessTests {
    let now = Date(timeIntervalSince1970: 1_795_253_657)

    @Test func withinTheBoundIsFresh() {
        let sample = Sample(timestamp: now.addingTimeInterval(-299), value: 1)
        #expect(sample.freshness(now: now, staleness: .seconds(300)) == .fresh)
        #expect(Sample(timestamp: now.addingTimeInterval(2), value: 1).freshness(now: now, staleness: .seconds(300)) == .fresh)
    }

    @Test func olderThanTheBoundIsStale() {
        let sample = Sample(timestamp: now.addingTimeInterval(-301.5), value: 1)
        #expect(sample.freshness(now: now, staleness: .seconds(300)) == .stale(age: .milliseconds(301_500)))
    }

    @Test func farInTheFutureMeansClocksDisagree() {
        let sample = Sample(timestamp: now.addingTimeInterval(600), value: 1)
        #expect(sample.freshness(now: now, staleness: .seconds(300)) == .ahead(by: .seconds(600)))
    }
}
