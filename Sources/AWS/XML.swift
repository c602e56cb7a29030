/// A small, strict XML reader for AWS Query-protocol answers (EC2, STS, and the XML error
/// bodies moto sends even for JSON services). AWS XML is plain: elements, text, entities,
/// no DTDs. Attributes are skipped and namespace prefixes dropped, because no answer we
/// read depends on them. Malformed input is an error with the byte offset, never a guess.
package struct XMLElement: Sendable, Equatable {
    package var name: String
    package var children: [XMLElement]
    /// Concatenated character data directly inside this element (entities decoded).
    package var text: String

    package init(name: String, children: [XMLElement] = [], text: String = "") {
        self.name = name
        self.children = children
        self.text = text
    }

    /// First direct child with this name.
    package func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }

    /// Direct children with this name.
    package func children(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }

    /// Follows a path of direct children, e.g. `element.path("instanceState", "name")`.
    package func path(_ names: String...) -> XMLElement? {
        var current: XMLElement? = self
        for name in names { current = current?.child(name) }
        return current
    }

    /// Text of a direct child, or nil when the child is absent.
    package func string(_ name: String) -> String? { child(name)?.text }

    /// The items of an AWS list wrapper: `<instancesSet><item>…</item></instancesSet>`.
    package func items(_ wrapper: String) -> [XMLElement] { child(wrapper)?.children("item") ?? [] }

    /// Depth-first search for the first element with this name (self included).
    package func first(named name: String) -> XMLElement? {
        if self.name == name { return self }
        for child in children {
            if let found = child.first(named: name) { return found }
        }
        return nil
    }
}

package struct XMLParseError: Error, Sendable, CustomStringConvertible {
    package var offset: Int
    package var reason: String
    package var description: String { "malformed XML at byte \(offset): \(reason)" }
}

package enum XML {
    /// Parses a whole document and returns its root element.
    package static func parse(_ data: Data) throws(XMLParseError) -> XMLElement {
        // Parsed in place: no bounds check per byte in the loops below.
        try Array(data).withUnsafeBufferPointer { bytes throws(XMLParseError) in
            var parser = Parser(bytes: bytes)
            return try parser.document()
        }
    }

    package static func parse(_ text: String) throws(XMLParseError) -> XMLElement {
        try parse(Data(text.utf8))
    }

    /// Escapes text for inclusion in XML (used by tests and stand-in servers).
    package static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }
}

/// An element's character data: a single run of the input (a leaf's value) is kept as a
/// range until the element ends; text in several pieces (entities, CDATA, mixed content) is
/// copied together.
private struct CharacterData {
    private var run: Range<Int>?
    private var pieces: [UInt8] = []

    mutating func append(_ range: Range<Int>, of bytes: UnsafeBufferPointer<UInt8>) {
        if run == nil && pieces.isEmpty {
            run = range
        } else {
            spill(bytes)
            pieces += bytes[range]
        }
    }

    mutating func append(decoded: [UInt8], of bytes: UnsafeBufferPointer<UInt8>) {
        spill(bytes)
        pieces += decoded
    }

    private mutating func spill(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let run else { return }
        pieces += bytes[run]
        self.run = nil
    }

    func string(in bytes: UnsafeBufferPointer<UInt8>) -> String {
        if let run { return String(decoding: bytes[run], as: UTF8.self) }
        return pieces.isEmpty ? "" : String(decoding: pieces, as: UTF8.self)
    }
}

