#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// Plain-words renderings shared by reasons and the effective-config listing. They avoid
// locale-dependent formatters so output is the same on every machine.

/// Up to `decimals` decimals, no trailing zeros: 5.5, 3, 0.45.
package func formatNumber(_ value: Double, decimals: Int = 6) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "+Inf" : "-Inf") }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int64(rounded)) }
    return String(rounded)
}

/// A fraction as a percentage with at most one decimal: 0.725 → "72.5 %".
func formatPercent(_ fraction: Double) -> String {
    "\(formatNumber(fraction * 100, decimals: 1)) %"
}

/// Compact duration that `parseDuration` reads back: 250 → "4m10s", 604800 → "7d".
package func formatDuration(_ seconds: TimeInterval) -> String {
    guard seconds.isFinite else { return "∞" }
    if seconds < 0 { return "-" + formatDuration(-seconds) }
    if seconds > 0, seconds < 1 { return "\(formatNumber(seconds * 1000, decimals: 0))ms" }
    if seconds >= 1e15 { return "\(formatNumber(seconds))s" }  // beyond Int64 days: say it plainly
    var rest = Int64(seconds.rounded())
    if rest == 0 { return "0s" }
    var text = ""
    for (unit, size) in [("d", Int64(86400)), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
        text += "\(rest / size)\(unit)"
        rest %= size
    }
    return text
}

/// Bytes in the largest binary unit that keeps one decimal honest: 21474836480 → "20 GiB".
func formatBytes(_ bytes: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = bytes
    var index = 0
    while abs(value) >= 1024, index < units.count - 1 {
        value /= 1024
        index += 1
    }
    return "\(formatNumber(value, decimals: 1)) \(units[index])"
}

/// Bytes as the Kubernetes quantity a user would write (exact binary unit when there is one).
package func formatQuantity(_ bytes: Int64) -> String {
    for (suffix, size) in [("Ei", Int64(1) << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
    where bytes >= size && bytes % size == 0 {
        return "\(bytes / size)\(suffix)"
    }
    return String(bytes)
}

/// ISO 8601 in UTC, to the second.
package func formatDate(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle())
}

/// "2026-05-28T20:26:40Z (in 4m10s)".
func formatDeadline(_ date: Date, now: Date) -> String {
    "\(formatDate(date)) (in \(formatDuration(date.timeIntervalSince(now))))"
}

/// A JSON string literal for `text` (also a valid YAML double-quoted scalar, which is how the
/// starter config writes values that would not read back plain).
package func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
