import KScalerCore

/// What a run reads from Prometheus: one reading per signal (a failed query is a
/// `Reading.failed`, never an exception: the core decides what a missing signal blocks) and
/// the nodes the per-node signals describe.
package struct MetricsObservation: Sendable, Equatable {
    package var readings: [Signal: Reading]
    package var nodes: [NodeObservation]
    /// Allocatable by instance type from the Ready nodes (`DefaultQueries.allocatableByInstanceType`),
    /// and why it could not be read, if it could not.
    package var nodeSizes: [String: WorkerSize]
    package var nodeSizesProblem: String?

    package init(readings: [Signal: Reading], nodes: [NodeObservation], nodeSizes: [String: WorkerSize] = [:], nodeSizesProblem: String? = nil) {
        self.readings = readings
        self.nodes = nodes
        self.nodeSizes = nodeSizes
        self.nodeSizesProblem = nodeSizesProblem
    }
}

package protocol MetricsSource: Sendable {
    /// Runs every query, concurrently, and classifies each answer against `now`.
    func observe(queries: [Signal: String], now: Date) async -> MetricsObservation
    /// The same, with `sizesQuery` (allocatable by instance type) in the same concurrent batch.
    func observe(queries: [Signal: String], sizesQuery: String?, now: Date) async -> MetricsObservation
}

extension MetricsSource {
    /// A source that cannot read node sizes reads the signals alone.
    package func observe(queries: [Signal: String], sizesQuery: String?, now: Date) async -> MetricsObservation {
        await observe(queries: queries, now: now)
    }
}
