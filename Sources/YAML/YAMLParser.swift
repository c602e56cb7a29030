import CYAML

/// Parses YAML with the reference libyaml's event API into `YAMLNode`s.
///
/// One document per text, as Yams' `compose` reads: none (an empty text, or only comments) is
/// nil, and a second one is an error. Aliases become the node their anchor names; `limits`
/// bound how far they may expand and how deep collections may nest, so neither a few lines
/// of aliases to aliases nor ten thousand `[` can make a consumer walk or recurse without end.
public enum YAMLParser {
    public struct Limits: Sendable {
        /// Nodes in the document once every alias is expanded (keys count, as values do).
        public var maxNodes: Int
        /// Collections inside collections (1,000 by default, the bound Yams' libyaml had).
        public var maxDepth: Int

        public init(maxNodes: Int = 1_000_000, maxDepth: Int = 1_000) {
            self.maxNodes = maxNodes
            self.maxDepth = maxDepth
        }
    }

    /// `text`'s single document, or nil when it has none.
    public static func parse(_ text: String, limits: Limits = Limits()) throws(YAMLError) -> YAMLNode? {
        var text = text
        return try text.withUTF8 { bytes in parse(bytes: bytes, limits: limits) }.get()
    }

    /// `utf8`'s single document; bytes that are not UTF-8 are a reader error naming where they are.
    public static func parse(utf8: some Sequence<UInt8>, limits: Limits = Limits()) throws(YAMLError) -> YAMLNode? {
        let bytes = Array(utf8)
        return try bytes.withUnsafeBufferPointer { bytes in parse(bytes: bytes, limits: limits) }.get()
    }

    private static func parse(bytes: UnsafeBufferPointer<UInt8>, limits: Limits) -> Result<YAMLNode?, YAMLError> {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { return .failure(YAMLError(kind: .memory, problem: "out of memory", mark: YAMLMark(line: 1, column: 1))) }
        defer { yaml_parser_delete(parser) }
        // As Yams: the encoding is given, not sniffed (a byte order mark is still skipped).
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
        // libyaml reads the buffer in place; an empty one needs a valid pointer all the same.
        let empty: [UInt8] = [0]
        return empty.withUnsafeBufferPointer { empty in
            let base = bytes.baseAddress ?? empty.baseAddress!
            yaml_parser_set_input_string(parser, base, bytes.count)
            var builder = Builder(parser: parser, input: UnsafeBufferPointer(start: base, count: bytes.count), limits: limits)
            return Result { () throws(YAMLError) in try builder.singleDocument() }
        }
    }
}

/// What went wrong, and where. `description` is "line 2, column 8: mapping values are not
/// allowed in this context": the problem and position only, never the text around it, which
/// may hold a secret.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The bytes: not UTF-8, or control characters.
        case reader
        case scanner
        case parser
        /// Building the tree: an undefined alias, a second document, a repeated key.
        case composer
        /// `YAMLParser.Limits` exceeded.
        case limit
        case memory
    }

    public var kind: Kind
    public var problem: String
    public var mark: YAMLMark
    /// What libyaml was reading when it found the problem ("while parsing a flow sequence").
    public var context: String?
    /// For a mapping that repeats keys: the repeated keys, sorted.
    public var duplicateKeys: [String]

    public init(kind: Kind, problem: String, mark: YAMLMark, context: String? = nil, duplicateKeys: [String] = []) {
        self.kind = kind
        self.problem = problem
        self.mark = mark
        self.context = context
        self.duplicateKeys = duplicateKeys
    }

    public var line: Int { mark.line }
    public var column: Int { mark.column }

    public var description: String { "\(mark): \(problem)" }
}

/// Turns events into nodes without recursing: open collections are a stack.
private struct Builder {
    let parser: UnsafeMutablePointer<yaml_parser_t>
    let input: UnsafeBufferPointer<UInt8>
    let limits: YAMLParser.Limits
    /// Anchor → its node and how many nodes it expands to.
    var anchors: [String: (node: YAMLNode, size: Int)] = [:]
    /// Nodes made so far, aliases counted at their anchor's size.
    var total = 0

    private enum Open {
        case sequence(YAMLSequence, anchor: String?, totalAtStart: Int)
        case mapping(YAMLMapping, pendingKey: YAMLNode?, anchor: String?, totalAtStart: Int)
    }
    private var stack: [Open] = []

