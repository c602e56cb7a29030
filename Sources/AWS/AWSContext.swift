import HTTP
import Logging
import SigV4

/// Everything a run needs to talk to AWS, resolved once: region (and where it came from),
/// the credential chain, endpoints, the shared transport (one connection pool per run), and
/// the logger every client writes its debug lines to (requests, retries, request ids, timings).
package struct AWSContext: Sendable {
    package let environment: AWSEnvironment
    package let region: String
    package let regionSource: String
    package let credentials: CredentialChain
    package let transport: any HTTPTransport
    package let retry: RetryPolicy
    package let now: @Sendable () -> Date
    package let logger: Logger

    package init(environment: AWSEnvironment, region: String, regionSource: String, credentials: CredentialChain,
                transport: any HTTPTransport, retry: RetryPolicy = RetryPolicy(), now: @escaping @Sendable () -> Date = { Date() },
                logger: Logger = .silent) {
        self.environment = environment
        self.region = region
        self.regionSource = regionSource
        self.credentials = credentials
        self.transport = transport
        self.retry = retry
        self.now = now
        self.logger = logger
    }

    /// Resolves the region (`configuredRegion` from kscaler's config wins) and builds the
    /// standard credential chain. Fails with a fix when no region can be found.
    package static func resolve(environment: AWSEnvironment, configuredRegion: String?, transport: any HTTPTransport,
                               now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = .silent) async throws -> AWSContext {
        let resolved: RegionResolver.Resolved
        if let configuredRegion {
            resolved = .init(region: configuredRegion, source: "config")
        } else if let found = try await RegionResolver.resolve(
            environment: environment, metadata: InstanceMetadataClient(environment: environment, transport: transport)) {
            resolved = found
        } else {
            throw CredentialsError(source: "region", reason: "no AWS region configured: set `region` in the config, AWS_REGION, or the profile's region")
        }
        return AWSContext(environment: environment, region: resolved.region, regionSource: resolved.source,
                          credentials: .standard(environment: environment, region: resolved.region, transport: transport, now: now, logger: logger),
                          transport: transport, now: now, logger: logger)
    }

    package func client(for service: AWSService, displayName: String) -> AWSClient {
        AWSClient(service: service, displayName: displayName, region: region,
                  endpoint: EndpointResolver.endpoint(for: service, region: region, environment: environment),
                  credentials: credentials, transport: transport, retry: retry, now: now, logger: logger)
    }

    package var sts: STSClient { STSClient(client: client(for: .sts, displayName: "STS")) }
}
