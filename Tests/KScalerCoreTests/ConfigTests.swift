#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

/// The smallest valid configuration: everything else takes the schema's defaults.
let minimalConfig: ConfigValue = [
    "cluster_id": "demo",
    "table": "kscaler",
    "prometheus": ["url": "http://127.0.0.1:9090"],
    "workers": [
        "image_id": "ami-0123456789abcdef0",
        "instance_types": ["t3.large"],
        "subnets": ["subnet-0a", "subnet-0b"],
        "sizes": ["t3.large": ["cpu": 2, "memory": "8Gi"]],
    ],
]

func parse(_ value: ConfigValue) -> KScalerConfig? {
    try? KScalerConfig.parse(value).get()
}

func problems(_ value: ConfigValue) -> [ConfigProblem] {
    if case .failure(let errors) = KScalerConfig.parse(value) { return errors.problems }
    return []
}

func problem(at path: String, in value: ConfigValue) -> ConfigProblem? {
    problems(value).first { $0.path == path }
}

extension ConfigValue {
    func with(_ path: String, _ value: ConfigValue) -> ConfigValue {
        setting(value, at: path.split(separator: ".").map(String.init))
    }

    /// For paths whose keys hold dots themselves (`workers.sizes.t3.large`).
    func with(_ path: [String], _ value: ConfigValue) -> ConfigValue {
        setting(value, at: path)
    }

    func without(_ path: String) -> ConfigValue {
        let keys = path.split(separator: ".").map(String.init)
        guard case .map(var fields) = self else { return self }
        if keys.count == 1 {
            fields[keys[0]] = nil
        } else if let child = fields[keys[0]] {
            fields[keys[0]] = child.without(keys.dropFirst().joined(separator: "."))
        }
        return .map(fields)
    }
}

