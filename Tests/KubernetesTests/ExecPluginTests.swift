// kubeconfig exec credential plugins: run as kubectl runs them, cached while unexpired, run
// again on expiry or a 401, bounded in time, and never quoted from stdout.
import Foundation
import HTTP
import Kubernetes
import Synchronization
import Testing

/// A clock the test moves.
final class TestClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    var now: Date { current.withLock { $0 } }
    func set(_ date: Date) { current.withLock { $0 = date } }
}

/// A plugin script in `scratch/bin/<name>` that counts its runs in `runs`, records its
/// KUBERNETES_EXEC_INFO, arguments and one variable, and prints an ExecCredential whose token
/// is `exec-token-<run>` (and the expiry in the file `expiry`, if there is one).
func writePlugin(_ scratch: ScratchDirectory, name: String = "kube-plugin", apiVersion: String = "client.authentication.k8s.io/v1",
                 status: String? = nil) throws -> String {
    let statusJSON = status ?? #"{"token":"exec-token-$n"$expiry}"#
    return try scratch.write("bin/\(name)", """
        #!/bin/sh
        dir="$(dirname "$0")/.."
        n=$(( $(cat "$dir/runs" 2>/dev/null || echo 0) + 1 ))
        echo "$n" > "$dir/runs"
        printf '%s' "$KUBERNETES_EXEC_INFO" > "$dir/exec-info"
        printf '%s' "$*" > "$dir/args"
        printf '%s' "$KSCALER_TEST_VAR" > "$dir/env"
        expiry=""
        if [ -f "$dir/expiry" ]; then expiry=",\\"expirationTimestamp\\":\\"$(cat "$dir/expiry")\\""; fi
        printf '{"apiVersion":"\(apiVersion)","kind":"ExecCredential","status":%s}\\n' "\(statusJSON.replacingOccurrences(of: "\"", with: "\\\""))"
        """, executable: true)
}

func execUser(command: String, apiVersion: String = "client.authentication.k8s.io/v1", extra: String = "") -> String {
    """
    exec:
      apiVersion: \(apiVersion)
      command: \(command)
      args: ["--region", "us-east-1"]
      env:
      - name: KSCALER_TEST_VAR
        value: from-kubeconfig
      interactiveMode: Never
    \(extra)
    """
}

@Suite struct ExecPluginTests {
    let scratch: ScratchDirectory
    let clock = TestClock(Date(timeIntervalSince1970: 1_893_456_000))  // 2030-01-01T00:00:00Z
    init() throws { scratch = try ScratchDirectory() }

    var environment: [String: String] { ["PATH": "\(scratch.path)/bin:/usr/bin:/bin", "HOME": scratch.path] }

    func endpoint(user: String, cluster: String = "server: https://10.0.0.1:6443", timeout: Duration = .seconds(30)) throws -> KubernetesEndpoint {
        let path = try scratch.write("kubeconfig", kubeconfigYAML(cluster: cluster, user: user))
        let clock = clock
        return try KubernetesEndpointResolver(environment: environment, homeDirectory: scratch.path, inClusterRoot: scratch.path,
                                              execTimeout: timeout, now: { clock.now }).fromKubeconfig(path: path)
    }

