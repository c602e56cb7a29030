#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Kubernetes times: RFC 3339 in UTC, whole seconds for `metav1.Time` (`2024-05-01T12:00:00Z`),
/// microseconds for `MicroTime`; other offsets are accepted on input.
enum KubeTime {
    static func parse(_ text: String) -> Date? {
        for style in [Date.ISO8601FormatStyle(), Date.ISO8601FormatStyle(includingFractionalSeconds: true)] {
            if let date = try? style.parse(text) { return date }
        }
        return nil
    }

    /// Whole seconds, UTC, as `metav1.Time` is written.
    static func format(_ date: Date) -> String {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)).formatted(Date.ISO8601FormatStyle())
    }
}

/// A `metav1.Time` field: decodes the RFC 3339 string to a `Date`, and refuses anything else
/// with the field's path (so a malformed answer says where it is malformed).
struct TimeField: Decodable {
    let date: Date

    init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let date = KubeTime.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\"\(text.prefix(40))\" is not an RFC 3339 time"))
        }
        self.date = date
    }
}

/// What a `DecodingError` says was wrong, in words, with the JSON path.
extension DecodingError {
    var readableReason: String {
        switch self {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            "the body is not valid JSON"
        case .dataCorrupted(let context):
            "\(context.debugDescription) at \(context.codingPath.readable)"
        case .keyNotFound(let key, let context):
            "the JSON has no \"\(key.stringValue)\" at \(context.codingPath.readable)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "unexpected JSON at \(context.codingPath.readable): \(context.debugDescription)"
        @unknown default:
            "the JSON has an unexpected shape"
        }
    }
}

private extension [any CodingKey] {
    /// `items[3].metadata.name` style; `top level` for the root.
    var readable: String {
        guard !isEmpty else { return "top level" }
        return reduce(into: "") { path, key in
            if let index = key.intValue { path += "[\(index)]" } else { path += path.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
    }
}
