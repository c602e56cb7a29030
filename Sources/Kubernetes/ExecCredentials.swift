#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP
import Logging
import Spawn

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension ExecPlugin {
    /// Runs the plugin once and reads its ExecCredential, as kubectl does: `KUBERNETES_EXEC_INFO`
    /// set, stdin not a terminal, bounded by `timeout`. The plugin's stdout holds the credential,
    /// so no error ever quotes it; its stderr may be quoted.
    func run(logger: Logger) async throws(KubernetesError) -> ExecCredential {
        let executable = try resolvedExecutable()
        var childEnvironment = environment
        for variable in extraEnvironment { childEnvironment[variable.name] = variable.value }
        childEnvironment["KUBERNETES_EXEC_INFO"] = String(decoding: execInfo.encoded(), as: UTF8.self)

        let started = ContinuousClock.now
        let outcome = await BoundedProcess.run(executable: executable, arguments: arguments, environment: childEnvironment, timeout: timeout)
        let output: BoundedProcess.Output
        switch outcome {
        case .failure(let error):
            throw .credentials("exec plugin \(executable) cannot be started: \(error.reason)\(hint)")
        case .success(let finished):
            output = finished
        }
        let elapsed = ContinuousClock.now - started
        switch output.ending {
        case .exited(0):
            break
        case .exited(let status):
            throw .credentials("exec plugin \(executable) exited with status \(status)\(Self.quote(stderr: output.stderr))")
        case .signalled(let signal):
            throw .credentials("exec plugin \(executable) was killed by signal \(signal)\(Self.quote(stderr: output.stderr))")
        case .timedOut:
            throw .credentials("exec plugin \(executable) did not finish within \(timeout.components.seconds) s and was killed"
                + Self.quote(stderr: output.stderr))
        case .cancelled:
            throw .credentials("exec plugin \(executable) was stopped: the run was cancelled (its deadline or a signal)")
        }
        let credential = try parse(output.stdout, executable: executable)
        logger.debug("kubernetes exec plugin ran", metadata: [
            "command": "\(executable)",
            "elapsed_ms": .stringConvertible(elapsed.inMilliseconds),
            "expires": "\(credential.expiration.map(KubeTime.format) ?? "never")",
        ])
        return credential
    }

    /// Same executable (as found in PATH), arguments, environment, version and cluster: the
    /// same credential.
    var cacheKey: String {
        let key: JSONValue = [
            "command": .string((try? resolvedExecutable()) ?? command), "args": .array(arguments.map { .string($0) }),
            "env": .array(extraEnvironment.map { [.string($0.name), .string($0.value)] }),
            "apiVersion": .string(apiVersion.rawValue), "cluster": cluster ?? .null,
        ]
        return String(decoding: key.encoded(), as: UTF8.self)
    }

    /// What kubectl sets in `KUBERNETES_EXEC_INFO`.
    var execInfo: JSONValue {
        var spec: [String: JSONValue] = ["interactive": false]
        if let cluster { spec["cluster"] = cluster }
        return ["apiVersion": .string(apiVersion.rawValue), "kind": "ExecCredential", "spec": .object(spec)]
    }

    private var hint: String {
        installHint.map { "\n\($0.trimmingWhitespace())" } ?? ""
    }

    /// A path as given (made absolute by the resolver when relative), or a bare name found in
    /// the plugin environment's PATH, as kubectl's `exec.LookPath` finds it.
    func resolvedExecutable() throws(KubernetesError) -> String {
        guard !command.isEmpty else { throw .credentials("the kubeconfig's exec plugin has an empty command") }
        let path = environment["PATH"] ?? ""
        if let executable = BoundedProcess.resolve(command, path: path) { return executable }
        throw .credentials("exec plugin command \"\(command)\" was not found in PATH (\(path.isEmpty ? "PATH is empty" : path))\(hint)")
    }

    private struct Document: Decodable {
        struct Status: Decodable {
            var token: String?
            var clientCertificateData: String?
            var clientKeyData: String?
            var expirationTimestamp: String?
        }
        var apiVersion: String?
        var kind: String?
        var status: Status?
    }

    private func parse(_ stdout: Data, executable: String) throws(KubernetesError) -> ExecCredential {
        let notShown = "(its output is not shown: it would hold the credential)"
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: stdout)
        } catch {
            let what = stdout.isEmpty ? "wrote nothing on stdout" : "wrote something other than ExecCredential JSON on stdout"
            throw .credentials("exec plugin \(executable) \(what) \(notShown)")
        }
        guard document.kind == "ExecCredential" else {
            throw .credentials("exec plugin \(executable) answered with kind \(document.kind.map { "\"\($0.prefix(40))\"" } ?? "(none)"), not ExecCredential")
        }
        guard document.apiVersion == apiVersion.rawValue else {
            throw .credentials("exec plugin \(executable) answered with apiVersion \(document.apiVersion.map { "\"\($0.prefix(60))\"" } ?? "(none)")"
                + " but the kubeconfig asks for \(apiVersion.rawValue); make them agree")
        }
        guard let status = document.status else {
            throw .credentials("exec plugin \(executable) answered without a status \(notShown)")
        }
        let token = status.token.flatMap { $0.isEmpty ? nil : $0 }
        if let token, token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw .credentials("exec plugin \(executable) returned a token with line breaks or control characters \(notShown)")
        }
        var certificate: TLSOptions.ClientCertificate?
        switch (status.clientCertificateData.flatMap { $0.isEmpty ? nil : $0 }, status.clientKeyData.flatMap { $0.isEmpty ? nil : $0 }) {
        case (let cert?, let key?):
            certificate = TLSOptions.ClientCertificate(certificatePEM: Data(cert.utf8), privateKeyPEM: Data(key.utf8))
        case (nil, nil):
            break
        default:
            throw .credentials("exec plugin \(executable) returned clientCertificateData without clientKeyData or the other way round; it must return both")
        }
        guard token != nil || certificate != nil else {
            throw .credentials("exec plugin \(executable) returned neither a token nor a client certificate")
        }
        var expiration: Date?
        if let stamp = status.expirationTimestamp {
            guard let date = KubeTime.parse(stamp) else {
                throw .credentials("exec plugin \(executable) returned expirationTimestamp \"\(stamp.prefix(40))\", which is not an RFC 3339 time")
            }
            expiration = date
        }
        return ExecCredential(token: token, clientCertificate: certificate, expiration: expiration)
    }

    /// The end of the plugin's stderr on one line, for the error (at most 500 characters).
    private static func quote(stderr: Data) -> String {
        let text = String(decoding: stderr, as: UTF8.self)
            .unicodeScalars.map { $0.properties.generalCategory == .control ? " " : String($0) }.joined()
            .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        guard !text.isEmpty else { return " (nothing on stderr)" }
        return "; its stderr: " + (text.count > 500 ? "…" + text.suffix(500) : text)
    }
}

