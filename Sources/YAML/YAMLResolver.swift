/// What a scalar means, by YAML 1.1's implicit typing as Yams' default resolver applies it
/// (bool, int, float, merge, null, timestamp, value, else string, first match wins), written
/// as plain string checks instead of regular expressions.
public enum YAMLValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
}

extension YAMLScalar {
    /// The tag the scalar has: the explicit one (`!` alone means string); a quoted or block
    /// scalar without one is a string; a plain one gets the first YAML 1.1 rule it matches.
    public var resolvedTag: String {
        if let tag { return tag == "!" ? YAMLTag.str : tag }
        guard style == .plain else { return YAMLTag.str }
        return YAMLResolver.tag(of: value)
    }

    /// The typed value. An int too large for `Int` is a float (as Yams' constructors fall back);
    /// a scalar tagged with a type whose text does not fit it (`!!int abc`), a timestamp, a
    /// merge key and any unknown tag are strings.
    public var resolved: YAMLValue {
        switch resolvedTag {
        case YAMLTag.null:
            return YAMLResolver.isNull(value) ? .null : .string(value)
        case YAMLTag.bool:
            return YAMLResolver.bool(value).map(YAMLValue.bool) ?? .string(value)
        case YAMLTag.int:
            if let int = YAMLResolver.int(value) { return .int(int) }
            return YAMLResolver.double(value).map(YAMLValue.float) ?? .string(value)
        case YAMLTag.float:
            return YAMLResolver.double(value).map(YAMLValue.float) ?? .string(value)
        default:
            return .string(value)
        }
    }
}

enum YAMLResolver {
    static func tag(of text: String) -> String {
        let bytes = Array(text.utf8)
        if boolWords.contains(text) { return YAMLTag.bool }
        if isInt(bytes) { return YAMLTag.int }
        if isFloat(bytes) { return YAMLTag.float }
        if text == "<<" { return YAMLTag.merge }
        if isNull(text) { return YAMLTag.null }
        if isTimestamp(bytes) { return YAMLTag.timestamp }
        if text == "=" { return YAMLTag.value }
        return YAMLTag.str
    }

