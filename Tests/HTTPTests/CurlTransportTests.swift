import HTTP
import TestSupport
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `CurlTransport` against a real in-process HTTP server on 127.0.0.1: real sockets,
/// real keep-alive, real timeouts.
@Suite struct CurlTransportTests {
    let transport = CurlTransport()

    // MARK: - Exchanging bytes

    @Test func getSendsHeadersAsGivenAndReturnsStatusHeadersAndBody() async throws {
        let body = Data([0x00, 0x01, 0xFF, 0x0D, 0x0A, 0x7B])
        let server = try StubHTTPServer { _ in
            StubResponse(headers: [
                HTTPHeader("X-Answer", "one"), HTTPHeader("Set-Cookie", "a=1"),
                HTTPHeader("Set-Cookie", "b=2"), HTTPHeader("X-Empty", ""),
            ], body: body)
        }
        let response = try await transport.send(HTTPRequest(
            method: "GET", url: server.baseURL + "/latest/meta-data/iam?x=1&y=%2F",
            headers: [HTTPHeader("X-Multi", "first"), HTTPHeader("X-Multi", "second"), HTTPHeader("X-Blank", "")]
        ))

        #expect(response.status == 200)
        #expect(response.body == body)
        #expect(response.headers.map(\.name) == ["X-Answer", "Set-Cookie", "Set-Cookie", "X-Empty", "Content-Length"])
        #expect(response.headers.filter { $0.name == "Set-Cookie" }.map(\.value) == ["a=1", "b=2"])
        #expect(response.header("x-answer") == "one")
        #expect(response.header("X-Empty") == "")

        let request = try #require(server.requests.first)
        #expect(server.requests.count == 1)
        #expect(request.method == "GET")
        #expect(request.target == "/latest/meta-data/iam?x=1&y=%2F")
        #expect(request.values(of: "X-Multi") == ["first", "second"])
        #expect(request.header("X-Blank") == "")
        #expect(request.header("Host") == "127.0.0.1:\(server.port)")
        // Nothing the caller did not ask for (a signed request must stay as signed).
        #expect(request.header("User-Agent") == nil)
        #expect(request.header("Accept") == nil)
        #expect(request.header("Expect") == nil)
    }

