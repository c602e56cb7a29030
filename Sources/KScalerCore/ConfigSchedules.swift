#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `schedules:`, a list of windows `{name, cron, duration, time_zone, min, max, pool}` that
/// raise the bounds while active. Read after `nodes` and `pools` (`ConfigSettings.all` order),
/// so each window is checked against the bounds it raises, with every problem at once.
enum ScheduleSection {
    static let keys = ["name", "cron", "duration", "time_zone", "min", "max", "pool"]
    /// What each key of a window means, in one line (`config init` writes them).
    static let summaries: [String: String] = [
        "name": "the window's name, in reasons and `config check`",
        "cron": "when the window starts: five cron fields in its time zone, e.g. \"0 8 * * MON-FRI\"",
        "duration": "how long it lasts once started, e.g. 10h (at most 31d)",
        "time_zone": "an IANA zone such as Europe/Berlin (default UTC)",
        "min": "the least nodes while active (min or max or both)",
        "max": "the most nodes while active",
        "pool": "with pools: the pool whose bounds it raises",
    ]

    /// The longest window: a month covers any calendar period a cron start names; anything
    /// longer is a standing bound (raise `nodes.min`), or a unit typed wrong (`10d` for `10h`).
    static let maxDuration: TimeInterval = 31 * 86400

    static var setting: SettingSpec { SettingSpec(
        path: ["schedules"], shape: .list(.section(keys.map { ($0, .leaf) })),
        summary: "windows {name, cron, duration, time_zone, min, max, pool} raising the bounds while active (cron in the zone, default UTC)",
        read: { reader, value, config in
            guard case .list(let items)? = value else { return }  // `checkShape` said what else it is
            config.schedules = read(items, config: config, into: &reader)
        },
        listing: { config, _ in lines(config) },
        environment: { _ in [] }) }

    private static func read(_ items: [ConfigValue], config: KScalerConfig, into reader: inout ConfigReader) -> [ScheduleWindow] {
        var windows: [ScheduleWindow] = []
        var paths: [String] = []
        var names: [String: String] = [:]
        for (index, item) in items.enumerated() {
            let path = "schedules[\(index)]"
            guard case .map(let fields) = item else { continue }  // `checkShape` said so
            let section = Section(path: path, fields: fields)
            let problemsBefore = reader.problems.count
            let name = reader.read(section, "name", TextRule.scheduleName.parse)
            if let name {
                if let first = names[name] {
                    reader.report(section.path("name"), "\"\(name)\" is also the name of \(first)", fix: "give each window its own name")
                } else {
                    names[name] = path
                }
            }
            let cron = reader.require(section, "cron", fix: "set when the window starts, e.g. cron: \"0 8 * * MON-FRI\"") { value in
                Scalar.string(value).flatMap { CronExpression.parse(Scalar.trimmed($0)) }
            }
            let duration = reader.require(section, "duration", fix: "set how long it lasts, e.g. duration: 10h",
                                          Parse.checked(Parse.positiveDuration, { $0 <= maxDuration },
                                                        { "\(formatDuration($0)) is longer than \(formatDuration(maxDuration))" },
                                                        fix: "write at most \(formatDuration(maxDuration)): a longer window is a standing bound "
                                                            + "(raise nodes.min instead), or a unit typed wrong"))
            let zones = reader.zones
            let timeZone = reader.read(section, "time_zone") { value in
                Scalar.string(value).flatMap { zones.rules(for: Scalar.trimmed($0)) }
            } ?? (section.has("time_zone") ? nil : TimeZoneRules.utc)
            let min = reader.read(section, "min", Parse.integer(atLeast: 0))
            let max = reader.read(section, "max", Parse.integer(atLeast: 1))
            if !section.has("min") && !section.has("max") {
                reader.report(section.path("min"), "a window needs min or max (or both)", fix: "set the min it raises nodes to, e.g. min: 4")
            }
            if let min, let max, min > max {
                reader.report(section.path("min"), "min \(min) is above the window's max \(max)", fix: "make min at most max")
            }
            let pool = reader.read(section, "pool", TextRule.pool.parse)
            checkPool(pool, given: section.has("pool"), section: section, config: config, into: &reader)
            guard reader.problems.count == problemsBefore, let cron, let duration, let timeZone else { continue }
            windows.append(ScheduleWindow(name: name, cron: cron, duration: duration, timeZone: timeZone, min: min, max: max, pool: pool,
                                          label: name ?? "#\(index + 1)"))
            paths.append(path)
        }
        checkMinimums(windows, paths: paths, config: config, into: &reader)
        return windows
    }

