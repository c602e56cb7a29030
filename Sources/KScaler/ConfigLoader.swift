import KScalerCore
import YAML

/// Builds kscaler's configuration the ecosystem's way: a YAML file, every key overridable by
/// `KSCALER_*` environment variables (containers, schedulers), and the environment names the
/// simple Lambda autoscalers use accepted as aliases so their users can switch unchanged.
/// Precedence, highest first: `KSCALER_*`, alias, file, default. Validation (every problem at
/// once) is `KScalerConfig.parse`, in the pure core.
package enum ConfigLoader {
    /// Where a setting's value came from, for `kscaler config check`.
    package enum Source: Sendable, Equatable, CustomStringConvertible {
        case file(String)
        case environment(String)
        case alias(String)
        case defaultValue

        package var description: String {
            switch self {
            case .file(let path): "file \(path)"
            case .environment(let name): "env \(name)"
            case .alias(let name): "env \(name) (alias)"
            case .defaultValue: "default"
            }
        }
    }

    package struct Loaded: Sendable {
        package var config: KScalerConfig
        package var file: String?
        /// Dotted path → where it came from; paths not listed are defaults.
        package var sources: [String: Source]

        /// Where `path` came from; a key inside a free-form section (`workers.sizes.m5.large.cpu`)
        /// came from wherever its section did.
        package func source(of path: String) -> Source { ConfigLoader.source(of: path, in: sources) }
    }

    static func source(of path: String, in sources: [String: Source]) -> Source {
        var candidate = Substring(path)
        while true {
            if let source = sources[String(candidate)] { return source }
            guard let dot = candidate.lastIndex(of: ".") else { return .defaultValue }
            candidate = candidate[..<dot]
        }
    }

    package static let defaultPath = "/etc/kscaler/config.yaml"
    /// Where time zone files are read from when `TZDIR` is not set (Debian's tzdata).
    package static let zoneInfoDirectory = "/usr/share/zoneinfo"
    /// Names that are not settings but are read by the loader or the CLI.
    package static let reservedVariables: Set<String> = ["KSCALER_CONFIG", "KSCALER_LOG_FORMAT", "KSCALER_LOG_LEVEL"]

    /// The simple Lambda autoscalers' variables and the settings they mean.
    package static let aliases: [(variable: String, path: [String])] = [
        ("PROMETHEUS_URL", ["prometheus", "url"]),
        ("DYNAMODB_TABLE", ["table"]),
        ("MIN_NODES", ["nodes", "min"]),
        ("MAX_NODES", ["nodes", "max"]),
        ("SCALE_UP_CPU_THRESHOLD", ["scale_up", "cpu_threshold"]),
        ("SCALE_DOWN_CPU_THRESHOLD", ["scale_down", "cpu_threshold"]),
    ]

    /// Whether any configuration source is present: a file named or at the default path, a
    /// `KSCALER_*` setting, or an alias.
    package static func isConfigured(explicitPath: String?, environment: [String: String],
                                    fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> Bool {
        filePath(explicitPath: explicitPath, environment: environment, fileExists: fileExists) != nil
            || environment.contains { name, value in
                !value.isEmpty && ((name.hasPrefix(KScalerConfig.environmentPrefix) && !reservedVariables.contains(name))
                                   || aliases.contains { $0.variable == name })
            }
    }

    /// The file `load` reads: `--config`, else `$KSCALER_CONFIG`, else the default path when it
    /// exists; nil when the environment alone configures kscaler.
    package static func filePath(explicitPath: String?, environment: [String: String],
                                fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> String? {
        explicitPath ?? environment["KSCALER_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? (fileExists(defaultPath) ? defaultPath : nil)
    }

    /// Where kscaler looked for a file when it found none, for the message that says so.
    package static let searchedLocations = "--config (not given), $KSCALER_CONFIG (not set), \(defaultPath) (not present)"

    /// What to do when there is no configuration at all.
    package static let initHint = "write a starter file with `kscaler config init --output \(defaultPath)` (or any FILE, then --config FILE), "
        + "fill in its \"<required: …>\" values and check it with `kscaler config check`; "
        + "or set every required setting as a KSCALER_* environment variable"

    /// `explicitPath` (from `--config` or `KSCALER_CONFIG`) must exist; without one,
    /// `/etc/kscaler/config.yaml` is read when present and otherwise the environment alone
    /// configures kscaler.
    package static func load(explicitPath: String?, environment: [String: String],
                            fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) },
                            readFile: (String) -> Data? = { FileManager.default.contents(atPath: $0) }) -> Result<Loaded, ConfigErrors> {
        var problems: [ConfigProblem] = []
        var tree = ConfigValue.map([:])
        var sources: [String: Source] = [:]

        let path = filePath(explicitPath: explicitPath, environment: environment, fileExists: fileExists)
        if let path {
            if let data = readFile(path) {
                do {
                    try checkSize(data, path: path)
                    let value = try parseYAML(data, path: path)
                    tree = value
                    for leaf in leafPaths(value) { sources[leaf] = .file(path) }
                } catch {
                    problems.append(error.problem)
                }
            } else {
                problems.append(ConfigProblem(path: "--config", message: "cannot read \(path)",
                                              fix: "check the path and its permissions, or leave --config out to use the environment only"))
            }
        }

        for (variable, settingPath) in aliases {
            guard let value = environment[variable], !value.isEmpty else { continue }
            tree = tree.setting(.string(value), at: settingPath)
            sources[settingPath.joined(separator: ".")] = .alias(variable)
        }
        for (name, value) in environment.sorted(by: { $0.key < $1.key })
        where name.hasPrefix(KScalerConfig.environmentPrefix) && !reservedVariables.contains(name) {
            guard let settingPath = KScalerConfig.environmentVariables[name] else {
                problems.append(KScalerConfig.unknownEnvironmentVariableProblem(name))
                continue
            }
            tree = tree.setting(.string(value), at: settingPath)
            sources[settingPath.joined(separator: ".")] = .environment(name)
        }

        // A file that could not be read says nothing about the settings: list its problem
        // (and the environment's), not a cascade of "is required".
        if problems.contains(where: { $0.path == path || $0.path == "--config" }) {
            return .failure(ConfigErrors(problems: problems))
        }
        // `schedules[].time_zone` names are read from the system's tz database, as libc reads them.
        let zoneDirectory = environment["TZDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? zoneInfoDirectory
        let parsed = withoutActuallyEscaping(readFile) { read in
            KScalerConfig.parse(tree, zones: ZoneDatabase(directory: zoneDirectory, readFile: { read($0).map { [UInt8]($0) } }))
        }
        switch parsed {
        case .success(let config) where problems.isEmpty:
            return .success(Loaded(config: config, file: path, sources: sources))
        case .success:
            return .failure(ConfigErrors(problems: problems))
        case .failure(let errors):
            return .failure(ConfigErrors(problems: problems + errors.problems.map { problem in
                var problem = problem
                switch source(of: problem.path, in: sources) {
                case .environment(let name), .alias(let name): problem.variable = name
                case .file, .defaultValue: break
                }
                return problem
            }))
        }
    }

    /// A configuration is a few kilobytes; this bounds what reading a wrong or hostile file costs.
    package static let maxFileBytes = 256 << 10
    /// Values after YAML aliases are expanded: a few hundred in practice.
    package static let maxValues = 10_000
    /// Nesting of `[` and `{`: a handful in practice, while the YAML composer recurses per level.
    package static let maxNesting = 64

    static func checkSize(_ data: Data, path: String) throws(FileProblem) {
        guard data.count <= maxFileBytes else {
            throw FileProblem(problem: ConfigProblem(
                path: path, message: "the file is \(data.count >> 10) KiB, more than the \(maxFileBytes >> 10) KiB a configuration may be",
                fix: "a kscaler configuration is a few KB: check that --config names the right file"))
        }
        var depth = 0, deepest = 0
        for byte in data {
            if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                depth += 1
                deepest = max(deepest, depth)
            } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                depth = max(0, depth - 1)
            }
        }
        guard deepest <= maxNesting else {
            throw FileProblem(problem: ConfigProblem(
                path: path, message: "brackets are nested \(deepest) deep, more than \(maxNesting)",
                fix: "a kscaler configuration nests a few levels: check that --config names the right file"))
        }
    }

    struct FileProblem: Error { var problem: ConfigProblem }

    static func parseYAML(_ data: Data, path: String) throws(FileProblem) -> ConfigValue {
        let text = String(decoding: data, as: UTF8.self)
        let expansionProblem = ConfigProblem(
            path: path, message: "the file expands to more than \(maxValues) values (YAML aliases repeat what their anchor holds)",
            fix: "write the settings out, or use fewer aliases")
        let node: YAMLNode?
        do throws(YAMLError) {
            // Keys count as nodes for the parser and not as values here, so twice the values
            // (plus the root) is what a file within `maxValues` can reach.
            node = try YAMLParser.parse(text, limits: YAMLParser.Limits(maxNodes: 2 * maxValues + 1))
        } catch {
            if error.kind == .limit, error.problem.hasPrefix("the document expands") { throw FileProblem(problem: expansionProblem) }
            throw FileProblem(problem: ConfigProblem(path: path, message: "not valid YAML: \(describeYAMLError(error))",
                                                     fix: "fix the YAML syntax at the line named"))
        }
        guard let node else { return .map([:]) }
        guard case .mapping = node else {
            throw FileProblem(problem: ConfigProblem(path: path, message: "the top level is not a map of settings", fix: "start the file with `cluster_id: …`"))
        }
        var budget = maxValues
        guard let value = convert(node, budget: &budget) else { throw FileProblem(problem: expansionProblem) }
        return value
    }

    /// "line 2, column 8: mapping values are not allowed in this context" (lines from 1): the
    /// position and problem, never the file's text.
    static func describeYAMLError(_ error: YAMLError) -> String {
        error.description
    }

    /// YAML scalars keep their resolved type (int, float, bool, null: YAML 1.1's rules) so
    /// `min: 3` is a number and `min: "3"` a string; the core accepts both spellings where it
    /// makes sense.
    /// Nil once `budget` values have been made: an alias repeats its anchor's whole subtree,
    /// so a few lines of aliases to aliases expand to billions of values.
    static func convert(_ node: YAMLNode, budget: inout Int) -> ConfigValue? {
        budget -= 1
        guard budget >= 0 else { return nil }
        switch node {
        case .scalar(let scalar):
            switch scalar.resolved {
            case .null: return .null
            case .bool(let bool): return .bool(bool)
            case .int(let int): return .number(Double(int))
            case .float(let double): return .number(double)
            case .string(let string): return .string(string)
            }
        case .mapping(let mapping):
            var fields: [String: ConfigValue] = [:]
            for pair in mapping.pairs {
                guard let converted = convert(pair.value, budget: &budget) else { return nil }
                fields[pair.key.string ?? "\(pair.key)"] = converted
            }
            return .map(fields)
        case .sequence(let sequence):
            var items: [ConfigValue] = []
            for item in sequence.items {
                guard let converted = convert(item, budget: &budget) else { return nil }
                items.append(converted)
            }
            return .list(items)
        }
    }

    /// Dotted paths of every leaf in a tree (maps are descended, lists and scalars are leaves),
    /// except inside free-form dictionaries, whose keys are data, not settings.
    static func leafPaths(_ value: ConfigValue, prefix: String = "") -> [String] {
        guard case .map(let fields) = value, !freeFormSections.contains(prefix) else { return prefix.isEmpty ? [] : [prefix] }
        return fields.flatMap { key, child in leafPaths(child, prefix: prefix.isEmpty ? key : "\(prefix).\(key)") }
    }

    static let freeFormSections: Set<String> = ["workers.sizes", "workers.labels", "signals"]
}
