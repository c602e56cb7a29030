import HTTP
import Logging
import SigV4

/// Credentials from the shared files for `AWS_PROFILE` (default `default`): static keys, or
/// `role_arn` assumed with `source_profile` / `credential_source` / `web_identity_token_file`.
package struct ProfileCredentialProvider: CredentialProvider {
    let environment: AWSEnvironment
    let region: String?
    let transport: any HTTPTransport
    let now: @Sendable () -> Date
    /// Where the STS clients of role assumptions write their debug lines.
    var logger: Logger = .silent

    package var name: String { "profile \(environment.profileName)" }

    package func resolve() async throws -> Credentials? {
        let files: SharedConfigFiles
        do {
            files = try SharedConfigFiles.load(environment)
        } catch {
            throw CredentialsError(source: name, reason: "\(error)")
        }
        let profileName = environment.profileName
        guard files.profile(profileName) != nil else {
            if environment["AWS_PROFILE"] != nil {
                throw CredentialsError(source: name, reason: "AWS_PROFILE=\(profileName) but no such profile in \(environment.sharedCredentialsFile) or \(environment.sharedConfigFile)")
            }
            return nil
        }
        return try await credentials(forProfile: profileName, files: files, visited: [])
    }

    private func credentials(forProfile profileName: String, files: SharedConfigFiles, visited: [String]) async throws -> Credentials? {
        guard let profile = files.profile(profileName) else {
            throw CredentialsError(source: name, reason: "profile \(visited.last ?? profileName) names source_profile \(profileName), which does not exist")
        }
        guard !visited.contains(profileName) else {
            throw CredentialsError(source: name, reason: "source_profile cycle: \((visited + [profileName]).joined(separator: " → "))")
        }
        if let roleARN = profile["role_arn"] {
            let stsRegion = profile["region"] ?? region ?? "us-east-1"
            if let tokenFile = profile["web_identity_token_file"] {
                let sts = STSClient.unsigned(region: stsRegion, environment: environment, transport: transport, now: now, logger: logger)
                return try await WebIdentityCredentialProvider.exchange(
                    roleARN: roleARN, tokenFile: environment.expandingHome(tokenFile),
                    sessionName: profile["role_session_name"], sts: sts, source: name)
            }
            let source: Credentials
            if let sourceProfile = profile["source_profile"] {
                if sourceProfile == profileName, let own = try staticCredentials(profile, profileName: profileName) {
                    source = own  // a profile may name itself to use its own static keys as the source
                } else {
                    guard let resolved = try await credentials(forProfile: sourceProfile, files: files, visited: visited + [profileName]) else {
                        throw CredentialsError(source: name, reason: "source_profile \(sourceProfile) has no credentials")
                    }
                    source = resolved
                }
            } else if let credentialSource = profile["credential_source"] {
                source = try await credentials(fromSource: credentialSource)
            } else {
                throw CredentialsError(source: name, reason: "profile \(profileName) has role_arn but neither source_profile, credential_source nor web_identity_token_file")
            }
            let sts = STSClient(client: AWSClient(
                service: .sts, displayName: "STS", region: stsRegion,
                endpoint: EndpointResolver.endpoint(for: .sts, region: stsRegion, environment: environment),
                credentials: CredentialChain(fixed: source, source: "profile \(profileName) source"),
                transport: transport, now: now, logger: logger))
            do {
                return try await sts.assumeRole(roleARN: roleARN, sessionName: profile["role_session_name"] ?? "kscaler",
                                                externalID: profile["external_id"])
            } catch let error as AWSError {
                throw CredentialsError(source: name, reason: "STS AssumeRole \(roleARN) failed: \(error.code): \(error.message)")
            }
        }
        if let credentials = try staticCredentials(profile, profileName: profileName) { return credentials }
        if profile["sso_session"] != nil || profile["sso_start_url"] != nil || profile["credential_process"] != nil {
            throw CredentialsError(source: name, reason: "profile \(profileName) uses SSO or credential_process, which kscaler does not run; export credentials (`aws configure export-credentials --format env`) or use a role")
        }
        return nil
    }

    private func staticCredentials(_ profile: [String: String], profileName: String) throws -> Credentials? {
        switch (profile["aws_access_key_id"], profile["aws_secret_access_key"]) {
        case (nil, nil): return nil
        case let (keyID?, secret?):
            return Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: profile["aws_session_token"])
        default:
            throw CredentialsError(source: name, reason: "profile \(profileName) sets only one of aws_access_key_id and aws_secret_access_key")
        }
    }

    private func credentials(fromSource credentialSource: String) async throws -> Credentials {
        let provider: any CredentialProvider
        switch credentialSource {
        case "Environment": provider = EnvironmentCredentialProvider(environment: environment)
        case "EcsContainer": provider = ContainerCredentialProvider(environment: environment, transport: transport)
        case "Ec2InstanceMetadata":
            provider = InstanceMetadataCredentialProvider(metadata: InstanceMetadataClient(environment: environment, transport: transport))
        default:
            throw CredentialsError(source: name, reason: "credential_source \(credentialSource) is not one of Environment, EcsContainer, Ec2InstanceMetadata")
        }
        guard let credentials = try await provider.resolve() else {
            throw CredentialsError(source: name, reason: "credential_source \(credentialSource) provided no credentials")
        }
        return credentials
    }
}
