// A real Prometheus (the Debian package's binary) for the tests, optionally scraping the fake
// cluster exporter (Tests/Fixtures/prometheus/fake_cluster_exporter.py) every second.
import Foundation
import HTTP
import Prometheus
import Testing

/// Which cluster the fake exporter serves; see the exporter's docstring for the known answers.
enum ClusterScenario: String, Sendable {
    /// Two unschedulable pending pods.
    case busy
    /// No unschedulable pod, kube-state-metrics alive.
    case settled
    /// kube-state-metrics down (503), node-exporter up.
    case kubeStateMetricsDown = "ksm-down"
    /// The busy cluster reported by two kube-state-metrics pods at once, as during a rollout.
    case kubeStateMetricsRollout = "ksm-rollout"
}

final class RunningPrometheus: @unchecked Sendable {  // Process is not Sendable; only stop() touches it.
    let baseURL: String
    /// Since when every target has been scraped at least twice: history before it is partial.
    let fullyScrapedSince: ContinuousClock.Instant
    private let directory: URL
    private let processes: [Process]

    private init(baseURL: String, directory: URL, processes: [Process]) {
        self.baseURL = baseURL
        self.directory = directory
        self.processes = processes
        fullyScrapedSince = .now
    }

    /// A client of this Prometheus on the test transport.
    func client(auth: PrometheusAuth = .none) throws -> PrometheusClient {
        try PrometheusClient(baseURL: baseURL, auth: auth, timeout: .seconds(5), transport: TemporaryTransport())
    }

    /// Starts Prometheus scraping the fake cluster and returns once every target was scraped twice
    /// (enough for `rate()`).
    static func scraping(_ scenario: ClusterScenario) async throws -> RunningPrometheus {
        let binary = try prometheusBinary()
        let directory = try temporaryDirectory()
        var processes: [Process] = []
        do {
            let exporterInfo = directory.appending(path: "exporter.json")
            let exporter = try launch(
                "/usr/bin/env",
                ["python3", fixturesDirectory.appending(path: "fake_cluster_exporter.py").path,
                 "--scenario", scenario.rawValue, "--lifetime", "900", "--exit-on-stdin-eof"],
                output: exporterInfo,
                keepStdinOpen: true
            )
            processes.append(exporter)
            let line = try await firstLine(of: exporterInfo, matching: { $0.hasPrefix("{") }, what: "the fake exporter's port")
            struct ExporterInfo: Decodable { let port: Int; let targets: Int }
            let info = try JSONDecoder().decode(ExporterInfo.self, from: Data(line.utf8))
            let config = """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            scrape_configs:
              - job_name: fake-cluster
                http_sd_configs: [{url: 'http://127.0.0.1:\(info.port)/sd', refresh_interval: 1s}]
            """
            let baseURL = try await startPrometheus(binary, config: config, in: directory, processes: &processes)
            try await waitUntilScraped(baseURL, targets: info.targets)
            return RunningPrometheus(baseURL: baseURL, directory: directory, processes: processes)
        } catch {
            await RunningPrometheus(baseURL: "", directory: directory, processes: processes).stop()
            throw error
        }
    }

    /// Starts Prometheus with no scrape targets, requiring basic auth; `bcryptHash` is `password`'s.
    static func withBasicAuth(username: String, password: String, bcryptHash: String) async throws -> RunningPrometheus {
        let binary = try prometheusBinary()
        let directory = try temporaryDirectory()
        var processes: [Process] = []
        do {
            let webConfig = directory.appending(path: "web.yml")
            try "basic_auth_users:\n  \(username): '\(bcryptHash)'\n".write(to: webConfig, atomically: true, encoding: .utf8)
            let baseURL = try await startPrometheus(
                binary,
                config: "global: {scrape_interval: 1s}\n",
                in: directory,
                processes: &processes,
                extraArguments: ["--web.config.file=\(webConfig.path)"],
                readinessHeaders: [HTTPHeader("Authorization", "Basic " + Data("\(username):\(password)".utf8).base64EncodedString())]
            )
            return RunningPrometheus(baseURL: baseURL, directory: directory, processes: processes)
        } catch {
            await RunningPrometheus(baseURL: "", directory: directory, processes: processes).stop()
            throw error
        }
    }