@Suite("configuration: defaults and parsing")
struct ConfigParsingTests {
    @Test("a minimal file gets every schema default")
    func defaults() throws {
        let config = try #require(parse(minimalConfig))
        #expect(config.clusterID == "demo")
        #expect(config.region == nil)
        #expect(config.prometheus == PrometheusSettings(url: "http://127.0.0.1:9090", auth: .none, timeout: 5, staleness: 300))
        #expect(config.utilization == .requests)
        #expect(config.nodes == NodeBounds(min: 1, max: 10))
        #expect(config.scaleUp == ScaleUpPolicy(cpuThreshold: 0.7, memoryThreshold: 0.7, maxStep: 10, cooldown: 60))
        #expect(config.scaleDown == ScaleDownPolicy(cpuThreshold: 0.3, memoryThreshold: 0.3, maxStep: 1, cooldown: 300,
                                                    delayAfterScaleUp: 600, stabilizationWindow: 600))
        #expect(config.bootGrace == 300 && config.provisionTimeout == 900 && config.unavailableFor == 1800)
        #expect(config.health == HealthGate(maxNotReadyFraction: 0.45, maxNotReadyNodes: 3))
        #expect(config.victims == VictimPolicy(order: .newestFirst, protectedInstances: []))
        #expect(config.workers.pool == "default")
        #expect(config.workers.sizes == ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)])
        #expect(config.workers.join == JoinParameters(tokenParameter: "/kscaler/demo/join-token", serverURLParameter: "/kscaler/demo/server-url"))
        #expect(config.lease == LeaseSettings(ttl: 120, safetyMargin: 20))
        #expect(config.historyRetention == 7 * 86400)
        #expect(config.pushgatewayURL == nil)
    }

    @Test("a full file with every section")
    func fullFile() throws {
        let full: ConfigValue = [
            "cluster_id": "prod-eu", "region": "eu-west-3", "table": "kscaler-prod",
            "prometheus": ["url": "https://aps.example.com/workspaces/ws-1", "auth": ["type": "sigv4", "region": "eu-west-3"],
                           "timeout": "10s", "staleness": "2m"],
            "utilization": "usage",
            "signals": ["unschedulable_pods": "sum(my_metric)"],
            "nodes": ["min": 2, "max": 50],
            "scale_up": ["cpu_threshold": 80, "memory_threshold": "75%", "max_step": 5, "cooldown": "2m"],
            "scale_down": ["cpu_threshold": 20, "memory_threshold": 25, "max_step": 2, "cooldown": "10m",
                           "delay_after_scale_up": "15m", "stabilization_window": "20m"],
            "boot_grace": "4m", "provision_timeout": "12m", "unavailable_for": "1h",
            "health": ["max_not_ready_fraction": 0.3, "max_not_ready_nodes": 5],
            "victims": ["order": "oldest_first", "protected_instances": ["i-0abc"]],
            "workers": [
                "pool": "batch",
                "launch_template": ["name": "workers", "version": 3],
                "instance_types": ["m7g.large", "m6g.large"],
                "security_groups": ["sg-01"],
                "instance_profile": "kscaler-worker",
                "sizes": ["m7g.large": ["cpu": "1930m", "memory": "7Gi"], "m6g.large": ["cpu": 1.93, "memory": 7_516_192_768]],
                "labels": ["role": "worker", "example.com/team": "data"],
                "taints": ["dedicated=batch:NoSchedule", "spot:PreferNoSchedule"],
                "join": ["token_parameter": "/k/join", "server_url_parameter": "/k/url"],
            ],
            "lease": ["ttl": "3m", "safety_margin": "30s"],
            "history": ["retention": "30d"],
            "pushgateway": ["url": "http://127.0.0.1:9091"],
        ]
        let config = try #require(parse(full))
        #expect(config.prometheus.auth == .sigv4(region: "eu-west-3"))
        #expect(config.utilization == .usage)
        #expect(config.scaleUp.memoryThreshold == 0.75)
        #expect(config.scaleDown.stabilizationWindow == 1200)
        #expect(config.workers.launchTemplate == LaunchTemplateRef(identity: .name("workers"), version: "3"))
        #expect(config.workers.subnets.isEmpty)
        #expect(config.workers.sizes["m7g.large"] == WorkerSize(cpuCores: 1.93, memoryBytes: 7 * gib))
        #expect(config.workers.sizes["m6g.large"] == WorkerSize(cpuCores: 1.93, memoryBytes: 7 * gib))
        #expect(config.workers.taints == [Taint(key: "dedicated", value: "batch", effect: .noSchedule),
                                          Taint(key: "spot", value: nil, effect: .preferNoSchedule)])
        #expect(config.workers.labels == ["role": "worker", "example.com/team": "data"])
        #expect(config.victims.protectedInstances == ["i-0abc"])
        #expect(config.pushgatewayURL == "http://127.0.0.1:9091")
        #expect(config.historyRetention == 30 * 86400)
        #expect(config.policy.capacity == WorkerCapacity(machineTypes: ["m7g.large", "m6g.large"], placements: [], sizes: config.workers.sizes))
    }

    @Test("environment-style strings parse exactly like typed YAML values")
    func environmentStrings() throws {
        let typed: ConfigValue = minimalConfig
            .with("nodes.min", 2).with("nodes.max", 40)
            .with("scale_up.cpu_threshold", 65.5).with("scale_down.cpu_threshold", 20)
            .with("health.max_not_ready_fraction", 0.5)
            .with("victims.protected_instances", ["i-01", "i-02"])
            .with("workers.labels", ["role": "worker", "tier": "b"])
            .with("workers.taints", ["a=b:NoSchedule"])
            .with("workers.sizes", ["t3.large": ["cpu": 2, "memory": "8Gi"]])
            .with("workers.instance_types", ["t3.large"])
        let strings: ConfigValue = minimalConfig
            .with("nodes.min", "2").with("nodes.max", " 40 ")
            .with("scale_up.cpu_threshold", "65.5").with("scale_down.cpu_threshold", "20%")
            .with("health.max_not_ready_fraction", "0.5")
            .with("victims.protected_instances", "i-01, i-02")
            .with("workers.labels", "role=worker,tier=b")
            .with("workers.taints", "a=b:NoSchedule")
            .with("workers.sizes", "t3.large=2/8Gi")
            .with("workers.instance_types", "t3.large")
            .with("workers.subnets", "subnet-0a,subnet-0b")
        let fromTyped = try #require(parse(typed))
        let fromStrings = try #require(parse(strings))
        #expect(fromTyped == fromStrings)
        #expect(fromStrings.nodes == NodeBounds(min: 2, max: 40))
        #expect(fromStrings.scaleUp.cpuThreshold == 0.655)
    }

    @Test("environment variables map to schema paths and lay over the YAML tree")
    func environmentOverlay() throws {
        #expect(KScalerConfig.environmentVariables["KSCALER_SCALE_UP_CPU_THRESHOLD"] == ["scale_up", "cpu_threshold"])
        #expect(KScalerConfig.environmentVariables["KSCALER_PROMETHEUS_AUTH_PASSWORD_FILE"] == ["prometheus", "auth", "password_file"])
        #expect(KScalerConfig.environmentVariables["KSCALER_SIGNALS_NODE_READY"] == ["signals", "node_ready"])
        #expect(KScalerConfig.environmentVariables["KSCALER_WORKERS_SIZES"] == ["workers", "sizes"])
        #expect(KScalerConfig.environmentVariables["KSCALER_WORKERS_LAUNCH_TEMPLATE_ID"] == ["workers", "launch_template", "id"])
        #expect(KScalerConfig.environmentVariables["KSCALER_BOOT_GRACE"] == ["boot_grace"])
        #expect(KScalerConfig.environmentVariables.count == ConfigSchema.root.settablePaths().count)

        var tree = minimalConfig
        for (name, value) in ["KSCALER_SCALE_UP_COOLDOWN": "3m", "KSCALER_NODES_MAX": "7", "KSCALER_REGION": "us-west-2"] {
            tree = tree.setting(.string(value), at: try #require(KScalerConfig.environmentVariables[name]))
        }
        let config = try #require(parse(tree))
        #expect(config.scaleUp.cooldown == 180 && config.nodes.max == 7 && config.region == "us-west-2")
        #expect(config.scaleUp.cpuThreshold == 0.7)  // siblings in YAML survive the overlay

        let typo = KScalerConfig.unknownEnvironmentVariableProblem("KSCALER_SCALE_UP_CPU_TRESHOLD")
        #expect(typo.fix == "did you mean KSCALER_SCALE_UP_CPU_THRESHOLD?")
    }

    @Test("queries: overrides win, the rest are defaults for the mode and window")
    func queries() throws {
        let config = try #require(parse(minimalConfig.with("signals.node_ready", "up").with("utilization", "usage")
            .with("scale_down.stabilization_window", "5m")))
        let queries = config.queries(workerNodes: "worker-[0-9]+")
        #expect(queries.count == Signal.allCases.count)
        #expect(queries[.nodeReady] == "up")
        #expect(queries[.cpuUtilizationWindowMax] == DefaultQueries.query(for: .cpuUtilizationWindowMax, mode: .usage, windowSeconds: 300, workerNodes: "worker-[0-9]+"))
        #expect(queries[.podsPerNode] == DefaultQueries.query(for: .podsPerNode, mode: .usage, windowSeconds: 300, workerNodes: "worker-[0-9]+"))
    }

    @Test("effective settings list every value as a user would write it; auth paths are sensitive")
    func effectiveSettings() throws {
        let config = try #require(parse(minimalConfig.with("prometheus.auth", ["type": "basic", "username": "u", "password_file": "/run/p"])))
        let settings = config.effectiveSettings(machines: workerMachines)
        let byPath = Dictionary(settings.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(settings.count == byPath.count)
        #expect(byPath["scale_up.cpu_threshold"]?.value == "70")
        #expect(byPath["scale_down.cpu_threshold"]?.value == "30")
        #expect(byPath["boot_grace"]?.value == "5m")
        #expect(byPath["history.retention"]?.value == "7d")
        #expect(byPath["lease.safety_margin"]?.value == "20s")
        #expect(byPath["workers.sizes.t3.large.memory"]?.value == "8Gi")
        #expect(byPath["workers.subnets"]?.value == "subnet-0a,subnet-0b")
        #expect(byPath["workers.join.token_parameter"]?.value == "/kscaler/demo/join-token")
        #expect(byPath["signals.node_ready"]?.value == DefaultQueries.query(for: .nodeReady, mode: .requests, windowSeconds: 600, workerNodes: workerMachines.workerNodeNames))
        #expect(settings.filter(\.sensitive).map(\.path) == ["prometheus.auth.username", "prometheus.auth.password_file"])
        // The listing reads back: every printed duration parses to the same value.
        #expect(parseDuration(byPath["scale_down.delay_after_scale_up"]!.value) == config.scaleDown.delayAfterScaleUp)
    }
}

