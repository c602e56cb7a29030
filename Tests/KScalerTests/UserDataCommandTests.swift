import Foundation
import Testing
import TestSupport
@testable import KScaler

/// `kscaler userdata render` as an operator runs it: the built binary, a configuration file,
/// nothing from the repository (the templates are compiled in).
@Suite struct UserDataCommandTests {
    /// Writes `yaml` to a scratch file, runs `kscaler userdata render --config <file>` + `arguments`.
    static func render(_ arguments: [String], yaml: String) async throws -> KScalerProcess.Result {
        let directory = try ChildProcess.temporaryDirectory("kscaler-userdata-cli")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("config.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        return try await KScalerProcess.run(["userdata", "render", "--config", file.path] + arguments, environment: [:])
    }

    static let demoWithoutLaunchTemplate = """
        cluster_id: demo
        region: eu-west-1
        table: kscaler-demo
        prometheus: {url: "http://127.0.0.1:9090"}
        workers:
          pool: gpu
          image_id: ami-0123456789abcdef0
          instance_types: [g5.xlarge]
          subnets: [subnet-0123456789abcdef0]
          sizes: {g5.xlarge: {cpu: 4, memory: 16Gi}}
          labels: {example.com/accelerator: a10g}
          taints: ["nvidia.com/gpu=true:NoSchedule"]

        """

    @Test func printsTheK3sWorkerUserDataOfTheConfiguration() async throws {
        let result = try await Self.render([], yaml: Self.demoWithoutLaunchTemplate)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("#cloud-config\n"))
        #expect(result.stderr.isEmpty)
        let config = try UserDataRepository.config(Self.demoWithoutLaunchTemplate)
        // What `kscaler run` would pass to RunInstances for this configuration.
        #expect(result.stdout == (try UserDataRenderer.workerUserData(for: config)))
        #expect(result.stdout.contains("    KSCALER_NODE_TAINTS='nvidia.com/gpu=true:NoSchedule'\n"))
    }

    static let twoPools = """
        cluster_id: demo
        table: kscaler-demo
        prometheus: {url: "http://127.0.0.1:9090"}
        nodes: {max: 8}
        pools:
          general:
            image_id: ami-0123456789abcdef0
            instance_types: [t3.large]
            subnets: [subnet-0123456789abcdef0]
            sizes: {t3.large: {cpu: 2, memory: 8Gi}}
            labels: {example.com/workload: general}
            min: 1
          batch:
            capacity_type: spot
            image_id: ami-0123456789abcdef0
            instance_types: [c5.xlarge]
            subnets: [subnet-0123456789abcdef0]
            sizes: {c5.xlarge: {cpu: 4, memory: 8Gi}}
            labels: {example.com/workload: batch}
            taints: ["dedicated=batch:NoSchedule"]

        """

    /// With pools a worker's user data is one pool's: `--pool` says which, and it is what that
    /// pool's launches carry; without it, or with a pool that does not exist, nothing is printed.
    @Test func withPoolsTheWorkerUserDataIsThePoolsNamedByPool() async throws {
        let batch = try await Self.render(["--pool", "batch"], yaml: Self.twoPools)
        #expect(batch.status == 0, "\(batch.stderr)")
        #expect(batch.stdout.contains("    KSCALER_NODE_TAINTS='dedicated=batch:NoSchedule'\n"))
        #expect(batch.stdout.contains("    KSCALER_POOL='batch'\n"))
        let config = try UserDataRepository.config(Self.twoPools)
        let pool = try #require(config.pools?["batch"])
        #expect(batch.stdout == (try UserDataRenderer.workerUserData(for: config.scoped(to: pool))))
        let general = try await Self.render(["--pool", "general"], yaml: Self.twoPools)
        #expect(general.status == 0 && !general.stdout.contains("dedicated=batch") && general.stdout.contains("    KSCALER_POOL='general'\n"))

        let unnamed = try await Self.render([], yaml: Self.twoPools)
        #expect(unnamed.status == 2 && unnamed.stdout.isEmpty && unnamed.stderr.contains("--pool NAME"))
        let unknown = try await Self.render(["--pool", "gpu"], yaml: Self.twoPools)
        #expect(unknown.status == 2 && unknown.stdout.isEmpty && unknown.stderr.contains("no such pool; the configuration has batch, general"))
    }

