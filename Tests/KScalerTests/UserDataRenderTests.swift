import Foundation
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// The Swift renderer against the shell-level design in userdata/: the committed examples
/// (the Python reference's output for cluster `demo`), the reference's rules and defaults, and
/// the copies of userdata/ compiled into the binary.
@Suite struct UserDataRenderTests {
    /// What the Python tests render each example from (infra/tests/userdata_render.py, EXAMPLES),
    /// here taken from the demo configuration itself: only the server's kscaler download is not
    /// in a configuration.
    static let examples: [(file: String, kind: UserDataKind, installKscaler: Bool)] = [
        ("k3s-worker.yaml", .k3sWorker, false),
        ("kubeadm-worker.yaml", .kubeadmWorker, false),
        ("k3s-server.yaml", .k3sServer, true),
        ("kubeadm-control-plane.yaml", .kubeadmControlPlane, false),
        ("k3s-proxmox-worker.yaml", .k3sProxmoxWorker, false),
    ]

    static func exampleInputs(_ kind: UserDataKind, installKscaler: Bool) throws -> UserDataInputs {
        let configText = try UserDataRepository.exampleConfig()
        var inputs = UserDataInputs(config: try UserDataRepository.config(configText))
        // The demo configuration is EC2's: the Proxmox example names its Proxmox cluster by hand.
        if kind == .k3sProxmoxWorker { try inputs.set("proxmox_cluster_name", to: "lab") }
        if installKscaler {
            inputs.sections = ["install_kscaler"]
            inputs.blocks = ["kscaler_config": configText]
            try inputs.set("kscaler_binary_url", to: "https://downloads.example.com/kscaler/0.1.0/kscaler-linux-x86_64")
            try inputs.set("kscaler_binary_sha256", to: String(repeating: "0", count: 64))
        }
        return inputs
    }

    @Test(arguments: examples)
    func rendersTheCommittedExampleByteForByte(example: (file: String, kind: UserDataKind, installKscaler: Bool)) throws {
        let expected = try String(contentsOf: UserDataRepository.root.appendingPathComponent("userdata/examples/\(example.file)"), encoding: .utf8)
        let rendered = try UserDataRenderer.render(example.kind, Self.exampleInputs(example.kind, installKscaler: example.installKscaler))
        #expect(rendered == expected)
        #expect(rendered.utf8.count == expected.utf8.count)
    }

