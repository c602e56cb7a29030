/// The process environment as the AWS SDKs read it, captured once in `main` and passed down,
/// so every resolution step is a pure function of this value and tests need no global state.
package struct AWSEnvironment: Sendable {
    package var variables: [String: String]
    /// Where `~/.aws/…` lives; nil when there is no home directory (a scratch container).
    package var homeDirectory: String?

    package init(variables: [String: String], homeDirectory: String? = nil) {
        self.variables = variables
        self.homeDirectory = homeDirectory ?? variables["HOME"]
    }

    /// A variable's value; unset and empty are the same, as in the SDKs.
    package subscript(name: String) -> String? {
        guard let value = variables[name], !value.isEmpty else { return nil }
        return value
    }

    /// The profile to use: `AWS_PROFILE`, else `default`.
    package var profileName: String { self["AWS_PROFILE"] ?? "default" }

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
package struct AWSService: Sendable, Hashable {
    package var signingName: String
    /// `AWS_ENDPOINT_URL_<this>`, as the SDKs spell the service id.
    package var endpointVariableSuffix: String
    package var hostPrefix: String

    package static let dynamoDB = AWSService(signingName: "dynamodb", endpointVariableSuffix: "DYNAMODB", hostPrefix: "dynamodb")
    package static let ec2 = AWSService(signingName: "ec2", endpointVariableSuffix: "EC2", hostPrefix: "ec2")
    package static let ssm = AWSService(signingName: "ssm", endpointVariableSuffix: "SSM", hostPrefix: "ssm")
    package static let sts = AWSService(signingName: "sts", endpointVariableSuffix: "STS", hostPrefix: "sts")
    /// Amazon Managed Service for Prometheus (query API signing only).
    package static let prometheus = AWSService(signingName: "aps", endpointVariableSuffix: "AMP", hostPrefix: "aps-workspaces")
}

package enum EndpointResolver {
    /// The base URL for a service: `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then the
    /// regional AWS endpoint — unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`. The result has no
    /// trailing slash. This is what lets kscaler talk to moto, DynamoDB Local or ScyllaDB Alternator.
    package static func endpoint(for service: AWSService, region: String, environment: AWSEnvironment) -> String {
        let ignoreOverrides = environment["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.lowercased() == "true"
        if !ignoreOverrides,
           let configured = environment["AWS_ENDPOINT_URL_\(service.endpointVariableSuffix)"] ?? environment["AWS_ENDPOINT_URL"] {
            return configured.hasSuffix("/") ? String(configured.dropLast()) : configured
        }
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return "https://\(service.hostPrefix).\(region).\(suffix)"
    }
}
