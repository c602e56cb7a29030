import AWS
import Foundation
import KScaler
import Testing
import TestSupport

/// Small promises of the command line, through the release binary.
@Suite struct CommandLineTests {
    @Test(arguments: ["0", "--timeout=-5"])
    func aTimeoutBelowOneSecondIsAUsageError(timeout: String) async throws {
        let result = try await KScalerProcess.run(["run"] + (timeout.hasPrefix("--") ? [timeout] : ["--timeout", timeout]), environment: [:])
        #expect(result.status == 64, "\(result.combined)")
        #expect(result.stderr.contains("--timeout must be at least 1 second"))
    }

    /// The fencing token is a counter operators read (`lease status` prints it); only keys that
    /// name a secret are redacted. At debug level the AWS and Prometheus clients log each request.
    @Test func theFencingTokenIsLoggedAndSecretsAreNot() async throws {
        try await EndToEndHarness.with { harness in
            let result = try await harness.kscaler(["run", "--log-level", "debug", "--log-format", "json"])
            let lines = result.stderr.split(separator: "\n")
            let acquired = try #require(lines.first { $0.contains(#""message":"lease acquired""#) })
            #expect(acquired.contains(#""lease_token":"1""#), "\(acquired)")
            let leaseWrite = try #require(lines.first { $0.contains(#""message":"aws request""#) && $0.contains(#""operation":"UpdateItem""#) })
            #expect(leaseWrite.contains(#""service":"DynamoDB""#) && leaseWrite.contains(#""request_id":"#)
                    && leaseWrite.contains(#""elapsed_ms":"#), "\(leaseWrite)")
            #expect(lines.contains { $0.contains(#""message":"prometheus request""#) && $0.contains(#""path":"/api/v1/query""#) })
            #expect(!result.combined.contains(harness.fixture.moto.secretAccessKey))
        }
    }

    /// The acquisition's answer is lost on the way back (moto applied it): the retry meets the
    /// run's own lease and carries on, instead of skipping itself for the lease's lifetime.
    @Test func aRunWhoseLeaseAnswerWasLostIsNotLockedOut() async throws {
        try await EndToEndHarness.with { harness in
            let proxy = try FaultyProxy(upstream: harness.fixture.moto.endpoint) { operation, earlier in
                operation == "DynamoDB_20120810.UpdateItem" && earlier == 0 ? .dropAnswer : .none
            }
            defer { proxy.stop() }
            try await harness.waitForMetrics()
            let lossy = harness.environment.merging(["AWS_ENDPOINT_URL_DYNAMODB": proxy.baseURL]) { _, new in new }
            let (result, report) = try await harness.report("run", environment: lossy)
            #expect(result.status == 0, "\(result.combined)")
            #expect(report?.outcome != .skipped)
            #expect(report?.lease?.token == 1)
            #expect(report?.leaseReleased == true)
            #expect(proxy.log.filter { $0.operation == "DynamoDB_20120810.UpdateItem" }.count >= 2)
            #expect(try await harness.table.holder().owner == nil)
        }
    }
}
