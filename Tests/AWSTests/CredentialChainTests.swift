import HTTP
import SigV4
import Synchronization
import Testing
import TestSupport
@testable import AWS

/// The credential chain, source by source, with local HTTP stand-ins on 127.0.0.1 for the
/// endpoints that only exist inside AWS (IMDS, the container endpoint, and STS for the
/// unsigned web-identity call: moto with signature checking on answers unsigned requests
/// with HTTP 500, so it cannot play that part).
@Suite struct CredentialChainTests {
    static let credentialsJSON = #"{"AccessKeyId":"ASIAROLEKEY0001","SecretAccessKey":"role-secret","Token":"role-session-token","Expiration":"2099-01-01T00:00:00Z"}"#

    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(Peers.uniqueName("kscaler-aws")).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func chain(_ variables: [String: String]) -> CredentialChain {
        var variables = variables
        variables["HOME"] = variables["HOME"] ?? "/nonexistent-home"
        variables["AWS_EC2_METADATA_DISABLED"] = variables["AWS_EC2_METADATA_DISABLED"] ?? "true"
        return .standard(environment: AWSEnvironment(variables: variables), region: "us-east-1", transport: CurlTransport())
    }

    @Test func environmentComesFirst() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("[default]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = profile-secret\n", to: directory + "/credentials")
        let resolved = try await chain([
            "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token",
            "AWS_SHARED_CREDENTIALS_FILE": directory + "/credentials",
        ]).resolve()
        #expect(resolved.source == "environment")
        #expect(resolved.credentials == Credentials(accessKeyID: "ENVKEY", secretAccessKey: "env-secret", sessionToken: "env-token"))
    }

    @Test func halfSetEnvironmentIsAnError() async {
        await #expect {
            _ = try await chain(["AWS_ACCESS_KEY_ID": "ENVKEY"]).resolve()
        } throws: { error in
            "\(error)".contains("AWS_SECRET_ACCESS_KEY is not")
        }
    }

    @Test func sharedCredentialsFileForTheSelectedProfile() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = d\n[ops]\naws_access_key_id = OPSKEY\naws_secret_access_key = o\n",
                  to: directory + "/credentials")
        let resolved = try await chain(["AWS_PROFILE": "ops", "AWS_SHARED_CREDENTIALS_FILE": directory + "/credentials"]).resolve()
        #expect(resolved.source == "profile ops")
        #expect(resolved.credentials.accessKeyID == "OPSKEY")
    }

    @Test func aMalformedFileStopsTheChainNamingFileAndLine() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("[default]\nregion = eu-west-1\nthis is not ini\n", to: directory + "/config")
        await #expect {
            _ = try await chain(["AWS_CONFIG_FILE": directory + "/config"]).resolve()
        } throws: { error in
            "\(error)".contains(directory + "/config:3:")
        }
    }

    @Test func aMissingProfileNamedExplicitlyIsAnError() async throws {
        await #expect {
            _ = try await chain(["AWS_PROFILE": "nope"]).resolve()
        } throws: { error in
            "\(error)".contains("AWS_PROFILE=nope but no such profile")
        }
    }

    @Test func webIdentityTokenIsExchangedWithSTSUnsigned() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("web-identity-jwt\n", to: directory + "/token")
        let sts = try StubHTTPServer { _ in
            .text("""
            <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>
            <Credentials><AccessKeyId>ASIAWEBKEY</AccessKeyId><SecretAccessKey>web-secret</SecretAccessKey>
            <SessionToken>web-session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
            </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>
            """)
        }
        defer { sts.stop() }
        let resolved = try await chain([
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/web", "AWS_WEB_IDENTITY_TOKEN_FILE": directory + "/token",
            "AWS_ROLE_SESSION_NAME": "kscaler-test", "AWS_ENDPOINT_URL_STS": sts.baseURL,
        ]).resolve()
        #expect(resolved.source == "web identity")
        #expect(resolved.credentials.accessKeyID == "ASIAWEBKEY")
        #expect(resolved.credentials.sessionToken == "web-session")
        let request = try #require(sts.requests.first)
        let form = String(decoding: request.body, as: UTF8.self)
        #expect(form.contains("Action=AssumeRoleWithWebIdentity"))
        #expect(form.contains("WebIdentityToken=web-identity-jwt"))
        #expect(form.contains("RoleSessionName=kscaler-test"))
        #expect(request.header("Authorization") == nil)
    }

    @Test func containerEndpointWithAuthorizationTokenFile() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("pod-identity-token\n", to: directory + "/auth")
        let agent = try StubHTTPServer { request in
            request.header("Authorization") == "pod-identity-token" ? .text(Self.credentialsJSON) : .text("denied", status: 401)
        }
        defer { agent.stop() }
        let resolved = try await chain([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": agent.baseURL + "/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": directory + "/auth",
        ]).resolve()
        #expect(resolved.source == "container endpoint")
        #expect(resolved.credentials.accessKeyID == "ASIAROLEKEY0001")
        #expect(resolved.credentials.sessionToken == "role-session-token")
        #expect(agent.requests.first?.target == "/v1/credentials")
    }

    @Test func containerFullURIToAnArbitraryHostIsRefused() async {
        await #expect {
            _ = try await chain(["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://192.0.2.10/creds"]).resolve()
        } throws: { error in
            "\(error)".contains("must be https")
        }
    }

    /// IMDSv2: the token is fetched with PUT first and every read carries it.
    func imds(role: String? = "kscaler-node") throws -> StubHTTPServer {
        try StubHTTPServer { request in
            if request.method == "PUT", request.target == "/latest/api/token" {
                return request.header("X-aws-ec2-metadata-token-ttl-seconds") != nil ? .text("imds-session") : .text("", status: 400)
            }
            guard request.header("X-aws-ec2-metadata-token") == "imds-session" else { return .text("", status: 401) }
            switch request.target {
            case "/latest/meta-data/iam/security-credentials/":
                return role.map { .text($0 + "\n") } ?? .text("", status: 404)
            case "/latest/meta-data/iam/security-credentials/kscaler-node": return .text(Self.credentialsJSON)
            case "/latest/meta-data/placement/region": return .text("eu-north-1")
            default: return .text("", status: 404)
            }
        }
    }

    @Test func instanceMetadataWithIMDSv2() async throws {
        let metadata = try imds()
        defer { metadata.stop() }
        let resolved = try await chain(["AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata.baseURL, "AWS_EC2_METADATA_DISABLED": "false"]).resolve()
        #expect(resolved.source == "instance metadata")
        #expect(resolved.credentials.accessKeyID == "ASIAROLEKEY0001")
        #expect(metadata.requests.first?.method == "PUT")
        #expect(metadata.requests.dropFirst().allSatisfy { $0.header("X-aws-ec2-metadata-token") == "imds-session" })
    }

    @Test func nothingConfiguredListsWhatWasTried() async throws {
        let metadata = try imds(role: nil)  // an instance without a role
        defer { metadata.stop() }
        await #expect {
            _ = try await chain(["AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata.baseURL, "AWS_EC2_METADATA_DISABLED": "false"]).resolve()
        } throws: { error in
            let text = "\(error)"
            return text.contains("no credentials found") && text.contains("environment, web identity, profile default, container endpoint, instance metadata")
        }
    }

    /// Off EC2 nothing answers at the metadata address: that is "no credentials here", the
    /// chain's ordinary end, not an instance-metadata failure.
    @Test func unreachableMetadataIsASoftMiss() async throws {
        let port = try StubHTTPServer.unusedPort()
        await #expect {
            _ = try await chain(["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(port)", "AWS_EC2_METADATA_DISABLED": "false"]).resolve()
        } throws: { error in
            guard let error = error as? CredentialsError else { return false }
            return error.source == "chain" && error.reason.contains("no credentials found") && error.reason.contains("instance metadata")
        }
    }

    @Test func regionResolutionOrder() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write("[profile ops]\nregion = ap-south-1\n", to: directory + "/config")
        let metadata = try imds()
        defer { metadata.stop() }
        func region(_ variables: [String: String]) async throws -> RegionResolver.Resolved? {
            let environment = AWSEnvironment(variables: variables.merging(["AWS_CONFIG_FILE": directory + "/config", "HOME": "/nonexistent"]) { a, _ in a })
            return try await RegionResolver.resolve(environment: environment, metadata: InstanceMetadataClient(environment: environment, transport: CurlTransport()))
        }
        #expect(try await region(["AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"]) == .init(region: "eu-west-1", source: "AWS_REGION"))
        #expect(try await region(["AWS_DEFAULT_REGION": "us-west-2", "AWS_PROFILE": "ops"]) == .init(region: "us-west-2", source: "AWS_DEFAULT_REGION"))
        #expect(try await region(["AWS_PROFILE": "ops"]) == .init(region: "ap-south-1", source: "profile ops"))
        #expect(try await region(["AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata.baseURL]) == .init(region: "eu-north-1", source: "instance metadata"))
    }
}
