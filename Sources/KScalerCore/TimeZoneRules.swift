/// A time zone's UTC offsets over time, read from the system's compiled tz database (TZif,
/// RFC 8536) rather than Foundation's ICU zones, which the core does not depend on. Parsing the
/// bytes is pure; reading the file is the caller's (`ZoneDatabase`). Instants are Unix seconds.
package struct TimeZoneRules: Sendable, Equatable {
    /// The IANA name it was read under (`Europe/Berlin`).
    package let name: String
    /// Transition instants, ascending, and the offset in force from each one on.
    let transitions: [Int64]
    let offsetsAfter: [Int32]
    /// Before the first transition: the file's first time type (RFC 8536 §3.2).
    let initialOffset: Int32
    /// The POSIX TZ rule for instants after the last transition (TZif v2+ footer).
    let footer: PosixTZ?

    package static let utc = TimeZoneRules(name: "UTC", transitions: [], offsetsAfter: [], initialOffset: 0, footer: nil)

    /// Seconds east of UTC in force at `instant`.
    package func offset(at instant: Int64) -> Int {
        guard let last = transitions.last else { return Int(footer?.offset(at: instant) ?? initialOffset) }
        if instant >= last, let footer { return Int(footer.offset(at: instant)) }
        // The last transition at or before `instant`.
        var low = 0, high = transitions.count
        while low < high {
            let mid = (low + high) / 2
            if transitions[mid] <= instant { low = mid + 1 } else { high = mid }
        }
        return Int(low == 0 ? initialOffset : offsetsAfter[low - 1])
    }

    /// The instant a local wall-clock time (seconds since 1970-01-01T00:00 local) names. A time
    /// that occurs twice (the clocks go back) is its first occurrence; a time that never occurs
    /// (the clocks go forward) is the first instant after the gap, the transition itself.
    package func instant(local: Int64) -> Int64 {
        let before = Int64(offset(at: local - 86400)), after = Int64(offset(at: local + 86400))
        let candidates = Set([before, after, Int64(offset(at: local - before)), Int64(offset(at: local - after))])
            .map { local - $0 }.filter { $0 + Int64(offset(at: $0)) == local }
        if let first = candidates.min() { return first }
        // In a gap: the first instant whose local time is past `local` (local time only rises
        // across a gap, so a bisection over the surrounding two days finds it).
        var low = local - 86400, high = local + 86400
        while low < high {
            let mid = low + (high - low) / 2
            if mid + Int64(offset(at: mid)) > local { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// Local wall-clock seconds since 1970-01-01T00:00 at `instant`.
    package func local(_ instant: Int64) -> Int64 { instant + Int64(offset(at: instant)) }

    /// Why a TZif file could not be used.
    package struct ParseError: Error, Equatable, CustomStringConvertible {
        package var description: String
    }

    /// Reads a TZif file (RFC 8536): version 1 data alone, or the 64-bit data of version 2 and
    /// later with its POSIX TZ footer. Files with leap seconds (`right/…`) are refused: their
    /// instants are not Unix time.
    package static func parse(tzif bytes: [UInt8], name: String) -> Result<TimeZoneRules, ParseError> {
        var reader = ByteReader(bytes: bytes)
        do {
            let first = try Header(&reader)
            guard first.version >= 2 else { return .success(try block(&reader, first, timeSize: 4, name: name, footer: nil)) }
            try reader.skip(first.dataLength(timeSize: 4))
            let second = try Header(&reader)
            let start = reader.position
            try reader.skip(second.dataLength(timeSize: 8))
            let footerText = try reader.footer()
            let footer = try footerText.isEmpty ? nil : PosixTZ.parse(footerText)
            var blockReader = ByteReader(bytes: bytes, position: start)
            return .success(try block(&blockReader, second, timeSize: 8, name: name, footer: footer))
        } catch {
            return .failure(error)
        }
    }

    private static func block(_ reader: inout ByteReader, _ header: Header, timeSize: Int, name: String, footer: PosixTZ?) throws(ParseError) -> TimeZoneRules {
        guard header.leapCount == 0 else {
            throw ParseError(description: "it lists leap seconds (a right/ zone), whose times are not Unix time")
        }
        var transitions: [Int64] = []
        transitions.reserveCapacity(header.timeCount)
        for _ in 0..<header.timeCount {
            let time = timeSize == 8 ? try reader.int64() : Int64(try reader.int32())
            if let last = transitions.last, time <= last { throw ParseError(description: "its transition times are not ascending") }
            transitions.append(time)
        }
        var typeIndices: [Int] = []
        for _ in 0..<header.timeCount {
            let index = Int(try reader.byte())
            guard index < header.typeCount else { throw ParseError(description: "a transition names time type \(index) of \(header.typeCount)") }
            typeIndices.append(index)
        }
        var offsets: [Int32] = []
        for _ in 0..<header.typeCount {
            let offset = try reader.int32()
            guard offset > -89999 && offset < 93600 else { throw ParseError(description: "a time type has offset \(offset)s") }
            offsets.append(offset)
            try reader.skip(2)  // isdst, designation index: not needed for offsets
        }
        return TimeZoneRules(name: name, transitions: transitions, offsetsAfter: typeIndices.map { offsets[$0] },
                             initialOffset: offsets[0], footer: footer)
    }

    private struct Header {
        var version: Int
        var utIndicatorCount, standardIndicatorCount, leapCount, timeCount, typeCount, charCount: Int

        init(_ reader: inout ByteReader) throws(ParseError) {
            guard Array(try reader.take(4)) == Array("TZif".utf8) else { throw ParseError(description: "it is not a TZif file (no TZif magic)") }
            let versionByte = try reader.byte()
            version = versionByte == 0 ? 1 : Int(versionByte) - 0x30
            guard (1...9).contains(version) else { throw ParseError(description: "unknown TZif version byte \(versionByte)") }
            try reader.skip(15)
            var counts: [Int] = []
            for _ in 0..<6 {
                let count = try reader.int32()
                guard count >= 0 && count < 1 << 20 else { throw ParseError(description: "a TZif count is \(count)") }
                counts.append(Int(count))
            }
            (utIndicatorCount, standardIndicatorCount, leapCount, timeCount, typeCount, charCount) =
                (counts[0], counts[1], counts[2], counts[3], counts[4], counts[5])
            guard typeCount >= 1, charCount >= 1,
                  utIndicatorCount == 0 || utIndicatorCount == typeCount, standardIndicatorCount == 0 || standardIndicatorCount == typeCount
            else { throw ParseError(description: "its header counts are inconsistent") }
        }

        func dataLength(timeSize: Int) -> Int {
            timeCount * timeSize + timeCount + typeCount * 6 + charCount + leapCount * (timeSize + 4) + standardIndicatorCount + utIndicatorCount
        }
    }

    private struct ByteReader {
        let bytes: [UInt8]
        var position = 0

        mutating func take(_ count: Int) throws(ParseError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - position >= count else { throw ParseError(description: "it is truncated") }
            defer { position += count }
            return bytes[position..<position + count]
        }

        mutating func skip(_ count: Int) throws(ParseError) { _ = try take(count) }
        mutating func byte() throws(ParseError) -> UInt8 { try take(1).first! }
        mutating func int32() throws(ParseError) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: try bigEndian(4))) }
        mutating func int64() throws(ParseError) -> Int64 { Int64(bitPattern: try bigEndian(8)) }

        private mutating func bigEndian(_ count: Int) throws(ParseError) -> UInt64 {
            try take(count).reduce(0) { $0 << 8 | UInt64($1) }
        }

        /// `\n<TZ string>\n` after the version 2+ data.
        mutating func footer() throws(ParseError) -> String {
            guard try byte() == UInt8(ascii: "\n") else { throw ParseError(description: "its footer does not start with a newline") }
            let rest = bytes[position...]
            guard let end = rest.firstIndex(of: UInt8(ascii: "\n")) else { throw ParseError(description: "its footer does not end with a newline") }
            position = end + 1
            return String(decoding: rest[..<end], as: UTF8.self)
        }
    }
}

