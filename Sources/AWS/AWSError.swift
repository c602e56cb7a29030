import HTTP

/// An AWS service answered with an error. One type for every protocol: JSON 1.0/1.1 bodies
/// (`__type`, `message`), Query/EC2 XML bodies, and the XML `<ErrorResponse>` that moto
/// sends even for JSON services.
package struct AWSError: Error, Sendable, CustomStringConvertible {
    package var service: String
    package var operation: String
    /// The error code without any namespace (`ConditionalCheckFailedException`, `AuthFailure`).
    package var code: String
    package var message: String
    package var requestID: String?
    package var httpStatus: Int
    /// An earlier attempt of the same call was retried after a failure that may have come
    /// after the service acted (a lost answer, a 5xx): this answer may be about a request that
    /// already took effect (a conditional write that fails because the first attempt applied it).
    package var earlierAttemptMayHaveSucceeded = false

    package init(service: String, operation: String, code: String, message: String, requestID: String? = nil, httpStatus: Int) {
        self.service = service
        self.operation = operation
        self.code = code
        self.message = message
        self.requestID = requestID
        self.httpStatus = httpStatus
    }

    package var isThrottling: Bool { Self.throttlingCodes.contains(code) }

    /// Codes for which retrying the same request may succeed (besides throttling and 5xx).
    /// EC2's capacity errors are excluded although `InsufficientInstanceCapacity` comes as a
    /// 500: an immediate retry meets the same shortage and only delays the fallback to the
    /// next instance type or subnet.
    package var isTransient: Bool { (Self.transientCodes.contains(code) || httpStatus >= 500) && !isCapacityError }

    /// The request was not authenticated: a wrong secret, an unknown key, an expired token.
    package var isAuthenticationFailure: Bool { Self.authenticationCodes.contains(code) }

    package var description: String {
        var text = "\(service) \(operation) failed: \(code) (HTTP \(httpStatus))"
        if !message.isEmpty { text += ": \(message)" }
        if let requestID { text += " [request id \(requestID)]" }
        if let hint { text += ". \(hint)" }
        return text
    }

    /// What to do about the common configuration mistakes.
    var hint: String? {
        switch code {
        case "SignatureDoesNotMatch":
            "The signature was rejected: the secret access key does not belong to the access key id (check AWS_SECRET_ACCESS_KEY or the profile), or the request was altered on the way"
        case "InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure":
            "The credentials were not accepted: check the access key id, the session token, and the region/endpoint"
        case "ExpiredToken", "ExpiredTokenException", "RequestExpired":
            "The credentials have expired: refresh them (SSO login, role session) and retry"
        case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
            "The identity lacks an IAM permission for this action: see README, 'IAM policy'"
        case "ResourceNotFoundException" where service == "DynamoDB":
            "The table does not exist in this region: create it (infra/) or fix `table`/`region`"
        default: nil
        }
    }

    static let throttlingCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    ]
    static let transientCodes: Set<String> = [
        "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure", "ServiceUnavailable",
    ]
    static let authenticationCodes: Set<String> = [
        "SignatureDoesNotMatch", "InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure",
        "ExpiredToken", "ExpiredTokenException", "InvalidSignatureException", "MissingAuthenticationToken",
    ]
}

/// An answer kscaler could not understand: not the documented shape, truncated, an HTML page.
/// Treated like a failed call: nothing is acted on.
package struct AWSResponseError: Error, Sendable, CustomStringConvertible {
    package var service: String
    package var operation: String
    package var httpStatus: Int
    package var detail: String
    /// See `AWSError.earlierAttemptMayHaveSucceeded`.
    package var earlierAttemptMayHaveSucceeded = false

    package init(service: String, operation: String, httpStatus: Int, detail: String) {
        self.service = service
        self.operation = operation
        self.httpStatus = httpStatus
        self.detail = detail
    }

    package var description: String { "\(service) \(operation): unexpected answer (HTTP \(httpStatus)): \(detail)" }
}