    @Test func rendersTheCommittedServerExampleFromTheDemoConfigurationFile() async throws {
        let result = try await Self.render([
            "--kind", "k3s-server", "--install-kscaler",
            "--set", "kscaler_binary_url=https://downloads.example.com/kscaler/0.1.0/kscaler-linux-x86_64",
            "--set", "kscaler_binary_sha256=" + String(repeating: "0", count: 64),
        ], yaml: try UserDataRepository.exampleConfig())
        #expect(result.status == 0, "\(result.stderr)")
        let example = try String(contentsOf: UserDataRepository.root.appendingPathComponent("userdata/examples/k3s-server.yaml"), encoding: .utf8)
        #expect(result.stdout == example)
    }

    /// Server user data is written by hand into a launch template or a stack, so it may be
    /// gzipped first: over EC2's limit it is still printed, with a warning that says what to do.
    @Test func serverUserDataOverEC2sLimitIsPrintedWithAWarning() async throws {
        let padding = (0..<40).map { "# note \($0): " + String(repeating: "x", count: 60) }.joined(separator: "\n")
        let result = try await Self.render([
            "--kind", "k3s-server", "--install-kscaler",
            "--set", "kscaler_binary_url=https://downloads.example.com/kscaler", "--set", "kscaler_binary_sha256=" + String(repeating: "0", count: 64),
        ], yaml: try UserDataRepository.exampleConfig() + padding + "\n")
        #expect(result.status == 0, "\(result.stderr)")
        let size = result.stdout.utf8.count
        #expect(size > UserDataRenderer.ec2Limit)
        #expect(result.stdout.contains("    # note 39: \(String(repeating: "x", count: 60))\n- path: /etc/kscaler/kscaler.env\n"))
        #expect(result.stdout.hasSuffix("- [/usr/local/sbin/kscaler-install, 'https://downloads.example.com/kscaler', '\(String(repeating: "0", count: 64))']\n"))
        #expect(result.stderr == "kscaler: warning: this user data is \(size) bytes, over EC2's 16384: compress it (gzip -9; cloud-init reads gzip user data) "
                + "or leave --install-kscaler out and install kscaler afterwards\n")
    }

    @Test func anInvalidValueExitsTwoNamingTheValueAndTheFix() async throws {
        let result = try await Self.render(["--set", "k3s_install_url=http://get.k3s.io/", "--set", "shutdown_grace_seconds=0"],
                                           yaml: Self.demoWithoutLaunchTemplate)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("kscaler: cannot render k3s-worker user data (2 problems):"))
        #expect(result.stderr.contains("  - shutdown_grace_seconds: \"0\" is not whole seconds, 1 to 9999. Fix: --set shutdown_grace_seconds=45"))
        #expect(result.stderr.contains("  - k3s_install_url: \"http://get.k3s.io/\" is not an https:// URL"))
    }

    @Test func aValueOwnedByTheConfigurationCannotBeSet() async throws {
        let result = try await Self.render(["--set", "node_labels=a=b"], yaml: Self.demoWithoutLaunchTemplate)
        #expect(result.status == 2)
        #expect(result.stderr.contains("kscaler: --set node_labels: node_labels comes from the configuration: set workers.labels there"))
    }

    @Test func aSetWithoutEqualsSignIsAUsageError() async throws {
        let result = try await Self.render(["--set", "k3s_version"], yaml: Self.demoWithoutLaunchTemplate)
        #expect(result.status == 64)
        #expect(result.stderr.contains("--set k3s_version: write name=value"))
    }

    @Test func installingKscalerNeedsAConfigurationFile() async throws {
        let result = try await KScalerProcess.run(["userdata", "render", "--kind", "kubeadm-control-plane", "--install-kscaler"], environment: [
            "KSCALER_CLUSTER_ID": "demo", "KSCALER_TABLE": "kscaler", "KSCALER_PROMETHEUS_URL": "http://127.0.0.1:9090",
            "KSCALER_WORKERS_IMAGE_ID": "ami-0123456789abcdef0", "KSCALER_WORKERS_INSTANCE_TYPES": "t3.large",
            "KSCALER_WORKERS_SIZES": "t3.large=2/8Gi", "KSCALER_WORKERS_SUBNETS": "subnet-0123456789abcdef0",
        ])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("--install-kscaler writes the configuration file to the server: give it with --config FILE"))
    }
}