/// A POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`): a standard offset and, optionally, a
/// daylight offset with the yearly rule for switching. Offsets here are seconds east of UTC
/// (the string's sign is the other way round).
struct PosixTZ: Sendable, Equatable {
    var standard: Int32
    var daylight: (offset: Int32, start: Rule, end: Rule)?

    static func == (a: PosixTZ, b: PosixTZ) -> Bool {
        a.standard == b.standard && a.daylight?.offset == b.daylight?.offset && a.daylight?.start == b.daylight?.start
            && a.daylight?.end == b.daylight?.end
    }

    /// A switching date and the local time of day (seconds, may be negative or past 24h) it happens at.
    struct Rule: Sendable, Equatable {
        enum Day: Sendable, Equatable {
            /// `Jn`: day 1…365, February 29 never counted.
            case julianNoLeap(Int)
            /// `n`: day 0…365, February 29 counted.
            case zeroBased(Int)
            /// `Mm.w.d`: weekday d (0 = Sunday) of week w (5 = last) of month m.
            case monthWeekDay(month: Int, week: Int, weekday: Int)
        }

        var day: Day
        var time: Int64

        /// The local day (days since 1970-01-01) this rule names in `year`.
        func dayNumber(in year: Int) -> Int64 {
            let january1 = daysFromCivil(year, 1, 1)
            switch day {
            case .julianNoLeap(let n): return january1 + Int64(n - 1) + (isLeapYear(year) && n >= 60 ? 1 : 0)
            case .zeroBased(let n): return january1 + Int64(n)
            case .monthWeekDay(let month, let week, let weekday):
                let first = daysFromCivil(year, month, 1)
                var day = first + Int64((weekday - weekdayOf(first) + 7) % 7) + Int64(week - 1) * 7
                let length = Int64(daysIn(month: month, year: year))
                while day >= first + length { day -= 7 }
                return day
            }
        }
    }