@Suite("configuration: validation")
struct ConfigValidationTests {
    @Test("every problem is reported at once, each with its path and a fix")
    func everyProblemAtOnce() {
        let broken: ConfigValue = [
            "cluster_id": "Demo_Cluster",
            "prometheus": ["url": "ftp://prom:9090", "timeout": "0s"],
            "nodes": ["min": 5, "max": 2],
            "scale_up": ["cpu_threshold": 150, "max_step": 0, "cooldown": "soon"],
            "scale_down": ["memory_threshold": 80],
            "boot_grace": 300,
            "health": ["max_not_ready_fraction": 45],
            "victims": ["order": "newest-first", "protected_instances": ["web-1"]],
            "workers": ["instance_types": ["t3.large"], "sizes": [:]],
            "lease": ["ttl": "20s", "safety_margin": "20s"],
            "scale-up": ["cpu_threshold": 70],
        ]
        let found = problems(broken)
        let paths = found.map(\.path)
        let expected = [
            "cluster_id", "table", "prometheus.url", "prometheus.timeout", "nodes.min", "scale_up.cpu_threshold",
            "scale_up.max_step", "scale_up.cooldown", "scale_down.memory_threshold", "boot_grace",
            "health.max_not_ready_fraction", "victims.order", "victims.protected_instances", "workers.image_id",
            "workers.subnets", "lease.safety_margin", "scale-up",
        ]
        for path in expected {
            #expect(paths.contains(path), "missing problem at \(path); got \(paths)")
        }
        #expect(Set(paths) == Set(expected), "unexpected extra problems: \(Set(paths).subtracting(expected))")
        #expect(found.allSatisfy { !$0.message.isEmpty && !$0.fix.isEmpty })
        #expect(problem(at: "boot_grace", in: broken)?.fix.hasPrefix("write 300s for seconds") == true)
        #expect(problem(at: "victims.order", in: broken)?.fix.hasPrefix("did you mean \"newest_first\"?") == true)
        #expect(problem(at: "scale-up", in: broken)?.fix == "did you mean \"scale_up\"?")
        let description = String(describing: ConfigErrors(problems: found))
        #expect(description.hasPrefix("configuration has \(found.count) problems:"))
    }

