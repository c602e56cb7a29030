// A real Prometheus (TestSupport's PrometheusServer) for the tests, optionally scraping one of the
// simulated cluster's fixed scenarios (infra/local/ksandbox/exporter.py) every second.
import Foundation
import HTTP
import Prometheus
import TestSupport
import Testing

/// Which fixed cluster the exporter serves; see `fixed` in exporter.py for the known answers.
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

/// The simulated cluster's exporter serving one fixed scenario, and the scrape configuration
/// of every target its service discovery lists, every second.
struct FakeClusterExporter: Sendable {
    let process: ClusterExporterProcess
    var targets: Int { process.targets }
    var scrapeConfig: String {
        """
        global: {scrape_interval: 1s, evaluation_interval: 1s}
        scrape_configs:
          - job_name: fake-cluster
            http_sd_configs: [{url: '\(process.serviceDiscoveryURL)', refresh_interval: 1s}]
        """
    }

    static func start(_ scenario: ClusterScenario) async throws -> FakeClusterExporter {
        FakeClusterExporter(process: try await ClusterExporterProcess.start(["--scenario", scenario.rawValue]))
    }

    func stop() async { await process.stop() }
}

/// A Prometheus for one suite or test, with the fake cluster behind it when it scrapes one.
final class RunningPrometheus: Sendable {
    private let server: PrometheusServer
    var baseURL: String { server.baseURL }
    /// Since when every target has been scraped at least twice: history before it is partial.
    let fullyScrapedSince: ContinuousClock.Instant
    private let exporter: FakeClusterExporter?
    /// One transport for every client of this server, so sequential queries reuse a connection.
    private let transport = CurlTransport()

    private init(server: PrometheusServer, exporter: FakeClusterExporter?) {
        self.server = server
        self.exporter = exporter
        fullyScrapedSince = .now
    }

    /// A client of this Prometheus on the production transport.
    func client(auth: PrometheusAuth = .none) throws -> PrometheusClient {
        try PrometheusClient(baseURL: baseURL, auth: auth, timeout: .seconds(5), transport: transport)
    }

    /// Starts Prometheus scraping the fake cluster and returns once every target was scraped twice
    /// (enough for `rate()`).
    static func scraping(_ scenario: ClusterScenario) async throws -> RunningPrometheus {
        let exporter = try await FakeClusterExporter.start(scenario)
        do {
            let server = try await PrometheusServer.start(config: exporter.scrapeConfig)
            do {
                try await server.waitUntil("count(count_over_time(up[1m]) >= 2)", atLeast: Double(exporter.targets))
            } catch {
                await server.stop()
                throw error
            }
            return RunningPrometheus(server: server, exporter: exporter)
        } catch {
            await exporter.stop()
            throw error
        }
    }

    /// Starts Prometheus with no scrape targets, requiring basic auth; `bcryptHash` is `password`'s.
    static func withBasicAuth(username: String, password: String, bcryptHash: String) async throws -> RunningPrometheus {
        let server = try await PrometheusServer.start(
            config: "global: {scrape_interval: 1s}\n",
            webConfig: "basic_auth_users:\n  \(username): '\(bcryptHash)'\n",
            readinessHeaders: [HTTPHeader("Authorization", "Basic " + Data("\(username):\(password)".utf8).base64EncodedString())]
        )
        return RunningPrometheus(server: server, exporter: nil)
    }

    /// Stops Prometheus, then the exporter, and removes their files.
    func stop() async {
        await server.stop()
        await exporter?.stop()
    }
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
