import HTTP
import Synchronization
import Testing
@testable import AWS

@Suite struct RetryPolicyTests {
    /// Records the delays a policy sleeps for instead of sleeping.
    final class Sleeps: Sendable {
        let delays = Mutex<[Duration]>([])
        func record(_ delay: Duration) { delays.withLock { $0.append(delay) } }
        var all: [Duration] { delays.withLock { $0 } }
    }

    func policy(_ sleeps: Sleeps, random: Double = 0.5) -> RetryPolicy {
        RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(100), random: { random }, sleep: { sleeps.record($0) })
    }

    /// An operation that throws `errors` in turn, then succeeds; counts its calls.
    final class Flaky: Sendable {
        let errors: [any Error & Sendable]
        let callCount = Mutex(0)
        init(_ errors: [any Error & Sendable]) { self.errors = errors }
        var calls: Int { callCount.withLock { $0 } }
        @Sendable func call() async throws -> String {
            let call = callCount.withLock { value -> Int in value += 1; return value }
            if call <= errors.count { throw errors[call - 1] }
            return "ok"
        }
    }

    static let throttled = AWSError(service: "EC2", operation: "X", code: "RequestLimitExceeded", message: "", httpStatus: 503)
    static let serverError = AWSError(service: "EC2", operation: "X", code: "InternalError", message: "", httpStatus: 500)
    static let badRequest = AWSError(service: "EC2", operation: "X", code: "InvalidParameterValue", message: "", httpStatus: 400)
    static let refused = HTTPError(kind: .couldNotConnect, host: "127.0.0.1:1", detail: "refused")

    @Test func retriesThrottlingAndSucceeds() async throws {
        let sleeps = Sleeps()
        let flaky = Flaky([Self.throttled, Self.serverError])
        #expect(try await policy(sleeps).run(flaky.call) == "ok")
        #expect(flaky.calls == 3)
        // Full jitter with random 0.5: half of 100 ms × 2^attempt.
        #expect(sleeps.all == [.milliseconds(50), .milliseconds(100)])
    }

    @Test func givesUpAfterMaxAttempts() async {
        let sleeps = Sleeps()
        let flaky = Flaky([Self.refused, Self.refused, Self.refused, Self.refused])
        await #expect(throws: HTTPError.self) { try await policy(sleeps).run(flaky.call) }
        #expect(flaky.calls == 3)
    }

    @Test func neverRetriesAClientError() async {
        let sleeps = Sleeps()
        let flaky = Flaky([Self.badRequest])
        await #expect(throws: AWSError.self) { try await policy(sleeps).run(flaky.call) }
        #expect(flaky.calls == 1)
        #expect(sleeps.all.isEmpty)
    }

    @Test func backoffIsCappedAndJittered() {
        let capped = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(5), random: { 0.999 }, sleep: { _ in })
        #expect(capped.delay(beforeRetry: 10) < .seconds(5))
        #expect(capped.delay(beforeRetry: 10) > .milliseconds(4900))
        let zero = RetryPolicy(random: { 0 }, sleep: { _ in })
        #expect(zero.delay(beforeRetry: 3) == .zero)
    }
}