/// ExecCredentials for the life of the process, per plugin configuration, while unexpired.
/// Requests that need a credential while a plugin runs wait for that run rather than start
/// their own.
actor ExecCredentialCache {
    static let shared = ExecCredentialCache()

    private enum Entry {
        case running(id: Int, Task<ExecCredential, any Error>)
        case ready(ExecCredential)
    }

    private var entries: [String: Entry] = [:]
    private var runs = 0
    /// A credential this close to its expiry counts as expired: a request sent with it would
    /// likely be refused on arrival.
    static let expirySkew: TimeInterval = 10

    func credential(for plugin: ExecPlugin, logger: Logger) async throws(KubernetesError) -> ExecCredential {
        let key = plugin.cacheKey
        switch entries[key] {
        case .ready(let credential) where !Self.expired(credential, now: plugin.now()):
            return credential
        case .running(_, let task):
            return try await Self.value(of: task)
        default:
            runs += 1
            let id = runs
            let task = Task<ExecCredential, any Error> { try await plugin.run(logger: logger) }
            entries[key] = .running(id: id, task)
            do {
                let credential = try await Self.value(of: task)
                if case .running(id, _)? = entries[key] { entries[key] = .ready(credential) }
                return credential
            } catch {
                if case .running(id, _)? = entries[key] { entries[key] = nil }
                throw error
            }
        }
    }

    /// Forgets `stale` (refused with a 401) so the next request runs the plugin again; a newer
    /// credential another request already fetched is kept.
    func discard(_ stale: ExecCredential, for plugin: ExecPlugin) {
        let key = plugin.cacheKey
        if case .ready(let cached)? = entries[key], cached == stale { entries[key] = nil }
    }

    private static func expired(_ credential: ExecCredential, now: Date) -> Bool {
        guard let expiration = credential.expiration else { return false }
        return expiration.timeIntervalSince(now) <= expirySkew
    }

    /// Waits for a run; a cancelled waiter cancels the run (it belongs to the same kscaler run).
    private static func value(of task: Task<ExecCredential, any Error>) async throws(KubernetesError) -> ExecCredential {
        do {
            return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch let error as KubernetesError {
            throw error
        } catch {
            throw .credentials("the exec plugin run was cancelled")
        }
    }
}
