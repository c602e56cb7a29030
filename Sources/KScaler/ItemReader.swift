import AWS

/// Reads kscaler's attributes from a table item strictly. The table can be edited by hand
/// (the console, the AWS CLI) and written by hosts whose clocks disagree, so nothing read from
/// it is trusted by shape: a number is parsed from its decimal text and range-checked, a value
/// of the wrong type is named, and every problem is collected (not just the first) so one
/// message tells an operator everything to repair.
struct ItemReader {
    let item: DynamoDBItem
    /// Prepended to attribute names in problems (`launch_intent.`), empty at the top level.
    let prefix: String
    private(set) var problems: [String] = []

    init(_ item: DynamoDBItem, prefix: String = "") {
        self.item = item
        self.prefix = prefix
    }

    /// Whether the attribute is there at all, whatever its type.
    func has(_ name: String) -> Bool { item[name] != nil }

    mutating func string(_ name: String) -> String? {
        guard let value = item[name] else { return nil }
        guard let text = value.string else { return wrongType(name, value, expected: "a string (S)") }
        return text
    }

    /// A whole number within `range`, e.g. the fencing token or a launch's node count.
    mutating func wholeNumber(_ name: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = item[name] else { return nil }
        guard let text = value.numberText else { return wrongType(name, value, expected: "a number (N)") }
        switch TableNumber.wholeNumber(text, in: range) {
        case .success(let number): return number
        case .failure(let problem): return report(name, problem.description)
        }
    }

    /// A time stored as epoch seconds (fractions allowed).
    mutating func time(_ name: String) -> Date? {
        guard let value = item[name] else { return nil }
        guard let text = value.numberText else { return wrongType(name, value, expected: "a number of epoch seconds (N)") }
        switch TableNumber.time(text) {
        case .success(let date): return date
        case .failure(let problem): return report(name, problem.description)
        }
    }

    /// A nested map, read by its own reader whose problems are merged with `merge(_:)`.
    mutating func map(_ name: String) -> ItemReader? {
        guard let value = item[name] else { return nil }
        guard let fields = value.map else { return wrongType(name, value, expected: "a map (M)") }
        return ItemReader(fields, prefix: prefix + name + ".")
    }

    mutating func list(_ name: String) -> [AttributeValue]? {
        guard let value = item[name] else { return nil }
        guard let items = value.list else { return wrongType(name, value, expected: "a list (L)") }
        return items
    }

    /// Takes over the problems a nested reader found.
    mutating func merge(_ nested: ItemReader) { problems += nested.problems }

    /// Records a problem the caller found (a required attribute missing, say).
    mutating func report<T>(_ name: String, _ problem: String) -> T? {
        problems.append("\(prefix)\(name) \(problem)")
        return nil
    }

    private mutating func wrongType<T>(_ name: String, _ value: AttributeValue, expected: String) -> T? {
        report(name, "is \(value.typeDescription), expected \(expected)")
    }
}

/// DynamoDB numbers arrive as decimal text of up to 38 digits. They are parsed here, never
/// through `Double` (which would round a large token and trap when converted to `Int`).
enum TableNumber {
    /// What is wrong with a value, as the end of a sentence that starts with its name.
    struct Problem: Error, Equatable, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// `-?[0-9]+`, within `range`.
    static func wholeNumber(_ text: String, in range: ClosedRange<Int>) -> Result<Int, Problem> {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
            return .failure(Problem("is \(shown(text)), not a whole number"))
        }
        guard let number = Int(text), range.contains(number) else {
            return .failure(Problem("is \(shown(text)), outside \(range.lowerBound)…\(range.upperBound)"))
        }
        return .success(number)
    }

    /// Epoch seconds `-?[0-9]+(.[0-9]+)?`, between 1970 and the year 3000: a time outside
    /// that was not written by a clock kscaler should believe.
    static func time(_ text: String) -> Result<Date, Problem> {
        let parts = (text.hasPrefix("-") ? text.dropFirst() : Substring(text)).split(separator: ".", omittingEmptySubsequences: false)
        let isDecimal = (1...2).contains(parts.count)
            && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }
        guard isDecimal, let seconds = Double(text) else {
            return .failure(Problem("is \(shown(text)), not a number of epoch seconds"))
        }
        guard (0...latestPlausibleTime).contains(seconds) else {
            return .failure(Problem("is \(shown(text)), not a time between 1970 and 3000 in epoch seconds"))
        }
        return .success(Date(timeIntervalSince1970: seconds))
    }

    /// 3000-01-01T00:00:00Z.
    static let latestPlausibleTime: Double = 32_503_680_000

    /// The value as it stood, cut short: a hand-edited attribute can be anything.
    private static func shown(_ text: String) -> String {
        text.count > 48 ? "\"\(text.prefix(48))…\"" : "\"\(text)\""
    }
}
