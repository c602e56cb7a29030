#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why one value could not be read, before a path is attached to it.
struct ScalarError: Error {
    var message: String
    var fix: String
}

/// Typed readers for single configuration values. Each accepts the YAML type and its string
/// spelling, because environment variables only carry strings.
enum Scalar {
    static func string(_ value: ConfigValue) -> Result<String, ScalarError> {
        switch value {
        case .string(let text): return .success(text)
        // YAML reads `version: 3` or `pool: 2024` as numbers; they are still names here.
        case .number(let number) where number.isFinite: return .success(formatNumber(number))
        default:
            return .failure(ScalarError(message: "expected a string, got \(value.kindName)", fix: "write a plain string value"))
        }
    }

    static func bool(_ value: ConfigValue) -> Result<Bool, ScalarError> {
        switch value {
        case .bool(let flag): return .success(flag)
        case .string(let text):
            switch trimmed(text).lowercased() {
            case "true": return .success(true)
            case "false": return .success(false)
            default: break
            }
        default: break
        }
        return .failure(ScalarError(message: "expected true or false, got \(describe(value))", fix: "write true or false"))
    }

    static func number(_ value: ConfigValue) -> Result<Double, ScalarError> {
        switch value {
        case .number(let number) where number.isFinite: return .success(number)
        case .string(let text):
            if let number = Double(trimmed(text)), number.isFinite { return .success(number) }
        default: break
        }
        return .failure(ScalarError(message: "expected a number, got \(describe(value))", fix: "write a number such as 3 or 0.5"))
    }

    static func integer(_ value: ConfigValue) -> Result<Int, ScalarError> {
        number(value).flatMap { number in
            guard number == number.rounded(), abs(number) < 1e15 else {
                return .failure(ScalarError(message: "expected a whole number, got \(formatNumber(number))", fix: "write a whole number such as 3"))
            }
            return .success(Int(number))
        }
    }

    /// A percentage in (0, 100], returned as a fraction. "70" and "70%" both mean 0.7.
    static func percent(_ value: ConfigValue) -> Result<Double, ScalarError> {
        var value = value
        if case .string(let text) = value, trimmed(text).hasSuffix("%") {
            value = .string(String(trimmed(text).dropLast()))
        }
        return number(value).flatMap { percent in
            guard percent > 0, percent <= 100 else {
                return .failure(ScalarError(message: "\(formatNumber(percent)) is not a percentage in (0, 100]", fix: "write a percentage above 0 and at most 100, e.g. 70"))
            }
            return .success(percent / 100)
        }
    }

    /// A duration such as `90s`, `10m`, `1h30m`, `7d`, `500ms`; a bare number is refused
    /// because its unit would be a guess.
    static func duration(_ value: ConfigValue) -> Result<TimeInterval, ScalarError> {
        let example = "write a number with a unit: ms, s, m, h or d (e.g. 30s, 10m, 1h30m)"
        switch value {
        case .number(let number):
            return .failure(ScalarError(message: "\(formatNumber(number)) has no unit", fix: "write \(formatNumber(number))s for seconds; " + example))
        case .string(let text):
            if let seconds = parseDuration(trimmed(text)) { return .success(seconds) }
            if let number = Double(trimmed(text)) {
                return .failure(ScalarError(message: "\"\(text)\" has no unit", fix: "write \(formatNumber(number))s for seconds; " + example))
            }
            return .failure(ScalarError(message: "\"\(text)\" is not a duration", fix: example))
        default:
            return .failure(ScalarError(message: "expected a duration, got \(value.kindName)", fix: example))
        }
    }

    /// CPU in cores: `2`, `1.5`, `"2"` or Kubernetes millicores `"1500m"`.
    static func cpuCores(_ value: ConfigValue) -> Result<Double, ScalarError> {
        let fix = "write cores as a number (2, 0.5) or millicores (\"500m\")"
        var cores: Double?
        switch value {
        case .number(let number): cores = number
        case .string(let text):
            let text = trimmed(text)
            cores = text.hasSuffix("m") ? Double(text.dropLast()).map { $0 / 1000 } : Double(text)
        default: break
        }
        guard let cores, cores.isFinite else {
            return .failure(ScalarError(message: "expected CPU cores, got \(describe(value))", fix: fix))
        }
        guard cores > 0 else {
            return .failure(ScalarError(message: "CPU must be more than 0, got \(formatNumber(cores))", fix: fix))
        }
        return .success(cores)
    }

