#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The reference patterns' building blocks over ASCII bytes (userdata/README.md, "Placeholders";
/// the user data renderer's rules). The configuration's own validation uses the same matchers
/// for every value that ends up in user data, so `kscaler config check` can never accept what
/// `kscaler run` then refuses to render. Each notes the pattern it matches in full; none of the
/// pieces can contain the separators (`/ = : ,`) they are split at, which is what makes
/// splitting equivalent to the regular expression.
package enum ASCIIMatch {
    package typealias Bytes = ArraySlice<UInt8>

    package static func isLowerAlphanumeric(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || isDigit(byte) }
    package static func isAlphanumeric(_ byte: UInt8) -> Bool { isLowerAlphanumeric(byte) || (0x41...0x5A).contains(byte) }
    package static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }

    /// `E(I{0,n-2}E)?`: `length` characters, `ends` at both ends, `inner` between.
    package static func isBounded(_ bytes: Bytes, length: ClosedRange<Int>, ends: (UInt8) -> Bool, inner: (UInt8) -> Bool) -> Bool {
        guard length.contains(bytes.count), let first = bytes.first, let last = bytes.last, ends(first), ends(last) else { return false }
        return bytes.dropFirst().dropLast().allSatisfy(inner)
    }

    /// `[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?`
    package static func isName(_ bytes: Bytes) -> Bool {
        isBounded(bytes, length: 1...63, ends: isAlphanumeric, inner: { isAlphanumeric($0) || "-_.".utf8.contains($0) })
    }

    /// `([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?` + name
    package static func isKey(_ bytes: Bytes) -> Bool {
        let parts = bytes.split(separator: UInt8(ascii: "/"), maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return isName(bytes) }
        return isBounded(parts[0], length: 1...253, ends: isLowerAlphanumeric, inner: { isLowerAlphanumeric($0) || "-.".utf8.contains($0) })
            && isName(parts[1])
    }

    /// key `=(` name `)?`
    package static func isLabel(_ bytes: Bytes) -> Bool {
        guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return false }
        let value = bytes[(equals + 1)...]
        return isKey(bytes[..<equals]) && (value.isEmpty || isName(value))
    }

    /// key `(=(` name `)?)?:(NoSchedule|PreferNoSchedule|NoExecute)`
    package static func isTaint(_ bytes: Bytes) -> Bool {
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return false }
        let effect = bytes[(colon + 1)...], keyValue = bytes[..<colon]
        guard ["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(where: { effect.elementsEqual($0.utf8) }) else { return false }
        guard let equals = keyValue.firstIndex(of: UInt8(ascii: "=")) else { return isKey(keyValue) }
        let value = keyValue[(equals + 1)...]
        return isKey(keyValue[..<equals]) && (value.isEmpty || isName(value))
    }

    /// `(X(,X)*)?`
    package static func isList(_ bytes: Bytes, of item: (Bytes) -> Bool) -> Bool {
        bytes.isEmpty || bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).allSatisfy(item)
    }

    /// `[0-9]{count}`
    package static func isDigits(_ bytes: Bytes, count: ClosedRange<Int>) -> Bool { count.contains(bytes.count) && bytes.allSatisfy(isDigit) }

    /// `/[A-Za-z0-9_./-]{1,1010}`
    package static func isParameter(_ bytes: Bytes) -> Bool {
        bytes.first == UInt8(ascii: "/") && (2...1011).contains(bytes.count) && bytes.allSatisfy { isAlphanumeric($0) || "_./-".utf8.contains($0) }
    }

    /// `https://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+`
    package static func isURL(_ bytes: Bytes) -> Bool {
        let scheme = "https://".utf8
        guard bytes.starts(with: scheme), bytes.count > scheme.count else { return false }
        return bytes.dropFirst(scheme.count).allSatisfy { isAlphanumeric($0) || "._~:/?#[]@!$&()*+,;=%-".utf8.contains($0) }
    }

    /// `(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?)?`
    package static func isServerURL(_ bytes: Bytes) -> Bool {
        if bytes.isEmpty { return true }
        let scheme = "https://".utf8
        guard bytes.starts(with: scheme) else { return false }
        let authority = bytes.dropFirst(scheme.count)
        let parts = authority.split(separator: UInt8(ascii: ":"), maxSplits: 1, omittingEmptySubsequences: false)
        return !parts[0].isEmpty && parts[0].allSatisfy { isAlphanumeric($0) || ".-".utf8.contains($0) }
            && (parts.count == 1 || isDigits(parts[1], count: 1...5))
    }

    /// `[0-9a-f]{64}`
    package static func isSHA256(_ bytes: Bytes) -> Bool {
        bytes.count == 64 && bytes.allSatisfy { isDigit($0) || (0x61...0x66).contains($0) }
    }

    /// `[a-z]{2}(-[a-z]+)+-[0-9]`
    package static func isRegion(_ bytes: Bytes) -> Bool {
        let parts = bytes.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        let isLetters = { (part: Bytes) in !part.isEmpty && part.allSatisfy { (0x61...0x7A).contains($0) } }
        return parts.count >= 3 && parts[0].count == 2 && isLetters(parts[0])
            && parts.dropFirst().dropLast().allSatisfy(isLetters) && parts[parts.count - 1].count == 1 && isDigit(parts[parts.count - 1].first!)
    }
}

extension ASCIIMatch {
    /// `[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?`: a cluster id or pool name, usable in tags, labels and SSM paths.
    package static func isShortName(_ bytes: Bytes) -> Bool {
        isBounded(bytes, length: 1...40, ends: isLowerAlphanumeric, inner: { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") })
    }

    /// The whole of `text` satisfies `match`.
    package static func matches(_ text: String, _ match: (Bytes) -> Bool) -> Bool { match(Array(text.utf8)[...]) }
}
