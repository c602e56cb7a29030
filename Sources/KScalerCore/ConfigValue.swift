/// A neutral configuration tree: what YAML and environment variables both turn into before
/// `KScalerConfig.parse` types and validates it. Environment values arrive as `.string`, so
/// every typed field also accepts its string spelling ("70", "true", "10m", "8Gi", "a,b").
package indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case list([ConfigValue])
    case map([String: ConfigValue])
    case null

    /// A copy with `value` placed at `path` (map keys), creating or replacing maps on the way.
    /// The environment loader uses it to lay `KSCALER_*` values over the YAML tree.
    package func setting(_ value: ConfigValue, at path: some Collection<String>) -> ConfigValue {
        guard let key = path.first else { return value }
        var fields: [String: ConfigValue] = [:]
        if case .map(let existing) = self { fields = existing }
        fields[key] = (fields[key] ?? .null).setting(value, at: path.dropFirst())
        return .map(fields)
    }

    /// The kind's name, for "expected X, got Y" messages.
    var kindName: String {
        switch self {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .list: "a list"
        case .map: "a map"
        case .null: "nothing"
        }
    }
}

extension ConfigValue: ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    package init(stringLiteral value: String) { self = .string(value) }
    package init(floatLiteral value: Double) { self = .number(value) }
    package init(integerLiteral value: Int) { self = .number(Double(value)) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(arrayLiteral elements: ConfigValue...) { self = .list(elements) }
    package init(dictionaryLiteral elements: (String, ConfigValue)...) {
        self = .map(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    package init(nilLiteral: ()) { self = .null }
}
