import HTTP
import Testing
@testable import AWS

@Suite struct ErrorDecodingTests {
    @Test func jsonErrorWithNamespacedType() throws {
        let response = HTTPResponse(status: 400, headers: [HTTPHeader("x-amzn-RequestId", "req-1")], body: Data(#"""
        {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "The conditional request failed"}
        """#.utf8))
        let error = try #require(ErrorDecoder.decode(response, service: "DynamoDB", operation: "PutItem") as? AWSError)
        #expect(error.code == "ConditionalCheckFailedException")
        #expect(error.message == "The conditional request failed")
        #expect(error.requestID == "req-1")
        #expect(!error.isThrottling && !error.isTransient)
    }

    @Test func ssmErrorWithCapitalisedMessage() throws {
        let response = HTTPResponse(status: 400, body: Data(#"{"__type": "ParameterNotFound", "Message": "Parameter /x not found."}"#.utf8))
        let error = try #require(ErrorDecoder.decode(response, service: "SSM", operation: "GetParameter") as? AWSError)
        #expect(error.code == "ParameterNotFound")
        #expect(error.message == "Parameter /x not found.")
    }

    @Test func xmlErrorResponseOnAJSONService() throws {
        // moto answers authentication failures in XML even for JSON services (LOCAL-PEERS.md 1d).
        let response = HTTPResponse(status: 403, headers: [HTTPHeader("Content-Type", "text/html; charset=utf-8")], body: Data("""
        <?xml version="1.0" encoding="utf-8"?>
        <ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><Type>Sender</Type></Error></Errors></ErrorResponse>
        """.utf8))
        let error = try #require(ErrorDecoder.decode(response, service: "DynamoDB", operation: "GetItem") as? AWSError)
        #expect(error.code == "SignatureDoesNotMatch")
        #expect(error.isAuthenticationFailure)
        #expect(error.description.contains("signature was rejected"))
    }

    @Test func ec2ErrorWithRequestID() throws {
        let response = HTTPResponse(status: 503, body: Data("""
        <Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>abc-123</RequestID></Response>
        """.utf8))
        let error = try #require(ErrorDecoder.decode(response, service: "EC2", operation: "DescribeInstances") as? AWSError)
        #expect(error.code == "RequestLimitExceeded")
        #expect(error.requestID == "abc-123")
        #expect(error.isThrottling)
    }

    @Test func htmlPageIsAnUnexpectedAnswerWithASnippet() throws {
        let response = HTTPResponse(status: 502, body: Data("<html><head><title>502 Bad Gateway</title></head></html>".utf8))
        let error = try #require(ErrorDecoder.decode(response, service: "EC2", operation: "RunInstances") as? AWSResponseError)
        #expect(error.httpStatus == 502)
        #expect(error.description.contains("502 Bad Gateway"))
    }

    @Test func errorTypeHeaderAloneIsEnough() throws {
        let response = HTTPResponse(status: 400, headers: [HTTPHeader("X-Amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/")])
        let error = try #require(ErrorDecoder.decode(response, service: "DynamoDB", operation: "Query") as? AWSError)
        #expect(error.code == "ThrottlingException")
        #expect(error.isThrottling)
    }
}
