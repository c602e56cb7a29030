import HTTP
import SigV4
import Testing
import TestSupport
@testable import AWS

/// Against moto server with signature checking on: the signer, the client and the error
/// decoding on the real wire protocol.
@Suite struct MotoSTSTests {
    func context(_ moto: Peers.Moto, secret: String? = nil) -> AWSContext {
        let environment = AWSEnvironment(variables: moto.environment())
        let credentials = Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: secret ?? moto.secretAccessKey)
        return AWSContext(environment: environment, region: "us-east-1", regionSource: "test",
                          credentials: CredentialChain(fixed: credentials), transport: moto.transport,
                          retry: RetryPolicy(maxAttempts: 1))
    }

    @Test func correctlySignedRequestSucceeds() async throws {
        let moto = try Peers.moto()
        let identity = try await context(moto).sts.getCallerIdentity()
        #expect(identity.account == "123456789012")
        #expect(identity.arn.hasSuffix(":user/kscaler-tests"))
    }

    @Test func wrongSecretIsRejectedAsSignatureDoesNotMatch() async throws {
        let moto = try Peers.moto()
        let wrongSecret = "wrong-secret-0123456789abcdefghijklmnopqrst"
        await #expect {
            _ = try await context(moto, secret: wrongSecret).sts.getCallerIdentity()
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.code == "SignatureDoesNotMatch" && error.httpStatus == 403
                && error.description.contains("signature was rejected")
                && !error.description.contains(wrongSecret)
        }
    }

    @Test func profileRoleIsAssumedWithSourceProfile() async throws {
        let moto = try Peers.moto()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(Peers.uniqueName("aws")).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("""
        [base]
        aws_access_key_id = \(moto.accessKeyID)
        aws_secret_access_key = \(moto.secretAccessKey)
        """.utf8).write(to: URL(fileURLWithPath: directory + "/credentials"))
        try Data("""
        [profile ops]
        role_arn = arn:aws:iam::123456789012:role/kscaler-ops
        source_profile = base
        region = us-east-1
        """.utf8).write(to: URL(fileURLWithPath: directory + "/config"))
        let environment = AWSEnvironment(variables: [
            "AWS_PROFILE": "ops",
            "AWS_SHARED_CREDENTIALS_FILE": directory + "/credentials",
            "AWS_CONFIG_FILE": directory + "/config",
            "AWS_ENDPOINT_URL": moto.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        ])
        let chain = CredentialChain.standard(environment: environment, region: "us-east-1", transport: moto.transport)
        let resolved = try await chain.resolve()
        #expect(resolved.source == "profile ops")
        #expect(resolved.credentials.accessKeyID != moto.accessKeyID)
        #expect(resolved.credentials.sessionToken != nil)
    }
}
