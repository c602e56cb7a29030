#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reads the answer that grows with the cluster — an instant vector,
/// `{"status":"success","data":{"resultType":"vector","result":[…]}}` — straight from the
/// bytes. JSONDecoder spent nine tenths of a 10,000-series decode building each series'
/// label dictionary through Codable's generic keyed containers (about 110,000 instructions
/// a series, per callgrind); this reads each byte once.
///
/// It accepts only the shape Prometheus writes: keys in Prometheus's order, strings without
/// escapes, valid UTF-8, no duplicate label names, nothing after the document. Anything else
/// (errors, scalars, warnings, escaped strings, garbage) returns nil and goes through
/// JSONDecoder, which decodes it — or explains what is wrong with it — as before. So what
/// this accepts, JSONDecoder would decode to the same samples.
enum VectorReader {
    static func samples(in body: Data) -> [Sample]? {
        body.withUnsafeBytes { bytes in
            var reader = Reader(bytes: bytes)
            return reader.vector()
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        mutating func vector() -> [Sample]? {
            guard take("{"), key("status"), literal(#""success""#), take(","), key("data"), take("{"),
                  key("resultType"), literal(#""vector""#), take(","), key("result"), take("[") else { return nil }
            var samples: [Sample] = []
            var labelCount = 0
            if !take("]") {
                repeat {
                    guard let sample = self.sample(labelCapacity: labelCount) else { return nil }
                    labelCount = sample.labels.count
                    samples.append(sample)
                } while take(",")
                guard take("]") else { return nil }
            }
            guard take("}"), take("}") else { return nil }
            skipWhitespace()
            return index == bytes.count ? samples : nil
        }

        /// `{"metric":{…},"value":[<seconds>,"<value>"]}`
        mutating func sample(labelCapacity: Int) -> Sample? {
            guard take("{"), key("metric"), take("{") else { return nil }
            var labels: [String: String] = [:]
            labels.reserveCapacity(labelCapacity)  // series of one answer mostly share their label names
            if !take("}") {
                repeat {
                    guard let name = string(), take(":"), let value = string(),
                          labels.updateValue(value, forKey: name) == nil else { return nil }
                } while take(",")
                guard take("}") else { return nil }
            }
            guard take(","), key("value"), take("["), let seconds = number(), take(","),
                  let text = string(), let value = sampleValue(text), take("]"), take("}") else { return nil }
            return Sample(labels: labels, timestamp: Date(timeIntervalSince1970: seconds), value: value)
        }

        /// `"name"` and the colon after it.
        mutating func key(_ name: StaticString) -> Bool {
            skipWhitespace()
            guard take(UInt8(ascii: "\"")), bytesMatch(name), take(UInt8(ascii: "\"")) else { return false }
            return take(":")
        }

        mutating func literal(_ text: StaticString) -> Bool {
            skipWhitespace()
            return bytesMatch(text)
        }

        /// A string without escapes or control characters; nil for anything else.
        mutating func string() -> String? {
            skipWhitespace()
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            var ascii = true
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") { break }
                if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
                if byte >= 0x80 { ascii = false }
                index += 1
            }
            guard index < bytes.count else { return nil }
            let text = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            index += 1
            return ascii ? String(decoding: text, as: UTF8.self) : String(validating: text, as: UTF8.self)
        }

        /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() -> Double? {
            skipWhitespace()
            let start = index
            _ = take(UInt8(ascii: "-"))
            if take(UInt8(ascii: "0")) {
                // no further integer digits after a leading zero
            } else {
                guard digits() else { return nil }
            }
            if take(UInt8(ascii: ".")) { guard digits() else { return nil } }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard digits() else { return nil }
            }
            return Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }

        /// One or more ASCII digits.
        mutating func digits() -> Bool {
            let start = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index > start
        }

        /// Skips whitespace, then consumes `character` if it comes next.
        mutating func take(_ character: Unicode.Scalar) -> Bool {
            skipWhitespace()
            return take(UInt8(ascii: character))
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func bytesMatch(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            let matches = text.withUTF8Buffer { expected in
                (0..<count).allSatisfy { bytes[index + $0] == expected[$0] }
            }
            if matches { index += count }
            return matches
        }

        mutating func skipWhitespace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }
    }
}
