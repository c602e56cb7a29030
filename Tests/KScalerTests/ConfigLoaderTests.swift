import KScalerCore
import Testing
import YAML
@testable import KScaler

/// The loader: YAML file, `KSCALER_*` overrides, the Lambda autoscalers' aliases, provenance.
@Suite struct ConfigLoaderTests {
    static let yaml = """
    cluster_id: demo
    table: kscaler
    prometheus: {url: "http://prometheus:9090"}
    nodes: {min: 1, max: 10}
    scale_up: {cpu_threshold: 75}
    workers:
      image_id: ami-0123456789abcdef0
      instance_types: [t3.large]
      subnets: [subnet-a]
      sizes: {t3.large: {cpu: 2, memory: 8Gi}}
    """

    func load(_ yaml: String? = Self.yaml, path: String? = "/etc/kscaler/test.yaml", environment: [String: String] = [:]) -> Result<ConfigLoader.Loaded, ConfigErrors> {
        ConfigLoader.load(explicitPath: path, environment: environment, fileExists: { _ in false },
                          readFile: { _ in yaml.map { Data($0.utf8) } })
    }

    @Test func precedenceIsKscalerVariableThenAliasThenFileThenDefault() throws {
        let loaded = try load(environment: [
            "MIN_NODES": "2", "MAX_NODES": "8", "KSCALER_NODES_MAX": "12",
            "SCALE_UP_CPU_THRESHOLD": "85", "PROMETHEUS_URL": "http://other:9090", "DYNAMODB_TABLE": "ks-table",
        ]).get()
        #expect(loaded.config.nodes.min == 2)
        #expect(loaded.config.nodes.max == 12)
        #expect(loaded.config.scaleUp.cpuThreshold == 0.85)
        #expect(loaded.config.prometheus.url == "http://other:9090")
        #expect(loaded.config.table == "ks-table")
        #expect(loaded.config.scaleDown.cpuThreshold == 0.30)
        #expect(loaded.source(of: "nodes.max") == .environment("KSCALER_NODES_MAX"))
        #expect(loaded.source(of: "nodes.min") == .alias("MIN_NODES"))
        #expect(loaded.source(of: "cluster_id") == .file("/etc/kscaler/test.yaml"))
        #expect(loaded.source(of: "workers.sizes.t3.large.cpu") == .file("/etc/kscaler/test.yaml"))
        #expect(loaded.source(of: "scale_down.cooldown") == .defaultValue)
    }

    @Test func theEnvironmentAloneCanConfigureKscaler() throws {
        let loaded = try load(nil, path: nil, environment: [
            "KSCALER_CLUSTER_ID": "env-only", "DYNAMODB_TABLE": "kscaler", "PROMETHEUS_URL": "http://p:9090",
            "KSCALER_WORKERS_IMAGE_ID": "ami-1", "KSCALER_WORKERS_INSTANCE_TYPES": "t3.large,t3.xlarge",
            "KSCALER_WORKERS_SUBNETS": "subnet-a", "KSCALER_WORKERS_SIZES": "t3.large=2/8Gi,t3.xlarge=4/16Gi",
        ]).get()
        #expect(loaded.file == nil)
        #expect(loaded.config.clusterID == "env-only")
        #expect(loaded.config.workers.instanceTypes == ["t3.large", "t3.xlarge"])
        #expect(loaded.config.workers.sizes["t3.xlarge"]?.cpuCores == 4)
    }

    @Test func everyProblemIsReportedAtOnceIncludingUnknownVariables() throws {
        let errors = try #require(load(environment: ["KSCALER_NODES_MAXX": "5", "MIN_NODES": "11"]).failure)
        let paths = errors.problems.map(\.path)
        #expect(paths.contains("KSCALER_NODES_MAXX"))
        #expect(errors.problems.first { $0.path == "KSCALER_NODES_MAXX" }?.fix.contains("KSCALER_NODES_MAX") == true)
        #expect(errors.problems.contains { $0.path.hasPrefix("nodes") })  // min 11 > max 10
    }

    /// The log variables belong to the command line, not the configuration: they are neither
    /// unknown settings nor, alone, a configuration.
    @Test func theLogVariablesAreNeitherSettingsNorAConfiguration() throws {
        let logOnly = ["KSCALER_LOG_FORMAT": "json", "KSCALER_LOG_LEVEL": "debug"]
        #expect(!ConfigLoader.isConfigured(explicitPath: nil, environment: logOnly, fileExists: { _ in false }))
        #expect(ConfigLoader.isConfigured(explicitPath: nil, environment: logOnly.merging(["KSCALER_TABLE": "x"]) { $1 }, fileExists: { _ in false }))
        let errors = try #require(load(environment: logOnly.merging(["KSCALER_NODES_MAXX": "5"]) { $1 }).failure)
        #expect(errors.problems.map(\.path).contains("KSCALER_NODES_MAXX"))
        #expect(!errors.problems.contains { $0.path.hasPrefix("KSCALER_LOG") }, "\(errors.problems)")
    }

