import AWS
import Foundation
import HTTP
import KScaler
import TestSupport

/// One isolated kscaler deployment for an end-to-end test: its own table and cluster id in
/// the shared moto (signature checking on), a simulated cluster scraped by its own real
/// Prometheus, a config file, and the built `kscaler` binary run as a separate process.
final class EndToEndHarness: @unchecked Sendable {  // immutable after init; stop() is called once.
    let fixture: MotoFixture
    let tableName: String
    let clusterID: String
    let subnet: String
    let exporter: ClusterExporter
    let prometheus: PrometheusServer?
    let directory: URL
    var configPath: String { directory.appendingPathComponent("config.yaml").path }

    /// `prometheusURL` overrides the real Prometheus (a stand-in, or a dead port).
    /// `scrapeJobs` > 1 scrapes the cluster under that many jobs, as Prometheus sees two
    /// kube-state-metrics replicas: every series comes once per job.
    /// `kubernetes` is the config's `kubernetes:` section; by default the API is off, so that no
    /// kubeconfig of the machine's user is ever picked up.
    /// `instanceTypes` and `sizes` are the `workers:` entries (`sizes` nil: none, learned at run time).
    /// `workers` replaces the whole EC2 `workers:` section (another backend's, with `fleet:` in `extraConfig`).
    init(prometheusURL: String? = nil, extraConfig: String = "", minNodes: Int = 0, maxNodes: Int = 6, leaseTTL: String = "2m",
         prometheusTimeout: String = "8s", scrapeJobs: Int = 1, kubernetes: String = "{enabled: false}",
         instanceTypes: String = "[t3.large]", sizes: String? = "{t3.large: {cpu: 2, memory: 8Gi}}", workers: String? = nil) async throws {
        fixture = try MotoFixture()
        tableName = try await fixture.createTable()
        clusterID = Peers.uniqueName("e2e")
        subnet = try await Self.defaultSubnet(fixture)
        exporter = try await ClusterExporter.start()
        directory = try ChildProcess.temporaryDirectory("kscaler-e2e")
        if prometheusURL == nil {
            let path = ClusterExporterProcess.kubeStateMetricsPath
            var config = PrometheusServer.scrapeConfig(targets: [exporter.target], metricsPath: path)
            for job in 1..<max(1, scrapeJobs) {
                config += "\n  - {job_name: replica-\(job), metrics_path: \(path), static_configs: [{targets: ['\(exporter.target)']}]}"
            }
            prometheus = try await PrometheusServer.start(config: config)
        } else {
            prometheus = nil
        }
        let config = """
        cluster_id: \(clusterID)
        table: \(tableName)
        prometheus: {url: "\(prometheusURL ?? prometheus!.baseURL)", staleness: 1m, timeout: \(prometheusTimeout)}
        nodes: {min: \(minNodes), max: \(maxNodes)}
        scale_up: {cooldown: 1s}
        scale_down: {cooldown: 1s, delay_after_scale_up: 1s, stabilization_window: 3s, without_drain: true}
        boot_grace: 1s
        lease: {ttl: \(leaseTTL), safety_margin: 1s}
        \(workers ?? """
        workers:
          image_id: ami-760aaa0f
          instance_types: \(instanceTypes)
          subnets: [\(subnet)]
        \(sizes.map { "  sizes: \($0)" } ?? "")
        """)
        kubernetes: \(kubernetes)
        \(extraConfig)
        """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Runs `body` with a fresh harness and always stops it (Prometheus, exporter, files),
    /// also when `body` throws.
    static func with(prometheusURL: String? = nil, extraConfig: String = "", minNodes: Int = 0, maxNodes: Int = 6, leaseTTL: String = "2m",
                     prometheusTimeout: String = "8s", scrapeJobs: Int = 1, kubernetes: String = "{enabled: false}",
                     instanceTypes: String = "[t3.large]", sizes: String? = "{t3.large: {cpu: 2, memory: 8Gi}}", workers: String? = nil,
                     _ body: (EndToEndHarness) async throws -> Void) async throws {
        let harness = try await EndToEndHarness(prometheusURL: prometheusURL, extraConfig: extraConfig, minNodes: minNodes,
                                                maxNodes: maxNodes, leaseTTL: leaseTTL, prometheusTimeout: prometheusTimeout,
                                                scrapeJobs: scrapeJobs, kubernetes: kubernetes, instanceTypes: instanceTypes, sizes: sizes,
                                                workers: workers)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    func stop() async {
        await exporter.stop()
        await prometheus?.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Waits until Prometheus has a full stabilization window (3 s in the config above) of the
    /// cluster as last updated. Waiting for any 4 s of data is not enough: a window that still
    /// holds the cluster from before an update leaves the window maxima of new workers empty.
    func waitForMetrics() async throws {
        let current = "(\(ClusterExporter.scrapedSignatureQuery)) == \(exporter.scrapedSignature)"
        try await prometheus?.waitUntil("count_over_time((\(current))[4s:1s])", atLeast: 4)
    }

    var environment: [String: String] { fixture.moto.environment() }

    func kscaler(_ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(60)) async throws -> KScalerProcess.Result {
        try await KScalerProcess.run(arguments + ["--config", configPath], environment: environment ?? self.environment, timeout: timeout)
    }

    /// `kscaler run|plan --output json`, decoded.
    func report(_ command: String = "run", _ extra: [String] = [], environment: [String: String]? = nil) async throws -> (KScalerProcess.Result, RunReport?) {
        let result = try await kscaler([command, "--output", "json"] + extra, environment: environment)
        return (result, try? Self.decoder.decode(RunReport.self, from: Data(result.stdout.utf8)))
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    var ec2: EC2Client { fixture.context.ec2 }

    /// Live instances of this test's cluster.
    func instances() async throws -> [EC2Instance] {
        try await ec2.describeInstances(filters: [("tag:kscaler:cluster", [clusterID]), ("instance-state-name", ["pending", "running"])])
    }

    /// Launches workers as if an earlier run had, tagged for this cluster.
    func launchWorkers(_ count: Int) async throws -> [EC2Instance] {
        try await ec2.runInstances(RunInstancesRequest(
            imageID: "ami-760aaa0f", instanceType: "t3.large", count: count, subnetID: subnet,
            instanceTags: ["kscaler:cluster": clusterID, "kscaler:pool": "default"]))
    }

    var table: KScalerTable { fixture.table(tableName, cluster: clusterID) }

    /// Every item of this cluster in the table (state and history), for before/after comparisons.
    func tableItems() async throws -> [DynamoDBItem] {
        try await fixture.dynamoDB.query(
            table: tableName,
            keyCondition: DynamoDBExpression("#c = :c", names: ["#c": "cluster_id"], values: [":c": .s(clusterID)]),
            newestFirst: false).items
    }

    static func defaultSubnet(_ fixture: MotoFixture) async throws -> String {
        let root = try await fixture.context.client(for: .ec2, displayName: "EC2")
            .query(operation: "DescribeSubnets", version: "2016-11-15", parameters: [])
        guard let subnet = root.first(named: "subnetId")?.text else { throw TestSupportError("moto has no default subnet") }
        return subnet
    }
}
