/// A node of the configuration's key tree (see `ConfigSchema`).
indirect enum SchemaNode: Sendable {
    /// A single value (string, number, list of scalars…).
    case leaf
    /// A map with fixed keys, in documentation order.
    case section([(key: String, node: SchemaNode)])
    /// A map with user-chosen keys (`workers.sizes`, `workers.labels`); in the environment it is
    /// one variable holding `k=v,k=v`.
    case dictionary
    /// A map of user-chosen names to sections of one schema (`pools.<name>`): every name's
    /// section is checked like a fixed one.
    case namedSections(SchemaNode)
    /// A list of sections of one schema (`schedules`): each item is checked like a fixed
    /// section; YAML only (no environment variables).
    case list(SchemaNode)

    var keys: [String] {
        if case .section(let children) = self { return children.map(\.key) }
        return []
    }

    func child(_ key: String) -> SchemaNode? {
        switch self {
        case .section(let children): children.first(where: { $0.key == key })?.node
        case .namedSections(let section): section
        case .leaf, .dictionary, .list: nil
        }
    }

    /// Every settable path with a fixed name (leaves and dictionaries), depth first in
    /// documentation order. Named sections have no fixed names to list.
    func settablePaths(prefix: [String] = []) -> [[String]] {
        switch self {
        case .leaf, .dictionary: [prefix]
        case .section(let children): children.flatMap { $0.node.settablePaths(prefix: prefix + [$0.key]) }
        case .namedSections, .list: []
        }
    }

    /// This tree with `node` at `path`, sections created on the way, order of first mention kept.
    func inserting(_ node: SchemaNode, at path: ArraySlice<String>) -> SchemaNode {
        guard let key = path.first else { return node }
        var children: [(key: String, node: SchemaNode)] = []
        if case .section(let existing) = self { children = existing }
        if let index = children.firstIndex(where: { $0.key == key }) {
            children[index].node = children[index].node.inserting(node, at: path.dropFirst())
        } else {
            children.append((key, SchemaNode.section([]).inserting(node, at: path.dropFirst())))
        }
        return .section(children)
    }
}

/// The configuration's key tree, built from `ConfigSettings.all`: unknown-key checks, the
/// environment-variable names and the listing all follow it.
enum ConfigSchema {
    static let root: SchemaNode = ConfigSettings.all.reduce(SchemaNode.section([])) { tree, setting in
        tree.inserting(SchemaNode(setting.shape), at: setting.path[...])
    }

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
    package static let environmentPrefix = "KSCALER_"

    /// Every environment variable kscaler reads, mapped to the configuration path it sets
    /// (`KSCALER_SCALE_UP_CPU_THRESHOLD` → `["scale_up", "cpu_threshold"]`). Dictionaries take
    /// one variable: `KSCALER_WORKERS_SIZES="t3.large=2/8Gi"`, `KSCALER_WORKERS_LABELS="role=worker"`.
    package static let environmentVariables: [String: [String]] = {
        var variables: [String: [String]] = [:]
        for path in ConfigSchema.root.settablePaths() {
            variables[environmentVariableName(for: path)] = path
        }
        return variables
    }()

    /// `["scale_up", "cpu_threshold"]` → `KSCALER_SCALE_UP_CPU_THRESHOLD`.
    package static func environmentVariableName(for path: [String]) -> String {
        environmentPrefix + path.joined(separator: "_").uppercased()
    }

    /// A problem for a `KSCALER_*` variable that sets nothing, with the closest known name.
    package static func unknownEnvironmentVariableProblem(_ name: String) -> ConfigProblem {
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