    init(parser: UnsafeMutablePointer<yaml_parser_t>, input: UnsafeBufferPointer<UInt8>, limits: YAMLParser.Limits) {
        self.parser = parser
        self.input = input
        self.limits = limits
    }

    /// Yams' `singleRoot`: stream start, then nil at stream end, else a document and stream end.
    mutating func singleDocument() throws(YAMLError) -> YAMLNode? {
        var event = try nextEvent()  // STREAM-START
        yaml_event_delete(&event)
        event = try nextEvent()  // DOCUMENT-START or STREAM-END
        let isEnd = event.type == YAML_STREAM_END_EVENT
        yaml_event_delete(&event)
        if isEnd { return nil }
        let root = try document()
        event = try nextEvent()  // DOCUMENT-END
        yaml_event_delete(&event)
        event = try nextEvent()
        defer { yaml_event_delete(&event) }
        if event.type != YAML_STREAM_END_EVENT {
            throw YAMLError(kind: .composer, problem: "but found another document", mark: Self.mark(event.start_mark),
                            context: "expected a single document in the stream")
        }
        return root
    }

    private enum Step {
        case node(YAMLNode, anchor: String?, size: Int)
        case open
        case close
    }

    /// Events up to the root node's end.
    private mutating func document() throws(YAMLError) -> YAMLNode {
        while true {
            var event = try nextEvent()
            defer { yaml_event_delete(&event) }
            let step = try self.step(event)
            var finished: (node: YAMLNode, anchor: String?, size: Int)
            switch step {
            case .open:
                continue
            case .node(let node, let anchor, let size):
                finished = (node, anchor, size)
            case .close:
                finished = try close()
            }
            // Hand the finished node to its parent (or return it as the root), then register
            // its anchor: an anchor names its node only once the node is complete, so
            // `&a [*a]` is an undefined alias, as in Yams.
            if let anchor = finished.anchor { anchors[anchor] = (finished.node, finished.size) }
            guard !stack.isEmpty else { return finished.node }
            switch stack.removeLast() {
            case .sequence(var sequence, let anchor, let start):
                sequence.items.append(finished.node)
                stack.append(.sequence(sequence, anchor: anchor, totalAtStart: start))
            case .mapping(var mapping, let pendingKey, let anchor, let start):
                if let key = pendingKey {
                    mapping.pairs.append(YAMLMapping.Pair(key: key, value: finished.node))
                    stack.append(.mapping(mapping, pendingKey: nil, anchor: anchor, totalAtStart: start))
                } else {
                    stack.append(.mapping(mapping, pendingKey: finished.node, anchor: anchor, totalAtStart: start))
                }
            }
        }
    }

    private mutating func step(_ event: yaml_event_t) throws(YAMLError) -> Step {
        let mark = Self.mark(event.start_mark)
        switch event.type {
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            let value = String(decoding: UnsafeBufferPointer(start: data.value, count: data.length), as: UTF8.self)
            let tag = data.quoted_implicit == 1 ? nil : Self.string(data.tag)
            try count(1, at: mark)
            return .node(.scalar(YAMLScalar(value, style: Self.style(data.style), tag: tag, mark: mark)),
                         anchor: Self.string(data.anchor), size: 1)
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let anchored = anchors[name] else {
                throw YAMLError(kind: .composer, problem: "found undefined alias", mark: mark)
            }
            try count(anchored.size, at: mark)
            return .node(anchored.node, anchor: nil, size: anchored.size)
        case YAML_SEQUENCE_START_EVENT:
            let data = event.data.sequence_start
            try open(at: mark)
            stack.append(.sequence(YAMLSequence([], tag: data.implicit != 0 ? nil : Self.string(data.tag), mark: mark),
                                   anchor: Self.string(data.anchor), totalAtStart: total - 1))
            return .open
        case YAML_MAPPING_START_EVENT:
            let data = event.data.mapping_start
            try open(at: mark)
            stack.append(.mapping(YAMLMapping([], tag: data.implicit != 0 ? nil : Self.string(data.tag), mark: mark),
                                  pendingKey: nil, anchor: Self.string(data.anchor), totalAtStart: total - 1))
            return .open
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            return .close
        default:
            // The parser gives nothing else inside a document.
            throw YAMLError(kind: .composer, problem: "unexpected event \(event.type.rawValue)", mark: mark)
        }
    }