    @Test("unknown keys at any depth, with a did-you-mean suggestion", arguments: [
        (["scale_up", "cpu_treshold"], "did you mean \"cpu_threshold\"?"),
        (["signals", "unschedulable_pod"], "did you mean \"unschedulable_pods\"?"),
        (["prometheus", "auth", "tokenfile"], "did you mean \"token_file\"?"),
        (["workers", "sizes", "t3.large", "mem"], "did you mean \"memory\"?"),
        (["workers", "frobnicate"], "remove it; known keys here: pool, launch_template, image_id, instance_types, subnets, security_groups, instance_profile, sizes, labels, taints, join"),
    ])
    func unknownKeys(path: [String], fix: String) {
        let found = problem(at: path.joined(separator: "."), in: minimalConfig.with(path, "1"))
        #expect(found?.message.hasPrefix("unknown key") == true)
        #expect(found?.fix == fix)
    }

    @Test("down-thresholds must be below up-thresholds, for cpu and memory", arguments: ["cpu", "memory"])
    func thresholdsOrdered(resource: String) {
        let equal = minimalConfig.with("scale_up.\(resource)_threshold", 50).with("scale_down.\(resource)_threshold", 50)
        #expect(problem(at: "scale_down.\(resource)_threshold", in: equal)?.message
            == "scale-down threshold 50 % is not below the scale-up threshold 50 %")
        #expect(parse(equal.with("scale_down.\(resource)_threshold", 49.9)) != nil)
    }

    @Test("thresholds are percentages in (0, 100]", arguments: [(0.0, false), (0.5, true), (100.0, true), (100.5, false), (-3.0, false)])
    func thresholdRange(percent: Double, valid: Bool) {
        let config = minimalConfig.with("scale_up.memory_threshold", .number(percent)).with("scale_down.memory_threshold", 0.1)
        #expect((parse(config) != nil) == valid)
    }

    @Test("an invalid field does not also produce a cross-field problem")
    func noPileUp() {
        // max falls back to its default 10 internally; min 20 > 10 must not be reported on top.
        let config = minimalConfig.with("nodes.min", 20).with("nodes.max", "lots")
        #expect(problems(config).map(\.path) == ["nodes.max"])
    }

    @Test("bounds: min ≤ max, max ≥ 1, min ≥ 0", arguments: [(0, 1, true), (3, 3, true), (4, 3, false), (0, 0, false), (-1, 3, false)])
    func bounds(min: Int, max: Int, valid: Bool) {
        #expect((parse(minimalConfig.with("nodes.min", .number(Double(min))).with("nodes.max", .number(Double(max)))) != nil) == valid)
    }

    @Test("durations must be positive; lease margin below ttl; boot grace within provision timeout")
    func durations() {
        #expect(problem(at: "scale_down.cooldown", in: minimalConfig.with("scale_down.cooldown", "0s"))?.message == "must be longer than 0, got 0s")
        #expect(problem(at: "lease.safety_margin", in: minimalConfig.with("lease.safety_margin", "2m")) != nil)
        #expect(problem(at: "boot_grace", in: minimalConfig.with("boot_grace", "16m")) != nil)
        #expect(parse(minimalConfig.with("boot_grace", "15m")) != nil)
        #expect(problem(at: "prometheus.staleness", in: minimalConfig.with("prometheus.staleness", "-5m")) != nil)
    }

    @Test("cluster_id format", arguments: [("demo", true), ("prod-eu-1", true), ("Demo", false), ("a_b", false), ("", false),
                                           (String(repeating: "a", count: 40), true), (String(repeating: "a", count: 41), false)])
    func clusterID(id: String, valid: Bool) {
        #expect((parse(minimalConfig.with("cluster_id", .string(id))) != nil) == valid)
    }

    @Test("URLs: http or https, no credentials, and credentials are never echoed")
    func urls() {
        #expect(parse(minimalConfig.with("prometheus.url", "https://prom.example.com:9443/prefix")) != nil)
        #expect(problem(at: "prometheus.url", in: minimalConfig.with("prometheus.url", "ftp://x"))?.message == "scheme \"ftp\" is not supported")
        #expect(problem(at: "prometheus.url", in: minimalConfig.with("prometheus.url", "127.0.0.1:9090")) != nil)
        #expect(problem(at: "prometheus.url", in: minimalConfig.with("prometheus.url", "http://:9090")) != nil)
        #expect(problem(at: "prometheus.url", in: minimalConfig.with("prometheus.url", "http://h:99999")) != nil)
        let leaky = problem(at: "prometheus.url", in: minimalConfig.with("prometheus.url", "http://admin:hunter2@prom:9090"))
        let shown = leaky?.description ?? ""
        #expect(shown.contains("contains credentials"))
        #expect(!shown.contains("hunter2"))
        #expect(problem(at: "pushgateway.url", in: minimalConfig.with("pushgateway.url", "gopher://x")) != nil)
        #expect(parse(minimalConfig.with("pushgateway.url", ""))?.pushgatewayURL == nil)
    }

    @Test("auth: each type requires its fields and rejects the others")
    func auth() {
        let basic = minimalConfig.with("prometheus.auth", ["type": "basic", "username": "kscaler"])
        #expect(problem(at: "prometheus.auth.password_file", in: basic)?.message == "is required")
        #expect(parse(basic.with("prometheus.auth.password_file", "/run/secrets/p"))?.prometheus.auth
            == .basic(username: "kscaler", passwordFile: "/run/secrets/p"))
        let stray = basic.with("prometheus.auth.password_file", "/p").with("prometheus.auth.token_file", "/t")
        #expect(problem(at: "prometheus.auth.token_file", in: stray)?.fix == "remove it, or set prometheus.auth.type: bearer")
        #expect(problem(at: "prometheus.auth.token_file", in: minimalConfig.with("prometheus.auth.type", "bearer"))?.message == "is required")
        #expect(parse(minimalConfig.with("prometheus.auth", ["type": "sigv4"]))?.prometheus.auth == .sigv4(region: nil))
        #expect(problem(at: "prometheus.auth.username", in: minimalConfig.with("prometheus.auth.username", "u")) != nil)
        #expect(problem(at: "prometheus.auth.type", in: minimalConfig.with("prometheus.auth.type", "oauth")) != nil)
    }

    @Test("workers: a launch template, or image_id + instance_types + subnets")
    func workersShape() {
        let bare = minimalConfig.with("workers", ["sizes": ["t3.large": ["cpu": 2, "memory": "8Gi"]]])
        #expect(problems(bare).map(\.path) == ["workers.image_id", "workers.instance_types", "workers.subnets"])

        let template = bare.with("workers.launch_template", ["id": "lt-0abc"])
        let config = parse(template)
        #expect(config?.workers.launchTemplate == LaunchTemplateRef(identity: .id("lt-0abc"), version: "$Latest"))
        #expect(config?.workers.subnets == [])

        let both = template.with("workers.launch_template.name", "w")
        #expect(problem(at: "workers.launch_template.name", in: both)?.message == "both id and name are set")
        #expect(problem(at: "workers.launch_template.version", in: template.with("workers.launch_template.version", "latest")) != nil)
    }

    @Test("workers: a listed type without a size is learned at run time; with a template alone, at least one size")
    func workersSizes() throws {
        let missing = minimalConfig.with("workers.instance_types", ["t3.large", "m5.large"])
        #expect(problems(missing).isEmpty)
        let unsized = try KScalerConfig.parse(minimalConfig.with("workers.instance_types", ["t3.large", "m5.large"]).with("workers.sizes", ConfigValue.map([:]))).get()
        #expect(unsized.workers.sizes.isEmpty)
        #expect(unsized.typesToLearn == ["t3.large", "m5.large"])
        #expect(try KScalerConfig.parse(missing).get().typesToLearn == ["m5.large"])
        let typo = minimalConfig.with(["workers", "sizes", "t3.larg"], ["cpu": 2, "memory": "8Gi"])
        #expect(problem(at: "workers.sizes.t3.larg", in: typo)?.fix.hasPrefix("did you mean t3.large?") == true)
        let templateOnly = minimalConfig.with("workers", ["launch_template": ["name": "w"]])
        let sizes = problem(at: "workers.sizes", in: templateOnly)
        #expect(sizes?.message == "with only a launch template kscaler cannot know how big a worker is")
        #expect(sizes?.fix.contains("the smallest entry is the sizing unit") == true)
        #expect(problem(at: "workers.sizes.t3.large.cpu", in: minimalConfig.with(["workers", "sizes", "t3.large", "cpu"], 0))?.message
            == "CPU must be more than 0, got 0")
        #expect(problem(at: "workers.sizes.t3.large.memory", in: minimalConfig.with(["workers", "sizes", "t3.large", "memory"], "lots")) != nil)
    }

    @Test("ids, types, labels and taints are checked", arguments: [
        ("workers.subnets", ConfigValue.list(["subnet-0a", "sub-1"])),
        ("workers.subnets", ConfigValue.list(["subnet-0a", "subnet-0a"])),
        ("workers.image_id", "ami-XYZ"),
        ("workers.instance_types", ConfigValue.list(["t3large"])),
        ("workers.security_groups", "sg-01,group"),
        ("workers.taints", ConfigValue.list(["dedicated=batch:Never"])),
        ("workers.labels", ConfigValue.map(["role": "has space"])),
        ("region", "mars-north"),
        ("table", "k"),
        ("utilization", "cpu"),
        ("workers.join.token_parameter", "no/leading/slash"),
    ])
    func identifiers(path: String, value: ConfigValue) {
        let found = problems(minimalConfig.with(path, value))
        #expect(found.count == 1, "\(found)")
        #expect(found.first.map { $0.path.hasPrefix(path) } == true, "\(found)")
    }

    @Test("a file that is not a map, and sections that are not maps")
    func shapes() {
        #expect(problems(.list([])).first?.path == "(top level)")
        #expect(problem(at: "scale_up", in: minimalConfig.with("scale_up", "fast"))?.message == "expected a map of settings, got a string")
        #expect(problem(at: "nodes.max", in: minimalConfig.with("nodes.max", 2.5))?.message == "expected a whole number, got 2.5")
        #expect(parse(minimalConfig.with("nodes.max", .null))?.nodes.max == 10)
    }
}

