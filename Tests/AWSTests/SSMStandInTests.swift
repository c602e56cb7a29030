import HTTP
import SigV4
import Testing
import TestSupport
@testable import AWS

/// SSM answers moto does not give, from a local stand-in: an error message that quotes the
/// value sent, and a success body that does not decode. Neither may leak the value.
@Suite struct SSMStandInTests {
    static let secret = "K10a1b2c3d4e5f6::server:0123456789abcdef"

    func ssm(_ server: StubHTTPServer) -> SSMClient {
        SSMClient(client: AWSClient(
            service: .ssm, displayName: "SSM", region: "eu-west-1", endpoint: server.baseURL,
            credentials: CredentialChain(fixed: Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "stand-in-secret")),
            transport: CurlTransport(), retry: .none))
    }

    @Test func anErrorMessageQuotingTheValueIsRedacted() async throws {
        let server = try StubHTTPServer { _ in
            .text(#"{"__type": "ValidationException", "message": "Value \"\#(Self.secret)\" at \"value\" failed to satisfy constraint"}"#,
                  status: 400, headers: [HTTPHeader("Content-Type", "application/x-amz-json-1.1")])
        }
        defer { server.stop() }
        await #expect {
            try await ssm(server).putParameter(name: "/c/join-token", value: Self.secret)
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.code == "ValidationException" && !error.description.contains(Self.secret)
                && error.message == #"Value "<redacted>" at "value" failed to satisfy constraint"#
        }
        let sent = server.requests[0]
        #expect(sent.header("X-Amz-Target") == "AmazonSSM.PutParameter")
        #expect(sent.header("Content-Type") == "application/x-amz-json-1.1")
    }

    @Test func anUndecodableAnswerIsReportedWithoutItsBody() async throws {
        let server = try StubHTTPServer { _ in
            .text(#"{"Parameter": {"Name": "/c/join-token", "Value": "\#(Self.secret)", "Version": "two"}}"#)
        }
        defer { server.stop() }
        await #expect {
            _ = try await ssm(server).getParameter(name: "/c/join-token")
        } throws: { error in
            guard let error = error as? AWSResponseError else { return false }
            return error.description.contains("/c/join-token") && !error.description.contains(Self.secret)
        }
        let body = try JSONDecoder().decode([String: AnyCodableValue].self, from: server.requests[0].body)
        #expect(body == ["Name": .string("/c/join-token"), "WithDecryption": .bool(true)])
    }

    /// Just enough JSON to compare the request bodies.
    enum AnyCodableValue: Decodable, Equatable {
        case string(String)
        case bool(Bool)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let flag = try? container.decode(Bool.self) { self = .bool(flag) } else { self = .string(try container.decode(String.self)) }
        }
    }
}
