/// The configuration's key tree: the one list of keys that parsing (unknown-key checks),
/// the environment-variable mapping and the effective-config listing all agree on.
indirect enum SchemaNode: Sendable {
    /// A single value (string, number, list of scalars…).
    case leaf
    /// A map with fixed keys, in documentation order.
    case section([(key: String, node: SchemaNode)])
    /// A map with user-chosen keys (`workers.sizes`, `workers.labels`); in the environment it is
    /// one variable holding `k=v,k=v`.
    case dictionary

    var keys: [String] {
        if case .section(let children) = self { return children.map(\.key) }
        return []
    }

    func child(_ key: String) -> SchemaNode? {
        if case .section(let children) = self { return children.first(where: { $0.key == key })?.node }
        return nil
    }

    /// Every settable path (leaves and dictionaries), depth first in documentation order.
    func settablePaths(prefix: [String] = []) -> [[String]] {
        switch self {
        case .leaf, .dictionary: [prefix]
        case .section(let children): children.flatMap { $0.node.settablePaths(prefix: prefix + [$0.key]) }
        }
    }
}

enum ConfigSchema {
    static let root: SchemaNode = .section([
        ("cluster_id", .leaf),
        ("region", .leaf),
        ("table", .leaf),
        ("prometheus", .section([
            ("url", .leaf),
            ("auth", .section([
                ("type", .leaf), ("username", .leaf), ("password_file", .leaf), ("token_file", .leaf), ("region", .leaf),
            ])),
            ("timeout", .leaf),
            ("staleness", .leaf),
        ])),
        ("utilization", .leaf),
        ("signals", .section(Signal.allCases.map { ($0.rawValue, .leaf) })),
        ("nodes", .section([("min", .leaf), ("max", .leaf)])),
        ("scale_up", .section([
            ("cpu_threshold", .leaf), ("memory_threshold", .leaf), ("max_step", .leaf), ("cooldown", .leaf),
        ])),
        ("scale_down", .section([
            ("cpu_threshold", .leaf), ("memory_threshold", .leaf), ("max_step", .leaf), ("cooldown", .leaf),
            ("delay_after_scale_up", .leaf), ("stabilization_window", .leaf),
        ])),
        ("boot_grace", .leaf),
        ("provision_timeout", .leaf),
        ("unavailable_for", .leaf),
        ("health", .section([("max_not_ready_fraction", .leaf), ("max_not_ready_nodes", .leaf)])),
        ("victims", .section([("order", .leaf), ("protected_instances", .leaf)])),
        ("workers", .section([
            ("pool", .leaf),
            ("launch_template", .section([("id", .leaf), ("name", .leaf), ("version", .leaf)])),
            ("image_id", .leaf),
            ("instance_types", .leaf),
            ("subnets", .leaf),
            ("security_groups", .leaf),
            ("instance_profile", .leaf),
            ("sizes", .dictionary),
            ("labels", .dictionary),
            ("taints", .leaf),
            ("join", .section([("token_parameter", .leaf), ("server_url_parameter", .leaf)])),
        ])),
        ("lease", .section([("ttl", .leaf), ("safety_margin", .leaf), ("max_clock_skew", .leaf)])),
        ("history", .section([("retention", .leaf)])),
        ("pushgateway", .section([("url", .leaf)])),
    ])

    static func node(at path: [String]) -> SchemaNode? {
        path.reduce(Optional(root)) { node, key in node?.child(key) }
    }

    /// Paths whose values are credentials-adjacent: printers redact them (the auth type is not).
    static func isSensitive(_ path: String) -> Bool {
        path.hasPrefix("prometheus.auth.") && path != "prometheus.auth.type"
    }
}

extension KScalerConfig {
    /// Prefix of every kscaler environment variable.
    public static let environmentPrefix = "KSCALER_"

    /// Every environment variable kscaler reads, mapped to the configuration path it sets
    /// (`KSCALER_SCALE_UP_CPU_THRESHOLD` → `["scale_up", "cpu_threshold"]`). Dictionaries take
    /// one variable: `KSCALER_WORKERS_SIZES="t3.large=2/8Gi"`, `KSCALER_WORKERS_LABELS="role=worker"`.
    public static let environmentVariables: [String: [String]] = {
        var variables: [String: [String]] = [:]
        for path in ConfigSchema.root.settablePaths() {
            variables[environmentVariableName(for: path)] = path
        }
        return variables
    }()

    /// `["scale_up", "cpu_threshold"]` → `KSCALER_SCALE_UP_CPU_THRESHOLD`.
    public static func environmentVariableName(for path: [String]) -> String {
        environmentPrefix + path.joined(separator: "_").uppercased()
    }

    /// A problem for a `KSCALER_*` variable that sets nothing, with the closest known name.
    public static func unknownEnvironmentVariableProblem(_ name: String) -> ConfigProblem {
        let known = environmentVariables.keys.sorted()
        let suggestion = closestMatch(to: name.lowercased(), among: known.map { $0.lowercased() })
            .flatMap { lower in known.first(where: { $0.lowercased() == lower }) }
        return ConfigProblem(
            path: name,
            message: "environment variable \(name) is not a kscaler setting",
            fix: suggestion.map { "did you mean \($0)?" } ?? "remove it; settings are named KSCALER_<PATH>, e.g. KSCALER_SCALE_UP_CPU_THRESHOLD"
        )
    }
}