    @Test func badYAMLNamesTheFileAndLine() throws {
        let errors = try #require(load("cluster_id: demo\n  table: [unclosed\n").failure)
        #expect(errors.problems.first?.path == "/etc/kscaler/test.yaml")
        #expect(errors.problems.first?.message.contains("not valid YAML") == true)
        #expect(errors.problems.first?.message.contains("line") == true)
    }

    @Test func anExplicitFileThatCannotBeReadIsAProblem() throws {
        let errors = try #require(load(nil).failure)
        #expect(errors.problems.first?.message == "cannot read /etc/kscaler/test.yaml")
    }

    @Test func yamlScalarsKeepTheirTypesAndQuotedOnesStayStrings() {
        var budget = 100
        let tree = ConfigLoader.convert(try! YAMLParser.parse("a: 3\nb: \"3\"\nc: true\nd: ~\ne: [1, x]\n")!, budget: &budget)
        #expect(tree == .map(["a": .number(3), "b": .string("3"), "c": .bool(true), "d": .null, "e": .list([.number(1), .string("x")])]))
    }

    // MARK: Hostile files: every one answered fast, with one clear problem

    func problems(_ yaml: String, environment: [String: String] = [:]) -> [ConfigProblem] {
        guard case .failure(let errors) = load(yaml, environment: environment) else { return [] }
        return errors.problems
    }

    @Test func aFileLargerThanAConfigurationIsRefusedBeforeParsing() {
        let big = Self.yaml + "\n" + (0..<40_000).map { "unknown_\($0): \($0)" }.joined(separator: "\n")
        #expect(big.utf8.count > ConfigLoader.maxFileBytes)
        #expect(problems(big).map(\.message) == ["the file is \(big.utf8.count >> 10) KiB, more than the 256 KiB a configuration may be"])
    }

    /// Nine levels of nine aliases: 387 million values once expanded (the landed build used
    /// 24 GB on it before it was killed).
    @Test func aliasesThatExpandBeyondAnyConfigurationAreRefused() {
        var bomb = Self.yaml + "\na0: &a0 [x, x, x, x, x, x, x, x, x]"
        for level in 1...8 { bomb += "\na\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ") + "]" }
        #expect(problems(bomb).map(\.message) == ["the file expands to more than 10000 values (YAML aliases repeat what their anchor holds)"])
        // An alias or two, as people write them, still works.
        let modest = Self.yaml.replacingOccurrences(of: "subnets: [subnet-a]", with: "subnets: &nets [subnet-a]")
            + "\nvictims: {protected_instances: []}"
        #expect(problems(modest).isEmpty)
    }

    @Test func deepNestingIsRefusedBeforeTheComposerRecursesIntoIt() {
        let deep = Self.yaml + "\nsignals: {x: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(problems(deep).map(\.message) == ["brackets are nested 100001 deep, more than 64"])
    }

    @Test func deepBlockNestingIsRefusedByTheParserWithoutRecursing() {
        // No bracket for the size check to count: the parser's own depth bound answers.
        let dashes = Self.yaml + "\nsignals:\n  x:\n    " + String(repeating: "- ", count: 5_000) + "x\n"
        let found = problems(dashes)
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("not valid YAML: line ") == true)
        #expect(found.first?.message.hasSuffix("collections are nested more than 1000 deep") == true, "\(found)")
    }

    @Test func aRepeatedKeyIsRefusedWithItsLine() {
        let repeated = "cluster_id: demo\nnodes: {min: 1, max: 3}\ncluster_id: other\n"
        #expect(problems(repeated).map(\.message)
                == ["not valid YAML: line 1, column 1: expected all keys to be unique but found the following duplicated key(s): 'cluster_id'"])
    }

    @Test func moreThanOneDocumentIsRefused() {
        #expect(problems(Self.yaml + "\n---\ncluster_id: other\n").map(\.message).first?.hasSuffix(": but found another document") == true)
    }

    @Test func thousandsOfProblemsAreCountedButOnlyTheFirstListed() throws {
        let many = Self.yaml + "\n" + (0..<3_000).map { "unknown_\($0): \($0)" }.joined(separator: "\n")
        guard case .failure(let errors) = load(many) else { Issue.record("accepted"); return }
        #expect(errors.problems.count == 3_000)
        let lines = errors.description.split(separator: "\n")
        #expect(lines.count == 1 + ConfigErrors.listed + 1)
        #expect(lines.first == "configuration has 3000 problems:")
        #expect(lines.last == "  … and 2975 more; fix these first (is --config the right file?)")
    }

    @Test func aBadValueFromTheEnvironmentNamesTheVariable() {
        let found = problems(Self.yaml, environment: ["KSCALER_NODES_MIN": "many", "MAX_NODES": "-1", "KSCALER_LEASE_TTL": "soon"])
        #expect(Set(found.compactMap(\.variable)) == ["KSCALER_NODES_MIN", "MAX_NODES", "KSCALER_LEASE_TTL"])
        #expect(found.allSatisfy { $0.description.contains("(set by environment variable \($0.variable ?? "?"))") })
        #expect(problems(Self.yaml.replacingOccurrences(of: "min: 1", with: "min: many")).allSatisfy { $0.variable == nil })
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
