import HTTP
import SigV4

/// The container credentials endpoint used by ECS tasks (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`)
/// and EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + an authorization token).
package struct ContainerCredentialProvider: CredentialProvider {
    package let name = "container endpoint"
    let environment: AWSEnvironment
    let transport: any HTTPTransport

    package init(environment: AWSEnvironment, transport: any HTTPTransport) {
        self.environment = environment
        self.transport = transport
    }

    package func resolve() async throws -> Credentials? {
        let url: String
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] {
            url = "http://169.254.170.2" + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] {
            guard Self.isAllowed(fullURI: full) else {
                throw CredentialsError(source: name, reason: "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback or the ECS/EKS link-local address")
            }
            url = full
        } else {
            return nil
        }
        var headers: [HTTPHeader] = [HTTPHeader("Accept", "application/json")]
        if let token = try authorizationToken() {
            guard !token.contains("\r"), !token.contains("\n") else {
                throw CredentialsError(source: name, reason: "the container authorization token contains a line break")
            }
            headers.append(HTTPHeader("Authorization", token))
        }
        let response = try await RetryPolicy().run {
            try await transport.send(HTTPRequest(method: "GET", url: url, headers: headers, timeout: .seconds(2)))
        }
        guard response.status == 200 else {
            throw CredentialsError(source: name, reason: "the endpoint answered HTTP \(response.status)")
        }
        return try MetadataCredentialsDocument.decode(response.body, source: name)
    }

    private func authorizationToken() throws -> String? {
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CredentialsError(source: name, reason: "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(file)")
            }
            return String(decoding: data, as: UTF8.self).trimmingWhitespace()
        }
        return environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    }

    /// The SDKs send the authorization token over plain http only to hosts that cannot be
    /// elsewhere on the network: loopback and the ECS / EKS Pod Identity agents.
    static func isAllowed(fullURI: String) -> Bool {
        let lower = fullURI.lowercased()
        if lower.hasPrefix("https://") { return true }
        guard lower.hasPrefix("http://") else { return false }
        let authority = lower.dropFirst("http://".count).prefix { $0 != "/" }
        let host: Substring
        if authority.hasPrefix("[") {
            host = authority.prefix { $0 != "]" }.dropFirst()
        } else {
            host = authority.prefix { $0 != ":" }
        }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1"
            || host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23"
    }
}

/// The JSON document both the container endpoint and IMDS return for role credentials.
struct MetadataCredentialsDocument: Decodable {
    var AccessKeyId: String
    var SecretAccessKey: String
    var Token: String?
    var Expiration: String?

    static func decode(_ body: Data, source: String) throws -> Credentials {
        guard let document = try? JSONDecoder().decode(MetadataCredentialsDocument.self, from: body) else {
            throw CredentialsError(source: source, reason: "the answer is not a credentials document (AccessKeyId, SecretAccessKey, Token, Expiration)")
        }
        return Credentials(accessKeyID: document.AccessKeyId, secretAccessKey: document.SecretAccessKey,
                           sessionToken: document.Token, expiration: document.Expiration.flatMap(parseISO8601))
    }
}
