#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One number from Prometheus with the series' labels and the time Prometheus gave it.
///
/// For an instant query Prometheus stamps vector and scalar samples with the evaluation
/// time, so `timestamp` tells how current the *answer* is (a cached or lagging Prometheus,
/// or clocks that disagree). Series whose source stopped reporting disappear from answers
/// on their own (staleness markers, or the 5-minute lookback), which is why an empty
/// answer must be read as "no data".
package struct Sample: Sendable, Equatable {
    /// Label names to values; empty for a scalar or a fully aggregated series.
    package var labels: [String: String]
    package var timestamp: Date
    /// May be NaN or ±infinity: Prometheus sends them as "NaN", "+Inf", "-Inf".
    /// (A NaN sample, like NaN itself, is never equal to anything.)
    package var value: Double

    package init(labels: [String: String] = [:], timestamp: Date, value: Double) {
        self.labels = labels
        self.timestamp = timestamp
        self.value = value
    }

    /// Judges the sample against `now`: older than `staleness` is stale; more than
    /// `staleness` in the future means the clocks disagree, and that cannot be trusted either.
    package func freshness(now: Date, staleness: Duration) -> Freshness {
        let age = now.timeIntervalSince(timestamp)
        let bound = staleness.seconds
        if age > bound { return .stale(age: .seconds(age)) }
        if -age > bound { return .ahead(by: .seconds(-age)) }
        return .fresh
    }
}

/// How a sample's timestamp compares with the caller's clock.
package enum Freshness: Sendable, Equatable {
    case fresh
    /// Older than the staleness bound; `age` is how old in total.
    case stale(age: Duration)
    /// Newer than `now` by more than the staleness bound: the clocks disagree.
    case ahead(by: Duration)
}

/// The answer to an instant query. An empty `.vector` is *no data*: nothing matched, which is
/// not the same as zero; callers must never read it as 0.
package enum QueryResult: Sendable, Equatable {
    case vector([Sample])
    case scalar(Sample)

    /// The vector's samples, or the scalar as one unlabelled sample.
    package var samples: [Sample] {
        switch self {
        case .vector(let samples): samples
        case .scalar(let sample): [sample]
        }
    }

    /// True when Prometheus matched no series at all.
    package var isNoData: Bool {
        if case .vector(let samples) = self { return samples.isEmpty }
        return false
    }
}

/// One series of a range query's answer: its labels and the steps it had a value at.
package struct RangeSeries: Sendable, Equatable {
    package var labels: [String: String]
    package var points: [RangePoint]

    package init(labels: [String: String], points: [RangePoint]) {
        self.labels = labels
        self.points = points
    }
}

/// One step of a range series. The value may be NaN or ±infinity.
package struct RangePoint: Sendable, Equatable {
    package var timestamp: Date
    package var value: Double

    package init(timestamp: Date, value: Double) {
        self.timestamp = timestamp
        self.value = value
    }
}

extension Duration {
    /// The duration in (fractional) seconds.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