    /// Memory in bytes from a Kubernetes quantity: `8Gi`, `512Mi`, `8G`, or a bare byte count.
    static func memoryBytes(_ value: ConfigValue) -> Result<Int64, ScalarError> {
        let fix = "write a Kubernetes quantity such as 8Gi, 512Mi or 8G"
        var bytes: Double?
        switch value {
        case .number(let number): bytes = number
        case .string(let text): bytes = parseQuantity(trimmed(text))
        default: break
        }
        guard let bytes, bytes.isFinite, bytes < 9e18 else {
            return .failure(ScalarError(message: "expected a memory size, got \(describe(value))", fix: fix))
        }
        guard bytes >= 1 else {
            return .failure(ScalarError(message: "memory must be more than 0, got \(describe(value))", fix: fix))
        }
        return .success(Int64(bytes.rounded()))
    }

    /// A list of strings: a YAML list of scalars, or one string `"a,b,c"` (environment form).
    static func stringList(_ value: ConfigValue) -> Result<[String], ScalarError> {
        switch value {
        case .list(let items):
            var strings: [String] = []
            for (index, item) in items.enumerated() {
                switch string(item) {
                case .success(let text): strings.append(text)
                case .failure:
                    return .failure(ScalarError(message: "item \(index + 1) is \(item.kindName), not a string", fix: "list plain strings only"))
                }
            }
            return .success(strings)
        case .string(let text):
            return .success(splitList(text))
        default:
            return .failure(ScalarError(message: "expected a list, got \(value.kindName)", fix: "write a YAML list, or a comma-separated string \"a,b,c\""))
        }
    }

    /// One of the given spellings.
    static func oneOf(_ value: ConfigValue, _ choices: [String]) -> Result<String, ScalarError> {
        let fix = "write one of: \(choices.joined(separator: ", "))"
        guard case .success(let text) = string(value) else {
            return .failure(ScalarError(message: "expected one of \(choices.joined(separator: ", ")), got \(value.kindName)", fix: fix))
        }
        let normalized = trimmed(text).lowercased()
        if choices.contains(normalized) { return .success(normalized) }
        let suggestion = closestMatch(to: normalized, among: choices).map { "did you mean \"\($0)\"? " } ?? ""
        return .failure(ScalarError(message: "\"\(text)\" is not one of \(choices.joined(separator: ", "))", fix: suggestion + fix))
    }

    static func splitList(_ text: String) -> [String] {
        text.split(separator: ",").map { trimmed(String($0)) }.filter { !$0.isEmpty }
    }

    static func trimmed(_ text: String) -> String {
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// A short rendering of a scalar for messages (lists and maps are named, not printed).
    static func describe(_ value: ConfigValue) -> String {
        switch value {
        case .string(let text): "\"\(text)\""
        case .number(let number): formatNumber(number)
        case .bool(let flag): String(flag)
        default: value.kindName
        }
    }
}

private let durationUnits: [(suffix: String, seconds: Double)] = [
    ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400),
]

/// `1h30m` → 5400. Nil unless the whole text is number-unit pairs.
package func parseDuration(_ text: String) -> TimeInterval? {
    var rest = Substring(text)
    var total: Double = 0
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
        let digits = rest.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
        guard !digits.isEmpty, let amount = Double(digits) else { return nil }
        rest = rest.dropFirst(digits.count)
        let letters = rest.prefix(while: { $0.isLetter })
        guard let unit = durationUnits.first(where: { $0.suffix == letters }) else { return nil }
        rest = rest.dropFirst(letters.count)
        total += amount * unit.seconds
    }
    return total
}

private let quantitySuffixes: [(suffix: String, factor: Double)] = [
    ("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("Ti", 1_099_511_627_776),
    ("Pi", 1_125_899_906_842_624), ("Ei", 1_152_921_504_606_846_976),
    ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18),
]

/// A Kubernetes quantity (binary or decimal suffix, or none) as a number.
func parseQuantity(_ text: String) -> Double? {
    let letters = text.reversed().prefix(while: { $0.isLetter })
    let suffix = String(letters.reversed())
    guard let number = Double(text.dropLast(suffix.count)), !text.dropLast(suffix.count).isEmpty else { return nil }
    if suffix.isEmpty { return number }
    return quantitySuffixes.first(where: { $0.suffix == suffix }).map { number * $0.factor }
}
