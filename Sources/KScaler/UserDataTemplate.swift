/// The template contract of userdata/README.md ("Template contract"), line by line: optional
/// sections, embedded files (comment and blank lines dropped) and blocks, `{{name}}` values.
/// The reference is infra/tests/userdata_render.py; for the same inputs the output is the same
/// bytes. Values are substituted as given: `UserDataRenderer` validates them.
struct UserDataTemplate {
    /// What a render produced and what it needed, for the caller's checks.
    struct Output {
        var text: String
        /// Every `{{name}}` in the kept lines, in order of first use; those with no value
        /// given are left empty.
        var valuesUsed: [String] = []
        /// `{{block:name}}`s with no block given.
        var blocksMissing: Set<String> = []
        /// Every section the template has, kept or not.
        var sections: Set<String> = []
    }

    /// A template's structure is wrong (a bug in userdata/, caught by the tests).
    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    let path: String
    let text: String
    /// Repository path → content of every file the template may embed.
    let files: [String: String]

    func render(values: [String: String], sections requested: Set<String>, blocks: [String: String]) throws(Malformed) -> Output {
        var output = Output(text: "")
        var lines: [Substring] = []
        var openSection: Substring?
        for line in Self.lines(of: text) {
            if let (opens, name) = Self.sectionMarker(line) {
                if opens {
                    if let openSection { throw Malformed(description: "\(path): section \(name) opens inside \(openSection); sections do not nest") }
                    openSection = name
                    output.sections.insert(String(name))
                } else if name != openSection {
                    throw Malformed(description: "\(path): section \(name) closed but \(openSection.map(String.init) ?? "none") is open")
                } else {
                    openSection = nil
                }
                continue
            }
            if let openSection, !requested.contains(String(openSection)) { continue }
            if let (indentation, kind, name) = Self.embedding(line) {
                let embedded: [Substring]
                if kind == "file" {
                    guard let file = files[String(name)] else { throw Malformed(description: "\(path): embeds \(name), which is not compiled in") }
                    embedded = Self.withoutComments(Self.lines(of: file))
                } else if let block = blocks[String(name)] {
                    embedded = Self.lines(of: block)
                } else {
                    output.blocksMissing.insert(String(name))
                    continue
                }
                lines += embedded.map { $0.isEmpty ? "" : indentation + $0 }
                continue
            }
            lines.append(Self.substitute(line, values: values, output: &output))
        }
        if let openSection { throw Malformed(description: "\(path): section \(openSection) is not closed") }
        output.text = lines.joined(separator: "\n") + "\n"
        return output
    }

    /// `# {{#name}}` (opens) or `# {{/name}}` (closes) after any indentation; name `[a-z_]+`.
    private static func sectionMarker(_ line: Substring) -> (opens: Bool, name: Substring)? {
        let marker = line.drop(while: \.isWhitespace)
        guard marker.hasPrefix("# {{"), marker.hasSuffix("}}") else { return nil }
        let inner = marker.dropFirst(4).dropLast(2)
        guard let kind = inner.first, kind == "#" || kind == "/" else { return nil }
        let name = inner.dropFirst()
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0 == "_") }) else { return nil }
        return (kind == "#", name)
    }

    /// A line that is only `{{file:PATH}}` or `{{block:NAME}}` after its indentation.
    private static func embedding(_ line: Substring) -> (indentation: Substring, kind: Substring, name: Substring)? {
        let body = line.drop(while: \.isWhitespace)
        guard body.hasPrefix("{{"), body.hasSuffix("}}") else { return nil }
        let inner = body.dropFirst(2).dropLast(2)
        guard let colon = inner.firstIndex(of: ":") else { return nil }
        let kind = inner[..<colon], name = inner[inner.index(after: colon)...]
        guard kind == "file" || kind == "block", !name.isEmpty, !name.contains("}") else { return nil }
        return (line[..<body.startIndex], kind, name)
    }

    /// Replaces every `{{name}}` (name `[a-z_0-9]+`) left to right, as `re.sub` does.
    private static func substitute(_ line: Substring, values: [String: String], output: inout Output) -> Substring {
        guard line.contains("{{") else { return line }
        var result = ""
        var rest = line
        while let open = rest.firstRange(of: "{{") {
            result += rest[..<open.lowerBound]
            let afterOpen = rest[open.upperBound...]
            let name = afterOpen.prefix(while: { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
            guard !name.isEmpty, afterOpen[name.endIndex...].hasPrefix("}}") else {
                // No placeholder here: keep one character and look again from the next one.
                result.append(rest[open.lowerBound])
                rest = rest[rest.index(after: open.lowerBound)...]
                continue
            }
            let key = String(name)
            if !output.valuesUsed.contains(key) { output.valuesUsed.append(key) }
            result += values[key] ?? ""
            rest = afterOpen[afterOpen.index(name.endIndex, offsetBy: 2)...]
        }
        return Substring(result + rest)
    }

    /// An embedded file's lines without comment-only and blank lines, except a first-line `#!`:
    /// user data must stay well under EC2's 16 KB, and the comments live on in the repository.
    static func withoutComments(_ lines: [Substring]) -> [Substring] {
        lines.enumerated().compactMap { index, line in
            if index == 0 && line.hasPrefix("#!") { return line }
            let content = line.drop(while: \.isWhitespace)
            return content.isEmpty || content.hasPrefix("#") ? nil : line
        }
    }

    /// Python's `str.splitlines()`: breaks at every line end (`\n`, `\r\n`, `\r`, and the other
    /// separators it knows); a final line end does not start an empty line. Walks Unicode
    /// scalars, not Characters: each separator is a grapheme boundary of its own (a control), and
    /// grapheme breaking over the whole template cost a no-op run ~7M instructions.
    static func lines(of text: String) -> [Substring] {
        var lines: [Substring] = []
        let scalars = text.unicodeScalars
        var start = scalars.startIndex, index = start
        while index < scalars.endIndex {
            let scalar = scalars[index]
            guard isLineEnd(scalar) else {
                index = scalars.index(after: index)
                continue
            }
            lines.append(text[start..<index])
            index = scalars.index(after: index)
            if scalar == "\r", index < scalars.endIndex, scalars[index] == "\n" { index = scalars.index(after: index) }
            start = index
        }
        if start < scalars.endIndex { lines.append(text[start...]) }
        return lines
    }

    /// The line ends of `str.splitlines()`: `\n \v \f \r`, the file/group/record separators, NEL,
    /// and the line and paragraph separators.
    private static func isLineEnd(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A...0x0D, 0x1C...0x1E, 0x85, 0x2028, 0x2029: true
        default: false
        }
    }

    /// Whether `text` holds `{{` anywhere (bytes, not Characters: the check runs over every
    /// rendered user data).
    static func containsOpeningBraces(_ text: some StringProtocol) -> Bool {
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "{") && previous == byte { return true }
            previous = byte
        }
        return false
    }
}
