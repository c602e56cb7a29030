#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One entry of `schedules:`: from each start its cron expression names (in its time zone),
/// for `duration`, the bounds are raised to at least `min` / `max`. No state: whether it is
/// active is computed from the clock.
///
/// DST: a start time the clocks skip (spring forward) starts at the first instant after the
/// gap; a start time that occurs twice (fall back) starts at its first occurrence; the
/// duration is elapsed time, so a 10h window across a change ends 10 hours later (at 19:00 or
/// 17:00 on the wall clock).
package struct ScheduleWindow: Sendable, Equatable {
    package var name: String?
    package var cron: CronExpression
    package var duration: TimeInterval
    package var timeZone: TimeZoneRules
    package var min: Int?
    package var max: Int?
    /// The pool it raises, with `pools:`; nil raises `nodes`.
    package var pool: String?
    /// Its name, or its place in the list (`#1`) when unnamed.
    package var label: String

    package init(name: String? = nil, cron: CronExpression, duration: TimeInterval, timeZone: TimeZoneRules = .utc,
                 min: Int? = nil, max: Int? = nil, pool: String? = nil, label: String? = nil) {
        self.name = name
        self.cron = cron
        self.duration = duration
        self.timeZone = timeZone
        self.min = min
        self.max = max
        self.pool = pool
        self.label = label ?? name ?? "#1"
    }

    /// How far `nextStart` looks: eight years always hold a February 29 (2100 aside).
    static let horizonDays: Int64 = 8 * 366

    /// The latest start at or before `instant`, looking back no further than `notBefore`.
    func latestStart(atOrBefore instant: Int64, notBefore: Int64) -> Int64? {
        var day = floorDivide(timeZone.local(instant), 86400) + 1
        let lastDay = floorDivide(timeZone.local(notBefore), 86400) - 1
        let times = cron.timesOfDay
        while day >= lastDay {
            if cron.matchesDay(day) {
                for time in times.reversed() {
                    let start = timeZone.instant(local: day * 86400 + time)
                    if start <= instant && start >= notBefore { return start }
                }
            }
            day -= 1
        }
        return nil
    }

    /// The first start strictly after `instant`, within `horizonDays`.
    func nextStart(after instant: Int64) -> Int64? {
        var day = floorDivide(timeZone.local(instant), 86400) - 1
        let lastDay = day + Self.horizonDays
        let times = cron.timesOfDay
        while day <= lastDay {
            if cron.matchesDay(day) {
                for time in times {
                    let start = timeZone.instant(local: day * 86400 + time)
                    if start > instant { return start }
                }
            }
            day += 1
        }
        return nil
    }

    /// The start of the occurrence active at `instant` (start ≤ instant < start + duration), or nil.
    func activeStart(at instant: TimeInterval) -> Int64? {
        let seconds = Int64(instant.rounded(.down))
        guard let start = latestStart(atOrBefore: seconds, notBefore: Int64((instant - duration).rounded(.down))),
              TimeInterval(start) + duration > instant else { return nil }
        return start
    }
}

