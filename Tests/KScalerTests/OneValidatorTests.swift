import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// `config check` and `run` judge a configuration the same way: every value the configuration
/// accepts, the worker user data (which `run` renders before anything else) accepts too.
@Suite struct OneValidatorTests {
    static func config(_ field: String, _ value: String) -> String {
        var settings = [
            "cluster_id": "demo", "region": "us-east-1", "workers.pool": "default",
            "workers.join.token_parameter": "/kscaler/demo/join-token", "workers.join.server_url_parameter": "/kscaler/demo/server-url",
        ]
        settings[field] = value
        return """
        cluster_id: '\(settings["cluster_id"]!)'
        region: '\(settings["region"]!)'
        table: kscaler
        prometheus: {url: "http://127.0.0.1:9090"}
        workers:
          pool: '\(settings["workers.pool"]!)'
          image_id: ami-0123456789abcdef0
          instance_types: [t3.large]
          subnets: [subnet-0123456789abcdef0]
          sizes: {t3.large: {cpu: 2, memory: 8Gi}}
          join: {token_parameter: '\(settings["workers.join.token_parameter"]!)', server_url_parameter: '\(settings["workers.join.server_url_parameter"]!)'}
        """
    }

    static func accepted(_ field: String, _ value: String) -> (config: Bool, userData: Bool) {
        let loaded = ConfigLoader.load(explicitPath: "/test.yaml", environment: [:], fileExists: { _ in true },
                                       readFile: { _ in Data(config(field, value).utf8) })
        guard case .success(let loaded) = loaded else { return (false, false) }
        return (true, (try? UserDataRenderer.workerUserData(for: loaded.config)) != nil)
    }

    /// Values built from the characters that matter (edges, separators, case), deterministic.
    static func candidates(alphabet: [String], count: Int, seed: UInt64) -> [String] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        return (0..<count).map { _ in (0..<(1 + next(12))).map { _ in alphabet[next(alphabet.count)] }.joined() }
    }

    @Test(arguments: [
        ("cluster_id", ["a", "z", "0", "-", "_", "A", ".", "/"]),
        ("workers.pool", ["a", "9", "-", "_", "B", "."]),
        ("region", ["us", "-west", "-1", "-", "eu", "x", "-gov", "_"]),
        ("workers.join.token_parameter", ["/", "a", "Z", "0", "-", "_", ".", " ", ":"]),
        ("workers.join.server_url_parameter", ["/", "k", "-", "_", ".", "#"]),
    ])
    func whatTheConfigurationAcceptsTheUserDataAccepts(field: String, alphabet: [String]) {
        let values = Self.candidates(alphabet: alphabet, count: 400, seed: UInt64(field.utf8.count))
        var acceptedCount = 0
        for value in values {
            let (config, userData) = Self.accepted(field, value)
            if config { acceptedCount += 1 }
            #expect(!config || userData, "\(field) = \"\(value)\": config check accepts it, run would refuse it")
        }
        #expect(acceptedCount > 0, "the generator produced no valid \(field) at all")
    }

    @Test func theCasesThatUsedToSlipThroughAreRefusedByTheConfiguration() {
        #expect(Self.accepted("cluster_id", "demo-").config == false)
        #expect(Self.accepted("cluster_id", "-demo").config == false)
        #expect(Self.accepted("workers.join.token_parameter", "kscaler-join-token").config == false)
        #expect(Self.accepted("workers.pool", "batch-").config == false)
        #expect(Self.accepted("cluster_id", "prod-eu").config == true)
    }

    /// A rule only the renderer knows (reserved label prefixes) is caught by `config check` too.
    @Test func configCheckRendersTheUserDataAsRunDoes() async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-one-validator")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("config.yaml").path
        try (Self.config("cluster_id", "demo") + "\n  labels: {kubernetes.io/role: worker}\n").write(toFile: path, atomically: true, encoding: .utf8)
        let check = try await KScalerProcess.run(["config", "check", "--config", path], environment: [:])
        #expect(check.status == 2, "\(check.combined)")
        #expect(check.stderr.contains("kubernetes.io/role is reserved"), "\(check.stderr)")
    }
}