/// Whether a call that failed with `error` may nevertheless have taken effect: some attempt
/// of it reached the service and no answer said it did not (a timeout or a lost connection
/// after sending, a 5xx, an answer that could not be read). An action that failed this way has
/// an unknown result: it must be looked up, never assumed undone.
package func mayHaveTakenEffect(_ error: any Error) -> Bool {
    switch error {
    case let error as HTTPError: error.requestWasSent
    case let error as AWSError: error.earlierAttemptMayHaveSucceeded || (error.httpStatus >= 500 && !error.isThrottling)
    case let error as AWSResponseError: error.earlierAttemptMayHaveSucceeded || error.httpStatus >= 500 || (200..<300).contains(error.httpStatus)
    case is CancellationError: false
    default: true
    }
}

/// The JSON protocols' error body; services disagree on the spelling of "message".
private struct JSONErrorBody: Decodable {
    var type: String?
    var code: String?
    var message: String?
    var capitalizedMessage: String?

    enum CodingKeys: String, CodingKey {
        case type = "__type", code, message, capitalizedMessage = "Message"
    }
}

enum ErrorDecoder {
    /// Decodes an error answer of any AWS protocol, or describes why it could not.
    /// The request id AWS puts in a header of every answer (JSON services, Query services and S3 spell it differently).
    static func requestID(_ response: HTTPResponse) -> String? {
        response.header("x-amzn-RequestId") ?? response.header("x-amz-request-id")
    }

    static func decode(_ response: HTTPResponse, service: String, operation: String) -> any Error {
        let requestID = requestID(response)
        let body = response.body
        let firstByte = body.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }
        if firstByte == UInt8(ascii: "{"), let object = try? JSONDecoder().decode(JSONErrorBody.self, from: body) {
            let rawCode = object.type ?? object.code ?? response.header("x-amzn-ErrorType") ?? ""
            let message = object.message ?? object.capitalizedMessage ?? ""
            if !rawCode.isEmpty {
                return AWSError(service: service, operation: operation, code: normalizedCode(rawCode), message: message,
                                requestID: requestID, httpStatus: response.status)
            }
        }
        if firstByte == UInt8(ascii: "<"), let root = try? XML.parse(body),
           let error = root.first(named: "Error"), let code = error.string("Code"), !code.isEmpty {
            let xmlRequestID = root.string("RequestId") ?? root.string("RequestID") ?? error.string("RequestId")
            return AWSError(service: service, operation: operation, code: code, message: error.string("Message") ?? "",
                            requestID: requestID ?? xmlRequestID, httpStatus: response.status)
        }
        if let headerCode = response.header("x-amzn-ErrorType"), !headerCode.isEmpty {
            return AWSError(service: service, operation: operation, code: normalizedCode(headerCode), message: "",
                            requestID: requestID, httpStatus: response.status)
        }
        return AWSResponseError(service: service, operation: operation, httpStatus: response.status,
                                detail: "error answer without an AWS error code: \(snippet(body))")
    }

    /// `com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException` → the part after `#`;
    /// `x-amzn-ErrorType` values may carry `:http://…` after the code.
    static func normalizedCode(_ raw: String) -> String {
        var code = Substring(raw)
        if let hash = code.lastIndex(of: "#") { code = code[code.index(after: hash)...] }
        if let colon = code.firstIndex(of: ":") { code = code[..<colon] }
        return String(code)
    }
}

/// The start of a body for an error message: printable ASCII only, at most 120 characters.
func snippet(_ body: Data) -> String {
    if body.isEmpty { return "(empty body)" }
    let printable = body.prefix(120).map { (0x20...0x7E).contains($0) ? Character(Unicode.Scalar($0)) : " " }
    let text = String(printable).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    return "\"\(text)\"" + (body.count > 120 ? "…" : "")
}
