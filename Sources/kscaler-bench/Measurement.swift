#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Per-call timings of one benchmark case, in microseconds, sorted.
struct Timings {
    var samples: [Double]

    var median: Double { percentile(50) }
    var p10: Double { percentile(10) }
    var p90: Double { percentile(90) }

    func percentile(_ p: Int) -> Double {
        samples[min(samples.count - 1, samples.count * p / 100)]
    }
}

/// How many calls to time per case: as many as fit in a budget, or exactly `calls`.
struct MeasurementPlan {
    var calls: Int?

    /// Times `body` call by call: two warm-up calls, then calls until `budget` has passed (at
    /// least five, at most 20,000), or exactly `calls` with no warm-up when set (for a
    /// profiler). `body` returns a number folded into a checksum, so the optimiser cannot drop
    /// the work.
    func measure<Failure: Error>(budget: Duration, _ body: () async throws(Failure) -> Int) async throws(Failure) -> Timings {
        let clock = ContinuousClock()
        var samples: [Double] = []
        func timed() async throws(Failure) -> Double {
            let start = clock.now
            checksum &+= try await body()
            return microseconds(clock.now - start)
        }
        if let calls {
            for _ in 0..<calls { samples.append(try await timed()) }
        } else {
            for _ in 0..<2 { _ = try await timed() }
            let end = clock.now + budget
            while samples.count < 5 || (samples.count < 20_000 && clock.now < end) { samples.append(try await timed()) }
        }
        return Timings(samples: samples.sorted())
    }
}

nonisolated(unsafe) var checksum = 0

func microseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
}

/// One printed result: what was timed, on how many items, per call and per item.
struct Result {
    var benchmark: String
    var variant: String
    var items: Int
    var itemName: String
    var timings: Timings

    var perItemNanoseconds: Double { timings.median * 1000 / Double(items) }

    /// One JSON object per line, for benchmarks/bench.py.
    var json: String {
        #"{"benchmark":"\#(benchmark)","variant":"\#(variant)","items":\#(items),"item":"\#(itemName)","calls":\#(timings.samples.count),"#
            + #""median_us":\#(timings.median),"p10_us":\#(timings.p10),"p90_us":\#(timings.p90),"per_item_ns":\#(perItemNanoseconds)}"#
    }

    static let header = "\(pad("benchmark", -28)) \(pad("items", 7)) \(pad("calls", 6)) \(pad("median µs", 11)) \(pad("p10", 10)) \(pad("p90", 10)) \(pad("ns/item", 9))"

    var row: String {
        "\(pad("\(benchmark) \(variant)", -28)) \(pad(String(items), 7)) \(pad(String(timings.samples.count), 6)) "
            + "\(pad(format(timings.median), 11)) \(pad(format(timings.p10), 10)) \(pad(format(timings.p90), 10)) \(pad(format(perItemNanoseconds), 9))"
    }
}

func format(_ value: Double) -> String {
    let rounded = (value * 10).rounded() / 10
    return rounded >= 100 ? String(Int(rounded)) : String(rounded)
}

/// Right-aligned in `width` columns; left-aligned for a negative width.
func pad(_ text: String, _ width: Int) -> String {
    let fill = String(repeating: " ", count: max(0, abs(width) - text.count))
    return width < 0 ? text + fill : fill + text
}
