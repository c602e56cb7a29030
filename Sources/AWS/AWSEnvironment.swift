/// The process environment as the AWS SDKs read it, captured once in `main` and passed down,
/// so every resolution step is a pure function of this value and tests need no global state.
public struct AWSEnvironment: Sendable {
    public var variables: [String: String]
    /// Where `~/.aws/…` lives; nil when there is no home directory (a scratch container).
    public var homeDirectory: String?

    public init(variables: [String: String], homeDirectory: String? = nil) {
        self.variables = variables
        self.homeDirectory = homeDirectory ?? variables["HOME"]
    }

    /// A variable's value; unset and empty are the same, as in the SDKs.
    public subscript(name: String) -> String? {
        guard let value = variables[name], !value.isEmpty else { return nil }
        return value
    }

    /// The profile to use: `AWS_PROFILE`, else `default`.
    public var profileName: String { self["AWS_PROFILE"] ?? "default" }

    /// Expands a leading `~/` the way the SDKs do for file settings.
    func expandingHome(_ path: String) -> String {
        guard path.hasPrefix("~/"), let home = homeDirectory else { return path }
        return home + path.dropFirst(1)
    }

    var sharedCredentialsFile: String {
        expandingHome(self["AWS_SHARED_CREDENTIALS_FILE"] ?? "~/.aws/credentials")
    }

    var sharedConfigFile: String {
        expandingHome(self["AWS_CONFIG_FILE"] ?? "~/.aws/config")
    }
}

/// The AWS services kscaler talks to, with the names each is known by: the SigV4 signing
/// name, the suffix of its endpoint-override variable, and its host prefix.
public struct AWSService: Sendable, Hashable {
    public var signingName: String
    /// `AWS_ENDPOINT_URL_<this>`, as the SDKs spell the service id.
    public var endpointVariableSuffix: String
    public var hostPrefix: String

    public static let dynamoDB = AWSService(signingName: "dynamodb", endpointVariableSuffix: "DYNAMODB", hostPrefix: "dynamodb")
    public static let ec2 = AWSService(signingName: "ec2", endpointVariableSuffix: "EC2", hostPrefix: "ec2")
    public static let ssm = AWSService(signingName: "ssm", endpointVariableSuffix: "SSM", hostPrefix: "ssm")
    public static let sts = AWSService(signingName: "sts", endpointVariableSuffix: "STS", hostPrefix: "sts")
    /// Amazon Managed Service for Prometheus (query API signing only).
    public static let prometheus = AWSService(signingName: "aps", endpointVariableSuffix: "AMP", hostPrefix: "aps-workspaces")
}

public enum EndpointResolver {
    /// The base URL for a service: `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then the
    /// regional AWS endpoint — unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`. The result has no
    /// trailing slash. This is what lets kscaler talk to moto, DynamoDB Local or ScyllaDB Alternator.
    public static func endpoint(for service: AWSService, region: String, environment: AWSEnvironment) -> String {
        let ignoreOverrides = environment["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.lowercased() == "true"
        if !ignoreOverrides,
           let configured = environment["AWS_ENDPOINT_URL_\(service.endpointVariableSuffix)"] ?? environment["AWS_ENDPOINT_URL"] {
            return configured.hasSuffix("/") ? String(configured.dropLast()) : configured
        }
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return "https://\(service.hostPrefix).\(region).\(suffix)"
    }
}