    static let boolWords: Set<String> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF",
    ]

    static func isNull(_ text: String) -> Bool {
        text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }

    /// As Yams' `Bool.construct`: any case.
    static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on": true
        case "false", "no", "off": false
        default: nil
        }
    }

    /// As Yams' integer constructor: `_` ignored, `0x`, `0b`, `0o` and a leading `0` (octal)
    /// prefixes, `1:30` sexagesimal (90).
    static func int(_ text: String) -> Int? {
        let digits = text.filter { $0 != "_" }
        if digits == "0" { return 0 }
        let negative = digits.hasPrefix("-")
        let unsigned = digits.dropFirst(negative || digits.hasPrefix("+") ? 1 : 0)
        let sign = negative ? "-" : ""
        for (prefix, radix) in [("0x", 16), ("0b", 2), ("0o", 8), ("0", 8)] where unsigned.hasPrefix(prefix) {
            return Int(sign + unsigned.dropFirst(prefix.count), radix: radix)
        }
        if unsigned.contains(":") { return sexagesimal(digits) { Int($0) } }
        return Int(digits)
    }

    /// As Yams' floating-point constructor: `.inf`, `-.inf`, `.nan` in any case, `_` ignored,
    /// sexagesimal, else Swift's own parsing.
    static func double(_ text: String) -> Double? {
        switch text.lowercased() {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default:
            let digits = text.filter { $0 != "_" }
            if digits.contains(":") { return sexagesimal(digits) { Double($0) } }
            return Double(digits)
        }
    }

    private static func sexagesimal<T: Numeric & SignedNumeric>(_ text: String, _ parse: (Substring) -> T?) -> T? {
        var body = Substring(text)
        var sign: T = 1
        if body.hasPrefix("-") {
            sign = -1
            body = body.dropFirst()
        } else if body.hasPrefix("+") {
            body = body.dropFirst()
        }
        var value: T = 0
        for component in body.split(separator: ":", omittingEmptySubsequences: false) {
            guard let part = parse(component) else { return nil }
            value = value * 60 + part
        }
        return sign * value
    }

    // MARK: The resolver's patterns, byte by byte

    private struct Cursor {
        let bytes: [UInt8]
        var at = 0

        var atEnd: Bool { at == bytes.count }

        mutating func take(_ allowed: (UInt8) -> Bool) -> Bool {
            guard at < bytes.count, allowed(bytes[at]) else { return false }
            at += 1
            return true
        }

        mutating func take(_ byte: Character) -> Bool { take { $0 == byte.asciiValue! } }

        /// Zero or more.
        mutating func skip(_ allowed: (UInt8) -> Bool) -> Int {
            let start = at
            while take(allowed) {}
            return at - start
        }

        mutating func sign() { _ = take { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") } }

        mutating func word(_ text: String) -> Bool {
            let word = Array(text.utf8)
            guard bytes.count - at >= word.count, Array(bytes[at..<(at + word.count)]) == word else { return false }
            at += word.count
            return true
        }
    }

    private static func digit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func digitOrUnderscore(_ byte: UInt8) -> Bool { digit(byte) || byte == UInt8(ascii: "_") }
    private static func nonZero(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9") }

    /// Each alternative must consume the whole text.
    private static func any(_ bytes: [UInt8], _ alternatives: [(inout Cursor) -> Bool]) -> Bool {
        alternatives.contains { alternative in
            var cursor = Cursor(bytes: bytes)
            return alternative(&cursor) && cursor.atEnd
        }
    }

    /// `(?::[0-5]?[0-9])+`
    private static func sexagesimalTail(_ cursor: inout Cursor) -> Bool {
        var groups = 0
        while true {
            let start = cursor.at
            guard cursor.take(":") else { break }
            // `[0-5]?[0-9]`: one digit, or two with the first 0-5.
            let first = cursor.at
            guard cursor.take(digit) else { cursor.at = start; break }
            if cursor.at < cursor.bytes.count, digit(cursor.bytes[cursor.at]), cursor.bytes[first] <= UInt8(ascii: "5") {
                cursor.at += 1
            }
            groups += 1
        }
        return groups > 0
    }

    static func isInt(_ bytes: [UInt8]) -> Bool {
        any(bytes, [
            { c in c.sign(); return c.word("0b") && c.skip { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "1") || $0 == UInt8(ascii: "_") } > 0 },
            { c in
                c.sign()
                guard c.take("0") else { return false }
                _ = c.take("o")
                return c.skip { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7")) || $0 == UInt8(ascii: "_") } > 0
            },
            { c in
                c.sign()
                if c.take("0") { return true }
                return c.take(nonZero) && c.skip(digitOrUnderscore) >= 0
            },
            { c in
                c.sign()
                return c.word("0x") && c.skip { $0.isHexDigit || $0 == UInt8(ascii: "_") } > 0
            },
            { c in
                c.sign()
                return c.take(nonZero) && c.skip(digitOrUnderscore) >= 0 && sexagesimalTail(&c)
            },
        ])
    }

    static func isFloat(_ bytes: [UInt8]) -> Bool {
        func exponent(_ c: inout Cursor, signRequired: Bool) -> Bool {
            let start = c.at
            guard c.take({ $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) else { return true }
            let signed = c.take { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }
            if (signRequired && !signed) || c.skip(digit) == 0 { c.at = start }
            return true
        }
        return any(bytes, [
            { c in
                c.sign()
                guard c.take(digit) else { return false }
                _ = c.skip(digitOrUnderscore)
                if c.take(".") { _ = c.skip(digitOrUnderscore) }
                return exponent(&c, signRequired: false)
            },
            { c in
                guard c.take("."), c.skip(digitOrUnderscore) > 0 else { return false }
                return exponent(&c, signRequired: true)
            },
            { c in
                c.sign()
                guard c.take(digit) else { return false }
                _ = c.skip(digitOrUnderscore)
                guard sexagesimalTail(&c), c.take(".") else { return false }
                _ = c.skip(digitOrUnderscore)
                return true
            },
            { c in c.sign(); return c.word(".inf") || c.word(".Inf") || c.word(".INF") },
            { c in c.word(".nan") || c.word(".NaN") || c.word(".NAN") },
        ])
    }

    static func isTimestamp(_ bytes: [UInt8]) -> Bool {
        func digits(_ c: inout Cursor, _ least: Int, _ most: Int) -> Bool {
            var count = 0
            while count < most, c.take(digit) { count += 1 }
            return count >= least
        }
        let space: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        return any(bytes, [
            { c in digits(&c, 4, 4) && c.take("-") && digits(&c, 2, 2) && c.take("-") && digits(&c, 2, 2) },
            { c in
                guard digits(&c, 4, 4), c.take("-"), digits(&c, 1, 2), c.take("-"), digits(&c, 1, 2) else { return false }
                guard c.take({ $0 == UInt8(ascii: "T") || $0 == UInt8(ascii: "t") }) || c.skip(space) > 0 else { return false }
                guard digits(&c, 1, 2), c.take(":"), digits(&c, 2, 2), c.take(":"), digits(&c, 2, 2) else { return false }
                if c.take(".") { _ = c.skip(digit) }
                if c.atEnd { return true }
                _ = c.skip(space)
                if c.take("Z") { return true }
                guard c.take({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }), digits(&c, 1, 2) else { return false }
                let beforeMinutes = c.at
                if c.take(":"), !digits(&c, 2, 2) { c.at = beforeMinutes }
                return true
            },
        ])
    }
}

private extension UInt8 {
    var isHexDigit: Bool {
        (self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9")) || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