    var runs: Int { Int(scratch.read("runs")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0") ?? 0 }

    @Test func thePluginRunsAsKubectlRunsItAndItsTokenIsSentAsBearer() async throws {
        _ = try writePlugin(scratch)
        let resolved = try endpoint(user: execUser(command: "kube-plugin"), cluster: "server: https://10.0.0.1:6443\ncertificate-authority-data: \(base64(caPEM))")
        #expect(resolved.description.hasSuffix("user admin (exec plugin kube-plugin)"))
        let transport = ScriptedTransport(json: #"{"gitVersion":"v1.30.4"}"#)
        _ = try await KubernetesClient(endpoint: resolved, transport: transport).version()
        #expect(transport.requests.first?.header("Authorization") == "Bearer exec-token-1")
        #expect(scratch.read("args") == "--region us-east-1")
        #expect(scratch.read("env") == "from-kubeconfig")
        let info = try JSONDecoder().decode(JSONValue.self, from: Data(try #require(scratch.read("exec-info")).utf8))
        #expect(info == ["apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "spec": ["interactive": false]])
    }

    @Test func clusterInfoIsPassedWhenTheKubeconfigAsksForIt() async throws {
        _ = try writePlugin(scratch)
        let resolved = try endpoint(user: execUser(command: "kube-plugin", extra: "  provideClusterInfo: true"),
                                    cluster: "server: https://10.0.0.1:6443\ncertificate-authority-data: \(base64(caPEM))")
        _ = try await KubernetesClient(endpoint: resolved, transport: ScriptedTransport(json: #"{"gitVersion":"v1"}"#)).version()
        let info = try JSONDecoder().decode(JSONValue.self, from: Data(try #require(scratch.read("exec-info")).utf8))
        #expect(info["spec"]?["cluster"] == ["server": "https://10.0.0.1:6443", "certificate-authority-data": .string(base64(caPEM))])
    }

    @Test func aRelativeCommandIsResolvedAgainstTheKubeconfigsDirectory() async throws {
        _ = try writePlugin(scratch, name: "relative-plugin")
        let resolved = try endpoint(user: execUser(command: "./bin/relative-plugin"))
        guard case .exec(let plugin) = resolved.auth else { Issue.record("got \(resolved.auth)"); return }
        #expect(plugin.command == "\(scratch.path)/./bin/relative-plugin")
        let transport = ScriptedTransport(json: #"{"gitVersion":"v1"}"#)
        _ = try await KubernetesClient(endpoint: resolved, transport: transport).version()
        #expect(transport.requests.first?.header("Authorization") == "Bearer exec-token-1")
    }

    @Test func theCredentialIsCachedUntilItExpiresThenThePluginRunsAgain() async throws {
        _ = try writePlugin(scratch)
        try scratch.write("expiry", "2030-01-01T00:01:00Z")
        let transport = ScriptedTransport(json: #"{"gitVersion":"v1"}"#)
        let kube = try KubernetesClient(endpoint: try endpoint(user: execUser(command: "kube-plugin")), transport: transport)
        _ = try await kube.version()
        _ = try await kube.version()
        #expect(runs == 1)
        clock.set(Date(timeIntervalSince1970: 1_893_456_040))  // 20 s before expiry: still good
        _ = try await kube.version()
        #expect(runs == 1)
        clock.set(Date(timeIntervalSince1970: 1_893_456_055))  // 5 s before: too close, run again
        _ = try await kube.version()
        #expect(runs == 2)
        #expect(transport.requests.map { $0.header("Authorization") } == ["Bearer exec-token-1", "Bearer exec-token-1", "Bearer exec-token-1", "Bearer exec-token-2"])
    }

    @Test func requestsThatNeedACredentialAtOnceShareOneRun() async throws {
        _ = try writePlugin(scratch)
        let kube = try KubernetesClient(endpoint: try endpoint(user: execUser(command: "kube-plugin")),
                                        transport: ScriptedTransport(json: #"{"gitVersion":"v1"}"#))
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<6 { group.addTask { try await kube.version() } }
            for try await _ in group {}
        }
        #expect(runs == 1)
    }

    @Test func a401RunsThePluginOnceMoreAndRepeatsTheRequest() async throws {
        _ = try writePlugin(scratch)
        let transport = ScriptedTransport { request, _ in
            request.header("Authorization") == "Bearer exec-token-1"
                ? json(statusJSON(code: 401, reason: "Unauthorized", message: "Unauthorized"), status: 401)
                : json(#"{"gitVersion":"v1"}"#)
        }
        let kube = try KubernetesClient(endpoint: try endpoint(user: execUser(command: "kube-plugin")), transport: transport)
        #expect(try await kube.version() == "v1")
        #expect(runs == 2)
        #expect(transport.requests.map { $0.header("Authorization") } == ["Bearer exec-token-1", "Bearer exec-token-2"])

        // Refused again: only once more, then the 401 is the answer.
        let always = ScriptedTransport(status: 401, json: statusJSON(code: 401, reason: "Unauthorized", message: "Unauthorized"))
        let refused = try KubernetesClient(endpoint: try endpoint(user: execUser(command: "kube-plugin")), transport: always)
        let error = await kubernetesError { _ = try await refused.version() }
        guard case .unauthorized? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(always.requests.count == 2)
        #expect(always.requests.map { $0.header("Authorization") } == ["Bearer exec-token-2", "Bearer exec-token-3"])
        #expect(runs == 3)  // the cached second credential, refused; one more run, refused too
        #expect(error?.description.contains("exec-token") == false)
    }

    @Test func aFailingPluginIsQuotedFromStderrNeverFromStdout() async throws {
        let command = try scratch.write("bin/failing", """
            #!/bin/sh
            echo '{"status":{"token":"SECRET-STDOUT-TOKEN"}}'
            echo 'error: the SSO session has expired; run aws sso login' >&2
            exit 3
            """, executable: true)
        let kube = try KubernetesClient(endpoint: try endpoint(user: execUser(command: command)), transport: ScriptedTransport(json: "{}"))
        let error = await kubernetesError { _ = try await kube.version() }
        guard case .credentials(let reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(reason == "exec plugin \(command) exited with status 3; its stderr: error: the SSO session has expired; run aws sso login")
        #expect(!reason.contains("SECRET-STDOUT-TOKEN"))
    }

    @Test(arguments: [
        ("echo 'token=SECRET-STDOUT-TOKEN'", "wrote something other than ExecCredential JSON on stdout (its output is not shown"),
        (":", "wrote nothing on stdout"),
        (#"echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"SECRET-STDOUT-TOKEN"}}'"#,
         "answered with apiVersion \"client.authentication.k8s.io/v1beta1\" but the kubeconfig asks for client.authentication.k8s.io/v1"),
        (#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}}'"#, "returned neither a token nor a client certificate"),
        (#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"SECRET-STDOUT-TOKEN","expirationTimestamp":"soon"}}'"#,
         "expirationTimestamp \"soon\", which is not an RFC 3339 time"),
        (#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"SECRET-STDOUT-TOKEN"}}'"#,
         "clientCertificateData without clientKeyData"),
        ("kill -9 $$", "was killed by signal 9"),
    ])
    func unusableOutputIsRefusedWithoutQuotingIt(script: String, expected: String) async throws {
        let command = try scratch.write("bin/odd", "#!/bin/sh\n\(script)\n", executable: true)
        let kube = try KubernetesClient(endpoint: try endpoint(user: execUser(command: command)), transport: ScriptedTransport(json: "{}"))
        let error = await kubernetesError { _ = try await kube.version() }
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.description.contains("SECRET-STDOUT-TOKEN") == false)
    }

    @Test func kscalersOtherDescriptorsDoNotReachThePlugin() async throws {
        // A descriptor without close-on-exec, as a library might leave one.
        let fd = open(try scratch.write("held-open", "x"), O_RDONLY)
        #expect(fd > 2)
        defer { close(fd) }
        let command = try scratch.write("bin/fds", """
            #!/bin/sh
            if [ -e /proc/$$/fd/\(fd) ]; then echo inherited > "$(dirname "$0")/../fd"; else echo closed > "$(dirname "$0")/../fd"; fi
            echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t"}}'
            """, executable: true)
        let kube = try KubernetesClient(endpoint: try endpoint(user: execUser(command: command)), transport: ScriptedTransport(json: #"{"gitVersion":"v1"}"#))
        _ = try await kube.version()
        #expect(scratch.read("fd") == "closed\n")
    }

    /// The plugin's processes are gone once the error comes back: killed at the timeout (its
    /// whole process group), not waited for (it would sleep for five minutes; the time limit
    /// stops a client that waits). Checked by what still runs from the scratch directory, which
    /// holds whether or not a loaded machine let the script start before the timeout.
    @Test(.timeLimit(.minutes(3)))
    func aPluginThatHangsIsKilledAtTheTimeout() async throws {
        let command = try scratch.write("bin/hang", "#!/bin/sh\necho 'waiting for a browser' >&2\n\"$(dirname \"$0\")/nap\" 300\n",
                                        executable: true)
        // A child of the script's own, named by its path, so it can be found if it outlived the kill.
        _ = try scratch.write("bin/nap", "#!/bin/sh\nsleep \"$1\"\n", executable: true)
        let kube = try KubernetesClient(endpoint: try endpoint(user: execUser(command: command), timeout: .seconds(3)),
                                        transport: ScriptedTransport(json: "{}"))
        let error = await kubernetesError { _ = try await kube.version() }
        #expect(error?.description.hasPrefix("Kubernetes credentials: exec plugin \(command) did not finish within 3 s and was killed; ") == true,
                "\(String(describing: error))")
        // (Its stderr is quoted when it got that far; a loaded machine may not have run it yet.)
        let survivors = Self.processes(runningFrom: (command as NSString).deletingLastPathComponent)
        #expect(survivors.isEmpty, "still running: \(survivors)")
    }

    /// Pids whose command line names a file under `directory` (/proc/<pid>/cmdline).
    static func processes(runningFrom directory: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { $0.allSatisfy(\.isNumber) } ?? []
        return pids.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(directory)
        }
    }

    @Test func aCommandNotFoundShowsTheInstallHint() async throws {
        let resolved = try endpoint(user: execUser(command: "no-such-plugin", extra: "  installHint: |\n    Install it with: apt-get install no-such-plugin"))
        let kube = try KubernetesClient(endpoint: resolved, transport: ScriptedTransport(json: "{}"))
        let error = await kubernetesError { _ = try await kube.version() }
        let text = try #require(error?.description)
        #expect(text.contains("exec plugin command \"no-such-plugin\" was not found in PATH (\(scratch.path)/bin:/usr/bin:/bin)"))
        #expect(text.hasSuffix("\nInstall it with: apt-get install no-such-plugin"))

        let notExecutable = try scratch.write("bin/plain", "#!/bin/sh\n")
        let plain = try KubernetesClient(endpoint: try endpoint(user: execUser(command: notExecutable)), transport: ScriptedTransport(json: "{}"))
        #expect(await kubernetesError { _ = try await plain.version() }?.description.contains("cannot be started: Permission denied") == true)
    }

    @Test func v1beta1PluginsWork() async throws {
        _ = try writePlugin(scratch, apiVersion: "client.authentication.k8s.io/v1beta1")
        let transport = ScriptedTransport(json: #"{"gitVersion":"v1"}"#)
        let resolved = try endpoint(user: execUser(command: "kube-plugin", apiVersion: "client.authentication.k8s.io/v1beta1"))
        _ = try await KubernetesClient(endpoint: resolved, transport: transport).version()
        #expect(transport.requests.first?.header("Authorization") == "Bearer exec-token-1")
        #expect(scratch.read("exec-info")?.contains("client.authentication.k8s.io/v1beta1") == true)
    }

    @Test func aClientCertificateFromThePluginGoesIntoTheTransportsTLS() async throws {
        let escaped = { (pem: String) in pem.replacingOccurrences(of: "\n", with: "\\\\n") }
        _ = try writePlugin(scratch, status: #"{"clientCertificateData":"\#(escaped(certificatePEM))","clientKeyData":"\#(escaped(keyPEM))"}"#)
        let resolved = try endpoint(user: execUser(command: "kube-plugin"), cluster: "server: https://10.0.0.1:6443\ncertificate-authority-data: \(base64(caPEM))")
        let asked = Mutex<[TLSOptions]>([])
        let transport = ScriptedTransport(json: #"{"gitVersion":"v1"}"#)
        let kube = try KubernetesClient(endpoint: resolved, makeTransport: { tls in
            asked.withLock { $0.append(tls) }
            return transport
        })
        _ = try await kube.version()
        _ = try await kube.version()
        let expected = TLSOptions(trustedCA: .pem(Data(caPEM.utf8)),
                                  clientCertificate: .init(certificatePEM: Data(certificatePEM.utf8), privateKeyPEM: Data(keyPEM.utf8)))
        #expect(asked.withLock { $0 } == [expected])  // built once, then reused
        #expect(transport.requests.allSatisfy { $0.header("Authorization") == nil })

        // A transport built by the caller cannot present it: said, not silently ignored.
        let fixed = try KubernetesClient(endpoint: resolved, transport: ScriptedTransport(json: #"{"gitVersion":"v1"}"#))
        let error = await kubernetesError { _ = try await fixed.version() }
        #expect(error?.description.contains("init(endpoint:timeout:logger:makeTransport:)") == true)
    }
}