    private mutating func open(at mark: YAMLMark) throws(YAMLError) {
        guard stack.count < limits.maxDepth else {
            throw YAMLError(kind: .limit, problem: "collections are nested more than \(limits.maxDepth) deep", mark: mark)
        }
        try count(1, at: mark)
    }

    private mutating func count(_ nodes: Int, at mark: YAMLMark) throws(YAMLError) {
        total += nodes
        guard total <= limits.maxNodes else {
            throw YAMLError(kind: .limit, problem: "the document expands to more than \(limits.maxNodes) nodes (aliases repeat what their anchor holds)",
                            mark: mark)
        }
    }

    private mutating func close() throws(YAMLError) -> (node: YAMLNode, anchor: String?, size: Int) {
        switch stack.removeLast() {
        case .sequence(let sequence, let anchor, let start):
            return (.sequence(sequence), anchor, total - start)
        case .mapping(let mapping, _, let anchor, let start):
            try Self.checkDuplicates(mapping)
            return (.mapping(mapping), anchor, total - start)
        }
    }

    /// As Yams: scalar keys are the same key when their text and resolved tag are (`1` and
    /// `"1"` differ); the error names every repeated key and points at the first occurrence of
    /// the one that sorts first.
    private static func checkDuplicates(_ mapping: YAMLMapping) throws(YAMLError) {
        struct Identity: Hashable { var value: String; var tag: String }
        var first: [Identity: YAMLMark] = [:]
        var repeated: Set<Identity> = []
        for pair in mapping.pairs {
            guard case .scalar(let scalar) = pair.key else { continue }
            let identity = Identity(value: scalar.value, tag: scalar.resolvedTag)
            if first[identity] == nil { first[identity] = scalar.mark } else { repeated.insert(identity) }
        }
        guard !repeated.isEmpty else { return }
        let sorted = repeated.sorted { ($0.value, $0.tag) < ($1.value, $1.tag) }
        let keys = sorted.map(\.value)
        throw YAMLError(kind: .composer,
                        problem: "expected all keys to be unique but found the following duplicated key(s): "
                            + keys.map { "'\($0)'" }.joined(separator: ", "),
                        mark: first[sorted[0]]!, duplicateKeys: keys)
    }

    /// The next event; the caller frees it with `yaml_event_delete`.
    private func nextEvent() throws(YAMLError) -> yaml_event_t {
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else { throw error() }
        return event
    }

    private func error() -> YAMLError {
        let parser = parser.pointee
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        let context = parser.context.map { String(cString: $0) }
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(kind: .memory, problem: "out of memory", mark: YAMLMark(line: 1, column: 1))
        case YAML_READER_ERROR:
            return YAMLError(kind: .reader, problem: problem, mark: position(ofByte: parser.problem_offset))
        case YAML_SCANNER_ERROR:
            return YAMLError(kind: .scanner, problem: problem, mark: Self.mark(parser.problem_mark), context: context)
        case YAML_PARSER_ERROR:
            return YAMLError(kind: .parser, problem: problem, mark: Self.mark(parser.problem_mark), context: context)
        default:
            return YAMLError(kind: .composer, problem: problem, mark: Self.mark(parser.problem_mark), context: context)
        }
    }

    /// A reader error gives a byte offset only: its line and column, counted as libyaml counts
    /// them (columns in characters, so continuation bytes do not count).
    private func position(ofByte offset: Int) -> YAMLMark {
        var line = 1, column = 1
        var previous: UInt8 = 0
        for byte in input.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                if previous != UInt8(ascii: "\r") { line += 1 }
                column = 1
            } else if byte == UInt8(ascii: "\r") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
            previous = byte
        }
        return YAMLMark(line: line, column: column)
    }

    private static func mark(_ mark: yaml_mark_t) -> YAMLMark {
        YAMLMark(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(decoding: UnsafeBufferPointer(start: $0, count: strlen($0)), as: UTF8.self) }
    }

    private static func style(_ style: yaml_scalar_style_t) -> YAMLScalar.Style {
        switch style {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: .literal
        case YAML_FOLDED_SCALAR_STYLE: .folded
        default: .plain
        }
    }
}

private func strlen(_ pointer: UnsafePointer<yaml_char_t>) -> Int {
    var count = 0
    while pointer[count] != 0 { count += 1 }
    return count
}
