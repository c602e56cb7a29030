#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The envelope of every Prometheus HTTP API answer:
/// `{"status":"success","data":{…}}` or `{"status":"error","errorType":"…","error":"…"}`.
struct APIResponse: Decodable {
    let status: String
    let errorType: String?
    let error: String?
    let data: ResultData?
}

/// `data` of an instant or range query. Only the result types kscaler uses are decoded; for
/// the others the (possibly large) result is skipped.
enum ResultData: Decodable {
    case vector([Sample])
    case scalar(Sample)
    case matrix([RangeSeries])
    case unsupported(resultType: String)

    private enum CodingKeys: String, CodingKey { case resultType, result }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let resultType = try container.decode(String.self, forKey: .resultType)
        switch resultType {
        case "vector":
            self = .vector(try container.decode([VectorElement].self, forKey: .result).map(\.sample))
        case "scalar":
            self = .scalar(try container.decode(ValuePair.self, forKey: .result).sample(labels: [:]))
        case "matrix":
            self = .matrix(try container.decode([MatrixElement].self, forKey: .result).map(\.series))
        default:
            self = .unsupported(resultType: resultType)
        }
    }
}

/// `{"metric":{…labels…},"value":[<unix seconds>,"<value>"]}`
private struct VectorElement: Decodable {
    let sample: Sample

    private enum CodingKeys: String, CodingKey { case metric, value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let labels = try container.decode([String: String].self, forKey: .metric)
        sample = try container.decode(ValuePair.self, forKey: .value).sample(labels: labels)
    }
}

/// `{"metric":{…labels…},"values":[[<unix seconds>,"<value>"],…]}`
private struct MatrixElement: Decodable {
    let series: RangeSeries

    private enum CodingKeys: String, CodingKey { case metric, values }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let labels = try container.decode([String: String].self, forKey: .metric)
        let points = try container.decode([ValuePair].self, forKey: .values)
        series = RangeSeries(labels: labels, points: points.map { RangePoint(timestamp: Date(timeIntervalSince1970: $0.timestamp), value: $0.value) })
    }
}

/// `[<unix seconds as a JSON number>, "<value as a string>"]`
private struct ValuePair: Decodable {
    let timestamp: Double
    let value: Double

    init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        timestamp = try container.decode(Double.self)
        let text = try container.decode(String.self)
        guard let value = sampleValue(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "sample value \"\(text.prefix(40))\" is not a number")
        }
        self.value = value
    }

    func sample(labels: [String: String]) -> Sample {
        Sample(labels: labels, timestamp: Date(timeIntervalSince1970: timestamp), value: value)
    }
}

/// A sample value as Prometheus writes it: a decimal, or "NaN", "+Inf", "-Inf" (Go's formatting).
func sampleValue(_ text: String) -> Double? {
    switch text {
    case "NaN": .nan
    case "+Inf": .infinity
    case "-Inf": -.infinity
    default: Double(text)
    }
}

extension DecodingError {
    /// What was wrong with the body, in words, for `PrometheusError.unreadableResponse`.
    var readableReason: String {
        switch self {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            "body is not valid JSON"
        case .dataCorrupted(let context):
            "\(context.debugDescription) at \(context.codingPath.readable)"
        case .keyNotFound(let key, let context):
            "JSON has no \"\(key.stringValue)\" at \(context.codingPath.readable), so it is not a Prometheus API answer"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "unexpected JSON at \(context.codingPath.readable): \(context.debugDescription)"
        @unknown default:
            "JSON is not a Prometheus API answer"
        }
    }
}

private extension [any CodingKey] {
    /// `data.result[3].value` style; `top level` for the root.
    var readable: String {
        guard !isEmpty else { return "top level" }
        return reduce(into: "") { path, key in
            if let index = key.intValue { path += "[\(index)]" } else { path += path.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
    }
}
