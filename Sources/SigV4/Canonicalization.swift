// The three canonical forms SigV4 hashes: URI, query and headers. Each follows the rules of
// AWS's "Create a canonical request" page and the public SigV4 test suite.

/// The canonical URI: the path with every byte outside the RFC 3986 unreserved set percent-encoded.
///
/// With `normalize` (every service except S3) empty and `.` segments are dropped and `..` removes
/// the segment before it, so `//a/./b/../` becomes `/a/`; a trailing slash is kept. S3 signs the
/// path exactly as given, so `normalize: false` only encodes. An empty path is `/`.
func canonicalURI(path: String, normalize: Bool) -> String {
    guard normalize else {
        return path.isEmpty ? "/" : path.split(separator: "/", omittingEmptySubsequences: false)
            .map(percentEncode).joined(separator: "/")
    }
    var segments: [Substring] = []
    for segment in path.split(separator: "/") {  // skipping empty segments collapses "//"
        switch segment {
        case ".": continue
        case "..": _ = segments.popLast()
        default: segments.append(segment)
        }
    }
    let trailingSlash = path.hasSuffix("/") && !segments.isEmpty ? "/" : ""
    return "/" + segments.map(percentEncode).joined(separator: "/") + trailingSlash
}

/// The canonical query string: each name and value percent-encoded, then the pairs sorted by
/// encoded name and, for repeated names, by encoded value (byte order). Every pair is kept;
/// a pair without a value still gets its `=`.
func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
    query
        .map { (name: percentEncode($0.name), value: percentEncode($0.value)) }
        .sorted { lhs, rhs in
            lhs.name == rhs.name
                ? lhs.value.utf8.lexicographicallyPrecedes(rhs.value.utf8)
                : lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8)
        }
        .map { "\($0.name)=\($0.value)" }
        .joined(separator: "&")
}

/// The canonical headers block (`name:value\n` per header) and the signed-headers list (`a;b;c`).
///
/// Names are lower-cased and sorted. Each value is trimmed and its runs of whitespace (including
/// folded line breaks) become one space, even inside quotes; repeated names are joined with `,` in
/// the order they were given. Headers for which `isSigned` is false are left out of both.
func canonicalHeaders(
    _ headers: [(name: String, value: String)],
    isSigned: (_ lowercasedName: String) -> Bool
) -> (block: String, signedHeaders: String) {
    var valuesByName: [String: [String]] = [:]
    for header in headers {
        let name = header.name.lowercased()
        guard isSigned(name) else { continue }
        valuesByName[name, default: []].append(collapsingWhitespace(header.value))
    }
    let names = valuesByName.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    let block = names.map { "\($0):\(valuesByName[$0]!.joined(separator: ","))\n" }.joined()
    return (block, names.joined(separator: ";"))
}

/// `value` trimmed, with each run of spaces, tabs and line breaks replaced by a single space.
func collapsingWhitespace(_ value: String) -> String {
    value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
        .joined(separator: " ")
}

/// RFC 3986 percent-encoding as SigV4 wants it: every UTF-8 byte outside the unreserved set
/// `A–Z a–z 0–9 - . _ ~` becomes `%XX` with uppercase hex. (Unlike form encoding, space is `%20`.)
func percentEncode<Text: StringProtocol>(_ text: Text) -> String {
    let hexDigits = Array("0123456789ABCDEF".utf8)
    var encoded: [UInt8] = []
    encoded.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            encoded.append(byte)
        default:
            encoded += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
        }
    }
    return String(decoding: encoded, as: UTF8.self)
}
