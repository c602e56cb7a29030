import KScalerCore

/// What a run reads from Prometheus: one reading per signal (a failed query is a
/// `Reading.failed`, never an exception: the core decides what a missing signal blocks) and
/// the nodes the per-node signals describe.
public struct MetricsObservation: Sendable, Equatable {
    public var readings: [Signal: Reading]
    public var nodes: [NodeObservation]

    public init(readings: [Signal: Reading], nodes: [NodeObservation]) {
        self.readings = readings
        self.nodes = nodes
    }
}

public protocol MetricsSource: Sendable {
    /// Runs every query, concurrently, and classifies each answer against `now`.
    func observe(queries: [Signal: String], now: Date) async -> MetricsObservation
}
