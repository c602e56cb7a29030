import HTTP
import Logging
import SigV4

/// AWS STS over the Query protocol: who am I, and the two role assumptions the credential
/// chain needs.
package struct STSClient: Sendable {
    package let client: AWSClient
    static let version = "2011-06-15"

    package init(client: AWSClient) { self.client = client }

    /// An STS client that signs nothing: AssumeRoleWithWebIdentity authenticates by its token.
    static func unsigned(region: String, environment: AWSEnvironment, transport: any HTTPTransport,
                         now: @escaping @Sendable () -> Date, logger: Logger) -> STSClient {
        STSClient(client: AWSClient(
            service: .sts, displayName: "STS", region: region,
            endpoint: EndpointResolver.endpoint(for: .sts, region: region, environment: environment),
            credentials: nil, transport: transport, now: now, logger: logger))
    }

    package struct CallerIdentity: Sendable, Equatable {
        package var account: String
        package var arn: String
        package var userID: String
    }

    package func getCallerIdentity() async throws -> CallerIdentity {
        let root = try await client.query(operation: "GetCallerIdentity", version: Self.version, parameters: [])
        guard let result = root.child("GetCallerIdentityResult"),
              let account = result.string("Account"), let arn = result.string("Arn") else {
            throw AWSResponseError(service: "STS", operation: "GetCallerIdentity", httpStatus: 200,
                                   detail: "no GetCallerIdentityResult/Account/Arn in the answer")
        }
        return CallerIdentity(account: account, arn: arn, userID: result.string("UserId") ?? "")
    }

    package func assumeRole(roleARN: String, sessionName: String, externalID: String? = nil) async throws -> Credentials {
        var parameters = [("RoleArn", roleARN), ("RoleSessionName", sessionName)]
        if let externalID { parameters.append(("ExternalId", externalID)) }
        let root = try await client.query(operation: "AssumeRole", version: Self.version, parameters: parameters)
        return try credentials(in: root, resultName: "AssumeRoleResult", operation: "AssumeRole")
    }

    package func assumeRoleWithWebIdentity(roleARN: String, sessionName: String, webIdentityToken: String) async throws -> Credentials {
        let root = try await client.query(operation: "AssumeRoleWithWebIdentity", version: Self.version, parameters: [
            ("RoleArn", roleARN), ("RoleSessionName", sessionName), ("WebIdentityToken", webIdentityToken),
        ])
        return try credentials(in: root, resultName: "AssumeRoleWithWebIdentityResult", operation: "AssumeRoleWithWebIdentity")
    }

    private func credentials(in root: XMLElement, resultName: String, operation: String) throws -> Credentials {
        guard let element = root.child(resultName)?.child("Credentials"),
              let keyID = element.string("AccessKeyId"), let secret = element.string("SecretAccessKey") else {
            throw AWSResponseError(service: "STS", operation: operation, httpStatus: 200, detail: "no Credentials in the answer")
        }
        return Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: element.string("SessionToken"),
                           expiration: element.string("Expiration").flatMap(parseISO8601))
    }
}

/// Parses the ISO 8601 timestamps AWS returns (`2026-11-21T09:31:30Z`, with or without
/// fractional seconds).
package func parseISO8601(_ text: String) -> Date? {
    if let date = try? Date(text, strategy: .iso8601) { return date }
    return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

/// `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE` (Kubernetes IRSA and similar): exchanges the
/// token for role credentials with STS. The token file is read on every resolution because
/// its issuer rotates it.
package struct WebIdentityCredentialProvider: CredentialProvider {
    package let name = "web identity"
    let environment: AWSEnvironment
    let sts: STSClient

    package func resolve() async throws -> Credentials? {
        guard let roleARN = environment["AWS_ROLE_ARN"], let tokenFile = environment["AWS_WEB_IDENTITY_TOKEN_FILE"] else {
            return nil
        }
        return try await WebIdentityCredentialProvider.exchange(roleARN: roleARN, tokenFile: tokenFile,
                                                                 sessionName: environment["AWS_ROLE_SESSION_NAME"], sts: sts, source: name)
    }

    static func exchange(roleARN: String, tokenFile: String, sessionName: String?, sts: STSClient, source: String) async throws -> Credentials {
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            throw CredentialsError(source: source, reason: "cannot read the web identity token file \(tokenFile)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty else { throw CredentialsError(source: source, reason: "the web identity token file \(tokenFile) is empty") }
        do {
            return try await sts.assumeRoleWithWebIdentity(roleARN: roleARN, sessionName: sessionName ?? "kscaler", webIdentityToken: token)
        } catch let error as AWSError {
            throw CredentialsError(source: source, reason: "STS refused the web identity token for \(roleARN): \(error.code): \(error.message)")
        }
    }
}