    /// With `pools:` a window names its pool; without, it raises `nodes` and names none.
    private static func checkPool(_ pool: String?, given: Bool, section: Section, config: KScalerConfig, into reader: inout ConfigReader) {
        guard let pools = config.pools else {
            if given {
                reader.report(section.path("pool"), "is used only with pools:", fix: "remove it: without pools the window raises nodes.min / nodes.max")
            }
            return
        }
        let names = pools.keys.sorted()
        guard let pool else {
            if !given { reader.report(section.path("pool"), "is required with pools:", fix: "name the pool the window raises, one of: \(names.joined(separator: ", "))") }
            return
        }
        if pools[pool] == nil {
            let suggestion = closestMatch(to: pool, among: names).map { "did you mean \($0)? " } ?? ""
            reader.report(section.path("pool"), "\"\(pool)\" is not a configured pool", fix: suggestion + "name one of: \(names.joined(separator: ", "))")
        }
    }

    /// A window's min can never be above the highest max its pool (or `nodes`) could have:
    /// the base max or any window's raised max (and, with pools, the cap across pools).
    private static func checkMinimums(_ windows: [ScheduleWindow], paths: [String], config: KScalerConfig, into reader: inout ConfigReader) {
        guard !reader.isBroken("nodes.max") else { return }
        for (window, path) in zip(windows, paths) {
            guard let min = window.min else { continue }
            let baseMax: Int
            if let poolName = window.pool {
                guard let pool = config.pools?[poolName] else { continue }
                baseMax = pool.nodes.max
            } else {
                baseMax = config.nodes.max
            }
            let highest = ([baseMax] + windows.filter { $0.pool == window.pool }.compactMap(\.max)).max() ?? baseMax
            if min > highest {
                let owner = window.pool.map { "pool \($0)'s max" } ?? "nodes.max"
                reader.report("\(path).min", "min \(min) is above the highest max it could ever have, \(highest) (\(owner) or a window's max)",
                              fix: "lower min to \(highest) or less, or raise \(owner) (or give the window max: \(min))")
            } else if window.pool != nil, min > config.nodes.max {
                reader.report("\(path).min", "min \(min) is above the cluster-wide max \(config.nodes.max) across pools",
                              fix: "lower min to \(config.nodes.max) or less, or raise nodes.max")
            }
        }
    }

    /// `config check`'s lines: each window under its name (or `#<n>`).
    static func lines(_ config: KScalerConfig) -> [(path: [String], value: String)] {
        config.schedules.flatMap { window -> [(path: [String], value: String)] in
            let prefix = ["schedules", window.label]
            var lines: [(path: [String], value: String)] = [
                (prefix + ["cron"], window.cron.text), (prefix + ["duration"], formatDuration(window.duration)),
                (prefix + ["time_zone"], window.timeZone.name),
            ]
            if let min = window.min { lines.append((prefix + ["min"], String(min))) }
            if let max = window.max { lines.append((prefix + ["max"], String(max))) }
            if let pool = window.pool { lines.append((prefix + ["pool"], pool)) }
            return lines
        }
    }
}

extension TextRule {
    static let scheduleName = TextRule(
        expected: "a window name (1 to 40 of a-z 0-9 -, a letter or digit at both ends)",
        fix: "use lowercase letters, digits and dashes, e.g. business-hours",
        isValid: { ASCIIMatch.matches($0, ASCIIMatch.isShortName) }
    )
}
