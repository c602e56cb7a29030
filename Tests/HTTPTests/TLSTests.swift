import Foundation
import HTTP
import TestSupport
import Testing

/// TLS against a real TLS peer: `openssl s_server` with a throw-away CA that signed its
/// certificate (for 127.0.0.1) and a client certificate.
/// One `openssl s_server` at a time (see KubeAPIIntegrationTests: process starts in bulk starve a loaded machine).
@Suite(.serialized) struct TLSTests {
    @Test func anUntrustedCertificateIsRefusedAndATrustedCAFileIsAccepted() async throws {
        let server = try await OpenSSLServer.start()
        let url = "https://127.0.0.1:\(server.port)/"

        let error = await #expect(throws: HTTPError.self) {
            try await CurlTransport().send(HTTPRequest(method: "GET", url: url))
        }
        #expect(error?.kind == .tls)
        #expect(error?.host == "127.0.0.1:\(server.port)")
        #expect(error?.detail.contains("curl error 60") == true, "\(String(describing: error))")

        let trusting = CurlTransport(tls: TLSOptions(trustedCA: .file(path: server.caPath)))
        let response = try await trusting.send(HTTPRequest(method: "GET", url: url))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self).contains("s_server"))
        // The earlier spelling still works.
        #expect(try await CurlTransport(caBundlePath: server.caPath).send(HTTPRequest(method: "GET", url: url)).status == 200)
    }

    @Test func aCAGivenAsDataVerifiesTheServer() async throws {
        let server = try await OpenSSLServer.start()
        let url = "https://127.0.0.1:\(server.port)/"
        let trusting = CurlTransport(tls: TLSOptions(trustedCA: .pem(try server.pem(.ca))))
        let response = try await trusting.send(HTTPRequest(method: "GET", url: url))
        #expect(response.status == 200)

        // Another CA's data does not: the server's CA must be the one given.
        let other = try await OpenSSLServer.start()
        let error = await #expect(throws: HTTPError.self) {
            try await CurlTransport(tls: TLSOptions(trustedCA: .pem(try other.pem(.ca)))).send(HTTPRequest(method: "GET", url: url))
        }
        #expect(error?.kind == .tls, "\(String(describing: error))")
    }

    @Test func skippingVerificationAcceptsAnUntrustedServer() async throws {
        let server = try await OpenSSLServer.start()
        let insecure = CurlTransport(tls: TLSOptions(insecureSkipVerify: true))
        let response = try await insecure.send(HTTPRequest(method: "GET", url: "https://127.0.0.1:\(server.port)/"))
        #expect(response.status == 200)
    }

    @Test func aServerThatRequiresAClientCertificateAcceptsTheBlobAndRefusesWithoutIt() async throws {
        let server = try await OpenSSLServer.start(requireClientCertificate: true)
        let url = "https://127.0.0.1:\(server.port)/"
        let ca = TLSOptions.TrustedCA.pem(try server.pem(.ca))
        let client = TLSOptions.ClientCertificate(certificatePEM: try server.pem(.clientCertificate), privateKeyPEM: try server.pem(.clientKey))

        let withCertificate = CurlTransport(tls: TLSOptions(trustedCA: ca, clientCertificate: client))
        let response = try await withCertificate.send(HTTPRequest(method: "GET", url: url))
        #expect(response.status == 200)
        // s_server -www names the client's certificate on its status page.
        #expect(String(decoding: response.body, as: UTF8.self).contains("kscaler-test-client"))

        let error = await #expect(throws: HTTPError.self) {
            try await CurlTransport(tls: TLSOptions(trustedCA: ca)).send(HTTPRequest(method: "GET", url: url))
        }
        #expect(error?.kind == .tls, "\(String(describing: error))")
    }

    @Test func aKeyNeverShowsInADescriptionOrDump() throws {
        let key = Data("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n".utf8)
        let options = TLSOptions(trustedCA: .pem(Data("ca".utf8)),
                                 clientCertificate: .init(certificatePEM: Data("cert".utf8), privateKeyPEM: key))
        var dumped = ""
        dump(options, to: &dumped)
        dump(CurlTransport(tls: options), to: &dumped)
        for text in [dumped, "\(options)", String(reflecting: options), "\(options.clientCertificate!)"] {
            #expect(!text.contains("c2VjcmV0LWtleS1ieXRlcw"), "\(text)")
        }
    }
}

/// `openssl s_server -www` on 127.0.0.1: it answers `GET /` with a status page. Its
/// certificate is signed by a CA made for it alone, which also signed a client certificate.
/// Killed on deinit, and by `timeout` after 120 s should the test process die first.
private final class OpenSSLServer: Sendable {
    enum File: String {
        case ca = "ca.pem", clientCertificate = "client.pem", clientKey = "client.key"
    }

    let port: Int
    let caPath: String
    private let directory: String
    private let processID: pid_t

    struct SetupFailure: Error {
        let reason: String
    }

    /// Generates the certificates and starts the server (blocking work, on a thread of its
    /// own), then waits until it listens.
    static func start(requireClientCertificate: Bool = false) async throws -> OpenSSLServer {
        let server = try await onOwnThread { Result { try OpenSSLServer(requireClientCertificate: requireClientCertificate) } }.get()
        try await server.waitUntilListening()
        return server
    }

    func pem(_ file: File) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(file.rawValue)"))
    }

    private init(requireClientCertificate: Bool) throws {
        var template = Array("/tmp/kscaler-tls-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template).map({ String(cString: $0) }) else {
            throw OpenSSLServer.SetupFailure(reason: "mkdtemp failed")
        }
        self.directory = directory
        port = try StubHTTPServer.unusedPort()
        caPath = "\(directory)/ca.pem"
        let newKey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        let verify = requireClientCertificate ? "-Verify 1 -CAfile ca.pem" : ""
        let script = """
            cd \(directory) && \
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext && \
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext && \
            openssl req -x509 \(newKey) -days 1 -subj /CN=kscaler-test-ca -keyout ca.key -out ca.pem 2>/dev/null && \
            openssl req \(newKey) -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null && \
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext -out server.pem 2>/dev/null && \
            openssl req \(newKey) -subj /CN=kscaler-test-client -keyout client.key -out client.csr 2>/dev/null && \
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile client.ext -out client.pem 2>/dev/null && \
            { timeout 120 openssl s_server -accept 127.0.0.1:\(port) -cert server.pem -key server.key \(verify) -www \
              >/dev/null 2>&1 & } && echo $!
            """
        guard let shell = popen(script, "r") else { throw OpenSSLServer.SetupFailure(reason: "popen failed") }
        var line = [CChar](repeating: 0, count: 32)
        let read = fgets(&line, Int32(line.count), shell) != nil
        let status = pclose(shell)
        let processID = pid_t(atoi(line))
        guard read, status == 0, processID > 0 else {
            throw OpenSSLServer.SetupFailure(reason: "could not make certificates or start openssl s_server")
        }
        self.processID = processID
    }

    deinit {
        kill(processID, SIGTERM)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Polls with bare TCP connects (which s_server does not count as a served connection),
    /// for up to 60 s: generating keys and starting openssl can take seconds on a loaded machine.
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
