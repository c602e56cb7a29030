import HTTP
import Logging
import SigV4

/// Signs, sends and retries requests to one AWS service, and turns error answers into
/// `AWSError`. The protocol-specific clients (DynamoDB JSON 1.0, SSM JSON 1.1, EC2/STS Query)
/// are thin layers over `json(…)` and `query(…)`.
///
/// At debug level it logs one line per attempt (service, operation, attempt, HTTP status, the
/// AWS request id, elapsed time; the error code when it failed) and one per retry (reason,
/// back-off). Never headers, bodies or error messages: they may carry a signature, a session
/// token or a secret the call sends (SSM parameter values).
package struct AWSClient: Sendable {
    package let service: AWSService
    /// The name used in messages ("DynamoDB", "EC2", …).
    package let displayName: String
    package let region: String
    /// Base URL without trailing slash, e.g. `https://dynamodb.eu-west-1.amazonaws.com`.
    package let endpoint: String
    /// nil for the few unsigned calls (STS AssumeRoleWithWebIdentity).
    let credentials: CredentialChain?
    let transport: any HTTPTransport
    let retry: RetryPolicy
    let now: @Sendable () -> Date
    let logger: Logger
    let userAgent = "kscaler/\(kscalerVersion)"

    package init(service: AWSService, displayName: String, region: String, endpoint: String,
                credentials: CredentialChain?, transport: any HTTPTransport,
                retry: RetryPolicy = RetryPolicy(), now: @escaping @Sendable () -> Date = { Date() },
                logger: Logger = .silent) {
        self.service = service
        self.displayName = displayName
        self.region = region
        self.endpoint = endpoint
        self.credentials = credentials
        self.transport = transport
        self.retry = retry
        self.now = now
        self.logger = logger
    }

    /// A JSON-protocol call (`X-Amz-Target: <targetPrefix>.<operation>`); returns the 2xx body.
    package func json(operation: String, targetPrefix: String, jsonVersion: String, body: Data) async throws -> Data {
        try await send(operation: operation, headers: [
            HTTPHeader("Content-Type", "application/x-amz-json-\(jsonVersion)"),
            HTTPHeader("X-Amz-Target", "\(targetPrefix).\(operation)"),
        ], body: body).body
    }

    /// A Query-protocol call (form-encoded POST, XML answer); returns the parsed root element.
    package func query(operation: String, version: String, parameters: [(String, String)]) async throws -> XMLElement {
        let form = ([("Action", operation), ("Version", version)] + parameters)
            .map { "\(FormEncoding.encode($0.0))=\(FormEncoding.encode($0.1))" }
            .joined(separator: "&")
        let response = try await send(operation: operation, headers: [
            HTTPHeader("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ], body: Data(form.utf8))
        do {
            return try XML.parse(response.body)
        } catch {
            throw AWSResponseError(service: displayName, operation: operation, httpStatus: response.status,
                                   detail: "\(error); body starts \(snippet(response.body))")
        }
    }

    /// Signs and sends a POST to the endpoint's root, retrying per `retry`. Any non-2xx answer
    /// is decoded into `AWSError` (or `AWSResponseError` when it is not an AWS error at all).
    package func send(operation: String, headers: [HTTPHeader], body: Data) async throws -> HTTPResponse {
        let target = try EndpointURL(endpoint)
        // Once an attempt may have taken effect, every later failure says so (see `mayHaveTakenEffect`).
        var earlierAttemptMayHaveSucceeded = false
        var logger = self.logger
        logger[metadataKey: "service"] = "\(displayName)"
        logger[metadataKey: "operation"] = "\(operation)"
        var attempts = 0
        // At notice, shown by default: a retried timeout can take much of the run's deadline,
        // and the operator should see why the run was slow without turning on debug.
        return try await retry.run(willRetry: { [logger, retry] failed, error, delay in
            logger.notice("aws retry", metadata: [
                "attempt": "\(failed)", "max_attempts": "\(retry.maxAttempts)", "reason": "\(Self.reason(error))",
                "backoff_ms": .stringConvertible(delay.inMilliseconds),
            ])
        }) {
            attempts += 1
            do {
                return try await attempt(operation: operation, target: target, headers: headers, body: body,
                                         number: attempts, logger: logger)
            } catch {
                let marked = Self.marking(error, earlierAttemptMayHaveSucceeded: earlierAttemptMayHaveSucceeded)
                earlierAttemptMayHaveSucceeded = earlierAttemptMayHaveSucceeded || mayHaveTakenEffect(error)
                throw marked
            }
        }
    }

    private static func marking(_ error: any Error, earlierAttemptMayHaveSucceeded earlier: Bool) -> any Error {
        guard earlier else { return error }
        switch error {
        case var error as AWSError: error.earlierAttemptMayHaveSucceeded = true; return error
        case var error as AWSResponseError: error.earlierAttemptMayHaveSucceeded = true; return error
        case var error as HTTPError: error.requestWasSent = true; return error
        default: return error
        }
    }

    /// Why an attempt failed, in words safe for a log: the AWS error code or the transport's
    /// failure, never an AWS error message or a body (either may quote what was sent).
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as AWSError: "\(error.code) (HTTP \(error.httpStatus))"
        case let error as AWSResponseError: "HTTP \(error.httpStatus) without an AWS error code"
        // Names the host and libcurl's failure; never headers or bodies (see HTTPError).
        case let error as HTTPError: "\(error)"
        case is CancellationError: "cancelled"
        default: "\(type(of: error))"
        }
    }

    /// One signed attempt; credentials are resolved (and cached) per attempt, so a retry
    /// after an expiry signs with fresh ones.
    private func attempt(operation: String, target: EndpointURL, headers: [HTTPHeader], body: Data,
                         number: Int, logger: Logger) async throws -> HTTPResponse {
        var allHeaders = [HTTPHeader("Host", target.hostHeader)] + headers
        if let credentials {
            let resolved = try await credentials.resolve().credentials
            let signer = SigV4Signer(credentials: resolved, region: region, service: service.signingName)
            let signed = signer.sign(
                SigningRequest(method: "POST", path: target.path, headers: allHeaders.map { ($0.name, $0.value) }, body: body),
                at: now()
            )
            allHeaders = signed.headers.map { HTTPHeader($0.name, $0.value) }
        }
        // Sent but never signed: botocore-style verifiers drop User-Agent from signatures.
        allHeaders.append(HTTPHeader("User-Agent", userAgent))
        let started = ContinuousClock.now
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(method: "POST", url: target.url, headers: allHeaders, body: body))
        } catch {
            logger.debug("aws request failed", metadata: [
                "attempt": "\(number)", "reason": "\(Self.reason(error))",
                "elapsed_ms": .stringConvertible((ContinuousClock.now - started).inMilliseconds),
            ])
            throw error
        }
        let elapsed = ContinuousClock.now - started
        var metadata: Logger.Metadata = [
            "attempt": "\(number)", "status": "\(response.status)", "elapsed_ms": .stringConvertible(elapsed.inMilliseconds),
        ]
        guard (200..<300).contains(response.status) else {
            let error = ErrorDecoder.decode(response, service: displayName, operation: operation)
            // An error body may carry the request id where the header does not (EC2's XML).
            metadata["request_id"] = ((error as? AWSError)?.requestID ?? ErrorDecoder.requestID(response)).map { .string($0) }
            metadata["reason"] = "\(Self.reason(error))"
            logger.debug("aws request failed", metadata: metadata)
            throw error
        }
        metadata["request_id"] = ErrorDecoder.requestID(response).map { .string($0) }
        logger.debug("aws request", metadata: metadata)
        return response
    }
}

