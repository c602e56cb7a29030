import Foundation
import PropertyBased
import Testing
@testable import KScalerCore

/// The system's compiled tz database (Debian's tzdata), the file kscaler reads in production.
func zone(_ name: String) throws -> TimeZoneRules {
    let bytes = try #require(FileManager.default.contents(atPath: "/usr/share/zoneinfo/\(name)"), "tzdata is not installed")
    return try TimeZoneRules.parse(tzif: Array(bytes), name: name).get()
}

func cron(_ text: String) throws -> CronExpression { try CronExpression.parse(text).get() }

func utc(_ text: String) throws -> Date { try Date(text, strategy: .iso8601) }

extension ScheduleWindow {
    /// Unix seconds of the first start after `date`.
    func next(after date: Date) -> Date? {
        nextStart(after: Int64(date.timeIntervalSince1970)).map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    func activeSince(_ date: Date) -> Date? {
        activeStart(at: date.timeIntervalSince1970).map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }
}

@Suite("schedules: cron expressions")
struct CronExpressionTests {
    @Test("names, ranges, lists and steps mean what their numbers mean")
    func namesAndSteps() throws {
        #expect(try cron("0 8 * * MON-FRI").daysOfWeek == cron("0 8 * * 1-5").daysOfWeek)
        #expect(try cron("0 8 * * mon-fri").daysOfWeek == cron("0 8 * * 1,2,3,4,5").daysOfWeek)
        #expect(try cron("0 0 * JAN,jul *").months == cron("0 0 * 1,7 *").months)
        #expect(try cron("*/15 9 * * *").timesOfDay == [32400, 33300, 34200, 35100] as [Int64])  // 09:00, 09:15, 09:30, 09:45
        #expect(try cron("1-5/2 0 * * *").timesOfDay == [60, 180, 300] as [Int64])
        #expect(try cron("0 */8 * * *").timesOfDay == [0, 28800, 57600] as [Int64])
        // 0 and 7 are both Sunday; a range through 7 wraps onto it.
        #expect(try cron("0 0 * * 7").daysOfWeek == cron("0 0 * * SUN").daysOfWeek)
        #expect(try cron("0 0 * * 5-7").daysOfWeek == cron("0 0 * * FRI,SAT,SUN").daysOfWeek)
        #expect(try cron("0 0 * * 0-7").daysOfWeek == 0x7F)
        #expect(try cron("  0   8 *  * MON ").text == "0 8 * * MON")
    }

    @Test("day-of-month and day-of-week: either matches when both are restricted, both must otherwise")
    func dayFieldsOrRule() throws {
        let firstOrMonday = ScheduleWindow(cron: try cron("0 0 1 * MON"), duration: 60)
        // 2026-06-01 is a Monday: after it, the next Monday (8th), then July 1st (a Wednesday).
        #expect(firstOrMonday.next(after: try utc("2026-06-01T00:00:00Z")) == (try utc("2026-06-08T00:00:00Z")))
        #expect(firstOrMonday.next(after: try utc("2026-06-29T00:00:00Z")) == (try utc("2026-07-01T00:00:00Z")))
        #expect(firstOrMonday.next(after: try utc("2026-07-01T00:00:00Z")) == (try utc("2026-07-06T00:00:00Z")))
        // A field starting with * (even */2) is not a restriction: then both must match, as cronie does.
        let oddMondays = ScheduleWindow(cron: try cron("0 0 */2 * MON"), duration: 60)
        #expect(oddMondays.next(after: try utc("2026-06-01T00:00:00Z")) == (try utc("2026-06-15T00:00:00Z")))  // 8th is even
        let weekdaysOnly = ScheduleWindow(cron: try cron("0 0 * * SAT"), duration: 60)
        #expect(weekdaysOnly.next(after: try utc("2026-06-01T00:00:00Z")) == (try utc("2026-06-06T00:00:00Z")))
    }

