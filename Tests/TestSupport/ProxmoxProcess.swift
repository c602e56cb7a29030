import Foundation
import HTTP

/// The stand-in Proxmox VE API (infra/local/ksandbox/proxmox.py: what it stands in for and
/// where the real API differs is in its docstring), run as a process on 127.0.0.1 over plain
/// HTTP. It exits by itself after 900 s, and as soon as its stdin closes (the test is gone).
///
/// Every request needs `Authorization: PVEAPIToken=<tokenID>=<secret>`; `secret` is a fresh
/// random value per process, so a test can look for it in logs and errors.
package final class ProxmoxProcess: @unchecked Sendable {  // immutable after init; only stop() acts on the child.
    /// `http://127.0.0.1:<port>`.
    package let url: String
    package let tokenID: String
    /// The token secret; never print it.
    package let secret: String
    /// The template the stand-in starts with: VM 9000 on the first node, 2 cores, 2 GiB.
    package static let templateVMID = 9000
    private let process: SpawnedProcess
    private let directory: URL
    private let log: URL
    private let transport = CurlTransport(connectTimeout: .seconds(10), totalTimeout: .seconds(60))

    package static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("infra/local/ksandbox/proxmox.py")

    private struct Announcement: Decodable {
        let url: String
        let token_id: String
    }

    private init(url: String, tokenID: String, secret: String, process: SpawnedProcess, directory: URL, log: URL) {
        self.url = url
        self.tokenID = tokenID
        self.secret = secret
        self.process = process
        self.directory = directory
        self.log = log
    }

    /// Starts the stand-in; `nodes` as `name:free GiB` (the template lives on the first).
    package static func start(nodes: String = "pve1:16,pve2:32,pve3:8", cloneSeconds: Double = 0.3) async throws -> ProxmoxProcess {
        let directory = try ChildProcess.temporaryDirectory("kscaler-proxmox")
        let log = directory.appendingPathComponent("proxmox.log")
        let secretFile = directory.appendingPathComponent("token-secret")
        let secret = UUID().uuidString.lowercased()
        try Data((secret + "\n").utf8).write(to: secretFile)
        let process: SpawnedProcess
        do {
            process = try ChildProcess.launch(
                "/usr/bin/env",
                ["python3", script.path, "--secret-file", secretFile.path, "--nodes", nodes, "--clone-seconds", String(cloneSeconds),
                 "--lifetime", "900", "--exit-on-stdin-eof"],
                log: log, stdin: Pipe())
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        do {
            let line = try await ChildProcess.firstLine(of: log, timeout: .seconds(60), what: "the Proxmox stand-in's port") { $0.hasPrefix("{") }
            let announced = try JSONDecoder().decode(Announcement.self, from: Data(line.utf8))
            return ProxmoxProcess(url: announced.url, tokenID: announced.token_id, secret: secret, process: process, directory: directory, log: log)
        } catch {
            await ChildProcess.stop(process)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// The token secret file (the `token_secret_file` setting's shape: the secret and a newline).
    package var secretFile: String { directory.appendingPathComponent("token-secret").path }

    /// The VMs (each with `vmid`, `node`, `status`, `config`, `resource`), the nodes' memory and
    /// the requests so far (`method`, `path`, `query`, `form`; no headers).
    package func state() async throws -> [String: Any] {
        let response = try await control("GET", "/_standin/state")
        guard let state = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            throw TestSupportError("the stand-in's state is not a JSON object")
        }
        return state
    }

    /// The requests so far as `METHOD /path` (API paths without /api2/json).
    package func requests() async throws -> [String] {
        (try await state()["requests"] as? [[String: Any]] ?? []).map { "\($0["method"] ?? "") \($0["path"] ?? "")" }
    }

    /// The VMs that are not templates, by VM id.
    package func vms() async throws -> [Int: [String: Any]] {
        var vms: [Int: [String: Any]] = [:]
        for vm in try await state()["vms"] as? [[String: Any]] ?? [] where (vm["template"] as? Int ?? 0) == 0 {
            if let id = vm["vmid"] as? Int { vms[id] = vm }
        }
        return vms
    }

    /// Seeds nodes and VMs, e.g. `{"vms": [{"vmid": 150, "node": "pve1", "name": "db", "tags": "prod", "status": "running"}]}`.
    package func seed(json: String) async throws {
        _ = try await control("POST", "/_standin/state", body: json)
    }

    /// Adds fault rules (see proxmox.py), e.g. `[{"method": "POST", "path_regex": "/status/start$", "status": 500}]`,
    /// `[{"path_regex": "/clone$", "lose_answer": true}]` or `[{"clone_fails": "storage full"}]`.
    package func injectFaults(json: String) async throws {
        _ = try await control("POST", "/_standin/faults", body: json)
    }

    /// The stand-in's output: one line per request (`proxmox: METHOD /path`), logged before it answers.
    package func output() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    private func control(_ method: String, _ path: String, body: String? = nil) async throws -> HTTPResponse {
        var headers = [HTTPHeader("Authorization", "PVEAPIToken=\(tokenID)=\(secret)")]
        if body != nil { headers.append(HTTPHeader("Content-Type", "application/json")) }
        let response = try await transport.send(HTTPRequest(method: method, url: url + path, headers: headers, body: Data((body ?? "").utf8)))
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
