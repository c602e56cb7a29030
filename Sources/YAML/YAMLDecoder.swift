/// Decodes `Decodable` types from a `YAMLNode` the way Yams' `YAMLDecoder` did: a `String` is
/// any scalar's text, a `Bool` is true/yes/on or false/no/off in any case unless the scalar is
/// a string (quoted, or tagged `!!str`), numbers are plain scalars, nil is a plain null (`~`,
/// `null`, or nothing), and a missing key is `keyNotFound`. Errors are `DecodingError`s with
/// the path of keys, worded as Yams worded them.
public struct YAMLDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from node: YAMLNode) throws -> T {
        try NodeDecoder(node: node, codingPath: []).decode(type)
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        intValue = nil
    }

    init(intValue: Int) {
        stringValue = "Index \(intValue)"
        self.intValue = intValue
    }
}

private func kind(of node: YAMLNode) -> String {
    switch node {
    case .scalar: "Scalar"
    case .sequence: "Sequence"
    case .mapping: "Mapping"
    }
}

private func typeMismatch(_ expected: Any.Type, _ expectedName: String, found node: YAMLNode, at codingPath: [any CodingKey]) -> DecodingError {
    .typeMismatch(expected, .init(codingPath: codingPath,
                                  debugDescription: "Expected to decode \(expectedName) but found \(kind(of: node)) instead."))
}

private struct NodeDecoder: Decoder, SingleValueDecodingContainer {
    let node: YAMLNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else {
            throw typeMismatch(YAMLMapping.self, "Mapping", found: node, at: codingPath)
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(mapping: mapping, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else {
            throw typeMismatch(YAMLSequence.self, "Sequence", found: node, at: codingPath)
        }
        return UnkeyedContainer(items: sequence.items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return YAMLResolver.isNull(scalar.value)
    }

    private func scalar<T>(_ type: T.Type) throws -> YAMLScalar {
        guard case .scalar(let scalar) = node else {
            throw typeMismatch(type, "\(type)", found: node, at: codingPath)
        }
        return scalar
    }

    private func constructed<T>(_ value: T?, _ type: T.Type) throws -> T {
        guard let value else { throw typeMismatch(type, "\(type)", found: node, at: codingPath) }
        return value
    }

    func decode(_ type: String.Type) throws -> String { try scalar(type).value }

    func decode(_ type: Bool.Type) throws -> Bool {
        let scalar = try scalar(type)
        let isString = scalar.tag.map { $0 == YAMLTag.str || $0 == "!" } ?? (scalar.style != .plain)
        return try constructed(isString ? nil : YAMLResolver.bool(scalar.value), type)
    }

    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let scalar = try scalar(type)
        guard scalar.style == .plain else { throw typeMismatch(type, "\(type)", found: node, at: codingPath) }
        return try constructed(YAMLResolver.int(scalar.value).flatMap { T(exactly: $0) }, type)
    }

    func decode(_ type: Double.Type) throws -> Double {
        let scalar = try scalar(type)
        guard scalar.style == .plain else { throw typeMismatch(type, "\(type)", found: node, at: codingPath) }
        return try constructed(YAMLResolver.double(scalar.value), type)
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is String.Type: return try decode(String.self) as! T
        case is Bool.Type: return try decode(Bool.self) as! T
        case is Int.Type: return try decode(Int.self) as! T
        case is Double.Type: return try decode(Double.self) as! T
        default: return try T(from: self)
        }
    }

    func child(_ node: YAMLNode, _ key: any CodingKey) -> NodeDecoder {
        NodeDecoder(node: node, codingPath: codingPath + [key])
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let mapping: YAMLMapping
    let codingPath: [any CodingKey]

    var allKeys: [Key] { mapping.pairs.compactMap { $0.key.string.flatMap(Key.init(stringValue:)) } }

    func contains(_ key: Key) -> Bool { mapping[key.stringValue] != nil }

    private func decoder(for key: any CodingKey) throws -> NodeDecoder {
        guard let node = mapping[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath,
                                                       debugDescription: "No value associated with key \(key) (\"\(key.stringValue)\")."))
        }
        return NodeDecoder(node: node, codingPath: codingPath + [key])
    }

    func decodeNil(forKey key: Key) throws -> Bool { try decoder(for: key).decodeNil() }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decoder(for: key).decode(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder(for: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder(for: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { try decoder(for: IndexKey(stringValue: "super")) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try decoder(for: key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [YAMLNode]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [YAMLNode], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next<T>(_ type: T.Type, _ body: (NodeDecoder) throws -> T) throws -> T {
        let key = IndexKey(intValue: currentIndex)
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [key], debugDescription: "Unkeyed container is at end."))
        }
        let value = try body(NodeDecoder(node: items[currentIndex], codingPath: codingPath + [key]))
        currentIndex += 1
        return value
    }

    /// Moves past the item only when it is a null, as `decodeIfPresent` expects.
    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any?.self, .init(codingPath: codingPath + [IndexKey(intValue: currentIndex)],
                                                               debugDescription: "Unkeyed container is at end."))
        }
        guard NodeDecoder(node: items[currentIndex], codingPath: codingPath).decodeNil() else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next(type) { try $0.decode(type) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next(KeyedDecodingContainer<NestedKey>.self) { try $0.container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next((any UnkeyedDecodingContainer).self) { try $0.unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder { try next((any Decoder).self) { $0 } }
}