    func offset(at instant: Int64) -> Int32 {
        guard let daylight else { return standard }
        let year = civilFromDays(floorDivide(instant + Int64(standard), 86400)).year
        // Each switch happens at a local time: the start in standard time, the end in daylight time.
        let start = daylight.start.dayNumber(in: year) * 86400 + daylight.start.time - Int64(standard)
        let end = daylight.end.dayNumber(in: year) * 86400 + daylight.end.time - Int64(daylight.offset)
        let inDaylight = start < end ? (instant >= start && instant < end) : !(instant >= end && instant < start)
        return inDaylight ? daylight.offset : standard
    }

    static func parse(_ text: String) throws(TimeZoneRules.ParseError) -> PosixTZ {
        var scanner = Scanner(text: Array(text.utf8))
        let fail = { TimeZoneRules.ParseError(description: "its POSIX TZ footer \"\(text)\" cannot be read") }
        guard scanner.name() else { throw fail() }
        guard let standardWest = scanner.time(allowSign: true) else { throw fail() }
        let standard = Int32(-standardWest)
        if scanner.atEnd { return PosixTZ(standard: standard, daylight: nil) }
        guard scanner.name() else { throw fail() }
        var daylightOffset = standard + 3600
        if let west = scanner.time(allowSign: true) { daylightOffset = Int32(-west) }
        // A daylight name without a rule leaves the dates to the implementation: TZif footers
        // always carry one, so anything else is refused rather than guessed.
        guard scanner.consume(","), let start = scanner.rule(), scanner.consume(","), let end = scanner.rule(), scanner.atEnd else { throw fail() }
        return PosixTZ(standard: standard, daylight: (daylightOffset, start, end))
    }

    private struct Scanner {
        let text: [UInt8]
        var position = 0

        var atEnd: Bool { position == text.count }

        mutating func consume(_ character: Character) -> Bool {
            guard !atEnd, text[position] == character.asciiValue else { return false }
            position += 1
            return true
        }

        /// `<+03>` or three or more letters.
        mutating func name() -> Bool {
            if consume("<") {
                guard let close = text[position...].firstIndex(of: UInt8(ascii: ">")), close - position >= 3 else { return false }
                position = close + 1
                return true
            }
            let start = position
            while !atEnd, (0x41...0x5A).contains(text[position]) || (0x61...0x7A).contains(text[position]) { position += 1 }
            return position - start >= 3
        }

        mutating func number() -> Int? {
            let start = position
            while !atEnd, ASCIIMatch.isDigit(text[position]), position - start < 6 { position += 1 }
            guard position > start else { return nil }
            return Int(String(decoding: text[start..<position], as: UTF8.self))
        }

        /// `[+-]hh[:mm[:ss]]` in seconds.
        mutating func time(allowSign: Bool) -> Int64? {
            var sign: Int64 = 1
            if allowSign, consume("-") { sign = -1 } else if allowSign { _ = consume("+") }
            guard let hours = number(), hours <= 167 else { return nil }
            var seconds = Int64(hours) * 3600
            if consume(":") {
                guard let minutes = number(), minutes < 60 else { return nil }
                seconds += Int64(minutes) * 60
                if consume(":") {
                    guard let secs = number(), secs < 60 else { return nil }
                    seconds += Int64(secs)
                }
            }
            return sign * seconds
        }