    /// Terminates the processes, waits for them (5 s at most each, then SIGKILL) and removes the files.
    func stop() async {
        for process in processes where process.isRunning { process.terminate() }
        for process in processes {
            let deadline = ContinuousClock.now + .seconds(5)
            while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning {
                // `timeout` leads its own process group: the negative pid reaches Prometheus too.
                kill(-process.processIdentifier, SIGKILL)
                kill(process.processIdentifier, SIGKILL)
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Start-up

    private static let fixturesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appending(path: "Fixtures/prometheus")

    private static func prometheusBinary() throws -> String {
        let path = ProcessInfo.processInfo.environment["KSCALER_TEST_PROMETHEUS_BIN"] ?? "/usr/bin/prometheus"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw FixtureError("""
            no Prometheus binary at \(path). Run the repository's test command (bash .ci/run), or \
            scripts/install-deps.sh, which install the Debian package `prometheus`; or set \
            KSCALER_TEST_PROMETHEUS_BIN to a Prometheus 2.x binary.
            """)
        }
        return path
    }

    private static func startPrometheus(
        _ binary: String, config: String, in directory: URL, processes: inout [Process], extraArguments: [String] = [],
        readinessHeaders: [HTTPHeader] = []
    ) async throws -> String {
        let configFile = directory.appending(path: "prometheus.yml")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        let log = directory.appending(path: "prometheus.log")
        // `timeout` ends Prometheus by itself should this test process die without tearing down.
        let prometheus = try launch(
            "/usr/bin/timeout",
            ["900", binary, "--config.file=\(configFile.path)", "--storage.tsdb.path=\(directory.appending(path: "data").path)",
             "--web.listen-address=127.0.0.1:0"] + extraArguments,
            output: log
        )
        processes.append(prometheus)
        let line = try await firstLine(of: log, matching: { $0.contains("msg=\"Listening on\"") }, what: "Prometheus's listening address")
        guard let address = line.split(separator: " ").first(where: { $0.hasPrefix("address=") })?.dropFirst("address=".count) else {
            throw FixtureError("no address in Prometheus's log line: \(line)")
        }
        let baseURL = "http://\(address)"
        // It listens before its storage is open, answering 503 until then.
        let deadline = ContinuousClock.now + .seconds(10)
        var lastStatus = "nothing"
        while ContinuousClock.now < deadline {
            do {
                let response = try await TemporaryTransport().send(HTTPRequest(method: "GET", url: baseURL + "/-/ready", headers: readinessHeaders))
                if response.status == 200 { return baseURL }
                lastStatus = "HTTP \(response.status)"
            } catch {
                lastStatus = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw FixtureError("Prometheus at \(baseURL) not ready within 10 s; last answer: \(lastStatus)")
    }

    private static func waitUntilScraped(_ baseURL: String, targets: Int) async throws {
        let client = try PrometheusClient(baseURL: baseURL, transport: TemporaryTransport())
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let scraped = try await client.query("count(count_over_time(up[1m]) >= 2)").samples.first?.value, Int(scraped) == targets {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw FixtureError("Prometheus did not scrape all \(targets) fake-cluster targets twice within 30 s")
    }

    private static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appending(path: "kscaler-prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private static func launch(_ executable: String, _ arguments: [String], output: URL, keepStdinOpen: Bool = false) throws -> Process {
        guard FileManager.default.createFile(atPath: output.path, contents: nil) else {
            throw FixtureError("cannot create \(output.path)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        // The exporter exits when this pipe closes, i.e. when the test process is gone.
        process.standardInput = keepStdinOpen ? Pipe() : FileHandle.nullDevice
        // A child inherits the spawning thread's signal mask, and the concurrency pool's threads
        // block SIGTERM: spawn with an empty mask so that terminate() works.
        var empty = sigset_t(), previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
        return process
    }

    /// Polls a log file (10 s at most) for the first line satisfying `matches`.
    private static func firstLine(of file: URL, matching matches: (String) -> Bool, what: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { matches(String($0)) }) { return String(line) }
            try await Task.sleep(for: .milliseconds(20))
        }
        let log = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        throw FixtureError("did not see \(what) within 10 s; output so far:\n\(log.suffix(2_000))")
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a suite's tests against one Prometheus scraping the fake cluster, started before the
/// first test and stopped after the last.
struct FakeClusterTrait: SuiteTrait, TestScoping {
    let scenario: ClusterScenario
    var isRecursive: Bool { false }

    @TaskLocal static var current: RunningPrometheus?

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let prometheus = try await RunningPrometheus.scraping(scenario)
        do {
            try await Self.$current.withValue(prometheus) { try await function() }
        } catch {
            await prometheus.stop()
            throw error
        }
        await prometheus.stop()
    }
}

extension Trait where Self == FakeClusterTrait {
    static func fakeCluster(_ scenario: ClusterScenario) -> Self { FakeClusterTrait(scenario: scenario) }
}

/// The Prometheus of the enclosing `.fakeCluster` suite.
func fakeClusterPrometheus() throws -> RunningPrometheus {
    try #require(FakeClusterTrait.current, "the suite needs the .fakeCluster(…) trait")
}