    @Test func theDemoConfigurationGivesThePythonTestsValues() async throws {
        let reference = try await UserDataRepository.pythonReference()
        for example in Self.examples {
            let inputs = try Self.exampleInputs(example.kind, installKscaler: example.installKscaler)
            let pythonExample = try #require(reference.examples[example.file])
            #expect(pythonExample.template == example.kind.templatePath.dropFirst("userdata/".count))
            let expected = reference.defaults.merging(pythonExample.overrides) { $1 }
            let used = try UserDataTemplate(path: example.kind.templatePath, text: #require(UserDataTemplates.files[example.kind.templatePath]),
                                            files: UserDataTemplates.files)
                .render(values: [:], sections: inputs.sections, blocks: inputs.blocks).valuesUsed
            #expect(used.count > 5)
            for name in used { #expect(inputs.values[name] == expected[name], "\(example.file): \(name)") }
            #expect(inputs.sections == Set(pythonExample.sections))
        }
        #expect(try UserDataRepository.exampleConfig() == reference.exampleConfig)
    }

    @Test func defaultsAndRulesAreTheReferenceRenderersCharacterForCharacter() async throws {
        let reference = try await UserDataRepository.pythonReference()
        #expect(UserDataInputs.defaults(clusterID: "demo") == reference.defaults)
        #expect(Set(UserDataValueRule.all.keys) == Set(reference.rules.keys))
        for (name, rule) in UserDataValueRule.all { #expect(rule.pattern == reference.rules[name], "\(name)") }
    }

    /// The hand-written matchers accept exactly what Python's `re` accepts with the reference's
    /// patterns: values at each rule's edges, the ways a value could break out of its quotes, and
    /// thousands of strings made of the rules' own pieces.
    @Test func rulesAcceptAndRefuseWhatPythonsReDoes() async throws {
        let corpus = [
            "", "demo", "Demo", "-demo", "demo-", "demo\n", "a", String(repeating: "a", count: 40), String(repeating: "a", count: 41),
            String(repeating: "a", count: 63), String(repeating: "a", count: 64), "a.b_c-d", "é", "e\u{301}", "a b", "a'b", "a\"b", "a{b", "{{x}}",
            "workload=batch", "workload=", "=batch", "example.com/role=gpu,workload=batch", "a=b,", "a=b'; rm -rf /; '", "Example.com/x=y",
            String(repeating: "d", count: 253) + "/n=v", String(repeating: "d", count: 254) + "/n=v",
            "dedicated=batch:NoSchedule", "spot:PreferNoSchedule", "a=b:NoExecute,c:NoSchedule", "a=b:Evict", "a=b",
            "/kscaler/demo/join-token", "kscaler/demo", "/", "/" + String(repeating: "p", count: 1010), "/" + String(repeating: "p", count: 1011),
            "0", "1", "45", "9999", "10000", "045", "-1", "1.5", "１２",
            "https://get.k3s.io/", "https://a.b/c?d=e&f=g#h[1]@x!$()*+,;=%20~", "http://get.k3s.io/", "https://a b", "https://a'b", "https://{x}",
            "https://", "https://api.example.com:6443", "https://api.example.com:123456", "https://10.0.0.1",
            String(repeating: "a", count: 64), String(repeating: "A", count: 64), String(repeating: "0", count: 63),
            "v1.33.1+k3s1", "v", "1.33.1", "v1beta4", "v1beta3", "v1beta2", "true", "false", "True",
            "eu-west-1", "us-gov-west-1", "eu-west-10", "EU-west-1", "euw-1",
        ]
        let values = corpus + Self.randomValues(count: 3_000)
        let reference = try await UserDataRepository.pythonMatches(Array(UserDataValueRule.all.keys), values)
        for (name, rule) in UserDataValueRule.all {
            let expected = try #require(reference[name])
            for (value, pythonMatches) in zip(values, expected) where rule.matches(value) != pythonMatches {
                Issue.record("\(name) on \(value.debugDescription): Python's re says \(pythonMatches)")
            }
            #expect(expected.count == values.count)
            #expect(expected.contains(true) && expected.contains(false), "\(name): the values test both outcomes")
        }
    }

    /// Strings built from the pieces the rules are made of, so that many come close to a valid
    /// value (a fixed seed: the same values every run).
    static func randomValues(count: Int) -> [String] {
        let pieces = ["a", "z", "A", "Z", "0", "9", "-", "_", ".", "/", "=", ",", ":", "'", "\"", "{", "}", " ", "\n", "é", "+", "%", "#",
                      "demo", "v1", "beta", "https://", "http://", "example.com/", "kscaler.io/", "NoSchedule", "PreferNoSchedule",
                      "NoExecute", "eu", "west", "-1", "true", "false", "/kscaler/", "x=y", "k:NoSchedule", "6443", "abcdef0123456789"]
        var generator = SplitMix64(seed: 0x6b73_6361_6c65_72)
        return (0..<count).map { _ in
            (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
        }
    }

    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// The binary carries exactly userdata/'s templates and the files they embed, as they are in
    /// the repository now.
    @Test func compiledInTemplatesAreUpToDate() throws {
        let root = UserDataRepository.root
        let templates = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("userdata").path)
            .filter { $0.hasSuffix(".cloud-config.tmpl") }.map { "userdata/" + $0 }
        #expect(Set(templates) == Set(UserDataKind.allCases.map(\.templatePath)))
        var needed = Set(templates)
        for template in templates {
            let text = try String(contentsOf: root.appendingPathComponent(template), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("{{file:"), trimmed.hasSuffix("}}") { needed.insert(String(trimmed.dropFirst(7).dropLast(2))) }
            }
        }
        #expect(needed.count > templates.count)
        #expect(Set(UserDataTemplates.files.keys) == needed, "run scripts/embed-userdata.py")
        for path in needed.sorted() {
            let current = try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
            #expect(UserDataTemplates.files[path] == current, "\(path) changed since scripts/embed-userdata.py last ran: run it")
        }
    }

    @Test func runLaunchesK3sWorkersUnlessALaunchTemplateCarriesItsOwnUserData() throws {
        let withTemplate = try UserDataRepository.config(try UserDataRepository.exampleConfig())
        #expect(withTemplate.workers.launchTemplate != nil)
        #expect(try UserDataRenderer.workerUserData(for: withTemplate) == nil)

        var withoutTemplate = withTemplate
        withoutTemplate.workers.launchTemplate = nil
        let userData = try #require(try UserDataRenderer.workerUserData(for: withoutTemplate))
        #expect(userData == (try UserDataRenderer.render(.k3sWorker, UserDataInputs(config: withoutTemplate))))
        #expect(userData.hasPrefix("#cloud-config\n# kscaler k3s worker, cluster demo, pool batch"))
        #expect(userData.contains("    KSCALER_NODE_LABELS='workload=batch'\n"))
    }

    @Test func labelsAreSortedAndTaintsKeepTheirOrder() throws {
        var config = try UserDataRepository.config(try UserDataRepository.exampleConfig())
        config.workers.labels = ["zone": "a", "example.com/role": "gpu", "tier": ""]
        config.workers.taints = [Taint(key: "spot", effect: .preferNoSchedule), Taint(key: "gpu", value: "true", effect: .noSchedule)]
        let rendered = try UserDataRenderer.render(.k3sWorker, UserDataInputs(config: config))
        #expect(rendered.contains("KSCALER_NODE_LABELS='example.com/role=gpu,tier=,zone=a'\n"))
        #expect(rendered.contains("KSCALER_NODE_TAINTS='spot:PreferNoSchedule,gpu=true:NoSchedule'\n"))
    }
}

/// The repository next to these tests, and the Python reference renderer in it.
enum UserDataRepository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `EXAMPLE_CONFIG` of infra/tests/userdata_render.py: the demo cluster's configuration.
    static func exampleConfig() throws -> String {
        let source = try String(contentsOf: root.appendingPathComponent("infra/tests/userdata_render.py"), encoding: .utf8)
        let start = try #require(source.range(of: "EXAMPLE_CONFIG = \"\"\"\\\n"))
        let end = try #require(source.range(of: "\"\"\"", range: start.upperBound..<source.endIndex))
        return String(source[start.upperBound..<end.lowerBound])
    }

    static func config(_ yaml: String) throws -> KScalerConfig {
        let loaded = ConfigLoader.load(explicitPath: "demo.yaml", environment: [:], fileExists: { _ in true }, readFile: { _ in Data(yaml.utf8) })
        return try loaded.get().config
    }

    struct PythonReference: Decodable {
        var defaults: [String: String]
        var rules: [String: String]
        var examples: [String: Example]
        var exampleConfig: String

        /// (template, value overrides, sections), as the tuple in EXAMPLES.
        struct Example: Decodable {
            var template: String, overrides: [String: String], sections: [String]
            init(from decoder: any Decoder) throws {
                var tuple = try decoder.unkeyedContainer()
                template = try tuple.decode(String.self)
                overrides = try tuple.decode([String: String].self)
                sections = try tuple.decode([String].self)
            }
        }
    }

    static func pythonReference() async throws -> PythonReference {
        let json = try await python("""
            import json, userdata_render as u
            print(json.dumps({"defaults": u.defaults("demo"), "rules": u.VALUE_RULES, "examples": u.EXAMPLES, "exampleConfig": u.EXAMPLE_CONFIG}))
            """)
        return try JSONDecoder().decode(PythonReference.self, from: Data(json.utf8))
    }

    /// `re.fullmatch(VALUE_RULES[name], value)` for every name, and every value in order (not
    /// keyed by value: Swift strings compare canonically, `é` == `e` + U+0301, Python's do not).
    static func pythonMatches(_ names: [String], _ values: [String]) async throws -> [String: [Bool]] {
        let input = String(decoding: try JSONEncoder().encode(["names": names, "values": values]), as: UTF8.self)
        let json = try await python("""
            import json, re, sys, userdata_render as u
            given = json.loads(sys.stdin.read())
            print(json.dumps({n: [re.fullmatch(u.VALUE_RULES[n], v) is not None for v in given["values"]] for n in given["names"]}))
            """, stdin: input)
        return try JSONDecoder().decode([String: [Bool]].self, from: Data(json.utf8))
    }

    /// Runs a Python program with infra/tests importable; fails the test if Python is missing.
    static func python(_ program: String, stdin: String = "") async throws -> String {
        let result = try await ExternalTool.run("python3", ["-c", program], stdin: stdin,
                                          environment: ["PYTHONPATH": root.appendingPathComponent("infra/tests").path])
        guard result.status == 0 else { throw TestSupportError("python3 failed (\(result.status)): \(result.stderr)") }
        return result.stdout
    }
}

/// Runs a program found on PATH (python3, cloud-init) to completion, bounded in time (generously:
/// a loaded CI machine once took over 60 s to start Python and import a module).
enum ExternalTool {
    struct Result { var status: Int32, stdout: String, stderr: String }

    static func path(of name: String) throws -> String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/bin"]
        guard let found = directories.map({ "\($0)/\(name)" }).first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw TestSupportError("\(name) is not installed (scripts/install-deps.sh installs it)")
        }
        return found
    }

    static func run(_ name: String, _ arguments: [String], stdin: String = "", environment: [String: String] = [:],
                    timeout: Duration = .seconds(300)) async throws -> Result {
        let input = Pipe(), output = Pipe(), errors = Pipe()
        let process = try ChildProcess.launch(try path(of: name), arguments,
                                              environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                                              stdout: output, stderr: errors, stdin: input)
        // Written from a thread of its own: a large input would block on a full pipe.
        let stdinBytes = Data(stdin.utf8)
        let writer = Task { await onOwnThread { input.fileHandleForWriting.write(stdinBytes); try? input.fileHandleForWriting.close() } }
        let collected = await ChildProcess.collect(process, stdout: output, stderr: errors, timeout: timeout)
        await writer.value
        return Result(status: collected.status, stdout: String(decoding: collected.stdout, as: UTF8.self),
                      stderr: String(decoding: collected.stderr, as: UTF8.self))
    }
}
