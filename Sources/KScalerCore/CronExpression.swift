/// A five-field cron expression, `minute hour day-of-month month day-of-week`, read as Vixie
/// cron and cronie read it: `*`, lists, ranges, steps (`*/15`, `1-5/2`), month and weekday
/// names (`JAN`, `MON-FRI`, any case), 0 and 7 both Sunday. When both day fields are
/// restricted (neither starts with `*`), a day matches if EITHER does (`0 0 1 * MON` is the
/// 1st and every Monday); otherwise both must.
package struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// As written (whitespace normalised).
    package let text: String
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    /// Bit 0 = Sunday … 6 = Saturday.
    let daysOfWeek: UInt64
    /// The day field started with `*` (cronie's DOM_STAR / DOW_STAR).
    let dayOfMonthStar: Bool
    let dayOfWeekStar: Bool

    package var description: String { text }

    private struct Field {
        var name: String
        var range: ClosedRange<Int>
        var names: [String]
        /// Where the names start counting (1 for months, 0 for weekdays).
        var firstName: Int
        var allowed: String
    }

    private static let fields = [
        Field(name: "minute", range: 0...59, names: [], firstName: 0, allowed: "0-59"),
        Field(name: "hour", range: 0...23, names: [], firstName: 0, allowed: "0-23"),
        Field(name: "day-of-month", range: 1...31, names: [], firstName: 0, allowed: "1-31"),
        Field(name: "month", range: 1...12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
              firstName: 1, allowed: "1-12 or JAN-DEC"),
        Field(name: "day-of-week", range: 0...7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], firstName: 0,
              allowed: "0-7 (0 and 7 are Sunday) or SUN-SAT"),
    ]

    private init(text: String, minutes: UInt64, hours: UInt64, daysOfMonth: UInt64, months: UInt64, daysOfWeek: UInt64,
                 dayOfMonthStar: Bool, dayOfWeekStar: Bool) {
        (self.text, self.minutes, self.hours, self.daysOfMonth, self.months, self.daysOfWeek) = (text, minutes, hours, daysOfMonth, months, daysOfWeek)
        (self.dayOfMonthStar, self.dayOfWeekStar) = (dayOfMonthStar, dayOfWeekStar)
    }

    /// A valid expression, or nil (`parse` says why).
    package init?(_ text: String) {
        guard case .success(let expression) = Self.parse(text) else { return nil }
        self = expression
    }

    static func parse(_ text: String) -> Result<CronExpression, ScalarError> {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let layout = "minute hour day-of-month month day-of-week, e.g. \"0 8 * * MON-FRI\" (08:00 Monday to Friday)"
        guard parts.count == 5 else {
            return .failure(ScalarError(message: "\"\(text)\" has \(parts.count) field\(parts.count == 1 ? "" : "s"), a cron expression has 5",
                                        fix: "write five fields: " + layout))
        }
        var masks: [UInt64] = []
        for (field, part) in zip(fields, parts) {
            switch parseField(part, field) {
            case .success(let mask): masks.append(mask)
            case .failure(let problem):
                return .failure(ScalarError(message: "\"\(text)\": \(field.name) field \"\(part)\": \(problem.message)",
                                            fix: "the \(field.name) field takes \(field.allowed), with *, lists (a,b), ranges (a-b) and steps (*/n, a-b/n); "
                                                + "the fields are " + layout))
            }
        }
        // Sunday is 0 and 7: fold 7 onto 0.
        let weekdays = (masks[4] & 0x7F) | (masks[4] >> 7 & 1)
        let expression = CronExpression(text: parts.joined(separator: " "), minutes: masks[0], hours: masks[1], daysOfMonth: masks[2],
                                        months: masks[3], daysOfWeek: weekdays, dayOfMonthStar: parts[2].hasPrefix("*"),
                                        dayOfWeekStar: parts[4].hasPrefix("*"))
        if let problem = expression.neverMatchingDays() {
            return .failure(ScalarError(message: "\"\(text)\" never starts: \(problem)", fix: "choose days of the month that the months have"))
        }
        return .success(expression)
    }

    private struct FieldProblem: Error {
        var message: String
    }

    /// A bit mask of the values one field allows, or what is wrong with it.
    private static func parseField(_ text: String, _ field: Field) -> Result<UInt64, FieldProblem> {
        var mask: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { return .failure(FieldProblem(message: "has an empty list item")) }
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { return .failure(FieldProblem(message: "\"\(item)\" has more than one /step")) }
            var step = 1
            if pieces.count == 2 {
                guard let value = Int(pieces[1]), value >= 1 else { return .failure(FieldProblem(message: "step \"\(pieces[1])\" is not a whole number of 1 or more")) }
                step = value
            }
            let bounds: ClosedRange<Int>
            if pieces[0] == "*" {
                bounds = field.range
            } else {
                let ends = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                guard ends.count <= 2 else { return .failure(FieldProblem(message: "\"\(pieces[0])\" is not a value or a range a-b")) }
                var values: [Int] = []
                for end in ends {
                    guard let value = self.value(String(end), field) else {
                        let kind = field.names.isEmpty ? "a number" : "a number or a name"
                        return .failure(FieldProblem(message: "\"\(end)\" is not \(kind) in \(field.allowed)"))
                    }
                    values.append(value)
                }
                guard values.count == 2 || pieces.count == 1 else {
                    return .failure(FieldProblem(message: "a step needs a range or *: write \(values[0])-\(field.range.upperBound)/\(step) or */\(step)"))
                }
                guard values[0] <= values.last! else {
                    // Sunday is also 7, so a weekday range can end on it the long way round.
                    let sunday = field.range.upperBound == 7 && values.last == 0 ? ": write \(values[0])-7 to end on Sunday" : ""
                    return .failure(FieldProblem(message: "range \(pieces[0]) runs backwards" + sunday))
                }
                bounds = values[0]...values.last!
            }
            for value in stride(from: bounds.lowerBound, through: bounds.upperBound, by: step) { mask |= 1 << UInt64(value) }
        }
        return .success(mask)
    }

    private static func value(_ text: String, _ field: Field) -> Int? {
        if text.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(text), field.range.contains(number) { return number }
        return field.names.firstIndex(of: text.uppercased()).map { $0 + field.firstName }
    }

    /// With only day-of-month restricting days, a date such as February 30 never comes.
    private func neverMatchingDays() -> String? {
        guard !dayOfMonthStar, dayOfWeekStar else { return nil }
        for month in 1...12 where months & (1 << UInt64(month)) != 0 {
            let longest = month == 2 ? 29 : daysIn(month: month, year: 2001)
            for day in 1...longest where daysOfMonth & (1 << UInt64(day)) != 0 { return nil }
        }
        return "no month it names has any of the days of the month it names"
    }

    /// Whether the calendar day (`days` since 1970-01-01) is one the expression starts on.
    func matchesDay(_ days: Int64) -> Bool {
        let date = civilFromDays(days)
        guard months & (1 << UInt64(date.month)) != 0 else { return false }
        let byMonthDay = daysOfMonth & (1 << UInt64(date.day)) != 0
        let byWeekday = daysOfWeek & (1 << UInt64(weekdayOf(days))) != 0
        return dayOfMonthStar || dayOfWeekStar ? byMonthDay && byWeekday : byMonthDay || byWeekday
    }

    /// The local times of day (seconds) it starts at, ascending.
    var timesOfDay: [Int64] {
        var times: [Int64] = []
        for hour in 0..<24 where hours & (1 << UInt64(hour)) != 0 {
            for minute in 0..<60 where minutes & (1 << UInt64(minute)) != 0 { times.append(Int64(hour * 3600 + minute * 60)) }
        }
        return times
    }
}
