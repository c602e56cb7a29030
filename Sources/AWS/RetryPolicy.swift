import HTTP

/// Retries as the AWS SDKs' "standard" mode does: a bounded number of attempts with
/// exponential backoff and full jitter, on throttling, transient errors, 5xx (a gateway's HTML
/// page too) and transient network failures — never on other 4xx, which would only fail
/// again, and never past the `RequestDeadline`: a back-off that would end after it gives up
/// at once with the error in hand.
package struct RetryPolicy: Sendable {
    package var maxAttempts: Int
    package var baseDelay: Duration
    package var maxDelay: Duration
    /// Returns a uniformly random number in [0, 1); injected so tests are deterministic.
    package var random: @Sendable () -> Double
    package var sleep: @Sendable (Duration) async throws -> Void

    package init(
        maxAttempts: Int = 3,
        baseDelay: Duration = .milliseconds(100),
        maxDelay: Duration = .seconds(20),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.random = random
        self.sleep = sleep
    }

    /// No retries at all: for calls whose repetition would be wrong or pointless.
    package static let none = RetryPolicy(maxAttempts: 1)

    package static func isRetryable(_ error: any Error) -> Bool {
        switch error {
        case let error as AWSError: error.isThrottling || error.isTransient
        // Not an AWS answer at all: a load balancer's or proxy's error page.
        case let error as AWSResponseError: error.httpStatus >= 500 || error.httpStatus == 429
        case let error as HTTPError: error.isTransient
        default: false
        }
    }

    /// Full jitter: a uniform delay in [0, min(maxDelay, base × 2^attempt)).
    package func delay(beforeRetry attempt: Int) -> Duration {
        let ceiling = min(maxDelay, baseDelay * (1 << min(attempt, 20)))
        return ceiling * random()
    }

    /// Runs `operation` until it succeeds, fails with a non-retryable error, or attempts run out.
    /// `willRetry` hears of each retry before its back-off: the attempt that failed (1 for the
    /// first), its error and the delay (for logs; it cannot change the course).
    package func run<T: Sendable>(
        willRetry: (_ failedAttempt: Int, _ error: any Error, _ delay: Duration) -> Void = { _, _, _ in },
        _ operation: () async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await operation()
            } catch {
                attempt += 1
                guard attempt < maxAttempts, Self.isRetryable(error) else { throw error }
                let delay = delay(beforeRetry: attempt - 1)
                if let remaining = RequestDeadline.remaining, remaining <= delay { throw error }
                willRetry(attempt, error, delay)
                try await sleep(delay)
            }
        }
    }
}
