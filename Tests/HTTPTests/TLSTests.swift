import HTTP
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// TLS verification against a real TLS peer: `openssl s_server` with a throw-away
/// self-signed certificate for 127.0.0.1.
@Suite struct TLSTests {
    @Test func anUntrustedCertificateIsRefusedAndATrustedCAIsAccepted() async throws {
        let server = try await OpenSSLServer.start()
        let url = "https://127.0.0.1:\(server.port)/"

        let error = await #expect(throws: HTTPError.self) {
            try await CurlTransport().send(HTTPRequest(method: "GET", url: url))
        }
        #expect(error?.kind == .tls)
        #expect(error?.host == "127.0.0.1:\(server.port)")
        #expect(error?.detail.contains("curl error 60") == true, "\(String(describing: error))")

        let trusting = CurlTransport(caBundlePath: server.certificatePath)
        let response = try await trusting.send(HTTPRequest(method: "GET", url: url))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self).contains("s_server"))
    }
}

/// `openssl s_server -www` on 127.0.0.1: it answers `GET /` with a status page. Killed on
/// deinit, and by `timeout` after 120 s should the test process die first.
private final class OpenSSLServer: Sendable {
    let port: Int
    let certificatePath: String
    private let directory: String
    private let processID: pid_t

    struct SetupFailure: Error {
        let reason: String
    }

    /// Generates the certificate and starts the server (blocking work, on a thread of its
    /// own), then waits until it listens.
    static func start() async throws -> OpenSSLServer {
        let server = try await onOwnThread { Result { try OpenSSLServer() } }.get()
        try await server.waitUntilListening()
        return server
    }

    private init() throws {
        var template = Array("/tmp/kscaler-tls-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template).map({ String(cString: $0) }) else {
            throw OpenSSLServer.SetupFailure(reason: "mkdtemp failed")
        }
        self.directory = directory
        port = try StubHTTPServer.unusedPort()
        certificatePath = "\(directory)/cert.pem"
        let script = """
            cd \(directory) && \
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
              -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem 2>/dev/null && \
            { timeout 120 openssl s_server -accept 127.0.0.1:\(port) -cert cert.pem -key key.pem -www \
              >/dev/null 2>&1 & } && echo $!
            """
        guard let shell = popen(script, "r") else { throw OpenSSLServer.SetupFailure(reason: "popen failed") }
        var line = [CChar](repeating: 0, count: 32)
        let read = fgets(&line, Int32(line.count), shell) != nil
        let status = pclose(shell)
        let processID = pid_t(atoi(line))
        guard read, status == 0, processID > 0 else {
            throw OpenSSLServer.SetupFailure(reason: "could not start openssl s_server")
        }
        self.processID = processID
    }

    deinit {
        kill(processID, SIGTERM)
        for file in ["cert.pem", "key.pem"] { unlink("\(directory)/\(file)") }
        rmdir(directory)
    }

    /// Polls with bare TCP connects (which s_server does not count as a served connection),
    /// for up to 60 s: generating a key and starting openssl can take seconds on a loaded machine.
    private func waitUntilListening() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if connected { return }
            if ContinuousClock.now > deadline { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw OpenSSLServer.SetupFailure(reason: "openssl s_server did not start listening on 127.0.0.1:\(port)")
    }
}
