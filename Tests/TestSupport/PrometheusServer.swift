import Foundation
import HTTP

/// A real Prometheus (the Debian package's binary) on 127.0.0.1, for tests. `timeout` wraps it
/// so it ends by itself should the test process die without stopping it.
package final class PrometheusServer: @unchecked Sendable {  // immutable after init; only stop() acts on the child.
    package let baseURL: String
    package let directory: URL
    private let process: SpawnedProcess

    private init(baseURL: String, directory: URL, process: SpawnedProcess) {
        self.baseURL = baseURL
        self.directory = directory
        self.process = process
    }

    package static func binary() throws -> String {
        let path = ProcessInfo.processInfo.environment["KSTEST_PROMETHEUS_BIN"] ?? "/usr/bin/prometheus"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSupportError("""
            no Prometheus binary at \(path). Run the repository's test command (`make test`, or bash .ci/run), or \
            scripts/install-deps.sh, which installs the Debian package `prometheus`; or set KSTEST_PROMETHEUS_BIN.
            """)
        }
        return path
    }

    /// A scrape configuration for static targets (`host:port`) at `interval`.
    package static func scrapeConfig(targets: [String], interval: String = "1s", metricsPath: String = "/metrics") -> String {
        """
        global: {scrape_interval: \(interval), evaluation_interval: \(interval)}
        scrape_configs:
          - job_name: test
            metrics_path: \(metricsPath)
            static_configs: [{targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))]}]
        """
    }

    /// Starts Prometheus with `config` and returns once it answers ready. `webConfig` is the
    /// content of a `--web.config.file` (basic-auth users, TLS), kept in the server's directory;
    /// `readinessHeaders` then authenticate the readiness probe. `storage` is a TSDB directory
    /// to open (blocks made by `promtool tsdb create-blocks-from`), else a fresh one.
    package static func start(config: String, webConfig: String? = nil, extraArguments: [String] = [],
                             readinessHeaders: [HTTPHeader] = [], storage: URL? = nil) async throws -> PrometheusServer {
        let binary = try binary()
        let directory = try ChildProcess.temporaryDirectory("kscaler-prometheus")
        let configFile = directory.appendingPathComponent("prometheus.yml")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        var extraArguments = extraArguments
        if let webConfig {
            let webConfigFile = directory.appendingPathComponent("web.yml")
            try webConfig.write(to: webConfigFile, atomically: true, encoding: .utf8)
            extraArguments.append("--web.config.file=\(webConfigFile.path)")
        }
        let log = directory.appendingPathComponent("prometheus.log")
        let process = try ChildProcess.launch(
            "/usr/bin/timeout",
            ["900", binary, "--config.file=\(configFile.path)", "--storage.tsdb.path=\((storage ?? directory.appendingPathComponent("data")).path)",
             "--web.listen-address=127.0.0.1:0"] + extraArguments,
            log: log)
        let server = PrometheusServer(baseURL: "", directory: directory, process: process)
        do {
            // Generous: on 2 loaded cores (a parallel test run) Prometheus can take many seconds.
            let line = try await ChildProcess.firstLine(of: log, timeout: .seconds(60), what: "Prometheus's listening address") {
                $0.contains("msg=\"Listening on\"")
            }
            guard let address = line.split(separator: " ").first(where: { $0.hasPrefix("address=") })?.dropFirst("address=".count) else {
                throw TestSupportError("no address in Prometheus's log line: \(line)")
            }
            let ready = PrometheusServer(baseURL: "http://\(address)", directory: directory, process: process)
            try await ready.waitUntilReady(headers: readinessHeaders)
            return ready
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Prometheus listens before its storage is open and answers 503 until then.
    private func waitUntilReady(headers: [HTTPHeader]) async throws {
        let transport = CurlTransport(connectTimeout: .seconds(1), totalTimeout: .seconds(2))
        let deadline = ContinuousClock.now + .seconds(60)
        var last = "nothing"
        while ContinuousClock.now < deadline {
            do {
                let response = try await transport.send(HTTPRequest(method: "GET", url: baseURL + "/-/ready", headers: headers))
                if response.status == 200 { return }
                last = "HTTP \(response.status)"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSupportError("Prometheus at \(baseURL) not ready within 60 s; last answer: \(last)")
    }

    /// Waits until `promql` (a scalar-valued expression) answers at least `atLeast`.
    package func waitUntil(_ promql: String, atLeast: Double, timeout: Duration = .seconds(60)) async throws {
        let transport = CurlTransport()
        let deadline = ContinuousClock.now + timeout
        let encoded = promql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? promql
        var last = "nothing"
        while ContinuousClock.now < deadline {
            let response = try await transport.send(HTTPRequest(method: "GET", url: "\(baseURL)/api/v1/query?query=\(encoded)"))
            let body = String(decoding: response.body, as: UTF8.self)
            last = body
            if let range = body.range(of: #""value":\[[0-9.]+,"([^"]+)"\]"#, options: .regularExpression) {
                let match = body[range]
                if let quote = match.dropLast(2).lastIndex(of: "\""), let value = Double(match[match.index(after: quote)...].dropLast(2)),
                   value >= atLeast {
                    return
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestSupportError("`\(promql)` did not reach \(atLeast) within \(timeout); last answer: \(last.prefix(300))")
    }

    /// Stops Prometheus and removes its files.
    package func stop() async {
        await ChildProcess.stop(process)
        try? FileManager.default.removeItem(at: directory)
    }
}
