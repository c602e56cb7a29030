import Synchronization

/// Wraps a transport and counts what passes through it: how many requests a run makes, how
/// many were in flight at once, and how many sequential bursts they came in. Benchmarks and
/// tests use it to hold the run's network shape (e.g. "all Prometheus queries in parallel").
package final class RecordingTransport: HTTPTransport {
    package struct Counts: Sendable, Equatable {
        /// Requests started, successful or not.
        package var requests = 0
        /// Most requests in flight at the same moment.
        package var maxInFlight = 0
        /// Times a request started while none was in flight: a lower bound on the number of
        /// round trips the run waited for one after another.
        package var bursts = 0
    }

    private let wrapped: any HTTPTransport
    private let state = Mutex<(counts: Counts, inFlight: Int)>((Counts(), 0))

    package init(wrapping transport: any HTTPTransport) {
        wrapped = transport
    }

    package var counts: Counts {
        state.withLock { $0.counts }
    }

    package func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        state.withLock { state in
            if state.inFlight == 0 { state.counts.bursts += 1 }
            state.inFlight += 1
            state.counts.requests += 1
            state.counts.maxInFlight = max(state.counts.maxInFlight, state.inFlight)
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        return try await wrapped.send(request)
    }
}
