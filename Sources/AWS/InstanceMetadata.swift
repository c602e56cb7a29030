import HTTP
import SigV4

/// EC2 instance metadata with IMDSv2 (a session token first, then reads). The endpoint comes
/// from `AWS_EC2_METADATA_SERVICE_ENDPOINT` (how tests point it at 127.0.0.1), default
/// `http://169.254.169.254`. Timeouts are short: off EC2 nothing answers, and that must cost
/// a laptop run about a second, not a minute.
package struct InstanceMetadataClient: Sendable {
    package let endpoint: String
    package let isDisabled: Bool
    let transport: any HTTPTransport
    let timeout: Duration

    package init(environment: AWSEnvironment, transport: any HTTPTransport, timeout: Duration = .seconds(1)) {
        var endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? "http://169.254.169.254"
        if endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        self.isDisabled = environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true"
        self.transport = transport
        self.timeout = timeout
    }

    /// Not on EC2 (or IMDS unreachable/disabled): a soft miss, distinct from a broken answer.
    package struct Unavailable: Error, Sendable, CustomStringConvertible {
        package var reason: String
        package var description: String { "instance metadata unavailable: \(reason)" }
    }

    package func sessionToken() async throws -> String {
        guard !isDisabled else { throw Unavailable(reason: "AWS_EC2_METADATA_DISABLED=true") }
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(
                method: "PUT", url: endpoint + "/latest/api/token",
                headers: [HTTPHeader("X-aws-ec2-metadata-token-ttl-seconds", "300")], timeout: timeout))
        } catch let error as HTTPError {
            throw Unavailable(reason: error.description)
        }
        guard response.status == 200, !response.body.isEmpty else {
            throw Unavailable(reason: "token request answered HTTP \(response.status)")
        }
        return String(decoding: response.body, as: UTF8.self)
    }

    /// GET a metadata path; nil on 404 (the item does not exist, e.g. no role attached).
    package func get(_ path: String, token: String) async throws -> String? {
        let response = try await transport.send(HTTPRequest(
            method: "GET", url: endpoint + path,
            headers: [HTTPHeader("X-aws-ec2-metadata-token", token)], timeout: timeout))
        if response.status == 404 { return nil }
        guard response.status == 200 else {
            throw CredentialsError(source: "instance metadata", reason: "GET \(path) answered HTTP \(response.status)")
        }
        return String(decoding: response.body, as: UTF8.self)
    }

    /// The instance's region, or nil when not on EC2.
    package func region() async -> String? {
        guard let token = try? await sessionToken() else { return nil }
        return try? await get("/latest/meta-data/placement/region", token: token)?
            .trimmingWhitespace()
    }
}

/// The instance role's credentials from IMDSv2.
package struct InstanceMetadataCredentialProvider: CredentialProvider {
    package let name = "instance metadata"
    let metadata: InstanceMetadataClient

    package init(metadata: InstanceMetadataClient) { self.metadata = metadata }

    package func resolve() async throws -> Credentials? {
        let token: String
        do {
            token = try await metadata.sessionToken()
        } catch is InstanceMetadataClient.Unavailable {
            return nil
        }
        let base = "/latest/meta-data/iam/security-credentials/"
        guard let roles = try await metadata.get(base, token: token),
              let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            return nil  // an instance without a role
        }
        guard let document = try await metadata.get(base + role, token: token) else {
            throw CredentialsError(source: name, reason: "role \(role) is listed but its credentials are not")
        }
        return try MetadataCredentialsDocument.decode(Data(document.utf8), source: name)
    }
}

/// The region, as the SDKs resolve it: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
/// `region`, then instance metadata.
package enum RegionResolver {
    package struct Resolved: Sendable, Equatable {
        package var region: String
        package var source: String
    }

    package static func resolve(environment: AWSEnvironment, metadata: InstanceMetadataClient?) async throws -> Resolved? {
        if let region = environment["AWS_REGION"] { return Resolved(region: region, source: "AWS_REGION") }
        if let region = environment["AWS_DEFAULT_REGION"] { return Resolved(region: region, source: "AWS_DEFAULT_REGION") }
        let files: SharedConfigFiles
        do {
            files = try SharedConfigFiles.load(environment)
        } catch {
            throw CredentialsError(source: "profile \(environment.profileName)", reason: "\(error)")
        }
        if let region = files.config[environment.profileName]?["region"] {
            return Resolved(region: region, source: "profile \(environment.profileName)")
        }
        if let metadata, let region = await metadata.region(), !region.isEmpty {
            return Resolved(region: region, source: "instance metadata")
        }
        return nil
    }
}
