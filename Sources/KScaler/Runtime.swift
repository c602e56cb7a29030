import AWS
import HTTP
import KScalerCore
import Logging
import Prometheus
import SigV4

/// The composition root: turns a validated configuration and the process environment into
/// the adapters one run uses, sharing one transport (one connection pool) between them.
package struct Runtime: Sendable {
    package let config: KScalerConfig
    package let aws: AWSContext
    package let table: KScalerTable
    package let fleet: EC2Fleet
    let transport: any HTTPTransport

    package static func make(config: KScalerConfig, environment: AWSEnvironment, transport: any HTTPTransport,
                            logger: Logger) async throws -> Runtime {
        let aws = try await AWSContext.resolve(environment: environment, configuredRegion: config.region, transport: transport, logger: logger)
        logger.debug("aws", metadata: ["region": "\(aws.region)", "region_source": "\(aws.regionSource)"])
        return Runtime(
            config: config, aws: aws,
            table: KScalerTable(dynamoDB: DynamoDBClient(client: aws.client(for: .dynamoDB, displayName: "DynamoDB")),
                                tableName: config.table, clusterID: config.clusterID, pool: config.workers.pool),
            fleet: EC2Fleet(ec2: aws.ec2, clusterID: config.clusterID, workers: config.workers,
                            protectedInstances: config.victims.protectedInstances, userData: EC2Fleet.UserData(for: config)),
            transport: transport)
    }

    /// The Prometheus client, built per run so auth files (token, password) are read fresh.
    package func prometheus() async throws -> PrometheusClient {
        let auth: Prometheus.PrometheusAuth
        switch config.prometheus.auth {
        case .none: auth = .none
        case .basic(let username, let passwordFile): auth = .basic(username: username, passwordFile: passwordFile)
        case .bearer(let tokenFile): auth = .bearer(tokenFile: tokenFile)
        case .sigv4(let region):
            let credentials = try await aws.credentials.resolve().credentials
            auth = .signed(SigV4RequestSigner(credentials: credentials, region: region ?? aws.region, service: AWSService.prometheus.signingName))
        }
        return try PrometheusClient(baseURL: config.prometheus.url, auth: auth,
                                    timeout: .seconds(config.prometheus.timeout), transport: transport, logger: aws.logger)
    }

    package func evaluator(logger: Logger) async throws -> Evaluator {
        Evaluator(config: config, store: table, fleet: fleet,
                  metrics: PrometheusMetricsSource(client: try await prometheus(), staleness: .seconds(config.prometheus.staleness)),
                  logger: logger)
    }

    /// A run id: time-ordered and unique enough to name a history event.
    package static func newRunID() -> String {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        return String(millis, radix: 36) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    /// `host/pid/random`: who took a lease, in words an operator can follow.
    package static func leaseOwner() -> String {
        makeLeaseOwner(hostname: ProcessInfo.processInfo.hostName, processID: ProcessInfo.processInfo.processIdentifier)
    }
}
