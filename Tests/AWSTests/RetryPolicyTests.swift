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

    /// A load balancer's HTML 502 carries no AWS error code, but it is a 5xx like any other.
    @Test func retriesAGatewaysErrorPage() async throws {
        let sleeps = Sleeps()
        let page = AWSResponseError(service: "EC2", operation: "DescribeInstances", httpStatus: 502,
                                    detail: "error answer without an AWS error code: \"<html>502 Bad Gateway</html>\"")
        let flaky = Flaky([page])
        #expect(try await policy(sleeps).run(flaky.call) == "ok")
        #expect(flaky.calls == 2)
        let unreadable200 = AWSResponseError(service: "EC2", operation: "X", httpStatus: 200, detail: "truncated")
        #expect(RetryPolicy.isRetryable(unreadable200) == false, "a 2xx that did not decode was answered: never repeated")
    }

    @Test func neverSleepsPastTheRunsDeadline() async {
        let sleeps = Sleeps()
        let slow = RetryPolicy(maxAttempts: 3, baseDelay: .seconds(30), random: { 0.5 }, sleep: { sleeps.record($0) })
        let flaky = Flaky([Self.serverError])
        await #expect(throws: AWSError.self) {
            try await RequestDeadline.bounded(by: .now + .seconds(2)) { try await slow.run(flaky.call) }
        }
        #expect(flaky.calls == 1)
        #expect(sleeps.all.isEmpty)
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