private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// Bounds recursion so a hostile document cannot overflow the stack.
    static let maxDepth = 64

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func fail(_ reason: String) -> XMLParseError { XMLParseError(offset: index, reason: reason) }

    mutating func document() throws(XMLParseError) -> XMLElement {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        try skipMisc()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "<") else {
            throw fail(bytes.isEmpty ? "empty document" : "expected a root element")
        }
        let root = try element(depth: 0)
        try skipMisc()
        guard index == bytes.count else { throw fail("content after the root element") }
        return root
    }

    /// Skips whitespace, the XML declaration, processing instructions and comments.
    mutating func skipMisc() throws(XMLParseError) {
        while true {
            skipWhitespace()
            if hasPrefix("<?") {
                try skip(past: "?>")
            } else if hasPrefix("<!--") {
                try skip(past: "-->")
            } else if hasPrefix("<!DOCTYPE") {
                throw fail("DOCTYPE is not allowed")
            } else {
                return
            }
        }
    }

    /// Names stay byte ranges: only an element's local name becomes a String, and a closing
    /// tag is checked byte by byte. A leaf's text is made a String straight from the input.
    mutating func element(depth: Int) throws(XMLParseError) -> XMLElement {
        guard depth < Self.maxDepth else { throw fail("elements nested deeper than \(Self.maxDepth)") }
        index += 1  // "<"
        let name = try readName()
        try skipAttributes()
        if hasPrefix("/>") {
            index += 2
            return XMLElement(name: localName(name))
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw fail("expected '>' after <\(string(name))") }
        index += 1
        var result = XMLElement(name: localName(name))
        var text = CharacterData()
        while true {
            guard index < bytes.count else { throw fail("document ends inside <\(string(name))>") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "<") {
                if hasPrefix("</") {
                    index += 2
                    let closing = try readName()
                    guard bytes[closing].elementsEqual(bytes[name]) else { throw fail("</\(string(closing))> closes <\(string(name))>") }
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw fail("expected '>' in </\(string(name))") }
                    index += 1
                    result.text = text.string(in: bytes)
                    return result
                } else if hasPrefix("<!--") {
                    try skip(past: "-->")
                } else if hasPrefix("<![CDATA[") {
                    index += 9
                    let start = index
                    try skip(past: "]]>")
                    text.append(start..<(index - 3), of: bytes)
                } else if hasPrefix("<?") {
                    try skip(past: "?>")
                } else {
                    result.children.append(try element(depth: depth + 1))
                }
            } else if byte == UInt8(ascii: "&") {
                try appendEntity(to: &text)
            } else {
                let start = index
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "<"), bytes[index] != UInt8(ascii: "&") { index += 1 }
                text.append(start..<index, of: bytes)
            }
        }
    }

    /// The bytes of a tag or attribute name.
    mutating func readName() throws(XMLParseError) -> Range<Int> {
        let start = index
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: ">") || b == UInt8(ascii: "/") || b == UInt8(ascii: " ") || b == 9 || b == 10 || b == 13 || b == UInt8(ascii: "=") {
                break
            }
            index += 1
        }
        guard index > start else { throw fail("expected an element name") }
        return start..<index
    }

    func string(_ name: Range<Int>) -> String { String(decoding: bytes[name], as: UTF8.self) }

    /// The name without its namespace prefix (`ec2:item` → `item`).
    func localName(_ name: Range<Int>) -> String {
        var start = name.upperBound
        while start > name.lowerBound, bytes[start - 1] != UInt8(ascii: ":") { start -= 1 }
        return string(start..<name.upperBound)
    }

    mutating func skipAttributes() throws(XMLParseError) {
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw fail("document ends inside a tag") }
            let b = bytes[index]
            if b == UInt8(ascii: ">") || hasPrefix("/>") { return }
            _ = try readName()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw fail("attribute without a value") }
            index += 1
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                throw fail("attribute value must be quoted")
            }
            let quote = bytes[index]
            index += 1
            while index < bytes.count, bytes[index] != quote { index += 1 }
            guard index < bytes.count else { throw fail("unterminated attribute value") }
            index += 1
        }
    }

    mutating func appendEntity(to text: inout CharacterData) throws(XMLParseError) {
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: ";"), index - start < 12 { index += 1 }
        guard index < bytes.count, bytes[index] == UInt8(ascii: ";") else {
            index = start
            throw fail("unterminated entity")
        }
        let entity = String(decoding: bytes[(start + 1)..<index], as: UTF8.self)
        index += 1
        switch entity {
        case "amp": text.append(decoded: [UInt8(ascii: "&")], of: bytes)
        case "lt": text.append(decoded: [UInt8(ascii: "<")], of: bytes)
        case "gt": text.append(decoded: [UInt8(ascii: ">")], of: bytes)
        case "quot": text.append(decoded: [UInt8(ascii: "\"")], of: bytes)
        case "apos": text.append(decoded: [UInt8(ascii: "'")], of: bytes)
        default:
            var scalarValue: UInt32?
            if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                scalarValue = UInt32(entity.dropFirst(2), radix: 16)
            } else if entity.hasPrefix("#") {
                scalarValue = UInt32(entity.dropFirst(), radix: 10)
            }
            guard let scalarValue, let scalar = Unicode.Scalar(scalarValue) else {
                index = start
                throw fail("unknown entity &\(entity);")
            }
            text.append(decoded: Array(String(Character(scalar)).utf8), of: bytes)
        }
    }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 32 || bytes[index] == 9 || bytes[index] == 10 || bytes[index] == 13 {
            index += 1
        }
    }

    func hasPrefix(_ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return prefix.withUTF8Buffer { buffer in
            for offset in 0..<count where bytes[index + offset] != buffer[offset] { return false }
            return true
        }
    }

    mutating func skip(past terminator: StaticString) throws(XMLParseError) {
        while index < bytes.count {
            if hasPrefix(terminator) {
                index += terminator.utf8CodeUnitCount
                return
            }
            index += 1
        }
        throw fail("unterminated construct, expected \(terminator)")
    }
}