    @Test("month ends: the 31st skips 30-day months, February 29 waits for a leap year")
    func monthEnds() throws {
        let thirtyFirst = ScheduleWindow(cron: try cron("0 0 31 * *"), duration: 3600)
        #expect(thirtyFirst.next(after: try utc("2026-04-15T00:00:00Z")) == (try utc("2026-05-31T00:00:00Z")))
        #expect(thirtyFirst.next(after: try utc("2026-05-31T00:00:00Z")) == (try utc("2026-07-31T00:00:00Z")))
        let leapDay = ScheduleWindow(cron: try cron("0 6 29 2 *"), duration: 3600)
        #expect(leapDay.next(after: try utc("2026-01-01T00:00:00Z")) == (try utc("2028-02-29T06:00:00Z")))
        #expect(leapDay.next(after: try utc("2028-02-29T06:00:00Z")) == (try utc("2032-02-29T06:00:00Z")))
        // The day after February 28 in a non-leap year is March 1: the window is not active then.
        #expect(leapDay.activeSince(try utc("2027-03-01T06:30:00Z")) == nil)
        #expect(leapDay.activeSince(try utc("2028-02-29T06:30:00Z")) == (try utc("2028-02-29T06:00:00Z")))
        let lastOfFebruary = ScheduleWindow(cron: try cron("0 0 28,29 2 *"), duration: 60)
        #expect(lastOfFebruary.next(after: try utc("2027-02-28T00:00:00Z")) == (try utc("2028-02-28T00:00:00Z")))
    }

    @Test("a bad expression names its field and what the field allows", arguments: [
        ("0 8 * * MON-FRY", "day-of-week field \"MON-FRY\": \"FRY\" is not a number or a name in 0-7 (0 and 7 are Sunday) or SUN-SAT"),
        ("60 8 * * *", "minute field \"60\": \"60\" is not a number in 0-59"),
        ("0 24 * * *", "hour field \"24\": \"24\" is not a number in 0-23"),
        ("0 0 0 * *", "day-of-month field \"0\": \"0\" is not a number in 1-31"),
        ("0 0 * JANUARY *", "month field \"JANUARY\": \"JANUARY\" is not a number or a name in 1-12 or JAN-DEC"),
        ("*/0 * * * *", "minute field \"*/0\": step \"0\" is not a whole number of 1 or more"),
        ("5/10 * * * *", "minute field \"5/10\": a step needs a range or *: write 5-59/10 or */10"),
        ("0 17-9 * * *", "hour field \"17-9\": range 17-9 runs backwards"),
        ("0 8 * * FRI-SUN", "day-of-week field \"FRI-SUN\": range FRI-SUN runs backwards: write 5-7 to end on Sunday"),
        ("0 8,,9 * * *", "hour field \"8,,9\": has an empty list item"),
    ])
    func badFields(text: String, message: String) {
        guard case .failure(let error) = CronExpression.parse(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.message == "\"\(text)\": \(message)")
        #expect(error.fix.contains("minute hour day-of-month month day-of-week"))
    }

    @Test("five fields, and a date that exists")
    func shape() {
        guard case .failure(let fields) = CronExpression.parse("0 8 * *") else { Issue.record("4 fields parsed"); return }
        #expect(fields.message == "\"0 8 * *\" has 4 fields, a cron expression has 5")
        guard case .failure(let never) = CronExpression.parse("0 0 30 2 *") else { Issue.record("February 30 parsed"); return }
        #expect(never.message.contains("never starts"))
        // With a weekday as well, either may match: that one starts every Monday.
        #expect((try? CronExpression.parse("0 0 30 2 MON").get()) != nil)
    }
}

@Suite("schedules: time zones (TZif) and DST")
struct TimeZoneRulesTests {
    @Test("Europe/Berlin: offsets from the transitions and, past them, the POSIX footer")
    func berlinOffsets() throws {
        let berlin = try zone("Europe/Berlin")
        #expect(berlin.offset(at: Int64(try utc("2026-01-15T12:00:00Z").timeIntervalSince1970)) == 3600)
        #expect(berlin.offset(at: Int64(try utc("2026-07-15T12:00:00Z").timeIntervalSince1970)) == 7200)
        // The switch instants themselves: 01:00 UTC both ways.
        #expect(berlin.offset(at: Int64(try utc("2026-03-29T00:59:59Z").timeIntervalSince1970)) == 3600)
        #expect(berlin.offset(at: Int64(try utc("2026-03-29T01:00:00Z").timeIntervalSince1970)) == 7200)
        #expect(berlin.offset(at: Int64(try utc("2026-10-25T00:59:59Z").timeIntervalSince1970)) == 7200)
        #expect(berlin.offset(at: Int64(try utc("2026-10-25T01:00:00Z").timeIntervalSince1970)) == 3600)
        // Far past any transition in the file: the footer's rule (last Sunday of March / October).
        #expect(berlin.offset(at: Int64(try utc("2099-03-29T00:59:59Z").timeIntervalSince1970)) == 3600)
        #expect(berlin.offset(at: Int64(try utc("2099-03-29T01:00:00Z").timeIntervalSince1970)) == 7200)
        #expect(berlin.offset(at: Int64(try utc("2099-10-25T01:00:00Z").timeIntervalSince1970)) == 3600)
    }

