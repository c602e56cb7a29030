import KScalerCore

/// What a run reads from Prometheus: one reading per signal (a failed query is a
/// `Reading.failed`, never an exception: the core decides what a missing signal blocks) and
/// the nodes the per-node signals describe.
package struct MetricsObservation: Sendable, Equatable {
    package var readings: [Signal: Reading]
    package var nodes: [NodeObservation]

    package init(readings: [Signal: Reading], nodes: [NodeObservation]) {
        self.readings = readings
        self.nodes = nodes
    }
}

package protocol MetricsSource: Sendable {
    /// Runs every query, concurrently, and classifies each answer against `now`.
    func observe(queries: [Signal: String], now: Date) async -> MetricsObservation
}