    @Test func postSendsTheBodyBytesWithoutExpectContinue() async throws {
        // Past 1 MiB libcurl would normally wait for `100 Continue`; the stub never sends one.
        let payload = Data((0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let server = try StubHTTPServer { request in .text("got \(request.body.count)", status: 201) }
        let response = try await transport.send(HTTPRequest(
            method: "POST", url: server.baseURL + "/",
            headers: [HTTPHeader("Content-Type", "application/x-amz-json-1.0"), HTTPHeader("X-Amz-Target", "DynamoDB_20120810.PutItem")],
            body: payload
        ))

        #expect(response.status == 201)
        #expect(String(decoding: response.body, as: UTF8.self) == "got 2000000")
        let request = try #require(server.requests.first)
        #expect(request.method == "POST")
        #expect(request.body == payload)
        #expect(request.header("Content-Length") == "2000000")
        #expect(request.header("Content-Type") == "application/x-amz-json-1.0")
        #expect(request.header("X-Amz-Target") == "DynamoDB_20120810.PutItem")
        #expect(request.header("Expect") == nil)
    }

    @Test func otherMethodsCarryTheirBodiesAndNoInventedContentType() async throws {
        let server = try StubHTTPServer { request in .text("body of \(request.method)") }
        let put = try await transport.send(HTTPRequest(method: "PUT", url: server.baseURL + "/latest/api/token",
                                                       headers: [HTTPHeader("X-aws-ec2-metadata-token-ttl-seconds", "21600")]))
        let post = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/form", body: Data("a=1".utf8)))
        let delete = try await transport.send(HTTPRequest(method: "DELETE", url: server.baseURL + "/thing"))
        let head = try await transport.send(HTTPRequest(method: "HEAD", url: server.baseURL + "/thing"))

        #expect(String(decoding: put.body, as: UTF8.self) == "body of PUT")
        #expect(String(decoding: delete.body, as: UTF8.self) == "body of DELETE")
        #expect(post.status == 200)
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(head.header("Content-Length") == "12")
        let recorded = server.requests
        #expect(recorded.map(\.method) == ["PUT", "POST", "DELETE", "HEAD"])
        #expect(recorded.first?.header("Content-Length") == "0", "an empty PUT still says so")
        #expect(recorded.dropFirst().first?.body == Data("a=1".utf8))
        #expect(recorded.dropFirst().first?.header("Content-Type") == nil, "libcurl's default form Content-Type must not be added")
        #expect(recorded.dropFirst(2).first?.header("Content-Length") == nil)
    }

    @Test func aFinalResponseReplacesInterimHeadersAndFoldedLinesAreJoined() async throws {
        let server = try StubHTTPServer { _ in
            .raw("HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\nContent-Length: 2\r\n\r\nok")
        }
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        #expect(response.status == 200)
        #expect(response.headers == [HTTPHeader("X-Folded", "first second"), HTTPHeader("Content-Length", "2")])
        #expect(response.body == Data("ok".utf8))
    }

    @Test func theFinalStatusLinesReasonPhraseIsKept() async throws {
        let server = try StubHTTPServer { _ in
            .raw("HTTP/1.1 100 Continue\r\n\r\n"
                + "HTTP/1.1 500 VM 101 is locked (clone)\r\nContent-Length: 13\r\n\r\n{\"data\":null}")
        }
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        #expect(response.status == 500)
        #expect(response.reason == "VM 101 is locked (clone)")
        let bare = try StubHTTPServer { _ in .raw("HTTP/1.1 204\r\nContent-Length: 0\r\n\r\n") }
        #expect(try await transport.send(HTTPRequest(method: "GET", url: bare.baseURL + "/")).reason == nil)
    }

    // MARK: - Statuses are responses

    @Test(arguments: [400, 403, 404, 500, 503])
    func nonSuccessStatusIsAResponseNotAnError(status: Int) async throws {
        let server = try StubHTTPServer { _ in .text("{\"message\":\"nope\"}", status: status) }
        let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        #expect(response.status == status)
        #expect(response.body == Data("{\"message\":\"nope\"}".utf8))
    }

    @Test func redirectsAreReturnedNotFollowed() async throws {
        let server = try StubHTTPServer { request in
            request.target == "/start" ? .text("", status: 302, headers: [HTTPHeader("Location", "/elsewhere")]) : .text("followed")
        }
        let response = try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/start", body: Data("signed".utf8)))
        #expect(response.status == 302)
        #expect(response.header("Location") == "/elsewhere")
        #expect(server.requests.map(\.target) == ["/start"])
    }

    // MARK: - Connections

    @Test func sequentialRequestsReuseOneConnection() async throws {
        let server = try StubHTTPServer { request in .text(request.target) }
        for index in 1...5 {
            let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/\(index)"))
            #expect(response.body == Data("/\(index)".utf8))
        }
        #expect(server.requests.count == 5)
        #expect(server.connectionCount == 1)
        #expect(server.requests.allSatisfy { $0.connection == 1 })
    }

    @Test func aServerThatClosesGetsAFreshConnectionPerRequest() async throws {
        let server = try StubHTTPServer { _ in .text("bye", headers: [HTTPHeader("Connection", "close")]) }
        for _ in 1...3 {
            let response = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
            #expect(response.body == Data("bye".utf8))
        }
        #expect(server.connectionCount == 3)
        #expect(server.requests.map(\.connection) == [1, 2, 3])
    }

    @Test func concurrentRequestsOverlap() async throws {
        let server = try StubHTTPServer { _ in .text("slow", delay: .milliseconds(300)) }
        let transport = transport
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<4 {
                group.addTask {
                    try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/q\(index)")).status
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses == [200, 200, 200, 200])
        // All four were being handled at once: the blocking transfers did not queue up
        // behind the cooperative pool's two threads.
        #expect(server.maxConcurrentRequests == 4)
    }

    // MARK: - Failures are typed and name the host

    @Test func refusedConnectionIsCouldNotConnectNamingHostAndPort() async throws {
        let port = try StubHTTPServer.unusedPort()
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/latest/api/token"))
        }
        #expect(error?.kind == .couldNotConnect)
        #expect(error?.host == "127.0.0.1:\(port)")
        #expect(error?.description.hasPrefix("HTTP request to 127.0.0.1:\(port) failed: could not connect (curl error 7: ") == true)
        #expect(error?.isTransient == true)
    }

    @Test func transportTimeoutEndsAHungExchange() async throws {
        let server = try StubHTTPServer { _ in .text("late", delay: .seconds(5)) }
        let impatient = CurlTransport(totalTimeout: .milliseconds(300))
        // The answer comes after 5 s, within the default timeout: a timeout error proves the
        // configured 300 ms applied (no wall-clock bound: those fail on a loaded machine).
        let error = await #expect(throws: HTTPError.self) {
            try await impatient.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        }
        #expect(error?.kind == .timedOut)
        #expect(error?.host == "127.0.0.1:\(server.port)")
    }

    @Test func requestTimeoutOverridesTheTransportTimeoutBothWays() async throws {
        let server = try StubHTTPServer { request in .text("late", delay: .milliseconds(request.target == "/slow" ? 3000 : 500)) }
        let impatient = CurlTransport(totalTimeout: .milliseconds(200))
        let patient = try await impatient.send(HTTPRequest(method: "GET", url: server.baseURL + "/medium", timeout: .seconds(3)))
        #expect(patient.status == 200)

        // /slow answers after 3 s, within the transport's default 10 s: only the request's own
        // 300 ms can make it time out.
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/slow", timeout: .milliseconds(300)))
        }
        #expect(error?.kind == .timedOut)
    }