    @Test("a POSIX rule for the southern hemisphere: daylight time spans the new year")
    func southernFooter() throws {
        let sydney = try PosixTZ.parse("AEST-10AEDT,M10.1.0,M4.1.0/3")
        #expect(sydney.offset(at: Int64(try utc("2030-01-15T00:00:00Z").timeIntervalSince1970)) == 11 * 3600)
        #expect(sydney.offset(at: Int64(try utc("2030-07-15T00:00:00Z").timeIntervalSince1970)) == 10 * 3600)
        // Quoted names, and a rule given as day numbers with a negative time.
        let quoted = try PosixTZ.parse("<-03>3<-02>,J60/-1,300")
        #expect(quoted.offset(at: Int64(try utc("2030-06-01T00:00:00Z").timeIntervalSince1970)) == -2 * 3600)
        #expect(quoted.offset(at: Int64(try utc("2030-12-01T00:00:00Z").timeIntervalSince1970)) == -3 * 3600)
        #expect(throws: TimeZoneRules.ParseError.self) { try PosixTZ.parse("CET-1CEST") }
    }

    @Test("a file that is not TZif, or cut short, is refused with why")
    func badFiles() throws {
        let berlin = try #require(FileManager.default.contents(atPath: "/usr/share/zoneinfo/Europe/Berlin"))
        #expect(TimeZoneRules.parse(tzif: Array("cluster_id: demo\n".utf8), name: "x") == .failure(.init(description: "it is not a TZif file (no TZif magic)")))
        #expect(TimeZoneRules.parse(tzif: Array(berlin.prefix(300)), name: "x") == .failure(.init(description: "it is truncated")))
    }

    @Test("Berlin spring forward: a start in the gap starts when the gap ends; windows are elapsed time")
    func berlinSpringForward() throws {
        let berlin = try zone("Europe/Berlin")
        // 02:30 does not exist on 2026-03-29: the first instant after the gap is 03:00 CEST.
        let inGap = ScheduleWindow(cron: try cron("30 2 29 3 *"), duration: 3600, timeZone: berlin)
        #expect(inGap.next(after: try utc("2026-03-01T00:00:00Z")) == (try utc("2026-03-29T01:00:00Z")))
        // 08:00 local the day before and the day of: 07:00Z, then 06:00Z.
        let business = ScheduleWindow(cron: try cron("0 8 * * *"), duration: 10 * 3600, timeZone: berlin)
        #expect(business.next(after: try utc("2026-03-28T00:00:00Z")) == (try utc("2026-03-28T07:00:00Z")))
        #expect(business.next(after: try utc("2026-03-28T08:00:00Z")) == (try utc("2026-03-29T06:00:00Z")))
        // A window spanning the change: from 00:00 CET for 10h ends at 09:00Z, 11:00 on the wall clock.
        let overnight = ScheduleWindow(cron: try cron("0 0 29 3 *"), duration: 10 * 3600, timeZone: berlin)
        #expect(overnight.activeSince(try utc("2026-03-29T08:59:59Z")) == (try utc("2026-03-28T23:00:00Z")))
        #expect(overnight.activeSince(try utc("2026-03-29T09:00:00Z")) == nil)
    }