@Suite("configuration: one table of settings")
struct ConfigSettingsTableTests {
    /// Every value changed from its default, every kind of setting used.
    static let everything: ConfigValue = [
        "cluster_id": "prod-eu", "region": "eu-west-1", "table": "ks-table",
        "prometheus": ["url": "https://prometheus.example:9443/prefix", "timeout": "7s", "staleness": "3m",
                       "auth": ["type": "basic", "username": "scaler", "password_file": "/run/secrets/p"]],
        "utilization": "usage",
        "signals": ["node_ready": "up", "pods_per_node": "count by (node) (kube_pod_info)"],
        "nodes": ["min": 2, "max": 30],
        "scale_up": ["cpu_threshold": 80, "memory_threshold": 85.5, "max_step": 4, "cooldown": "90s"],
        "scale_down": ["cpu_threshold": 20, "memory_threshold": 25, "max_step": 2, "cooldown": "7m",
                       "delay_after_scale_up": "15m", "stabilization_window": "20m"],
        "boot_grace": "4m", "provision_timeout": "12m", "unavailable_for": "1h",
        "health": ["max_not_ready_fraction": 0.3, "max_not_ready_nodes": 5],
        "victims": ["order": "oldest_first", "protected_instances": ["i-0123456789abcdef0", "i-0fedcba9876543210"]],
        "workers": [
            "pool": "batch", "launch_template": ["name": "workers", "version": "7"], "image_id": "ami-0123456789abcdef0",
            "instance_types": ["m6i.large", "m5.large"], "subnets": ["subnet-0a", "subnet-0b"], "security_groups": ["sg-0c"],
            "instance_profile": "kscaler-worker",
            "sizes": ["m6i.large": ["cpu": 2, "memory": "8Gi"], "m5.large": ["cpu": 1.9, "memory": "7.5Gi"]],
            "labels": ["example.com/role": "batch", "tier": ""], "taints": ["dedicated=batch:NoSchedule", "spot:PreferNoSchedule"],
            "join": ["token_parameter": "/secret/join", "server_url_parameter": "/secret/url"],
        ],
        "lease": ["ttl": "3m", "safety_margin": "30s", "max_clock_skew": "10s"],
        "history": ["retention": "30d"],
        "pushgateway": ["url": "http://pushgateway:9091"],
    ]