    @Test func aPeerThatHangsUpIsAReceiveFailure() async throws {
        let server = try StubHTTPServer { _ in .closeWithoutAnswer() }
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        }
        #expect(error?.kind == .receiveFailed)
        #expect(error?.isTransient == true)
    }

    @Test func aPeerSpeakingGarbageIsNotValidHTTP() async throws {
        let server = try StubHTTPServer { _ in .raw("SSH-2.0-OpenSSH_9.2\r\n\r\n") }
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        }
        #expect(error?.kind == .other)
        #expect(error?.description.contains("not valid HTTP") == true)
        #expect(error?.isTransient == false)
    }

    @Test func anOversizedBodyFailsInsteadOfFillingMemory() async throws {
        let server = try StubHTTPServer { _ in StubResponse(body: Data(repeating: 0x41, count: 50_000)) }
        let frugal = CurlTransport(maxResponseBytes: 10_000)
        let error = await #expect(throws: HTTPError.self) {
            try await frugal.send(HTTPRequest(method: "GET", url: server.baseURL + "/"))
        }
        #expect(error?.kind == .receiveFailed)
        #expect(error?.detail.contains("limit of 10000 bytes") == true)
    }

    // MARK: - Rejected before any network I/O

    @Test func onlyHTTPAndHTTPSAreSpoken() async throws {
        let server = try StubHTTPServer { _ in .text("should never be asked") }
        let host = "127.0.0.1:\(server.port)"
        for url in ["ftp://\(host)/file", "file:///etc/passwd", "gopher://\(host)/", "dict://\(host)/d", "FTP://\(host)/"] {
            let error = await #expect(throws: HTTPError.self, "\(url)") {
                try await transport.send(HTTPRequest(method: "GET", url: url))
            }
            #expect(error?.kind == .unsupportedScheme, "\(url)")
        }
        #expect(server.connectionCount == 0)
    }

    @Test(arguments: ["", "not a url", "/relative/path", "http://exa mple.com/", "http://[::1/", "http://", "http://host:99999/"])
    func malformedURLsAreInvalidURL(url: String) async throws {
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(method: "GET", url: url))
        }
        #expect(error?.kind == .invalidURL)
        #expect(error?.host == "")
    }

    @Test func headerInjectionIsRefusedWithoutEchoingTheValue() async throws {
        let server = try StubHTTPServer { _ in .text("should never be asked") }
        let error = await #expect(throws: HTTPError.self) {
            try await transport.send(HTTPRequest(method: "GET", url: server.baseURL + "/",
                                                 headers: [HTTPHeader("X-Token", "SECRET\r\nX-Injected: 1")]))
        }
        #expect(error?.detail.contains("X-Token") == true)
        #expect(error?.description.contains("SECRET") == false)
        #expect(server.connectionCount == 0)
    }

    // MARK: - No secrets in errors

    @Test func errorsNeverRepeatQueryUserinfoHeadersOrBody() async throws {
        let refusedPort = try StubHTTPServer.unusedPort()
        let slow = try StubHTTPServer { _ in .text("late", delay: .seconds(5)) }
        let secretTail = "/p?X-Amz-Signature=SECRETSIG&X-Amz-Security-Token=SECRETTOKEN#SECRETFRAGMENT"
        let urls = [
            "http://user:SECRETPASS@127.0.0.1:\(refusedPort)\(secretTail)",  // connect refused
            "http://127.0.0.1:\(slow.port)\(secretTail)",                    // timeout
            "http://exa mple.com\(secretTail)",                              // malformed
            "ftp://127.0.0.1:\(refusedPort)\(secretTail)",                   // wrong scheme
        ]
        var kinds: [HTTPError.Kind] = []
        for url in urls {
            let error = await #expect(throws: HTTPError.self) {
                try await transport.send(HTTPRequest(
                    method: "POST", url: url,
                    headers: [HTTPHeader("Authorization", "AWS4-HMAC-SHA256 Signature=SECRETAUTH")],
                    body: Data("SECRETBODY".utf8), timeout: .milliseconds(300)
                ))
            }
            let description = try #require(error).description
            kinds.append(try #require(error).kind)
            #expect(!description.contains("SECRET"), "\(description)")
            #expect(!description.contains("?"), "\(description)")
        }
        #expect(kinds == [.couldNotConnect, .timedOut, .invalidURL, .unsupportedScheme])
    }
}