    @Test("Berlin fall back: a start in the repeated hour starts at its first occurrence")
    func berlinFallBack() throws {
        let berlin = try zone("Europe/Berlin")
        let repeated = ScheduleWindow(cron: try cron("30 2 25 10 *"), duration: 3600, timeZone: berlin)
        #expect(repeated.next(after: try utc("2026-10-01T00:00:00Z")) == (try utc("2026-10-25T00:30:00Z")))  // 02:30 CEST
        // Only once: the second 02:30 (CET, 01:30Z) is no second start.
        #expect(repeated.next(after: try utc("2026-10-25T00:30:00Z")) == (try utc("2027-10-25T00:30:00Z")))
        let overnight = ScheduleWindow(cron: try cron("0 22 24 10 *"), duration: 10 * 3600, timeZone: berlin)
        // 22:00 CEST = 20:00Z; 10 hours later is 06:00Z, 07:00 CET (the wall clock moved 9 hours).
        #expect(overnight.activeSince(try utc("2026-10-25T05:59:59Z")) == (try utc("2026-10-24T20:00:00Z")))
        #expect(overnight.activeSince(try utc("2026-10-25T06:00:00Z")) == nil)
    }

    @Test("New York: both changes, a start in each odd hour, and a window across fall back")
    func newYork() throws {
        let newYork = try zone("America/New_York")
        let inGap = ScheduleWindow(cron: try cron("30 2 8 3 *"), duration: 3600, timeZone: newYork)
        #expect(inGap.next(after: try utc("2026-03-01T00:00:00Z")) == (try utc("2026-03-08T07:00:00Z")))  // 03:00 EDT
        let repeated = ScheduleWindow(cron: try cron("30 1 1 11 *"), duration: 3600, timeZone: newYork)
        #expect(repeated.next(after: try utc("2026-10-01T00:00:00Z")) == (try utc("2026-11-01T05:30:00Z")))  // 01:30 EDT
        let evening = ScheduleWindow(cron: try cron("0 22 * * *"), duration: 8 * 3600, timeZone: newYork)
        // 22:00 EDT on Oct 31 is 02:00Z; 8 hours on, 10:00Z is 05:00 EST.
        #expect(evening.activeSince(try utc("2026-11-01T09:59:00Z")) == (try utc("2026-11-01T02:00:00Z")))
        #expect(evening.activeSince(try utc("2026-11-01T10:00:00Z")) == nil)
        // The next evening is 22:00 EST, 03:00Z.
        #expect(evening.next(after: try utc("2026-11-01T10:00:00Z")) == (try utc("2026-11-02T03:00:00Z")))
        // Spring: 22:00 EST on Mar 7 (03:00Z) for 8h ends 11:00Z, 07:00 EDT.
        #expect(evening.activeSince(try utc("2026-03-08T10:59:00Z")) == (try utc("2026-03-08T03:00:00Z")))
        #expect(evening.activeSince(try utc("2026-03-08T11:00:00Z")) == nil)
    }
}

@Suite("schedules: bounds in force and the next change")
struct ScheduleStatusTests {
    static let base: [(pool: String?, bounds: NodeBounds)] = [(nil, NodeBounds(min: 2, max: 10))]

