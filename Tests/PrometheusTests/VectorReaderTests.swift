// The direct vector reader against JSONDecoder: whatever it accepts decodes to the same
// samples, and every shape it does not know falls through to JSONDecoder.
import Foundation
import Testing
@testable import Prometheus

@Suite struct VectorReaderTests {
    /// Label values a real answer carries: plain and non-ASCII ones, and (in every fourth
    /// answer) ones JSON must escape.
    static let plainValues = ["i-0abc", "default", "kube-state-metrics", "", "é", "日本語", "a/b", "<html>", "10.0.3.17:8080"]
    static let escapedValues = ["a\"b", "back\\slash", "tab\there", "line\nbreak", "\u{1}"]

    /// A JSON string as Go's encoder writes it: quote, backslash and control characters
    /// escaped, everything else (UTF-8 included) as is.
    static func json(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A deterministic answer of `series` series; `spaced` puts whitespace between tokens.
    static func answer(seed: Int, series: Int, spaced: Bool) -> (body: String, needsEscapes: Bool) {
        var state = UInt64(truncatingIfNeeded: seed) &* 6364136223846793005 &+ 1442695040888963407
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        let space = spaced ? " \n" : ""
        var needsEscapes = false
        let values = seed % 4 == 0 ? plainValues + escapedValues : plainValues
        var elements: [String] = []
        for _ in 0..<series {
            var labels: [String] = []
            for index in 0..<next(5) {
                let value = values[next(values.count)]
                needsEscapes = needsEscapes || json(value).contains("\\")
                labels.append("\(json("label_\(index)"))\(space):\(space)\(json(value))")
            }
            let sample = ["1.5", "NaN", "+Inf", "-Inf", "-0.25", "1e3", "123456789.125"][next(7)]
            let timestamp = ["1795253657.431", "1795253657", "1.795253657431e9", "0"][next(4)]
            elements.append(#"{"metric":{\#(labels.joined(separator: ",\(space)"))},\#(space)"value":[\#(timestamp),"\#(sample)"]}"#)
        }
        let body = #"{"status":"success",\#(space)"data":{"resultType":"vector","result":[\#(elements.joined(separator: ",\(space)"))]}}"#
        return (body, needsEscapes)
    }

    static func decoded(_ body: String) throws -> [Sample] {
        guard case .vector(let samples)? = try JSONDecoder().decode(APIResponse.self, from: Data(body.utf8)).data else {
            throw CancellationError()
        }
        return samples
    }

    static func same(_ a: [Sample], _ b: [Sample]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in
            x.labels == y.labels && x.timestamp == y.timestamp && (x.value == y.value || (x.value.isNaN && y.value.isNaN))
        }
    }

    @Test func acceptsPrometheusAnswersAndAgreesWithJSONDecoder() throws {
        var read = 0
        for seed in 0..<300 {
            let (body, needsEscapes) = Self.answer(seed: seed, series: seed % 12, spaced: seed % 3 == 0)
            let expected = try Self.decoded(body)
            let samples = VectorReader.samples(in: Data(body.utf8))
            if needsEscapes {
                #expect(samples == nil, "escaped strings are left to JSONDecoder: \(body)")
            } else {
                guard let samples else {
                    Issue.record("an answer in Prometheus's shape was not read directly: \(body)")
                    continue
                }
                #expect(Self.same(samples, expected), "\(body)")
                read += 1
            }
        }
        #expect(read > 200)
    }

    @Test(arguments: [
        #"{"data":{"resultType":"vector","result":[]},"status":"success"}"#,  // keys in another order
        #"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["w"]}"#,
        #"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"2"],"metric":{}}]}}"#,
        #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1","a":"2"},"value":[1,"2"]}]}}"#,
        #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[01,"2"]}]}}"#,
        #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"lots"]}]}}"#,
        #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}}"#,
        #"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
        #"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        #"{"status":"success","data":{"resultType":"vector","result":[]}} trailing"#,
        #"{"status":"success","data":{"resultType":"vector","result":[}"#,
        "<html>502 Bad Gateway</html>",
        "",
    ])
    func leavesEveryOtherShapeToJSONDecoder(body: String) {
        #expect(VectorReader.samples(in: Data(body.utf8)) == nil)
    }

    @Test func invalidUTF8IsLeftToJSONDecoder() {
        var body = Data(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":""#.utf8)
        body += [0xC3, 0x28]
        body += Data(#""},"value":[1,"2"]}]}}"#.utf8)
        #expect(VectorReader.samples(in: body) == nil)
    }
}
