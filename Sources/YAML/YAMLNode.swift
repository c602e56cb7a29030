/// A YAML document as a tree: what the reference libyaml's event parser reports, with aliases
/// replaced by the node their anchor names (values share storage, so an alias costs nothing
/// until a consumer walks it; `YAMLParser.Limits.maxNodes` bounds what a walk can cost).
public enum YAMLNode: Sendable {
    case scalar(YAMLScalar)
    case sequence(YAMLSequence)
    case mapping(YAMLMapping)

    /// Where the node starts.
    public var mark: YAMLMark {
        switch self {
        case .scalar(let scalar): scalar.mark
        case .sequence(let sequence): sequence.mark
        case .mapping(let mapping): mapping.mark
        }
    }

    /// The scalar's text; nil for a sequence or a mapping.
    public var string: String? {
        if case .scalar(let scalar) = self { scalar.value } else { nil }
    }

    public var scalar: YAMLScalar? {
        if case .scalar(let scalar) = self { scalar } else { nil }
    }

    public var sequence: YAMLSequence? {
        if case .sequence(let sequence) = self { sequence } else { nil }
    }

    public var mapping: YAMLMapping? {
        if case .mapping(let mapping) = self { mapping } else { nil }
    }
}

/// A position in the text, both from 1; columns count Unicode scalars, as libyaml counts them.
public struct YAMLMark: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "line \(line), column \(column)" }
}

public struct YAMLScalar: Sendable, Equatable {
    public enum Style: Sendable, Equatable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    public var value: String
    public var style: Style
    /// The explicit tag, expanded (`!!str` is `tag:yaml.org,2002:str`); nil when none was written.
    /// A quoted or block scalar without one is a string, which `resolvedTag` says.
    public var tag: String?
    public var mark: YAMLMark

    public init(_ value: String, style: Style = .plain, tag: String? = nil, mark: YAMLMark = YAMLMark(line: 1, column: 1)) {
        self.value = value
        self.style = style
        self.tag = tag
        self.mark = mark
    }
}

public struct YAMLSequence: Sendable {
    public var items: [YAMLNode]
    public var tag: String?
    public var mark: YAMLMark

    public init(_ items: [YAMLNode], tag: String? = nil, mark: YAMLMark = YAMLMark(line: 1, column: 1)) {
        self.items = items
        self.tag = tag
        self.mark = mark
    }
}

/// Pairs in the order written. Keys are nodes (`? [a, b]: c` is valid YAML); the parser
/// refuses a mapping that repeats a key.
public struct YAMLMapping: Sendable {
    public struct Pair: Sendable {
        public var key: YAMLNode
        public var value: YAMLNode

        public init(key: YAMLNode, value: YAMLNode) {
            self.key = key
            self.value = value
        }
    }

    public var pairs: [Pair]
    public var tag: String?
    public var mark: YAMLMark

    public init(_ pairs: [Pair], tag: String? = nil, mark: YAMLMark = YAMLMark(line: 1, column: 1)) {
        self.pairs = pairs
        self.tag = tag
        self.mark = mark
    }

    /// The value of the last pair whose key is a scalar with this text (whatever its type:
    /// `1` and `true` are found as "1" and "true").
    public subscript(key: String) -> YAMLNode? {
        pairs.last { $0.key.string == key }?.value
    }
}

/// The YAML 1.1 tags the resolver gives plain scalars, and the string tag every other scalar has.
public enum YAMLTag {
    public static let str = "tag:yaml.org,2002:str"
    public static let null = "tag:yaml.org,2002:null"
    public static let bool = "tag:yaml.org,2002:bool"
    public static let int = "tag:yaml.org,2002:int"
    public static let float = "tag:yaml.org,2002:float"
    public static let timestamp = "tag:yaml.org,2002:timestamp"
    public static let merge = "tag:yaml.org,2002:merge"
    public static let value = "tag:yaml.org,2002:value"
    public static let seq = "tag:yaml.org,2002:seq"
    public static let map = "tag:yaml.org,2002:map"
}
