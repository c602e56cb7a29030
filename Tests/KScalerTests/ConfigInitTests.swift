import AWS
import Foundation
import KScaler
@testable import KScalerCore
import Testing
import TestSupport

/// `kscaler config init` and the message for a missing configuration: the starter file against
/// the parser (in process and through the release binary), `--discover` against moto with
/// signature checking on.
@Suite struct ConfigInitTests {
    /// The placeholders of an untouched starter file, and a value for each that `config check` accepts.
    static let fills: [String: String] = [
        "cluster_id": "demo",
        "table": "kscaler",
        "prometheus.url": "http://127.0.0.1:9090",
        "workers.launch_template.name": "workers",
        "workers.instance_types": "[t3.large]",
    ]

    /// Every key of the schema, `*` for a user-chosen name (`pools.<name>`) and `-` for a list
    /// item (`schedules[]`). Derived from `ConfigSchema`, so a new setting the starter file
    /// does not write fails `everyKeyOfTheSchemaIsInTheStarterFile`.
    static func schemaKeys(_ node: SchemaNode, prefix: [String] = []) -> [[String]] {
        switch node {
        case .leaf, .dictionary: [prefix]
        case .section(let children): children.flatMap { [prefix + [$0.key]] + schemaKeys($0.node, prefix: prefix + [$0.key]) }
        case .namedSections(let section): schemaKeys(section, prefix: prefix + ["*"])
        case .list(let item): schemaKeys(item, prefix: prefix + ["-"])
        }
    }

    /// The key paths a YAML text writes, commented out (`# key:`) or not, by indentation; a
    /// `- ` opens a list item (`-`). Comment lines that happen to read `word:` add paths no
    /// schema key can match, which only makes the found set larger.
    static func writtenKeys(_ text: String) -> Set<[String]> {
        var found = Set<[String]>()
        var stack: [String] = []
        for raw in text.split(separator: "\n") {
            var line = Substring(raw)
            var indent = line.prefix(while: { $0 == " " }).count
            line = line.dropFirst(indent)
            if line.hasPrefix("# ") { line = line.dropFirst(2) }
            let inner = line.prefix(while: { $0 == " " }).count
            indent += inner
            line = line.dropFirst(inner)
            var depth = indent / 2
            if line.hasPrefix("- ") {
                stack = Array(stack.prefix(depth)) + ["-"]
                depth += 1
                line = line.dropFirst(2)
            }
            guard let colon = line.firstIndex(of: ":"), colon > line.startIndex,
                  line[..<colon].allSatisfy({ $0.isLowercase || $0 == "_" }) else { continue }
            stack = Array(stack.prefix(depth))
            guard stack.count == depth else { continue }
            stack.append(String(line[..<colon]))
            found.insert(stack)
        }
        return found
    }

    static func matches(_ expected: [String], _ written: [String]) -> Bool {
        expected.count == written.count && zip(expected, written).allSatisfy { $0 == "*" || $0 == $1 }
    }