    @Test("overlapping windows: the highest min wins, and the next change is when the bounds move")
    func overlaps() throws {
        let day = ScheduleWindow(name: "day", cron: try cron("0 8 * * *"), duration: 10 * 3600, min: 4)
        let peak = ScheduleWindow(name: "peak", cron: try cron("0 12 * * *"), duration: 2 * 3600, min: 6)
        let windows = [day, peak]

        let morning = ScheduleStatus(windows: windows, base: Self.base, now: try utc("2026-06-02T09:00:00Z"))
        #expect(morning.active.map(\.name) == ["day"])
        #expect(morning.bounds == [.init(pool: nil, baseMin: 2, baseMax: 10, min: 4, max: 10, raisedBy: ["day"])])
        #expect(morning.nextChange?.at == (try utc("2026-06-02T12:00:00Z")))
        #expect(morning.nextChange?.bounds.map(\.min) == [6])
        #expect(morning.nextChange?.starting == ["peak"])

        let noon = ScheduleStatus(windows: windows, base: Self.base, now: try utc("2026-06-02T13:00:00Z"))
        #expect(noon.active.map(\.name) == ["day", "peak"])
        #expect(noon.bounds.first?.min == 6)
        #expect(noon.bounds.first?.raisedBy == ["peak"])
        #expect(noon.nextChange?.at == (try utc("2026-06-02T14:00:00Z")))
        #expect(noon.nextChange?.bounds.map(\.min) == [4])
        #expect(noon.nextChange?.ending == ["peak"])

        let night = ScheduleStatus(windows: windows, base: Self.base, now: try utc("2026-06-02T19:00:00Z"))
        #expect(night.active.isEmpty)
        #expect(night.bounds.first?.min == 2)
        #expect(night.nextChange?.at == (try utc("2026-06-03T08:00:00Z")))
    }

    @Test("two windows with the same min: the end of one that the other covers is no change")
    func equalOverlap() throws {
        let first = ScheduleWindow(name: "first", cron: try cron("0 10 * * *"), duration: 2 * 3600, min: 4)
        let second = ScheduleWindow(name: "second", cron: try cron("0 11 * * *"), duration: 2 * 3600, min: 4)
        let status = ScheduleStatus(windows: [first, second], base: Self.base, now: try utc("2026-06-02T11:30:00Z"))
        #expect(status.bounds.first?.raisedBy == ["first", "second"])
        #expect(status.nextChange?.at == (try utc("2026-06-02T13:00:00Z")))
        #expect(status.nextChange?.ending == ["first", "second"])
        #expect(status.nextChange?.bounds.map(\.min) == [2])
    }

    @Test("a window ends exactly at start + duration; max is raised too; a min never passes the max in force")
    func edgesAndMax() throws {
        let burst = ScheduleWindow(name: "burst", cron: try cron("0 8 * * *"), duration: 3600, min: 12, max: 12)
        let atEnd = ScheduleStatus(windows: [burst], base: Self.base, now: try utc("2026-06-02T09:00:00Z"))
        #expect(atEnd.active.isEmpty)
        let during = ScheduleStatus(windows: [burst], base: Self.base, now: try utc("2026-06-02T08:59:59Z"))
        #expect(during.bounds.first?.min == 12)
        #expect(during.bounds.first?.max == 12)
        // A min above the max in force (another window's max not active) is held at the max.
        let minOnly = ScheduleWindow(name: "big", cron: try cron("0 8 * * *"), duration: 3600, min: 14)
        let held = ScheduleStatus(windows: [minOnly], base: Self.base, now: try utc("2026-06-02T08:30:00Z"))
        #expect(held.bounds.first?.min == 10)
        #expect(held.reasons.map(\.message).contains("window big asks for min 14, held at max 10 in force"))
    }

    @Test("windows of a pool raise only that pool")
    func pools() throws {
        let batch = ScheduleWindow(name: "nightly", cron: try cron("0 1 * * *"), duration: 4 * 3600, min: 3, pool: "batch")
        let status = ScheduleStatus(windows: [batch], base: [("general", NodeBounds(min: 1, max: 6)), ("batch", NodeBounds(min: 0, max: 6))],
                                    now: try utc("2026-06-02T02:00:00Z"))
        #expect(status.bounds(of: "general")?.min == 1)
        #expect(status.bounds(of: "batch")?.min == 3)
        #expect(status.nextChange?.bounds == [.init(pool: "batch", baseMin: 0, baseMax: 6, min: 0, max: 6, raisedBy: [])])
    }
}

/// Random windows (cron built from every kind of field, four zones, lengths from a minute to a
/// week) at random instants from 2026 to 2029.
struct ScheduleCase: Sendable, CustomStringConvertible {
    var crons: [String]
    var durations: [TimeInterval]
    var zones: [Int]
    var mins: [Int?]
    var maxes: [Int?]
    var now: Int64

    var description: String { "\(crons) \(durations) zones \(zones) min \(mins) max \(maxes) at @\(now)" }