        mutating func rule() -> Rule? {
            let day: Rule.Day
            if consume("M") {
                guard let month = number(), (1...12).contains(month), consume("."), let week = number(), (1...5).contains(week),
                      consume("."), let weekday = number(), (0...6).contains(weekday) else { return nil }
                day = .monthWeekDay(month: month, week: week, weekday: weekday)
            } else if consume("J") {
                guard let n = number(), (1...365).contains(n) else { return nil }
                day = .julianNoLeap(n)
            } else {
                guard let n = number(), (0...365).contains(n) else { return nil }
                day = .zeroBased(n)
            }
            var at: Int64 = 2 * 3600
            if consume("/") {
                guard let given = time(allowSign: true) else { return nil }
                at = given
            }
            return Rule(day: day, time: at)
        }
    }
}

/// Where `time_zone` names are looked up: `<directory>/<name>` read by the caller's `readFile`
/// (the core does no I/O). `UTC` needs no file.
package struct ZoneDatabase {
    /// The directory searched (`$TZDIR`, else `/usr/share/zoneinfo`); nil when there is none.
    package var directory: String?
    package var readFile: (String) -> [UInt8]?

    package init(directory: String?, readFile: @escaping (String) -> [UInt8]?) {
        self.directory = directory
        self.readFile = readFile
    }

    /// Only `UTC`: for callers that read no files.
    package static var builtIn: ZoneDatabase { ZoneDatabase(directory: nil, readFile: { _ in nil }) }

    /// The rules for an IANA zone name, or why there are none (with where it looked).
    func rules(for name: String) -> Result<TimeZoneRules, ScalarError> {
        if name == "UTC" { return .success(.utc) }
        guard isZoneName(name) else {
            return .failure(ScalarError(message: "\"\(name)\" is not an IANA time zone name",
                                        fix: "write a zone name such as Europe/Berlin, America/New_York or UTC"))
        }
        guard let directory else {
            return .failure(ScalarError(message: "unknown time zone \"\(name)\": no time zone database was given",
                                        fix: "install the tz database (Debian: apt-get install tzdata) or use UTC"))
        }
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        guard let bytes = readFile(path) else {
            return .failure(ScalarError(message: "unknown time zone \"\(name)\": no file \(path)",
                                        fix: "write an IANA zone name such as Europe/Berlin (see \(directory)); install tzdata, or set TZDIR to the zoneinfo directory"))
        }
        return TimeZoneRules.parse(tzif: bytes, name: name).mapError { error in
            ScalarError(message: "time zone \"\(name)\": \(path) cannot be used: \(error)",
                        fix: "reinstall tzdata, or set TZDIR to an intact zoneinfo directory")
        }
    }

    /// `Area/Location[/…]`: components of letters, digits, `_ + - .`, none of them `.` or `..`
    /// (a name must never leave the database directory).
    private func isZoneName(_ name: String) -> Bool {
        let parts = name.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        return name.utf8.count <= 255 && parts.allSatisfy { part in
            !part.isEmpty && part.first != UInt8(ascii: ".") && part.allSatisfy { ASCIIMatch.isAlphanumeric($0) || "_+-.".utf8.contains($0) }
        }
    }
}

// MARK: - Civil calendar arithmetic (proleptic Gregorian; H. Hinnant's algorithms)

/// Days since 1970-01-01 of a calendar date.
func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
    let y = Int64(month <= 2 ? year - 1 : year)
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * Int64(month > 2 ? month - 3 : month + 9) + 2) / 5 + Int64(day) - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146097 + dayOfEra - 719468
}

/// The calendar date of a day number (days since 1970-01-01).
func civilFromDays(_ days: Int64) -> (year: Int, month: Int, day: Int) {
    let z = days + 719468
    let era = (z >= 0 ? z : z - 146096) / 146097
    let dayOfEra = z - era * 146097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = Int(dayOfYear - (153 * mp + 2) / 5 + 1)
    let month = Int(mp < 10 ? mp + 3 : mp - 9)
    return (Int(yearOfEra + era * 400) + (month <= 2 ? 1 : 0), month, day)
}

/// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
func weekdayOf(_ days: Int64) -> Int { Int(((days % 7) + 11) % 7) }

func isLeapYear(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: isLeapYear(year) ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
