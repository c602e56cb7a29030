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

    mutating func report(_ path: String, _ message: String, fix: String) {
        problems.append(ConfigProblem(path: path.isEmpty ? "(top level)" : path, message: message, fix: fix))
    }

    /// True when a problem was already reported at `path`: checks spanning fields skip such
    /// values rather than pile a second, confusing problem on top.
    func isBroken(_ path: String) -> Bool {
        problems.contains { $0.path == path }
    }

    /// Opens the section at `path` (keys checked against the schema). Absent → empty section,
    /// so every field takes its default.
    mutating func section(_ value: ConfigValue?, at path: String) -> Section {
        let empty = Section(path: path, fields: [:])
        guard let value, value != .null else { return empty }
        guard case .map(let fields) = value else {
            report(path, "expected a map of settings, got \(value.kindName)", fix: "indent the settings under \(path.isEmpty ? "the top level" : "\(path):") as key: value pairs")
            return empty
        }
        let known = ConfigSchema.node(at: path.isEmpty ? [] : path.split(separator: ".").map(String.init))?.keys ?? []
        for key in fields.keys.sorted() where !known.contains(key) {
            let fieldPath = path.isEmpty ? key : "\(path).\(key)"
            let fix = closestMatch(to: key, among: known).map { "did you mean \"\($0)\"?" }
                ?? "remove it; known keys here: \(known.joined(separator: ", "))"
            report(fieldPath, "unknown key \"\(key)\"", fix: fix)
        }
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

    /// Reports `message` at `section.key` when `condition` fails and passes the value through.
    mutating func check<T>(_ value: T?, _ path: String, _ condition: (T) -> Bool, _ message: (T) -> String, fix: String) -> T? {
        guard let value else { return nil }
        if !condition(value) {
            report(path, message(value), fix: fix)
            return nil
        }
        return value
    }

    /// A duration that must be more than zero.
    mutating func positiveDuration(_ section: Section, _ key: String) -> TimeInterval? {
        check(read(section, key, Scalar.duration), section.path(key), { $0 > 0 }, { "must be longer than 0, got \(formatDuration($0))" },
              fix: "write a positive duration such as 30s or 5m")
    }

    /// A whole number of at least `minimum`.
    mutating func integer(_ section: Section, _ key: String, atLeast minimum: Int) -> Int? {
        check(read(section, key, Scalar.integer), section.path(key), { $0 >= minimum }, { "must be at least \(minimum), got \($0)" },
              fix: "write a whole number of \(minimum) or more")
    }
}
