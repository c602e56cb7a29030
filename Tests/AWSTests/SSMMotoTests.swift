import HTTP
import SigV4
import Testing
import TestSupport
@testable import AWS

/// SSMClient against moto with signature checking on: the join token's round trip, versions,
/// the missing-parameter error, and that the value shows up in no error or description.
@Suite struct SSMMotoTests {
    func ssm(_ moto: Peers.Moto, readOnly: Bool = false) -> SSMClient {
        let credentials = readOnly
            ? Credentials(accessKeyID: moto.readOnlyAccessKeyID, secretAccessKey: moto.readOnlySecretAccessKey)
            : Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        return AWSContext(environment: AWSEnvironment(variables: moto.environment()), region: "us-east-1", regionSource: "test",
                          credentials: CredentialChain(fixed: credentials), transport: moto.transport,
                          retry: RetryPolicy(maxAttempts: 1)).ssm
    }

    /// Everything a parameter or an error could print: description, debug description, dump.
    static func renderings(_ value: Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return [String(describing: value), String(reflecting: value), dumped]
    }

    @Test func secureStringRoundTripsAndOverwriteBumpsTheVersion() async throws {
        let moto = try Peers.moto()
        let ssm = ssm(moto)
        let name = "/kscaler/\(Peers.uniqueName("cluster"))/join-token"
        let first = Peers.uniqueName("K10secret-token::server:")
        let second = Peers.uniqueName("K10rotated-token::server:")

        #expect(try await ssm.putParameter(name: name, value: first) == 1)
        let read = try await ssm.getParameter(name: name)
        #expect(read == SSMClient.Parameter(name: name, value: first, version: 1, type: .secureString))
        for text in Self.renderings(read) {
            #expect(!text.contains(first) && text.contains(name), "rendering leaks the value: \(text)")
        }

        await #expect {
            try await ssm.putParameter(name: name, value: second)
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.code == "ParameterAlreadyExists" && error.httpStatus == 400
                && Self.renderings(error).allSatisfy { !$0.contains(second) }
        }
        #expect(try await ssm.getParameter(name: name).value == first, "a refused put changes nothing")

        #expect(try await ssm.putParameter(name: name, value: second, overwrite: true) == 2)
        let rotated = try await ssm.getParameter(name: name, withDecryption: true)
        #expect(rotated.value == second && rotated.version == 2 && rotated.type == .secureString)
    }

    @Test func plainStringParametersKeepTheirType() async throws {
        let moto = try Peers.moto()
        let ssm = ssm(moto)
        let name = "/kscaler/\(Peers.uniqueName("cluster"))/server-url"
        #expect(try await ssm.putParameter(name: name, value: "https://10.0.0.10:6443", type: .string) == 1)
        #expect(try await ssm.getParameter(name: name, withDecryption: false)
                == SSMClient.Parameter(name: name, value: "https://10.0.0.10:6443", version: 1, type: .string))
    }

    @Test func aMissingParameterIsNamedWithHowToCreateIt() async throws {
        let moto = try Peers.moto()
        let name = "/kscaler/\(Peers.uniqueName("absent"))/join-token"
        await #expect {
            _ = try await ssm(moto).getParameter(name: name)
        } throws: { error in
            guard let error = error as? SSMClient.ParameterNotFound else { return false }
            return error == SSMClient.ParameterNotFound(name: name, region: "us-east-1")
                && error.description == "SSM parameter \(name) does not exist in us-east-1. Create it on the server with: "
                + "aws ssm put-parameter --region us-east-1 --name '\(name)' --type SecureString --value \"$TOKEN\""
        }
    }

    @Test func aPutWithoutPermissionDoesNotQuoteTheValue() async throws {
        let moto = try Peers.moto()
        let name = "/kscaler/\(Peers.uniqueName("readonly"))/join-token"
        let secret = Peers.uniqueName("K10never-printed")
        await #expect {
            try await ssm(moto, readOnly: true).putParameter(name: name, value: secret)
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.code == "AccessDenied" && error.httpStatus == 403 && error.message.contains("ssm:PutParameter")
                && Self.renderings(error).allSatisfy { !$0.contains(secret) }
        }
    }
}
