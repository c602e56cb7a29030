/// The file `kscaler config init` writes: every key of `ConfigSchema` in documentation order,
/// each under its setting's one-line summary, with its default. It is generated from
/// `ConfigSettings.all` (the list the parser reads), so it cannot offer a key the parser
/// refuses or miss one it accepts.
///
/// A key with a default is written as it; a key with none (or whose default is derived from
/// other settings, like the signals' queries) is commented out (`# key:`) so the file means
/// the defaults exactly. Values that must be given are placeholders `"<required: …>"`: the
/// parser recognises them, so `config check` on the untouched file names exactly those.
package struct StarterConfig: Sendable {
    /// Values to write instead of the defaults, by dotted path, as YAML text (what `--discover`
    /// or the command line found: `region`, `workers.subnets`, …).
    package var values: [String: String] = [:]
    /// Comment lines under the header (what discovery found and what it did not).
    package var notes: [String] = []

    package init(values: [String: String] = [:], notes: [String] = []) {
        self.values = values
        self.notes = notes
    }

    /// A value the user must replace.
    package static func placeholder(_ hint: String) -> String { "<required: \(hint)>" }

    /// Whether `value` is a placeholder `config init` wrote and nobody filled.
    package static func isPlaceholder(_ value: ConfigValue) -> Bool {
        guard case .string(let text) = value else { return false }
        let trimmed = Scalar.trimmed(text)
        return trimmed.hasPrefix("<required") && trimmed.hasSuffix(">")
    }

    /// Workers need either a launch template or an image, instance types and subnets: the
    /// starter takes the launch template, the route with the fewest values to fill, and asks
    /// for its name and the instance types (whose sizes are learned at run time when not given).
    static let launchTemplateHint = "the name of the launch template workers start from"
    static let instanceTypesHint = "instance types in preference order, e.g. [t3.large]"

    /// How to fill the placeholder at `path`.
    static func fix(forPlaceholderAt path: String) -> String {
        switch path {
        case "workers.launch_template.name": "set the launch template's name (or replace name: with id: lt-…)"
        case "workers.instance_types": "list the instance types to launch, in preference order, e.g. instance_types: [t3.large]"
        default: ConfigSettings.all.first { $0.dotted == path }?.requiredFix ?? "replace the placeholder with the value it asks for"
        }
    }

    /// The defaults the file shows: a blank configuration's, with placeholders where a value
    /// is required.
    static func defaults() -> KScalerConfig {
        var config = KScalerConfig.blank
        for setting in ConfigSettings.all where setting.requiredFix != nil {
            let hint = placeholder(setting.requiredFix!)
            switch setting.dotted {
            case "cluster_id": config.clusterID = hint
            case "table": config.table = hint
            case "prometheus.url": config.prometheus.url = hint
            default: break
            }
        }
        config.workers.launchTemplate = LaunchTemplateRef(identity: .name(placeholder(launchTemplateHint)))
        return config
    }

    /// The file's text. `machines` gives the default signal queries their worker selector.
    package func render(machines: MachineIdentity) -> String {
        var lines = [
            "# kscaler configuration, written by `kscaler config init`.",
            "# Every setting is listed with its default. A commented-out key (# key:) has no default, or one",
            "# derived from other settings, and stays unset until you uncomment and fill it.",
            "# Replace every \"<required: …>\" value; `kscaler config check` names each one left.",
            "# KSCALER_* environment variables override this file (KSCALER_SCALE_UP_CPU_THRESHOLD=80 …).",
        ]
        lines += notes.map { "# \($0)" }
        let defaults = Self.defaults()
        var specs: [String: SettingSpec] = [:]
        for setting in ConfigSettings.all { specs[setting.dotted] = setting }
        let values = self.values.merging(["workers.instance_types": Self.yaml(Self.placeholder(Self.instanceTypesHint))]) { given, _ in given }
        for entry in Self.entries(ConfigSchema.root, path: [], specs: specs, defaults: defaults, machines: machines, values: values) {
            lines.append("")
            entry.render(indent: 0, commented: false, marker: "", into: &lines)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The dotted paths of the placeholders left in a configuration tree.
    static func placeholderPaths(in value: ConfigValue, prefix: String = "") -> [String] {
        if isPlaceholder(value) { return [prefix] }
        switch value {
        case .map(let fields):
            return fields.keys.sorted().flatMap { placeholderPaths(in: fields[$0]!, prefix: prefix.isEmpty ? $0 : "\(prefix).\($0)") }
        case .list(let items):
            return items.indices.flatMap { placeholderPaths(in: items[$0], prefix: "\(prefix)[\($0)]") }
        default:
            return []
        }
    }

    // MARK: Building the entries

    /// One key of the file: its summary, and either a value (YAML text, "" for none) or children.
    struct Entry {
        var key: String
        var summary: String?
        var value: String?
        var active = false
        var children: [Entry] = []
        /// The children are one example item of a list (`schedules:`).
        var listItem = false

        /// A section is written out when any key below it is.
        var isActive: Bool { value == nil ? children.contains(where: \.isActive) : active }

        func render(indent: Int, commented: Bool, marker: String, into lines: inout [String]) {
            let commented = commented || !isActive
            let pad = String(repeating: " ", count: indent)
            if let summary { lines.append(pad + "# " + summary) }
            let head = pad + (commented ? "# " : "") + marker + key + ":"
            if let value {
                lines.append(value.isEmpty ? head : head + " " + value)
                return
            }
            lines.append(head)
            for (index, child) in children.enumerated() {
                if listItem {
                    child.render(indent: indent + 2, commented: commented, marker: index == 0 ? "- " : "  ", into: &lines)
                } else {
                    child.render(indent: indent + 2 + marker.count, commented: commented, marker: "", into: &lines)
                }
            }
        }
    }

    static func entries(_ node: SchemaNode, path: [String], specs: [String: SettingSpec], defaults: KScalerConfig,
                        machines: MachineIdentity, values: [String: String]) -> [Entry] {
        guard case .section(let children) = node else { return [] }
        return children.map { key, child in
            let childPath = path + [key]
            let dotted = childPath.joined(separator: ".")
            guard let spec = specs[dotted] else {
                return Entry(key: key, children: entries(child, path: childPath, specs: specs, defaults: defaults, machines: machines, values: values))
            }
            let listed = Dictionary(spec.listing(defaults, machines).map { ($0.path.joined(separator: "."), $0.value) }) { first, _ in first }
            let explicit = Set(spec.environment(defaults).map { $0.path.joined(separator: ".") })
            func leaf(_ key: String, _ dotted: String, summary: String?) -> Entry {
                if let given = values[dotted] { return Entry(key: key, summary: summary, value: given, active: true) }
                let value = listed[dotted] ?? ""
                // A derived default (the signals' queries, the join parameters) is shown, not set.
                return Entry(key: key, summary: summary, value: yaml(value), active: !value.isEmpty && explicit.contains(dotted))
            }
            switch spec.shape {
            case .value, .dictionary:
                return leaf(key, dotted, summary: spec.summary)
            case .section(let keys):
                var entry = Entry(key: key, summary: spec.summary)
                entry.children = keys.map { leaf($0, "\(dotted).\($0)", summary: nil) }
                return entry
            case .named(let section):
                // One example pool, every key commented out: pools replace `workers:`.
                var example = Entry(key: "general")
                example.children = exampleEntries(section, summaries: poolSummaries)
                return Entry(key: key, summary: spec.summary, children: [example])
            case .list(let item):
                var entry = Entry(key: key, summary: spec.summary, children: exampleEntries(item, summaries: ScheduleSection.summaries))
                entry.listItem = true
                return entry
            }
        }
    }

    /// Every key of a user-named section or list item, commented out, each with its summary.
    static func exampleEntries(_ node: SchemaNode, summaries: [String: String], prefix: String = "") -> [Entry] {
        guard case .section(let children) = node else { return [] }
        return children.map { key, child in
            let dotted = prefix.isEmpty ? key : "\(prefix).\(key)"
            if case .section = child {
                return Entry(key: key, summary: summaries[dotted], children: exampleEntries(child, summaries: summaries, prefix: dotted))
            }
            return Entry(key: key, summary: summaries[dotted], value: "")
        }
    }

    /// A pool's keys, described by the top-level settings they mirror and the pool's own.
    static var poolSummaries: [String: String] {
        var summaries = PoolSection.ownKeySummaries
        for spec in ConfigSettings.poolScoped {
            summaries[ConfigSettings.poolKey(spec.path).joined(separator: ".")] = spec.summary
        }
        return summaries
    }

    /// A value as YAML: plain when that reads back as the same text (or number, or boolean),
    /// double-quoted otherwise.
    package static func yaml(_ text: String) -> String {
        if text.isEmpty { return "" }
        let plain = text.unicodeScalars.allSatisfy { $0.isASCII && (("a"..."z").contains($0) || ("A"..."Z").contains($0)
            || ("0"..."9").contains($0) || "._/:-".unicodeScalars.contains($0)) }
        let first = text.unicodeScalars.first!
        let ambiguous = ["y", "n", "yes", "no", "on", "off", "null"].contains(text.lowercased())
        if plain, !ambiguous, first != "-", first != ":", first != ".", text.last != ":" { return text }
        return jsonQuoted(text)
    }
}