    /// The environment a configuration writes back parses to that same configuration: the
    /// listing, the environment names and the parser cannot drift apart.
    @Test("effective settings → environment → parse gives the same configuration", arguments: [minimalConfig, everything])
    func roundTrip(tree: ConfigValue) throws {
        let config = try #require(parse(tree), "\(problems(tree))")
        var fromEnvironment = ConfigValue.map([:])
        for (name, value) in config.environment() {
            let path = try #require(KScalerConfig.environmentVariables[name], "\(name) is not a known variable")
            fromEnvironment = fromEnvironment.setting(.string(value), at: path)
        }
        #expect(KScalerConfig.parse(fromEnvironment) == .success(config))
    }

    @Test("every setting has a path in the schema, a summary, and an environment name")
    func everySettingIsDescribed() {
        let settable = Set(ConfigSchema.root.settablePaths().map { $0.joined(separator: ".") })
        for setting in ConfigSettings.all {
            #expect(!setting.summary.isEmpty, "\(setting.dotted)")
            switch setting.shape {
            case .value, .dictionary: #expect(settable.contains(setting.dotted), "\(setting.dotted)")
            case .section(let keys): #expect(keys.allSatisfy { settable.contains("\(setting.dotted).\($0)") }, "\(setting.dotted)")
            // Named sections have no fixed names (and so no environment variables): YAML only.
            case .named, .list: #expect(ConfigSchema.node(at: setting.path) != nil, "\(setting.dotted)")
            }
        }
        #expect(Set(ConfigSettings.all.map(\.dotted)).count == ConfigSettings.all.count, "a path described twice")
    }

    /// The node `pools.<name>` will use: every named section is checked like a fixed one.
    @Test("a map of named sections checks each section's keys")
    func namedSections() {
        let schema = SchemaNode.section([("pools", .namedSections(.section([("min", .leaf), ("max", .leaf)])))])
        var reader = ConfigReader()
        reader.checkShape(["pools": ["batch": ["min": 1, "maxx": 2], "gpu": ["max": 3]]], schema, path: [])
        #expect(reader.problems.map(\.path) == ["pools.batch.maxx"])
        #expect(reader.problems.first?.fix == "did you mean \"max\"?")
        var notAMap = ConfigReader()
        notAMap.checkShape(["pools": ["batch": "big"]], schema, path: [])
        #expect(notAMap.problems.map(\.message) == ["expected a map of settings, got a string"])
        #expect(schema.settablePaths().isEmpty, "names are not known in advance: no environment variables")
    }
}
