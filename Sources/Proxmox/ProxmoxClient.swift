#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP
import Logging

/// The few Proxmox VE API calls kscaler's Proxmox backend makes, under `<url>/api2/json`, with an
/// API token (`Authorization: PVEAPIToken=<user@realm!tokenid>=<secret>`).
///
/// Shapes follow Proxmox's published API schema (pve-docs api-viewer, `apidoc.js`; qemu-server
/// `PVE/API2/Qemu.pm`, pve-manager `PVE/API2/Cluster.pm`): every answer is `{"data": …}`;
/// POST and PUT parameters are form-encoded (`application/x-www-form-urlencoded`); an error is
/// an HTTP status whose reason phrase carries the message, with `{"errors": {param: message}}`
/// for a parameter check. Long operations (clone, start, stop, destroy) answer a task id
/// (`UPID:…`) to poll at `/nodes/{node}/tasks/{upid}/status`.
///
/// The secret is resolved once, on the first call, and goes only into the Authorization header:
/// never into a description, an error or a log line. At debug level one line per request:
/// method, path, status, elapsed time.
package struct ProxmoxClient: Sendable, CustomStringConvertible {
    /// `https://host:8006/api2/json`.
    package let apiURL: String
    /// `user@realm!tokenid`: not secret.
    package let tokenID: String
    private let secret: SecretOnce
    private let transport: any HTTPTransport
    private let logger: Logger
    /// Between two looks at a running task.
    package let pollInterval: Duration

    /// - Parameters:
    ///   - url: `https://host:8006` (a trailing `/api2/json` is accepted too).
    ///   - tokenSecret: Resolves the token's secret (a file, SSM); called once, on the first request.
    /// - Throws: `ProxmoxError.invalidURL`.
    package init(url: String, tokenID: String, tokenSecret: @escaping @Sendable () async throws -> String, transport: any HTTPTransport,
                 pollInterval: Duration = .seconds(1),
                 logger: Logger = Logger(label: "kscaler.proxmox", factory: { _ in SwiftLogNoOpLogHandler() })) throws(ProxmoxError) {
        var trimmed = Substring(url)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if trimmed.hasSuffix("/api2/json") { trimmed = trimmed.dropLast("/api2/json".count) }
        guard let parsed = URL(string: String(trimmed)), let scheme = parsed.scheme?.lowercased(), scheme == "https" || scheme == "http",
              let host = parsed.host, !host.isEmpty, parsed.user == nil, parsed.password == nil, parsed.query == nil else {
            // Not echoing the URL: it could hold a credential.
            throw .invalidURL(reason: "fleet.proxmox.url must be like https://pve.example.com:8006, without credentials or query")
        }
        guard tokenID.contains("@"), tokenID.contains("!"), !tokenID.contains("=") else {
            throw .invalidURL(reason: "fleet.proxmox.token_id must be user@realm!tokenid (the secret goes in token_secret_file or token_secret_parameter)")
        }
        apiURL = trimmed + "/api2/json"
        self.tokenID = tokenID
        secret = SecretOnce(tokenSecret)
        self.transport = transport
        self.pollInterval = pollInterval
        self.logger = logger
    }

    package var description: String { "ProxmoxClient(\(apiURL), token \(tokenID)=<redacted>)" }

    // MARK: - Calls

    /// `GET /cluster/nextid`: a free VM id (the API answers it as a string).
    package func nextID() async throws -> Int {
        let text = try await call("GET", "/cluster/nextid", as: FlexibleScalar.self).text
        guard let id = Int(text), id > 0 else { throw ProxmoxError.unreadable(path: "/cluster/nextid", reason: "not a VM id: \(text.prefix(40))") }
        return id
    }

    /// `GET /cluster/resources?type=vm`: every VM and container of the cluster, with its tags.
    package func virtualMachines() async throws -> [ProxmoxVM] {
        try await call("GET", "/cluster/resources", query: [("type", "vm")], as: [ProxmoxVM].self).filter { $0.type == "qemu" }
    }

    /// `GET /nodes/{node}/status`: its memory.
    package func nodeStatus(_ node: String) async throws -> ProxmoxNodeStatus {
        try await call("GET", "/nodes/\(segment(node))/status", as: ProxmoxNodeStatus.self)
    }

    /// `POST /nodes/{node}/qemu/{vmid}/clone` (full clone: `full=1`, `newid`, `name`, `target`,
    /// `storage`, `description`): the clone's task.
    package func clone(node: String, vmid: Int, _ request: CloneRequest) async throws -> ProxmoxTask {
        var form = [("newid", String(request.newID)), ("full", "1"), ("name", request.name)]
        if let target = request.target { form.append(("target", target)) }
        if let storage = request.storage { form.append(("storage", storage)) }
        if let description = request.description { form.append(("description", description)) }
        let upid = try await call("POST", "/nodes/\(segment(node))/qemu/\(vmid)/clone", form: form, as: String.self)
        return ProxmoxTask(node: node, upid: upid)
    }

    /// `GET /nodes/{node}/qemu/{vmid}/config`: the VM's settings, values as text.
    package func config(node: String, vmid: Int) async throws -> [String: String] {
        try await call("GET", "/nodes/\(segment(node))/qemu/\(vmid)/config", as: [String: FlexibleScalar].self).mapValues(\.text)
    }

    /// `PUT /nodes/{node}/qemu/{vmid}/config` (synchronous): `tags`, `description`, `cicustom`,
    /// `cores`, `memory`, … as form fields.
    package func updateConfig(node: String, vmid: Int, _ settings: [(String, String)]) async throws {
        _ = try await call("PUT", "/nodes/\(segment(node))/qemu/\(vmid)/config", form: settings, as: FlexibleScalar?.self)
    }

    /// `POST /nodes/{node}/qemu/{vmid}/status/start`.
    package func start(node: String, vmid: Int) async throws -> ProxmoxTask {
        ProxmoxTask(node: node, upid: try await call("POST", "/nodes/\(segment(node))/qemu/\(vmid)/status/start", form: [], as: String.self))
    }

    /// `POST /nodes/{node}/qemu/{vmid}/status/stop`: a hard stop (the VM is destroyed next).
    package func stop(node: String, vmid: Int) async throws -> ProxmoxTask {
        ProxmoxTask(node: node, upid: try await call("POST", "/nodes/\(segment(node))/qemu/\(vmid)/status/stop", form: [], as: String.self))
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}?purge=1&destroy-unreferenced-disks=1`: the VM, its disks
    /// and every reference to it (backup jobs, HA, replication).
    package func destroy(node: String, vmid: Int) async throws -> ProxmoxTask {
        let upid = try await call("DELETE", "/nodes/\(segment(node))/qemu/\(vmid)",
                                  query: [("purge", "1"), ("destroy-unreferenced-disks", "1")], as: String.self)
        return ProxmoxTask(node: node, upid: upid)
    }

    /// `GET /nodes/{node}/tasks/{upid}/status`.
    package func taskStatus(_ task: ProxmoxTask) async throws -> ProxmoxTaskStatus {
        try await call("GET", "/nodes/\(segment(task.node))/tasks/\(segment(task.upid))/status", as: ProxmoxTaskStatus.self)
    }

    /// Polls `task` every `pollInterval` (sleeping, never blocking a thread) until it stops;
    /// throws `taskFailed` for an exit status other than `OK` (warnings, `WARNINGS: n`, pass)
    /// and `taskTimedOut` after `timeout`, the task still running.
    package func wait(for task: ProxmoxTask, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let status = try await taskStatus(task)
            if status.status == "stopped" {
                let exit = status.exitStatus ?? "(no exit status)"
                guard exit == "OK" || exit.hasPrefix("WARNINGS") else { throw ProxmoxError.taskFailed(upid: task.upid, exitStatus: exit) }
                return
            }
            guard ContinuousClock.now < deadline else { throw ProxmoxError.taskTimedOut(upid: task.upid, timeout: timeout) }
            try await Task.sleep(for: pollInterval)
        }
    }

    // MARK: - Transport

    /// One percent-encoded path segment (node names, UPIDs hold `:`, `@`, `!`).
    private func segment(_ text: String) -> String { text.percentEncodedAllButUnreserved }

    private func call<Answer: Decodable>(_ method: String, _ path: String, query: [(String, String)] = [], form: [(String, String)]? = nil,
                                         as _: Answer.Type) async throws -> Answer {
        let secret: String
        do {
            secret = try await self.secret.value()
        } catch {
            // The resolver's error names a file or parameter, never the secret.
            throw ProxmoxError.secretUnavailable(reason: "\(error)")
        }
        let encode = { (pairs: [(String, String)]) in
            pairs.map { "\($0.0.percentEncodedAllButUnreserved)=\($0.1.percentEncodedAllButUnreserved)" }.joined(separator: "&")
        }
        var request = HTTPRequest(method: method, url: apiURL + path + (query.isEmpty ? "" : "?" + encode(query)),
                                  headers: [HTTPHeader("Authorization", "PVEAPIToken=\(tokenID)=\(secret)"),
                                            HTTPHeader("Accept", "application/json")])
        if let form {
            request.headers.append(HTTPHeader("Content-Type", "application/x-www-form-urlencoded"))
            request.body = Data(encode(form).utf8)
        }
        let started = ContinuousClock.now
        var metadata: Logger.Metadata = ["method": "\(method)", "path": "\(path)"]
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch let error as HTTPError {
            metadata["elapsed_ms"] = .stringConvertible((ContinuousClock.now - started).inMilliseconds)
            metadata["reason"] = "\(error)"  // host and libcurl's words only
            logger.debug("proxmox request failed", metadata: metadata)
            throw ProxmoxError.transport(error)
        }
        metadata["elapsed_ms"] = .stringConvertible((ContinuousClock.now - started).inMilliseconds)
        metadata["status"] = "\(response.status)"
        logger.debug("proxmox request", metadata: metadata)
        let redact = { (text: String) in secret.isEmpty ? text : text.replacing(secret, with: "<redacted>") }
        guard (200..<300).contains(response.status) else {
            let errors = (try? JSONDecoder().decode(ErrorEnvelope.self, from: response.body))?.errors ?? [:]
            throw ProxmoxError.api(method: method, path: path, status: response.status,
                                   message: redact(oneLine(response.reason ?? "(no reason given)")),
                                   parameters: errors.mapValues { redact(oneLine($0.text)) })
        }
        do {
            return try JSONDecoder().decode(Envelope<Answer>.self, from: response.body).data
        } catch {
            throw ProxmoxError.unreadable(path: path, reason: redact("HTTP \(response.status), body is not {\"data\": …} as expected: "
                                                                     + oneLine(String(decoding: response.body.prefix(200), as: UTF8.self))))
        }
    }

    private func oneLine(_ text: String) -> String {
        let line = text.split(whereSeparator: { $0.isNewline || $0 == "\t" }).joined(separator: " ")
        return line.count > 300 ? String(line.prefix(300)) + "…" : line
    }
}

/// The token secret, resolved at most once (concurrent first calls share one resolution).
private actor SecretOnce {
    private let resolve: @Sendable () async throws -> String
    private var resolving: Task<String, any Error>?

    init(_ resolve: @escaping @Sendable () async throws -> String) { self.resolve = resolve }

    func value() async throws -> String {
        if let resolving { return try await resolving.value }
        let task = Task { [resolve] in
            var text = try await resolve()
            while text.last?.isNewline == true { text.removeLast() }
            return text
        }
        resolving = task
        do {
            return try await task.value
        } catch {
            resolving = nil  // a later call tries again
            throw error
        }
    }
}

private struct Envelope<T: Decodable>: Decodable { let data: T }

private struct ErrorEnvelope: Decodable { let errors: [String: FlexibleScalar]? }

/// A JSON scalar as text: Proxmox answers numbers as strings in places (`nextid`, config values).
package struct FlexibleScalar: Decodable, Sendable, Equatable {
    package let text: String

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) { text = string }
        else if let int = try? container.decode(Int.self) { text = String(int) }
        else if let double = try? container.decode(Double.self) { text = String(double) }
        else if let bool = try? container.decode(Bool.self) { text = bool ? "1" : "0" }
        else { text = "" }
    }
}

/// The clone's parameters that kscaler sets (`full=1` always).
package struct CloneRequest: Sendable, Equatable {
    package var newID: Int
    /// The VM's name: a DNS name, which cloud-init makes the guest's hostname.
    package var name: String
    /// The node the clone goes to; nil: the template's.
    package var target: String?
    package var storage: String?
    package var description: String?

    package init(newID: Int, name: String, target: String? = nil, storage: String? = nil, description: String? = nil) {
        self.newID = newID
        self.name = name
        self.target = target
        self.storage = storage
        self.description = description
    }
}

/// A task to poll: the node it runs on and its `UPID:node:pid:pstart:starttime:type:id:user:`.
package struct ProxmoxTask: Sendable, Equatable {
    package var node: String
    package var upid: String

    package init(node: String, upid: String) {
        self.node = node
        self.upid = upid
    }
}

/// `GET /nodes/{node}/tasks/{upid}/status`: `running`, or `stopped` with an exit status (`OK`).
package struct ProxmoxTaskStatus: Decodable, Sendable, Equatable {
    package var status: String
    package var exitStatus: String?

    enum CodingKeys: String, CodingKey { case status, exitStatus = "exitstatus" }
}

/// `GET /nodes/{node}/status`, the part kscaler reads.
package struct ProxmoxNodeStatus: Decodable, Sendable, Equatable {
    package struct Memory: Decodable, Sendable, Equatable {
        package var free: Int64
        package var total: Int64
    }

    package var memory: Memory
}

/// One entry of `GET /cluster/resources?type=vm`.
package struct ProxmoxVM: Decodable, Sendable, Equatable {
    package var vmid: Int
    package var node: String
    /// `qemu` or `lxc`.
    package var type: String
    package var name: String?
    /// `running` or `stopped` (`paused`, `suspended` are `running` with a QMP status elsewhere).
    package var status: String
    package var template: Bool
    /// `clone`, `migrate`, `backup`, … while an operation holds the VM.
    package var lock: String?
    /// Semicolon-separated (the API also accepts `,` and spaces on input).
    package var tags: [String]
    package var cores: Int?
    /// Bytes.
    package var maxMemory: Int64?
    /// Seconds since the VM started (0 when stopped).
    package var uptime: Int?

    enum CodingKeys: String, CodingKey { case vmid, node, type, name, status, template, lock, tags, maxcpu, maxmem, uptime }

    package init(vmid: Int, node: String, type: String = "qemu", name: String?, status: String, template: Bool = false, lock: String? = nil,
                 tags: [String], cores: Int? = nil, maxMemory: Int64? = nil, uptime: Int? = nil) {
        self.vmid = vmid
        self.node = node
        self.type = type
        self.name = name
        self.status = status
        self.template = template
        self.lock = lock
        self.tags = tags
        self.cores = cores
        self.maxMemory = maxMemory
        self.uptime = uptime
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        vmid = try container.decode(Int.self, forKey: .vmid)
        node = try container.decode(String.self, forKey: .node)
        type = try container.decodeIfPresent(String.self, forKey: .type) ?? "qemu"
        name = try container.decodeIfPresent(String.self, forKey: .name)
        status = try container.decodeIfPresent(String.self, forKey: .status) ?? "unknown"
        template = (try container.decodeIfPresent(FlexibleScalar.self, forKey: .template)?.text).map { $0 == "1" } ?? false
        lock = try container.decodeIfPresent(String.self, forKey: .lock)
        tags = Self.tags(in: try container.decodeIfPresent(String.self, forKey: .tags) ?? "")
        cores = (try container.decodeIfPresent(FlexibleScalar.self, forKey: .maxcpu)?.text).flatMap { Int(Double($0) ?? 0) }
        maxMemory = (try container.decodeIfPresent(FlexibleScalar.self, forKey: .maxmem)?.text).flatMap { Int64($0) }
        uptime = (try container.decodeIfPresent(FlexibleScalar.self, forKey: .uptime)?.text).flatMap { Int($0) }
    }

    /// Tags as the API lists them, split on `;`, `,` and spaces.
    package static func tags(in text: String) -> [String] {
        text.split(whereSeparator: { $0 == ";" || $0 == "," || $0 == " " }).map(String.init)
    }
}

/// What can go wrong between kscaler and the Proxmox API. No case carries the token's secret.
package enum ProxmoxError: Error, Sendable, CustomStringConvertible {
    case invalidURL(reason: String)
    /// The token secret could not be read (`reason` names the file or parameter).
    case secretUnavailable(reason: String)
    /// No answer: the request may or may not have reached Proxmox (`requestWasSent`).
    case transport(HTTPError)
    /// Proxmox answered with an error: the status line's message, and per-parameter messages.
    case api(method: String, path: String, status: Int, message: String, parameters: [String: String])
    case unreadable(path: String, reason: String)
    /// A task ended with an exit status other than OK.
    case taskFailed(upid: String, exitStatus: String)
    /// A task still ran when its bound passed: it may yet finish.
    case taskTimedOut(upid: String, timeout: Duration)

    package var description: String {
        switch self {
        case .invalidURL(let reason): "invalid Proxmox settings: \(reason)"
        case .secretUnavailable(let reason): "the Proxmox API token's secret could not be read: \(reason)"
        case .transport(let error): "Proxmox API unreachable: \(error)"
        case .api(let method, let path, let status, let message, let parameters):
            "Proxmox refused \(method) \(path) (HTTP \(status)): \(message)"
                + (parameters.isEmpty ? "" : " — " + parameters.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; "))
                + (status == 401 ? " (check fleet.proxmox.token_id and the token's secret)"
                   : status == 403 ? " (the API token lacks a privilege: see docs/backends/proxmox.md)" : "")
        case .unreadable(let path, let reason): "unreadable answer from Proxmox for \(path): \(reason)"
        case .taskFailed(let upid, let exitStatus): "Proxmox task \(upid) failed: \(exitStatus)"
        case .taskTimedOut(let upid, let timeout): "Proxmox task \(upid) still running after \(timeout.components.seconds) s"
        }
    }
}