/// What the schedules do at one moment: the windows active, the bounds they give each pool
/// (`pool` nil: the `workers:` fleet), and when that changes next.
package struct ScheduleStatus: Sendable, Equatable, Codable {
    package struct ActiveWindow: Sendable, Equatable, Codable {
        package var name: String
        package var pool: String?
        package var cron: String
        package var timeZone: String
        package var startedAt: Date
        package var endsAt: Date
        package var min: Int?
        package var max: Int?

        private enum CodingKeys: String, CodingKey {
            case name, pool, cron, timeZone = "time_zone", startedAt = "started_at", endsAt = "ends_at", min, max
        }
    }

    package struct Bounds: Sendable, Equatable, Codable {
        package var pool: String?
        package var baseMin: Int
        package var baseMax: Int
        /// In force now: the base raised by the active windows.
        package var min: Int
        package var max: Int
        /// The active windows that raised min or max above the base.
        package var raisedBy: [String]

        package var raised: Bool { min != baseMin || max != baseMax }

        private enum CodingKeys: String, CodingKey {
            case pool, baseMin = "base_min", baseMax = "base_max", min, max, raisedBy = "raised_by"
        }
    }

    package struct Change: Sendable, Equatable, Codable {
        package var at: Date
        /// The bounds that change then, with their new values.
        package var bounds: [Bounds]
        package var starting: [String]
        package var ending: [String]
    }

    package var active: [ActiveWindow]
    package var bounds: [Bounds]
    /// The next instant any bound changes, or nil when none does within the next 64 starts and
    /// ends (windows that overlap one another for ever keep the bounds as they are).
    package var nextChange: Change?

    private enum CodingKeys: String, CodingKey { case active, bounds, nextChange = "next_change" }

    /// The schedules' effect at `now` on the base bounds (by pool; nil for `workers:`).
    package init(windows: [ScheduleWindow], base: [(pool: String?, bounds: NodeBounds)], now: Date) {
        let instant = now.timeIntervalSince1970
        let starts = windows.map { $0.activeStart(at: instant) }
        active = zip(windows, starts).compactMap { window, start in
            start.map { start in
                let started = Date(timeIntervalSince1970: TimeInterval(start))
                return ActiveWindow(name: window.label, pool: window.pool, cron: window.cron.text, timeZone: window.timeZone.name,
                                    startedAt: started, endsAt: started.addingTimeInterval(window.duration), min: window.min, max: window.max)
            }
        }
        bounds = Self.bounds(windows: windows, active: starts.map { $0 != nil }, base: base)

        // Step from one start or end to the next until a bound changes.
        var point = instant
        nextChange = nil
        for _ in 0..<64 {
            let candidates = windows.flatMap { window in
                [window.nextStart(after: Int64(point.rounded(.down))).map(TimeInterval.init),
                 window.activeStart(at: point).map { TimeInterval($0) + window.duration }].compactMap { $0 }
            }.filter { $0 > point }
            guard let next = candidates.min() else { break }
            let activeNext = windows.map { $0.activeStart(at: next) != nil }
            let boundsNext = Self.bounds(windows: windows, active: activeNext, base: base)
            let changed = zip(bounds, boundsNext).filter { $0.min != $1.min || $0.max != $1.max }.map(\.1)
            if !changed.isEmpty {
                let wasActive = starts.map { $0 != nil }
                nextChange = Change(at: Date(timeIntervalSince1970: next), bounds: changed,
                                    starting: windows.indices.filter { activeNext[$0] && !wasActive[$0] }.map { windows[$0].label },
                                    ending: windows.indices.filter { !activeNext[$0] && wasActive[$0] }.map { windows[$0].label })
                break
            }
            point = next
        }
    }

    /// Each pool's base raised by the active windows: the highest min and max win. A min raised
    /// above the max in force is held at that max (a window never breaks the cap).
    static func bounds(windows: [ScheduleWindow], active: [Bool], base: [(pool: String?, bounds: NodeBounds)]) -> [Bounds] {
        base.map { pool, nodes in
            let mine = windows.indices.filter { active[$0] && windows[$0].pool == pool }
            let max = ([nodes.max] + mine.compactMap { windows[$0].max }).max() ?? nodes.max
            let min = ([nodes.min] + mine.compactMap { windows[$0].min }).max() ?? nodes.min
            let raisedBy = mine.filter { index in
                (windows[index].min.map { $0 > nodes.min && $0 == min } ?? false) || (windows[index].max.map { $0 > nodes.max && $0 == max } ?? false)
            }.map { windows[$0].label }
            return Bounds(pool: pool, baseMin: nodes.min, baseMax: nodes.max, min: Swift.min(min, max), max: max, raisedBy: raisedBy)
        }
    }

    /// The bounds in force for `pool` (nil: the `workers:` fleet).
    package func bounds(of pool: String?) -> Bounds? { bounds.first { $0.pool == pool } }

    /// Plain-words lines for the decision's reasons: each bound a window raised, and a min held at the max in force.
    var reasons: [Reason] {
        var reasons: [Reason] = []
        for bound in bounds where bound.raised {
            let windows = active.filter { bound.raisedBy.contains($0.name) && $0.pool == bound.pool }.map { window in
                "\(window.name) (\(window.cron), \(window.timeZone)) until \(formatDate(window.endsAt))"
            }
            let what = [bound.min != bound.baseMin ? "min \(bound.baseMin) → \(bound.min)" : nil,
                        bound.max != bound.baseMax ? "max \(bound.baseMax) → \(bound.max)" : nil].compactMap { $0 }
            reasons.append(Reason(.scheduled, (bound.pool.map { "pool \($0): " } ?? "") + "scheduled "
                + what.joined(separator: ", ") + " by " + windows.joined(separator: "; ")))
        }
        for window in active {
            guard let min = window.min, let bound = bounds(of: window.pool), min > bound.max else { continue }
            reasons.append(Reason(.scheduled, "window \(window.name) asks for min \(min), held at max \(bound.max) in force"))
        }
        return reasons
    }
}