    private struct Source: RandomNumberGenerator {
        var base: any SeededRandomNumberGenerator
        mutating func next() -> UInt64 { base.next() }
    }

    static let generator = Generator<ScheduleCase, Shrink.None<ScheduleCase>> { rng in
        var source = Source(base: rng)
        defer { rng = source.base }
        func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &source) }
        func field(_ range: ClosedRange<Int>, names: [String] = []) -> String {
            switch int(0...5) {
            case 0: return "*"
            case 1: return "*/\(int(1...max(1, range.count / 2)))"
            case 2:
                let low = int(range.lowerBound...range.upperBound), high = int(low...range.upperBound)
                return "\(low)-\(high)" + (int(0...1) == 0 ? "" : "/\(int(1...3))")
            case 3: return (0..<int(1...3)).map { _ in String(int(range.lowerBound...range.upperBound)) }.joined(separator: ",")
            case 4 where !names.isEmpty: return names[int(0...(names.count - 1))]
            default: return String(int(range.lowerBound...range.upperBound))
            }
        }
        var crons: [String] = []
        while crons.count < int(1...3) {
            let text = [field(0...59), field(0...23), field(1...28), field(1...12, names: ["JAN", "MAR", "OCT", "NOV"]),
                        field(0...7, names: ["MON", "SUN", "SAT", "MON-FRI"])].joined(separator: " ")
            if CronExpression(text) != nil { crons.append(text) }
        }
        return ScheduleCase(crons: crons, durations: crons.map { _ in TimeInterval(int(1...10080) * 60) }, zones: crons.map { _ in int(0...3) },
                            mins: crons.map { _ in int(0...2) == 0 ? nil : int(0...8) }, maxes: crons.map { _ in int(0...2) == 0 ? int(1...20) : nil },
                            now: Int64(int(1_767_225_600...1_861_920_000)))
    }
}

@Suite("schedules: properties over random windows")
struct ScheduleProperties {
    @Test("an active window's start is a start and now lies in it; bounds only rise; nothing changes before the next change, and it does then")
    func windowsAndChanges() async throws {
        let zones = [TimeZoneRules.utc, try zone("Europe/Berlin"), try zone("America/New_York"), try zone("Australia/Sydney")]
        await propertyCheck(count: 300, input: ScheduleCase.generator) { sample in
            let windows = sample.crons.indices.map { index in
                ScheduleWindow(name: "w\(index)", cron: CronExpression(sample.crons[index])!, duration: sample.durations[index],
                               timeZone: zones[sample.zones[index]], min: sample.mins[index] ?? (sample.maxes[index] == nil ? 1 : nil),
                               max: sample.maxes[index])
            }
            let now = TimeInterval(sample.now)
            for window in windows {
                guard let start = window.activeStart(at: now) else { continue }
                #expect(TimeInterval(start) <= now && now < TimeInterval(start) + window.duration, "\(sample)")
                #expect(window.nextStart(after: start - 1) == start, "\(sample)")
            }
            let base: [(pool: String?, bounds: NodeBounds)] = [(nil, NodeBounds(min: 2, max: 6))]
            let status = ScheduleStatus(windows: windows, base: base, now: Date(timeIntervalSince1970: now))
            let bounds = try #require(status.bounds.first)
            #expect(bounds.min >= 2 && bounds.max >= 6 && bounds.min <= bounds.max, "\(sample)")
            guard let change = status.nextChange else { return }
            let at = change.at.timeIntervalSince1970
            #expect(at > now, "\(sample)")
            let then = ScheduleStatus(windows: windows, base: base, now: change.at).bounds.first
            #expect(then.map { ($0.min, $0.max) != (bounds.min, bounds.max) } == true, "\(sample)")
            for step in 1..<8 {
                let between = now + (at - now) * Double(step) / 8
                let during = ScheduleStatus(windows: windows, base: base, now: Date(timeIntervalSince1970: between)).bounds.first
                #expect(during.map { ($0.min, $0.max) == (bounds.min, bounds.max) } == true, "\(sample) at @\(between)")
            }
        }
    }
}
