import Foundation
import HTTP

/// The stand-in Kubernetes API server (infra/local/ksandbox/kubeapi.py, the one the sandbox
/// serves too, grounded against the real kubectl), run as a process on 127.0.0.1 over TLS.
/// It exits by itself after 900 s, and as soon as its stdin closes (the test process is gone).
///
/// It authenticates every request: `token` (the service account
/// system:serviceaccount:kube-system:kscaler) as a bearer token, or the client certificate in
/// `clientCertFile`/`clientKeyFile` (user kscaler-test, group kscaler); trust `caFile`. The
/// control helpers (`state()`, `seed(json:)`, ...) go through `CurlTransport` with the token.
package final class KubeAPIProcess: @unchecked Sendable {  // immutable after init; only stop() acts on the child.
    package let port: Int
    /// `https://127.0.0.1:<port>`.
    package let server: String
    package let caFile: String
    package let tokenFile: String
    package let clientCertFile: String
    package let clientKeyFile: String
    /// kubeconfigs: the token, the client certificate inline, the client certificate by path.
    package let kubeconfigToken: String
    package let kubeconfigCert: String
    package let kubeconfigCertFiles: String
    /// The bearer token (from `tokenFile`); never print it.
    package let token: String
    private let process: SpawnedProcess
    private let directory: URL
    private let transport: CurlTransport

    package static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("infra/local/ksandbox/kubeapi.py")

    private struct Announcement: Decodable {
        let port: Int
        let server: String
        let ca_file: String
        let token_file: String
        let client_cert_file: String
        let client_key_file: String
        let kubeconfig_token: String
        let kubeconfig_cert: String
        let kubeconfig_cert_files: String
    }

    private init(_ announced: Announcement, token: String, process: SpawnedProcess, directory: URL) {
        port = announced.port
        server = announced.server
        caFile = announced.ca_file
        tokenFile = announced.token_file
        clientCertFile = announced.client_cert_file
        clientKeyFile = announced.client_key_file
        kubeconfigToken = announced.kubeconfig_token
        kubeconfigCert = announced.kubeconfig_cert
        kubeconfigCertFiles = announced.kubeconfig_cert_files
        self.token = token
        self.process = process
        self.directory = directory
        transport = CurlTransport(connectTimeout: .seconds(10), totalTimeout: .seconds(30), caBundlePath: announced.ca_file)
    }

    /// Starts the stand-in with `arguments` (`--state-file PATH`, `--deny USER:VERB:GROUP:RESOURCE`,
    /// `--server-version 1.31.0`, `--verbose`) and returns once it has told its port.
    package static func start(_ arguments: [String] = []) async throws -> KubeAPIProcess {
        let directory = try ChildProcess.temporaryDirectory("kscaler-kubeapi")
        let log = directory.appendingPathComponent("kubeapi.log")
        let process: SpawnedProcess
        do {
            process = try ChildProcess.launch(
                "/usr/bin/env",
                ["python3", script.path, "--dir", directory.appendingPathComponent("api").path, "--lifetime", "900",
                 "--exit-on-stdin-eof"] + arguments,
                log: log, stdin: Pipe())
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        do {
            // Generous: certificates are made with openssl first, and the CI machine is a loaded 2-core box.
            let line = try await ChildProcess.firstLine(of: log, timeout: .seconds(60), what: "the stand-in API server's port") {
                $0.hasPrefix("{")
            }
            let announced = try JSONDecoder().decode(Announcement.self, from: Data(line.utf8))
            let token = try String(contentsOfFile: announced.token_file, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return KubeAPIProcess(announced, token: token, process: process, directory: directory)
        } catch {
            await ChildProcess.stop(process)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// One request as the service account, `path` absolute (`/api/v1/nodes`). Any status is
    /// a response.
    package func request(_ method: String, _ path: String, body: String? = nil,
                         contentType: String = "application/json") async throws -> HTTPResponse {
        var headers = [HTTPHeader("Authorization", "Bearer \(token)"), HTTPHeader("Accept", "application/json")]
        if body != nil { headers.append(HTTPHeader("Content-Type", contentType)) }
        return try await transport.send(HTTPRequest(method: method, url: server + path, headers: headers,
                                                    body: Data((body ?? "").utf8)))
    }

    /// The whole store: `nodes`, `pods`, `pdbs`, `events` (Kubernetes objects) and `resourceVersion`.
    package func state() async throws -> [String: Any] {
        let response = try await control("GET", "/_standin/state")
        guard let state = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            throw TestSupportError("the stand-in's state is not a JSON object")
        }
        return state
    }

    /// Names of the nodes in the store, sorted.
    package func nodeNames() async throws -> [String] {
        let nodes = try await state()["nodes"] as? [[String: Any]] ?? []
        return nodes.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }.sorted()
    }

    /// Replaces the kinds present in `json` (the --state-file shape, see kubeapi.py), e.g.
    /// `{"nodes": [{"name": "i-0abc", "provider_id": "aws:///us-east-1a/i-0abc", "ready": true}]}`.
    package func seed(json: String) async throws {
        _ = try await control("POST", "/_standin/state", body: json)
    }

    /// Adds fault rules, e.g. `[{"method": "DELETE", "path_regex": "^/api/v1/nodes/", "status": 500,
    /// "body": "oops", "times": 1}]` or `[{"path_regex": "^/api/v1/pods", "delay_seconds": 5}]`.
    package func injectFaults(json: String) async throws {
        _ = try await control("POST", "/_standin/faults", body: json)
    }

    package func clearFaults() async throws {
        _ = try await control("DELETE", "/_standin/faults")
    }

    /// Replaces the deny rules, e.g. `{"system:serviceaccount:kube-system:kscaler":
    /// [{"verb": "delete", "group": "", "resource": "nodes"}]}` (`{}`: allow everything).
    package func setPermissions(json: String) async throws {
        _ = try await control("POST", "/_standin/permissions", body: json)
    }

    private func control(_ method: String, _ path: String, body: String? = nil) async throws -> HTTPResponse {
        let response = try await request(method, path, body: body)
        guard (200..<300).contains(response.status) else {
            throw TestSupportError("\(method) \(path) answered \(response.status): \(String(decoding: response.body, as: UTF8.self).prefix(500))")
        }
        return response
    }

    package func stop() async {
        await ChildProcess.stop(process)
        try? FileManager.default.removeItem(at: directory)
    }
}
