import HTTP
import Logging
import SigV4

/// One place credentials can come from. `resolve` returns nil when this source is simply not
/// configured (a soft miss: the chain moves on) and throws when it is configured but broken
/// (a malformed file, a rejected web-identity token): then the chain stops with that error,
/// as the SDKs do, instead of silently using some other identity.
package protocol CredentialProvider: Sendable {
    /// Names the source for `kscaler doctor` and errors, e.g. "environment", "profile dev".
    var name: String { get }
    func resolve() async throws -> Credentials?
}

/// Credentials together with the source that produced them.
package struct ResolvedCredentials: Sendable {
    package var credentials: Credentials
    package var source: String
}

package struct CredentialsError: Error, Sendable, CustomStringConvertible {
    package var source: String
    package var reason: String
    package init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }
    package var description: String { "credentials (\(source)): \(reason)" }
}

/// Tries providers in order; the first that answers wins. Resolves once per run and caches,
/// refreshing only if the credentials would expire within `refreshMargin`.
package actor CredentialChain {
    package let providers: [any CredentialProvider]
    private let refreshMargin: Duration
    private let now: @Sendable () -> Date
    private let logger: Logger
    private var cached: ResolvedCredentials?

    package init(providers: [any CredentialProvider], refreshMargin: Duration = .seconds(300),
                now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = .silent) {
        self.providers = providers
        self.refreshMargin = refreshMargin
        self.now = now
        self.logger = logger
    }

    /// A chain holding fixed credentials (tests, and callers that resolved them elsewhere).
    package init(fixed credentials: Credentials, source: String = "static") {
        self.init(providers: [StaticCredentialProvider(name: source, credentials: credentials)])
    }

    package func resolve() async throws -> ResolvedCredentials {
        if let cached, !isExpiring(cached.credentials) { return cached }
        for provider in providers {
            if let credentials = try await provider.resolve() {
                let resolved = ResolvedCredentials(credentials: credentials, source: provider.name)
                // Where they came from and, for temporary ones, when they expire; never a key, secret or session token.
                var metadata: Logger.Metadata = ["source": "\(provider.name)"]
                if let expiration = credentials.expiration { metadata["expires_at"] = "\(expiration)" }
                logger.debug("aws credentials resolved", metadata: metadata)
                cached = resolved
                return resolved
            }
        }
        throw CredentialsError(
            source: "chain",
            reason: "no credentials found; tried \(providers.map(\.name).joined(separator: ", ")). "
                + "Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance or task role"
        )
    }

    private func isExpiring(_ credentials: Credentials) -> Bool {
        guard let expiration = credentials.expiration else { return false }
        return expiration.timeIntervalSince(now()) < Double(refreshMargin.components.seconds)
    }
}

package struct StaticCredentialProvider: CredentialProvider {
    package let name: String
    let credentials: Credentials
    package init(name: String, credentials: Credentials) {
        self.name = name
        self.credentials = credentials
    }
    package func resolve() async throws -> Credentials? { credentials }
}

/// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`).
package struct EnvironmentCredentialProvider: CredentialProvider {
    package let name = "environment"
    let environment: AWSEnvironment
    package init(environment: AWSEnvironment) { self.environment = environment }

    package func resolve() async throws -> Credentials? {
        let keyID = environment["AWS_ACCESS_KEY_ID"]
        let secret = environment["AWS_SECRET_ACCESS_KEY"]
        switch (keyID, secret) {
        case (nil, nil): return nil
        case let (keyID?, secret?):
            return Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        case (_?, nil):
            throw CredentialsError(source: name, reason: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        case (nil, _?):
            throw CredentialsError(source: name, reason: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        }
    }
}

extension CredentialChain {
    /// The SDKs' default order: environment, web identity, shared files (profile, including
    /// `role_arn` + `source_profile`), container endpoint (ECS, EKS Pod Identity), EC2 instance
    /// metadata (IMDSv2).
    package static func standard(environment: AWSEnvironment, region: String?, transport: any HTTPTransport,
                                now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = .silent) -> CredentialChain {
        let sts = { (region: String?) in
            STSClient.unsigned(region: region ?? "us-east-1", environment: environment, transport: transport, now: now, logger: logger)
        }
        return CredentialChain(providers: [
            EnvironmentCredentialProvider(environment: environment),
            WebIdentityCredentialProvider(environment: environment, sts: sts(region)),
            ProfileCredentialProvider(environment: environment, region: region, transport: transport, now: now, logger: logger),
            ContainerCredentialProvider(environment: environment, transport: transport),
            InstanceMetadataCredentialProvider(metadata: InstanceMetadataClient(environment: environment, transport: transport)),
        ], now: now, logger: logger)
    }
}
