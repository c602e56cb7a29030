import HTTP
import Logging
import SigV4
import Synchronization
import Testing
import TestSupport
@testable import AWS

/// What the AWS clients log at debug level, against moto with signature checking on: each
/// attempt with its operation, request id and elapsed time, each retry with its reason and
/// back-off — and never a secret key, a session token or an Authorization header.
@Suite struct ClientLoggingTests {
    /// Passes requests to libcurl and keeps what went out and came back, to know the values
    /// that must not be logged (the Authorization headers) and those that must (request ids).
    final class ExchangeRecordingTransport: HTTPTransport {
        private let transport: CurlTransport
        private let exchanges = Mutex<[(sent: [HTTPHeader], received: [HTTPHeader])]>([])
        var sentHeaders: [HTTPHeader] { exchanges.withLock { $0.flatMap(\.sent) } }
        var receivedHeaders: [HTTPHeader] { exchanges.withLock { $0.flatMap(\.received) } }

        init(wrapping transport: CurlTransport) { self.transport = transport }

        func send(_ request: HTTPRequest) async throws -> HTTPResponse {
            let response = try await transport.send(request)
            exchanges.withLock { $0.append((request.headers, response.headers)) }
            return response
        }
    }

    func context(_ moto: Peers.Moto, credentials: Credentials, transport: any HTTPTransport, log: CapturedLog,
                 endpoint: String? = nil, retry: RetryPolicy = RetryPolicy(maxAttempts: 1)) -> AWSContext {
        let extra = endpoint.map { ["AWS_ENDPOINT_URL": $0] } ?? [:]
        return AWSContext(environment: AWSEnvironment(variables: moto.environment(extra: extra)), region: "us-east-1",
                          regionSource: "test", credentials: CredentialChain(fixed: credentials), transport: transport,
                          retry: retry, logger: log.logger())
    }

    @Test func requestsAreLoggedWithOperationRequestIDAndElapsedTimeButNoSecret() async throws {
        let moto = try Peers.moto()
        let log = CapturedLog()
        let transport = ExchangeRecordingTransport(wrapping: moto.transport)
        let base = context(moto, credentials: Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey),
                           transport: transport, log: log)
        // Role credentials carry a session token, sent as X-Amz-Security-Token.
        let role = try await base.sts.assumeRole(roleARN: "arn:aws:iam::123456789012:role/kscaler-logging", sessionName: "kscaler-logging")
        let sessionToken = try #require(role.sessionToken)
        _ = try await context(moto, credentials: role, transport: transport, log: log).sts.getCallerIdentity()
        _ = try await base.client(for: .dynamoDB, displayName: "DynamoDB")
            .json(operation: "ListTables", targetPrefix: "DynamoDB_20120810", jsonVersion: "1.0", body: Data("{}".utf8))

        let requestIDs = Set(transport.receivedHeaders.filter { $0.name.lowercased() == "x-amzn-requestid" }.map(\.value))
        let requests = log.records("aws request")
        #expect(requests.map { $0.metadata["operation"] } == ["AssumeRole", "GetCallerIdentity", "ListTables"])
        #expect(requests.map { $0.metadata["service"] } == ["STS", "STS", "DynamoDB"])
        for record in requests {
            #expect(record.level == .debug)
            #expect(record.metadata["status"] == "200" && record.metadata["attempt"] == "1", "\(record)")
            #expect(requestIDs.contains(record.metadata["request_id"] ?? "none"), "\(record) vs \(requestIDs)")
            #expect(record.metadata["elapsed_ms"].flatMap(Double.init).map { $0 >= 0 } == true, "\(record)")
        }

        let authorizations = transport.sentHeaders.filter { $0.name.lowercased() == "authorization" }.map(\.value)
        #expect(authorizations.count == 3)
        #expect(transport.sentHeaders.contains { $0.name.lowercased() == "x-amz-security-token" && $0.value == sessionToken })
        let text = log.text
        for secret in [moto.secretAccessKey, role.secretAccessKey, sessionToken] + authorizations {
            #expect(!text.contains(secret), "a secret is in the log:\n\(text)")
        }
        // The signatures alone (the hex after "Signature=") are no more welcome than the headers.
        for signature in authorizations.compactMap({ $0.split(separator: "Signature=").last }) {
            #expect(!text.contains(signature))
        }
    }

    /// A load balancer's 502 before moto: the failed attempt, the retry with its reason and
    /// back-off, and the attempt that succeeded.
    @Test func aRetryIsLoggedWithItsReasonAndBackOff() async throws {
        let moto = try Peers.moto()
        let proxy = try FaultyProxy(upstream: moto.endpoint) { operation, earlier in
            operation == "GetCallerIdentity" && earlier == 0 ? .badGatewayPage : .none
        }
        defer { proxy.stop() }
        let log = CapturedLog()
        let retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(100), random: { 0.5 }, sleep: { _ in })
        // A slow answer on a loaded machine must not add an attempt of its own: the deadline is
        // generous, so the only failure is the 502.
        let aws = context(moto, credentials: Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey),
                          transport: CurlTransport(connectTimeout: .seconds(30), totalTimeout: .seconds(60)), log: log,
                          endpoint: proxy.baseURL, retry: retry)
        _ = try await aws.sts.getCallerIdentity()
        let text = log.text

        let failed = try #require(log.records("aws request failed").first, "\(text)")
        #expect(failed.metadata["operation"] == "GetCallerIdentity" && failed.metadata["attempt"] == "1", "\(text)")
        #expect(failed.metadata["status"] == "502" && failed.metadata["reason"] == "HTTP 502 without an AWS error code", "\(text)")
        #expect(failed.metadata["elapsed_ms"].flatMap(Double.init) != nil)
        let retried = try #require(log.records("aws retry").first, "\(text)")
        #expect(retried.metadata["operation"] == "GetCallerIdentity" && retried.metadata["attempt"] == "1", "\(text)")
        // Shown at the default level: attempt n of m, and why.
        #expect(retried.level == .notice && retried.metadata["max_attempts"] == "3")
        #expect(retried.metadata["reason"] == "HTTP 502 without an AWS error code")
        // Full jitter with random 0.5: half of the 100 ms base.
        #expect(retried.metadata["backoff_ms"] == "50.0")
        let succeeded = try #require(log.records("aws request").first, "\(text)")
        #expect(succeeded.metadata["attempt"] == "2" && succeeded.metadata["status"] == "200", "\(text)")
        #expect(succeeded.metadata["request_id"]?.isEmpty == false)
        #expect(!log.text.contains(moto.secretAccessKey))
    }

    /// An error answer: its code and request id (from the header or the body), never its message.
    @Test func aFailedCallIsLoggedWithItsCodeAndRequestID() async throws {
        let moto = try Peers.moto()
        let log = CapturedLog()
        let wrongSecret = "wrong-secret-0123456789abcdefghijklmnopqrst"
        let aws = context(moto, credentials: Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: wrongSecret),
                          transport: moto.transport, log: log)
        let error = await #expect(throws: AWSError.self) { _ = try await aws.sts.getCallerIdentity() }
        let failed = try #require(log.records("aws request failed").first)
        #expect(failed.metadata["reason"] == "SignatureDoesNotMatch (HTTP 403)")
        #expect(failed.metadata["request_id"] != nil && failed.metadata["request_id"] == error?.requestID)
        #expect(!log.text.contains(wrongSecret))
    }
}
