import AWS
import Foundation
import KScaler
import Testing
import TestSupport

/// Small promises of the command line, through the release binary.
@Suite struct CommandLineTests {
    @Test(arguments: ["0", "--timeout=-5"])
    func aTimeoutBelowOneSecondIsAUsageError(timeout: String) async throws {
        let result = try await KScalerProcess.run(["run"] + (timeout.hasPrefix("--") ? [timeout] : ["--timeout", timeout]), environment: [:])
        #expect(result.status == 64, "\(result.combined)")
        #expect(result.stderr.contains("--timeout must be at least 1 second"))
    }

    /// The fencing token is a counter operators read (`lease status` prints it); only keys that
    /// name a secret are redacted. At debug level the AWS and Prometheus clients log each request.
    @Test func theFencingTokenIsLoggedAndSecretsAreNot() async throws {
        try await EndToEndHarness.with { harness in
            let result = try await harness.kscaler(["run", "--log-level", "debug", "--log-format", "json"])
            let lines = result.stderr.split(separator: "\n")
            let acquired = try #require(lines.first { $0.contains(#""message":"lease acquired""#) })
            #expect(acquired.contains(#""lease_token":"1""#), "\(acquired)")
            let leaseWrite = try #require(lines.first { $0.contains(#""message":"aws request""#) && $0.contains(#""operation":"UpdateItem""#) })
            #expect(leaseWrite.contains(#""service":"DynamoDB""#) && leaseWrite.contains(#""request_id":"#)
                    && leaseWrite.contains(#""elapsed_ms":"#), "\(leaseWrite)")
            #expect(lines.contains { $0.contains(#""message":"prometheus request""#) && $0.contains(#""path":"/api/v1/query""#) })
            #expect(!result.combined.contains(harness.fixture.moto.secretAccessKey))
        }
    }

    /// A unit file or a task definition sets the format its log shipper parses once, in the
    /// environment: every line is then one JSON object, the run's last one `run_finished`.
    @Test func theLogFormatAndLevelComeFromTheEnvironment() async throws {
        try await EndToEndHarness.with { harness in
            try await harness.waitForMetrics()
            let json = harness.environment.merging(["KSCALER_LOG_FORMAT": "json", "KSCALER_LOG_LEVEL": "debug"]) { _, new in new }
            let result = try await harness.kscaler(["run"], environment: json)
            #expect(result.status == 0, "\(result.combined)")
            let lines = result.stderr.split(separator: "\n")
            #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("{\"time\":") && $0.hasSuffix("}") }, "\(result.stderr)")
            #expect(lines.contains { $0.contains(#""level":"debug""#) }, "KSCALER_LOG_LEVEL=debug lets debug records through")
            #expect(lines.last?.contains(#""event":"run_finished""#) == true, "\(lines.last ?? "")")

            // A flag wins over its variable.
            let plain = try await harness.kscaler(["plan", "--log-format", "plain", "--log-level", "info"], environment: json)
            #expect(plain.status == 0, "\(plain.combined)")
            #expect(!plain.stderr.contains("{\"time\""), "\(plain.stderr)")
            #expect(!plain.stderr.contains(" DEBUG "), "\(plain.stderr)")
        }
    }

    /// An unusable value is a configuration error found before anything runs: exit 2, what
    /// was wrong and how to fix it, and no lease taken.
    @Test(arguments: [("KSCALER_LOG_FORMAT", "xml", "plain, json"), ("KSCALER_LOG_LEVEL", "loud", "trace, debug, info")])
    func anUnusableLogVariableIsAConfigErrorAndNothingRuns(variable: String, value: String, allowed: String) async throws {
        try await EndToEndHarness.with { harness in
            let environment = harness.environment.merging([variable: value]) { _, new in new }
            let result = try await harness.kscaler(["run"], environment: environment)
            #expect(result.status == 2, "\(result.combined)")
            #expect(result.stderr.contains("\(variable)=\"\(value)\" is not a log"), "\(result.stderr)")
            #expect(result.stderr.contains("Fix: set it to one of \(allowed)"), "\(result.stderr)")
            #expect(try await harness.table.holder().owner == nil, "no run started")
            #expect(try await harness.table.history(limit: 5).events.isEmpty, "nothing recorded")
        }
    }

    /// `config check` says which log format and level are in force and where they came from.
    @Test func configCheckShowsTheLogSettingsAndTheirSource() async throws {
        try await EndToEndHarness.with { harness in
            let environment = harness.environment.merging(["KSCALER_LOG_FORMAT": "json"]) { _, new in new }
            let human = try await harness.kscaler(["config", "check"], environment: environment)
            #expect(human.status == 0, "\(human.combined)")
            #expect(human.stdout.contains("log format: json (env KSCALER_LOG_FORMAT)"), "\(human.stdout)")
            #expect(human.stdout.contains("log level: info (default)"), "\(human.stdout)")
            let flagged = try await harness.kscaler(["config", "check", "--log-level", "warning", "--output", "json"], environment: environment)
            #expect(flagged.status == 0, "\(flagged.combined)")
            let output = try JSONDecoder().decode(ConfigCheckJSON.self, from: Data(flagged.stdout.utf8))
            #expect(output.valid)
            #expect(output.log == ["format": "json", "format_source": "env KSCALER_LOG_FORMAT", "level": "warning", "level_source": "flag"])
            #expect(output.settings.contains { $0.path == "table" && $0.value == harness.tableName && $0.source.hasPrefix("file ") })
        }
    }

    /// `config check --output json` on a broken configuration: every problem with its path and
    /// fix, on stdout for a script, and exit 2.
    @Test func configCheckJSONListsEveryProblem() async throws {
        let result = try await KScalerProcess.run(["config", "check", "--output", "json"],
                                                  environment: ["KSCALER_CLUSTER_ID": "demo", "KSCALER_NODES_MAX": "many"])
        #expect(result.status == 2, "\(result.combined)")
        let output = try JSONDecoder().decode(ConfigCheckJSON.self, from: Data(result.stdout.utf8))
        #expect(!output.valid && output.settings.isEmpty)
        let paths = Set(output.problems.map(\.path))
        #expect(paths.isSuperset(of: ["table", "prometheus.url", "nodes.max"]), "\(paths)")
        let max = try #require(output.problems.first { $0.path == "nodes.max" })
        #expect(max.variable == "KSCALER_NODES_MAX" && !max.fix.isEmpty)
    }

    /// The acquisition's answer is lost on the way back (moto applied it): the retry meets the
    /// run's own lease and carries on, instead of skipping itself for the lease's lifetime.
    @Test func aRunWhoseLeaseAnswerWasLostIsNotLockedOut() async throws {
        try await EndToEndHarness.with { harness in
            let proxy = try FaultyProxy(upstream: harness.fixture.moto.endpoint) { operation, earlier in
                operation == "DynamoDB_20120810.UpdateItem" && earlier == 0 ? .dropAnswer : .none
            }
            defer { proxy.stop() }
            try await harness.waitForMetrics()
            let lossy = harness.environment.merging(["AWS_ENDPOINT_URL_DYNAMODB": proxy.baseURL]) { _, new in new }
            let (result, report) = try await harness.report("run", environment: lossy)
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.outcome != .skipped)
            #expect(report?.lease?.token == 1)
            #expect(report?.leaseReleased == true)
            #expect(proxy.log.filter { $0.operation == "DynamoDB_20120810.UpdateItem" }.count >= 2)
            #expect(try await harness.table.holder().owner == nil)
        }
    }
}

/// The shape of `config check --output json`, as a script reads it.
struct ConfigCheckJSON: Decodable {
    struct Setting: Decodable { var path: String; var value: String; var source: String }
    struct Problem: Decodable { var path: String; var message: String; var fix: String; var variable: String? }
    var valid: Bool
    var log: [String: String]
    var settings: [Setting]
    var problems: [Problem]
}