    /// The starter file's text with each placeholder replaced by a real value.
    static func filled(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard let start = line.range(of: "\"<required:") else { return String(line) }
            let key = line[..<start.lowerBound].trimmingCharacters(in: .whitespaces).dropLast()  // "name:" → "name"
            let value = fills.first { $0.key.split(separator: ".").last.map(String.init) == String(key) }?.value ?? "?"
            return line[..<start.lowerBound] + value
        }.joined(separator: "\n")
    }

    static func load(_ text: String, environment: [String: String] = [:]) -> Result<ConfigLoader.Loaded, ConfigErrors> {
        ConfigLoader.load(explicitPath: "starter.yaml", environment: environment, fileExists: { _ in true },
                          readFile: { $0 == "starter.yaml" ? Data(text.utf8) : nil })
    }

    // MARK: In process

    @Test func everyKeyOfTheSchemaIsInTheStarterFile() {
        let written = Self.writtenKeys(StarterConfig().render(machines: EC2Fleet.machines))
        let missing = Set(Self.schemaKeys(ConfigSchema.root)).filter { expected in !written.contains { Self.matches(expected, $0) } }
        #expect(missing.isEmpty, "keys the starter file does not write: \(missing.map { $0.joined(separator: ".") }.sorted())")
        // The scanner does find keys: a sample of what it must see, commented out or not.
        #expect(written.contains(["cluster_id"]) && written.contains(["scale_up", "cpu_threshold"]) && written.contains(["region"]))
        #expect(written.contains(["schedules", "-", "cron"]) && written.contains(["pools", "general", "launch_template", "version"]))
    }

    /// Every setting with a default is written as its default: parsed back, the filled file
    /// is the configuration the same placeholders' values alone give.
    @Test func theStarterFileMeansTheDefaults() throws {
        let text = StarterConfig().render(machines: EC2Fleet.machines)
        let untouched = Self.load(text)
        guard case .failure(let errors) = untouched else { Issue.record("an untouched starter file passed"); return }
        #expect(Set(errors.problems.map(\.path)) == Set(Self.fills.keys), "\(errors)")
        #expect(errors.problems.count == Self.fills.count, "one problem per placeholder: \(errors)")
        #expect(errors.problems.allSatisfy { $0.message.contains("placeholder") && !$0.fix.isEmpty })

        let filled = try Self.load(Self.filled(text)).get()
        let minimal = """
        cluster_id: demo
        table: kscaler
        prometheus: {url: "http://127.0.0.1:9090"}
        workers: {launch_template: {name: workers}, instance_types: [t3.large]}
        """
        let defaults = try Self.load(minimal).get()
        let listing = { (config: KScalerConfig) in config.effectiveSettings(machines: EC2Fleet.machines).map { "\($0.path)=\($0.value)" } }
        #expect(listing(filled.config) == listing(defaults.config))
    }

    @Test func valuesGivenReplaceDefaultsAndPlaceholders() throws {
        let starter = StarterConfig(values: ["cluster_id": "prod-eu", "region": "eu-west-3",
                                             "workers.subnets": "[subnet-0abc, subnet-0def]"], notes: ["a note"])
        let text = starter.render(machines: EC2Fleet.machines)
        #expect(text.contains("\n# a note\n"))
        guard case .failure(let errors) = Self.load(text) else { Issue.record("placeholders left, yet it passed"); return }
        #expect(Set(errors.problems.map(\.path)) == ["table", "prometheus.url", "workers.launch_template.name", "workers.instance_types"], "\(errors)")
        let config = try Self.load(Self.filled(text)).get().config
        #expect(config.clusterID == "prod-eu" && config.region == "eu-west-3" && config.workers.subnets == ["subnet-0abc", "subnet-0def"])
    }

    /// Values are written plain when YAML reads them back as the same text, quoted otherwise.
    @Test(arguments: ["plain", "$Latest", "a \"quoted\" \\ text", "yes", "off", "-1x", "http://h:9/p", "sub-0: x", "#hash", "ü ?"])
    func yamlValuesReadBackAsWritten(text: String) throws {
        let yaml = """
        cluster_id: demo
        table: kscaler
        prometheus: {url: "http://127.0.0.1:9090"}
        workers: {launch_template: {name: \(StarterConfig.yaml(text))}, sizes: {t3.large: {cpu: 2, memory: 8Gi}}}
        """
        let config = try Self.load(yaml).get().config
        #expect(config.workers.launchTemplate?.identity == .name(text))
    }

    // MARK: The release binary

    static let bareEnvironment = ["HOME": "/nonexistent-kscaler-test-home", "PATH": "/usr/bin:/bin"]

    @Test func initOutputPassesConfigCheckOnceTheRequiredValuesAreFilled() async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-init")
        defer { try? FileManager.default.removeItem(at: directory) }
        let printed = try await KScalerProcess.run(["config", "init"], environment: Self.bareEnvironment)
        #expect(printed.status == 0, "\(printed.combined)")
        let path = directory.appendingPathComponent("config.yaml").path
        try printed.stdout.write(toFile: path, atomically: true, encoding: .utf8)

        let untouched = try await KScalerProcess.run(["config", "check", "--config", path, "--output", "json"], environment: Self.bareEnvironment)
        #expect(untouched.status == 2, "\(untouched.combined)")
        let problems = try JSONDecoder().decode(ConfigCheckJSON.self, from: Data(untouched.stdout.utf8)).problems
        #expect(Set(problems.map(\.path)) == Set(Self.fills.keys) && problems.count == Self.fills.count, "\(problems)")

        try Self.filled(printed.stdout).write(toFile: path, atomically: true, encoding: .utf8)
        let checked = try await KScalerProcess.run(["config", "check", "--config", path], environment: Self.bareEnvironment)
        #expect(checked.status == 0, "\(checked.combined)")
        #expect(checked.stdout.contains("configuration is valid (file \(path))"), "\(checked.stdout)")
    }

    @Test func outputRefusesToOverwriteWithoutForce() async throws {
        let directory = try ChildProcess.temporaryDirectory("kscaler-init")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("config.yaml").path

        let written = try await KScalerProcess.run(["config", "init", "--output", path, "--cluster-id", "demo"], environment: Self.bareEnvironment)
        #expect(written.status == 0 && written.stdout.isEmpty, "\(written.combined)")
        #expect(written.stderr.contains("wrote \(path)"), "\(written.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("\ncluster_id: demo\n"))

        try "mine\n".write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try await KScalerProcess.run(["config", "init", "--output", path], environment: Self.bareEnvironment)
        #expect(refused.status == 6, "\(refused.combined)")
        #expect(refused.stderr.contains("\(path) exists") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "mine\n", "the file is left alone")

        let forced = try await KScalerProcess.run(["config", "init", "--output", path, "--force"], environment: Self.bareEnvironment)
        #expect(forced.status == 0, "\(forced.combined)")
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("# kscaler configuration"))

        let nowhere = directory.appendingPathComponent("missing/config.yaml").path
        let unwritable = try await KScalerProcess.run(["config", "init", "--output", nowhere], environment: Self.bareEnvironment)
        #expect(unwritable.status == 6, "\(unwritable.combined)")
        #expect(unwritable.stderr.contains("cannot write \(nowhere): its directory does not exist"), "\(unwritable.stderr)")
    }

    @Test func aBadClusterIDOrDiscoverWithoutAnythingToMatchIsAUsageError() async throws {
        let bad = try await KScalerProcess.run(["config", "init", "--cluster-id", "Not_OK"], environment: Self.bareEnvironment)
        #expect(bad.status == 64 && bad.stderr.contains("--cluster-id"), "\(bad.combined)")
        let vague = try await KScalerProcess.run(["config", "init", "--discover"], environment: Self.bareEnvironment)
        #expect(vague.status == 64 && vague.stderr.contains("--discover needs --cluster-id"), "\(vague.combined)")
    }

    /// No file anywhere and no `KSCALER_*` variables: every command says where it looked and
    /// how to start, with the configuration error's exit code (doctor: its failed-check code).
    @Test(arguments: [["run"], ["plan"], ["config", "check"], ["doctor"]])
    func withoutAnyConfigurationTheCommandSaysWhereItLookedAndPointsToInit(command: [String]) async throws {
        try #require(!FileManager.default.fileExists(atPath: ConfigLoader.defaultPath), "this machine has \(ConfigLoader.defaultPath)")
        let result = try await KScalerProcess.run(command, environment: Self.bareEnvironment.merging(["AWS_EC2_METADATA_DISABLED": "true"]) { $1 })
        #expect(result.status == (command == ["doctor"] ? 5 : 2), "\(result.combined)")
        let said = result.combined
        #expect(said.contains("--config (not given), $KSCALER_CONFIG (not set), /etc/kscaler/config.yaml (not present)"), "\(said)")
        #expect(said.contains("kscaler config init"), "\(said)")
        #expect(!said.contains("cluster_id: is required"), "not a list of missing fields when nothing was given: \(said)")
    }

    /// Some `KSCALER_*` variables but not enough: the same pointer, and what the environment lacks.
    @Test func anIncompleteEnvironmentListsWhatItLacksAndPointsToInit() async throws {
        let result = try await KScalerProcess.run(["plan"], environment: Self.bareEnvironment.merging(["KSCALER_TABLE": "kscaler"]) { $1 })
        #expect(result.status == 2, "\(result.combined)")
        #expect(result.stderr.contains("the KSCALER_* environment variables are not a complete configuration"), "\(result.stderr)")
        #expect(result.stderr.contains("cluster_id: is required") && result.stderr.contains("kscaler config init"), "\(result.stderr)")
    }

    /// Containers configure kscaler with variables alone: that still works, no file needed.
    @Test func aCompleteConfigurationFromTheEnvironmentAloneStillWorks() async throws {
        let variables = ["KSCALER_CLUSTER_ID": "demo", "KSCALER_TABLE": "kscaler", "KSCALER_PROMETHEUS_URL": "http://127.0.0.1:9090",
                         "KSCALER_WORKERS_IMAGE_ID": "ami-0123456789abcdef0", "KSCALER_WORKERS_INSTANCE_TYPES": "t3.large",
                         "KSCALER_WORKERS_SUBNETS": "subnet-0abc", "KSCALER_WORKERS_SIZES": "t3.large=2/8Gi"]
        let result = try await KScalerProcess.run(["config", "check"], environment: Self.bareEnvironment.merging(variables) { $1 })
        #expect(result.status == 0, "\(result.combined)")
        #expect(result.stdout.contains("configuration is valid (environment only)"), "\(result.stdout)")
    }

    // MARK: --discover on moto

    @Test func discoverFindsTheVPCsSubnetsAndTheClustersGroupAndTemplate() async throws {
        let fixture = try MotoFixture()
        let cluster = Peers.uniqueName("init")
        let ec2 = fixture.context.client(for: .ec2, displayName: "EC2")
        func call(_ operation: String, _ parameters: [(String, String)]) async throws -> XMLElement {
            try await ec2.query(operation: operation, version: "2016-11-15", parameters: parameters)
        }
        let octet = Int.random(in: 16...250)
        let vpc = try #require(try await call("CreateVpc", [("CidrBlock", "10.\(octet).0.0/16")]).path("vpc", "vpcId")?.text)
        var subnets: [String] = []
        for (index, zone) in ["us-east-1a", "us-east-1b"].enumerated() {
            let created = try await call("CreateSubnet", [("VpcId", vpc), ("CidrBlock", "10.\(octet).\(index).0/24"), ("AvailabilityZone", zone)])
            subnets.append(try #require(created.path("subnet", "subnetId")?.text))
        }
        let group = try #require(try await call("CreateSecurityGroup", [("GroupName", "\(cluster)-workers"), ("GroupDescription", "workers"),
                                                                         ("VpcId", vpc)]).string("groupId"))
        _ = try await call("CreateSecurityGroup", [("GroupName", "unrelated-\(String(cluster.reversed()))"), ("GroupDescription", "other"), ("VpcId", vpc)])
        let template = try await call("CreateLaunchTemplate", [
            ("LaunchTemplateName", "workers-of-\(octet)-\(UInt32.random(in: 0...UInt32.max))"), ("LaunchTemplateData.ImageId", "ami-760aaa0f"),
            ("TagSpecification.1.ResourceType", "launch-template"),
            ("TagSpecification.1.Tag.1.Key", "kscaler:cluster"), ("TagSpecification.1.Tag.1.Value", cluster),
        ])
        let templateName = try #require(template.path("launchTemplate", "launchTemplateName")?.text)

        let environment = fixture.moto.environment()
        let result = try await KScalerProcess.run(["config", "init", "--discover", "--cluster-id", cluster, "--vpc", vpc], environment: environment)
        #expect(result.status == 0, "\(result.combined)")
        let text = result.stdout
        #expect(text.contains("\nregion: us-east-1\n"), "\(text)")
        #expect(text.contains("\n  subnets: [\(subnets.joined(separator: ", "))]\n"), "\(text)")
        #expect(text.contains("\n  security_groups: [\(group)]\n"), "only the group named with the cluster id: \(text)")
        #expect(text.contains("\n    name: \(templateName)\n"), "the template tagged with the cluster: \(text)")
        #expect(result.stderr.contains("not found workers.instance_types"), "\(result.stderr)")
        #expect(text.contains("# --discover did not find:\n#   workers.instance_types"), "said in the file too: \(text)")

        // What is left to fill is what discovery could not know.
        guard case .failure(let errors) = Self.load(text) else { Issue.record("placeholders left, yet it passed"); return }
        #expect(Set(errors.problems.map(\.path)) == ["table", "prometheus.url", "workers.instance_types"], "\(errors)")
        let config = try Self.load(Self.filled(text)).get().config
        #expect(config.clusterID == cluster && config.workers.subnets == subnets && config.workers.securityGroups == [group])
        #expect(config.workers.launchTemplate?.identity == .name(templateName))
    }

    @Test func discoverSaysWhatItDidNotFind() async throws {
        let fixture = try MotoFixture()
        let cluster = Peers.uniqueName("nothing")
        let result = try await KScalerProcess.run(["config", "init", "--discover", "--cluster-id", cluster], environment: fixture.moto.environment())
        #expect(result.status == 0, "\(result.combined)")
        for missing in ["workers.subnets: no subnet tagged kscaler:cluster=\(cluster)", "workers.security_groups: no security group",
                        "workers.launch_template: no launch template", "workers.instance_types"] {
            #expect(result.stderr.contains("not found \(missing)"), "\(missing): \(result.stderr)")
            #expect(result.stdout.contains("#   \(missing)"), "\(missing): \(result.stdout)")
        }
        #expect(result.stdout.contains("\nregion: us-east-1\n") && result.stdout.contains("name: \"<required:"), "\(result.stdout)")
    }
}