/// A parsed endpoint base URL: what goes into the request line and the signed Host header.
struct EndpointURL: Sendable {
    var url: String
    var hostHeader: String
    var path: String

    init(_ base: String) throws {
        guard let schemeEnd = base.firstRange(of: "://") else {
            throw HTTPError(kind: .invalidURL, host: "", detail: "endpoint \(base) has no scheme (expected http:// or https://)")
        }
        let scheme = base[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw HTTPError(kind: .unsupportedScheme, host: "", detail: "endpoint scheme \(scheme) is not http or https")
        }
        let rest = base[schemeEnd.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = String(rest[..<slash])
        // The default port is left out of Host, as the SDKs and verifiers expect.
        if (scheme == "https" && authority.hasSuffix(":443")) || (scheme == "http" && authority.hasSuffix(":80")) {
            authority = String(authority[..<authority.lastIndex(of: ":")!])
        }
        guard !authority.isEmpty else {
            throw HTTPError(kind: .invalidURL, host: "", detail: "endpoint \(base) has no host")
        }
        let basePath = String(rest[slash...])
        path = basePath.isEmpty ? "/" : (basePath.hasSuffix("/") ? basePath : basePath + "/")
        hostHeader = authority
        url = "\(scheme)://\(authority)\(path)"
    }
}

/// `application/x-www-form-urlencoded` as AWS Query services expect it: RFC 3986 unreserved
/// characters stay, a space is `+`, every other byte is %XX (so base64's `+`, `/`, `=` are
/// encoded). AWS accepts `+` and `%20` alike, but moto re-encodes the parsed form with `+`
/// before checking the signature, so `%20` fails there with AuthFailure.
package enum FormEncoding {
    package static func encode(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "):
                out.unicodeScalars.append("+")
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0x0F)]))
            }
        }
        return out
    }
}

extension Logger {
    /// A logger that drops everything: the default of every client and of the credential
    /// chain, so callers that do not want their debug lines need not build one.
    @usableFromInline static var silent: Logger { Logger(label: "kscaler.aws", factory: { _ in SwiftLogNoOpLogHandler() }) }
}

/// The version reported in the User-Agent and by `kscaler --version`.
package let kscalerVersion = "0.1.0"
