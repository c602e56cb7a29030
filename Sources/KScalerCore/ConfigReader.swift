#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One map of the configuration tree, with its dotted path.
struct Section {
    let path: String
    let fields: [String: ConfigValue]

    func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value under `key`; YAML `key:` and `key: null` count as absent.
    func value(_ key: String) -> ConfigValue? {
        guard let value = fields[key], value != .null else { return nil }
        return value
    }

    func has(_ key: String) -> Bool { value(key) != nil }
}

/// Walks the tree and collects problems instead of stopping at the first one.
struct ConfigReader {
    private(set) var problems: [ConfigProblem] = []
    /// Where `time_zone` names are looked up.
    var zones = ZoneDatabase.builtIn
    /// Paths judged unusable without a problem of their own (one was reported inside them).
    private var broken: Set<String> = []

    mutating func report(_ path: String, _ message: String, fix: String) {
        problems.append(ConfigProblem(path: path.isEmpty ? "(top level)" : path, message: message, fix: fix))
    }

    mutating func markBroken(_ path: String) { broken.insert(path) }

    /// True when a problem was already reported at `path`: checks spanning fields skip such
    /// values rather than pile a second, confusing problem on top.
    func isBroken(_ path: String) -> Bool {
        broken.contains(path) || problems.contains { $0.path == path }
    }

    /// Checks that the tree has the schema's shape: a map wherever a section is, and no key
    /// the schema does not know (with a did-you-mean).
    mutating func checkShape(_ value: ConfigValue?, _ node: SchemaNode, path: [String]) {
        guard let value, value != .null else { return }
        let dotted = path.joined(separator: ".")
        switch node {
        case .leaf, .dictionary:
            return
        case .section(let children):
            guard case .map(let fields) = value else {
                report(dotted, "expected a map of settings, got \(value.kindName)",
                       fix: "indent the settings under \(dotted.isEmpty ? "the top level" : "\(dotted):") as key: value pairs")
                return
            }
            let known = children.map(\.key)
            for key in fields.keys.sorted() where !known.contains(key) {
                let fix = closestMatch(to: key, among: known).map { "did you mean \"\($0)\"?" }
                    ?? "remove it; known keys here: \(known.joined(separator: ", "))"
                report(dotted.isEmpty ? key : "\(dotted).\(key)", "unknown key \"\(key)\"", fix: fix)
            }
            for (key, child) in children { checkShape(fields[key], child, path: path + [key]) }
        case .namedSections(let section):
            guard case .map(let fields) = value else {
                report(dotted, "expected a map of named sections, got \(value.kindName)", fix: "write \(dotted): {<name>: {…}, …}")
                return
            }
            for (name, child) in fields.sorted(by: { $0.key < $1.key }) { checkShape(child, section, path: path + [name]) }
        case .list(let item):
            guard case .list(let items) = value else {
                report(dotted, "expected a list, got \(value.kindName)", fix: "write \(dotted) as a YAML list of maps: - {…}")
                return
            }
            // Items are named by position: `schedules[0].cron`.
            for (index, child) in items.enumerated() { checkShape(child, item, path: Array(path.dropLast()) + ["\(path.last ?? "")[\(index)]"]) }
        }
    }

    /// The map at `path` as a section (its shape was checked by `checkShape`); anything else is empty.
    func section(_ value: ConfigValue?, at path: String) -> Section {
        guard case .map(let fields)? = value else { return Section(path: path, fields: [:]) }
        return Section(path: path, fields: fields)
    }

    /// The parsed value of `key`; nil when absent, or when invalid (then a problem is recorded).
    mutating func read<T>(_ section: Section, _ key: String, _ parse: (ConfigValue) -> Result<T, ScalarError>) -> T? {
        guard let value = section.value(key) else { return nil }
        switch parse(value) {
        case .success(let parsed): return parsed
        case .failure(let error):
            report(section.path(key), error.message, fix: error.fix)
            return nil
        }
    }

    /// Like `read`, but absence is a problem too.
    mutating func require<T>(_ section: Section, _ key: String, fix: String, _ parse: (ConfigValue) -> Result<T, ScalarError>) -> T? {
        guard section.has(key) else {
            report(section.path(key), "is required", fix: fix)
            return nil
        }
        return read(section, key, parse)
    }
}

extension ConfigValue {
    /// The value at `path` (map keys); nil when absent, null, or under something that is not a map.
    func value(at path: [String]) -> ConfigValue? {
        var current = self
        for key in path {
            guard case .map(let fields) = current, let next = fields[key] else { return nil }
            current = next
        }
        if case .null = current { return nil }
        return current
    }
}
