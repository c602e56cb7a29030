/// The instant by which every request made in a scope must be done: a run's `--timeout`, or
/// the end of its lease's safe window. It is a task-local, so it reaches every request the
/// scope makes (AWS, Prometheus, credential providers) without being threaded through their
/// APIs; `CurlTransport` bounds each request by the time that remains, and refuses to start
/// one when none does.
package enum RequestDeadline {
    @TaskLocal package static var current: ContinuousClock.Instant?

    /// Time left before the current deadline; nil when there is none.
    package static var remaining: Duration? { current.map { $0 - .now } }

    /// Runs `body` with requests bounded by `instant`, or by the enclosing deadline if that is earlier.
    package static func bounded<T>(by instant: ContinuousClock.Instant, _ body: () async throws -> T) async rethrows -> T {
        try await $current.withValue(min(instant, current ?? instant), operation: body)
    }

    /// Runs `body` bounded by `instant` (see `bounded(by:_:)`) and cancels it when the instant
    /// passes, so work in flight (a request, a retry's back-off) stops at once rather than when
    /// it next looks at the clock. Returns whatever `body` returns once it has unwound.
    package static func enforcing<T: Sendable>(_ instant: ContinuousClock.Instant, _ body: @escaping @Sendable () async -> T) async -> T {
        let bound = min(instant, current ?? instant)
        return await withTaskGroup(of: T?.self) { group in
            group.addTask { await $current.withValue(bound) { await body() } }
            group.addTask {
                try? await Task.sleep(until: bound, clock: .continuous)
                return nil
            }
            var result: T?
            for await finished in group {
                // Whichever ends first, the other is cancelled: the timer when the body is
                // done, the body when the timer fires (its result is still awaited).
                group.cancelAll()
                if let finished { result = finished }
            }
            return result!
        }
    }
}
