import AWS
import HTTP
import KScalerCore
import Kubernetes
import Logging
import Prometheus
import SigV4

/// The composition root: turns a validated configuration and the process environment into
/// the adapters one run uses, sharing one transport (one connection pool) between them.
package struct Runtime: Sendable {
    package let config: KScalerConfig
    package let aws: AWSContext
    package let table: KScalerTable
    /// The backend's machines (`fleet.backend`).
    package let fleet: any Fleet
    /// How the run reaches the Kubernetes API, or why it does not.
    package let kubernetes: KubernetesAccess
    let transport: any HTTPTransport

    /// - Throws: `KubernetesError.credentials` when the API is asked for (or a kubeconfig
    ///   exists) but cannot be used: a configuration problem, exit 2.
    package static func make(config: KScalerConfig, environment: AWSEnvironment, transport: any HTTPTransport,
                            logger: Logger) async throws -> Runtime {
        let kubernetes: KubernetesAccess
        do {
            kubernetes = try KubernetesAccess.resolve(config.kubernetes, environment: environment.variables)
        } catch {
            throw KubernetesConfigurationError(problem: "\(error)")
        }
        for warning in kubernetes.warnings { logger.warning("\(warning)", metadata: ["event": "kubernetes_tls"]) }
        let aws = try await AWSContext.resolve(environment: environment, configuredRegion: config.region, transport: transport, logger: logger)
        logger.debug("aws", metadata: ["region": "\(aws.region)", "region_source": "\(aws.regionSource)"])
        return Runtime(
            config: config, aws: aws,
            table: KScalerTable(dynamoDB: DynamoDBClient(client: aws.client(for: .dynamoDB, displayName: "DynamoDB")),
                                tableName: config.table, clusterID: config.clusterID, pool: config.workers.pool),
            fleet: try makeFleet(config: config, aws: aws, environment: environment.variables, logger: logger),
            kubernetes: kubernetes, transport: transport)
    }

    /// The fleet of the configured backend.
    static func makeFleet(config: KScalerConfig, aws: AWSContext, environment: [String: String], logger: Logger) throws -> any Fleet {
        switch config.backend {
        case .ec2: return EC2Fleet(ec2: aws.ec2, config: config)
        case .exec(let settings): return ExecFleet(config: config, settings: settings, environment: environment)
        case .proxmox(let settings):
            // Read when the first call needs it, each run: a rotated secret takes effect at once.
            let secret: @Sendable () async throws -> String = switch settings.tokenSecret {
            case .file(let path): { try SecretFile.read(path, purpose: "Proxmox API token secret") }
            case .ssmParameter(let name): { [ssm = aws.ssm] in try await ssm.getParameter(name: name).value }
            }
            return try ProxmoxFleet(settings: settings, clusterID: config.clusterID, pools: config.workerPools,
                                    protectedMachines: config.victims.protectedInstances, tokenSecret: secret,
                                    transport: ProxmoxFleet.transport(for: settings), logger: logger)
        }
    }

    /// How the configured backend's machines show up as nodes, without making the fleet
    /// (`config check` lists the default queries with it).
    package static func machineIdentity(for config: KScalerConfig) -> MachineIdentity {
        switch config.backend {
        case .ec2: EC2Fleet.machines
        case .exec(let settings): ExecFleet.identity(settings)
        case .proxmox(let settings): ProxmoxFleet.identity(clusterName: settings.clusterName, clusterID: config.clusterID)
        }
    }

    /// The Kubernetes API as a run uses it, or nil when it is off. The client (and, for the
    /// token-in-SSM path, the SSM read) is made on first use.
    package func cluster(logger: Logger) -> (any ClusterAPI)? {
        guard kubernetes.isOn else { return nil }
        let (access, ssm, timeout) = (kubernetes, aws.ssm, Duration.seconds(config.kubernetes.timeout))
        return KubernetesCluster {
            guard let client = try await access.client(ssm: ssm, timeout: timeout, logger: logger) else {
                throw KubernetesError.credentials("the Kubernetes API is off")
            }
            return client
        }
    }

    /// The Prometheus client, built per run so auth files (token, password) are read fresh.
    package func prometheus() async throws -> PrometheusClient {
        try await Self.prometheusClient(config: config, transport: transport, logger: aws.logger) { [aws] in aws }
    }

    /// A Prometheus client for `config.prometheus`. `aws` is asked for only when Prometheus is
    /// Amazon Managed Prometheus (`auth.type: sigv4`), so a reader of Prometheus alone
    /// (`kscaler backtest`) never looks up AWS credentials otherwise.
    package static func prometheusClient(config: KScalerConfig, transport: any HTTPTransport, logger: Logger,
                                         aws: () async throws -> AWSContext) async throws -> PrometheusClient {
        let auth: Prometheus.PrometheusAuth
        switch config.prometheus.auth {
        case .none: auth = .none
        case .basic(let username, let passwordFile): auth = .basic(username: username, passwordFile: passwordFile)
        case .bearer(let tokenFile): auth = .bearer(tokenFile: tokenFile)
        case .sigv4(let region):
            let aws = try await aws()
            let credentials = try await aws.credentials.resolve().credentials
            auth = .signed(SigV4RequestSigner(credentials: credentials, region: region ?? aws.region, service: AWSService.prometheus.signingName))
        }
        return try PrometheusClient(baseURL: config.prometheus.url, auth: auth,
                                    timeout: .seconds(config.prometheus.timeout), transport: transport, logger: logger)
    }

    package func evaluator(logger: Logger) async throws -> Evaluator {
        Evaluator(config: config, store: table, fleet: fleet,
                  metrics: PrometheusMetricsSource(client: try await prometheus(), staleness: .seconds(config.prometheus.staleness)),
                  cluster: cluster(logger: logger), logger: logger)
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

/// The Kubernetes API is asked for (or a kubeconfig exists) but cannot be used: the
/// configuration or the kubeconfig is wrong (exit 2), and nothing was contacted.
package struct KubernetesConfigurationError: Error, CustomStringConvertible {
    package var problem: String
    package init(problem: String) { self.problem = problem }
    package var description: String {
        "kubernetes: \(problem) (fix it, or set kubernetes.enabled: false to run without the API: Node objects are then left behind)"
    }
}
