#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A Kubernetes `resource.Quantity` (`"250m"`, `"1.5Gi"`, `"12e6"`) as a number: cores for
/// cpu, bytes for memory. The grammar is k8s.io/apimachinery's:
///
///     quantity        ::= [sign] number suffix
///     number          ::= digits | digits "." digits | digits "." | "." digits
///     suffix          ::= "" | binarySI | decimalSI | ("e" | "E") [sign] digits
///     binarySI        ::= Ki | Mi | Gi | Ti | Pi | Ei
///     decimalSI       ::= n | u | m | k | M | G | T | P | E
///
/// `n` and `u` are not in the documented grammar but the Go parser accepts them (metrics
/// use them), so they are here too. A Double is exact for every count of bytes or millicores a
/// node has; the Go type's rounding to 3 decimal places and cap at 2^63-1 are not imitated,
/// as the API server writes quantities in canonical form, which needs neither.
package enum KubeQuantity {
    /// The value of `text`, or nil when it is not a quantity. Stricter than the Go scanner,
    /// which reads `"-"`, `"."` and `"m"` as zero: text without a digit is refused, as is a
    /// value too large for a Double (the API never writes either).
    package static func parse(_ text: String) -> Double? {
        var bytes = Array(text.utf8)[...]
        var sign = ""
        if let first = bytes.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            if first == UInt8(ascii: "-") { sign = "-" }
            bytes = bytes.dropFirst()
        }
        let whole = bytes.prefix { isDigit($0) }
        bytes = bytes.dropFirst(whole.count)
        var fraction: ArraySlice<UInt8> = []
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            fraction = bytes.prefix { isDigit($0) }
            bytes = bytes.dropFirst(fraction.count)
        }
        guard !whole.isEmpty || !fraction.isEmpty else { return nil }
        // Rebuilt in a form Double(_:) reads whatever the input's shape ("1.", ".5").
        let mantissa = sign + (whole.isEmpty ? "0" : String(decoding: whole, as: UTF8.self))
            + "." + (fraction.isEmpty ? "0" : String(decoding: fraction, as: UTF8.self))
        let suffix = String(decoding: bytes, as: UTF8.self)

        let value: Double?
        if let power = binaryPowers[suffix] {
            // A power of two scales a Double exactly.
            value = Double(mantissa).map { $0 * Double(sign: .plus, exponent: power, significand: 1) }
        } else if let exponent = decimalExponents[suffix] {
            // As a decimal exponent, so 250m is 0.25 rounded once, not 250 × 0.001.
            value = Double(mantissa + "e\(exponent)")
        } else if suffix.count > 1, suffix.first == "e" || suffix.first == "E", let exponent = exponent(String(suffix.dropFirst())) {
            value = Double(mantissa + "e\(exponent)")
        } else {
            return nil
        }
        guard let value, value.isFinite else { return nil }
        return value
    }

    private static let decimalExponents: [String: Int] = [
        "": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
    ]

    private static let binaryPowers: [String: Int] = ["Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60]

    /// `[sign] digits` (ASCII digits only), as the exponent form's integer.
    private static func exponent(_ text: String) -> Int? {
        var digits = Array(text.utf8)[...]
        if let first = digits.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
        return Int(text)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
}
