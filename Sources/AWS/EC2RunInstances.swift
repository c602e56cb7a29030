/// What to launch. Either a launch template (optionally overriding its image and instance
/// type, which is how the fleet falls back to the next instance type), or an image and an
/// instance type.
package struct RunInstancesRequest: Sendable, Equatable {
    package var launchTemplate: LaunchTemplateReference?
    package var imageID: String?
    package var instanceType: String?
    /// MinCount = MaxCount: all or nothing, so a partial launch never goes unnoticed.
    package var count: Int
    package var subnetID: String?
    package var securityGroupIDs: [String]
    package var instanceProfile: IAMInstanceProfile?
    package var instanceTags: [String: String]
    /// Tags for the instances' EBS volumes (cost allocation, cleanup).
    package var volumeTags: [String: String]
    /// The raw user data (cloud-init); the client base64-encodes it.
    package var userData: Data?
    /// Idempotency key: a retry with the same token launches nothing new. When nil, the
    /// client makes one per call (as the AWS SDKs do), so its own retries stay safe.
    package var clientToken: String?
    /// On-demand sends no market options at all (the request is as it always was, and a
    /// launch template's own market options apply); spot overrides them.
    package var market: EC2Market

    package init(launchTemplate: LaunchTemplateReference? = nil, imageID: String? = nil, instanceType: String? = nil,
                count: Int = 1, subnetID: String? = nil, securityGroupIDs: [String] = [],
                instanceProfile: IAMInstanceProfile? = nil, instanceTags: [String: String] = [:],
                volumeTags: [String: String] = [:], userData: Data? = nil, clientToken: String? = nil,
                market: EC2Market = .onDemand) {
        self.launchTemplate = launchTemplate
        self.imageID = imageID
        self.instanceType = instanceType
        self.count = count
        self.subnetID = subnetID
        self.securityGroupIDs = securityGroupIDs
        self.instanceProfile = instanceProfile
        self.instanceTags = instanceTags
        self.volumeTags = volumeTags
        self.userData = userData
        self.clientToken = clientToken
        self.market = market
    }

    /// EC2's limits, checked before sending so the mistake is named precisely.
    static let maxUserDataBytes = 16 * 1024
    static let maxClientTokenLength = 64
    static let maxTagKeyLength = 128
    static let maxTagValueLength = 256
    static let maxTagsPerResource = 50
}

/// How an instance is bought. EC2 reports a Spot instance's `instanceLifecycle` as `spot`.
package enum EC2Market: String, Sendable, Equatable {
    case onDemand = "on-demand"
    case spot
}

package struct LaunchTemplateReference: Sendable, Equatable {
    package enum Identifier: Sendable, Equatable {
        case id(String)
        case name(String)
    }

    package var identifier: Identifier
    /// A version number, `$Latest` or `$Default`; nil means the template's default version.
    package var version: String?

    package init(_ identifier: Identifier, version: String? = nil) {
        self.identifier = identifier
        self.version = version
    }

    /// `lt-…` is an id, anything else a name — how the config's one `launch_template` field is read.
    package init(idOrName: String, version: String? = nil) {
        self.init(idOrName.hasPrefix("lt-") ? .id(idOrName) : .name(idOrName), version: version)
    }
}

package enum IAMInstanceProfile: Sendable, Equatable {
    case name(String)
    case arn(String)

    /// An `arn:` value is an ARN, anything else a profile name.
    package init(nameOrARN: String) {
        self = nameOrARN.hasPrefix("arn:") ? .arn(nameOrARN) : .name(nameOrARN)
    }
}

/// A request kscaler refuses to send because EC2 would reject it; says what to fix.
package struct InvalidEC2Request: Error, Sendable, CustomStringConvertible {
    package var operation: String
    package var reason: String
    package var description: String { "EC2 \(operation) not sent: \(reason)" }
}

extension RunInstancesRequest {
    /// The Query-protocol form parameters, in a stable order. IMDSv2 with one hop is always required here:
    /// the worker's join token is fetched through instance metadata, and EC2 does not apply
    /// a launch template's MetadataOptions everywhere (moto ignores them) — so never rely on it.
    func queryParameters(clientToken: String, dryRun: Bool) throws(InvalidEC2Request) -> [(String, String)] {
        try validate(clientToken: clientToken)
        var parameters: [(String, String)] = [("MinCount", String(count)), ("MaxCount", String(count))]
        if let launchTemplate {
            switch launchTemplate.identifier {
            case .id(let id): parameters.append(("LaunchTemplate.LaunchTemplateId", id))
            case .name(let name): parameters.append(("LaunchTemplate.LaunchTemplateName", name))
            }
            if let version = launchTemplate.version { parameters.append(("LaunchTemplate.Version", version)) }
        }
        if let imageID { parameters.append(("ImageId", imageID)) }
        if let instanceType { parameters.append(("InstanceType", instanceType)) }
        if let subnetID { parameters.append(("SubnetId", subnetID)) }
        for (index, group) in securityGroupIDs.enumerated() {
            parameters.append(("SecurityGroupId.\(index + 1)", group))
        }
        switch instanceProfile {
        case .name(let name): parameters.append(("IamInstanceProfile.Name", name))
        case .arn(let arn): parameters.append(("IamInstanceProfile.Arn", arn))
        case nil: break
        }
        if market == .spot {
            // A one-time request, terminated on interruption. No MaxPrice: the default is the
            // on-demand price, which AWS recommends (a lower cap only means more interruptions).
            parameters.append(("InstanceMarketOptions.MarketType", "spot"))
            parameters.append(("InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time"))
            parameters.append(("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "terminate"))
        }
        var specification = 0
        for (resourceType, tags) in [("instance", instanceTags), ("volume", volumeTags)] where !tags.isEmpty {
            specification += 1
            let prefix = "TagSpecification.\(specification)"
            parameters.append(("\(prefix).ResourceType", resourceType))
            for (index, key) in tags.keys.sorted().enumerated() {
                parameters.append(("\(prefix).Tag.\(index + 1).Key", key))
                parameters.append(("\(prefix).Tag.\(index + 1).Value", tags[key]!))
            }
        }
        if let userData { parameters.append(("UserData", userData.base64EncodedString())) }
        parameters.append(("MetadataOptions.HttpTokens", "required"))
        parameters.append(("MetadataOptions.HttpEndpoint", "enabled"))
        // One hop: processes on the node reach IMDS, pods behind the CNI (one more hop) do not,
        // so no pod borrows the worker role, which may read the join token. Sent explicitly
        // because options given in the request replace the template's, and EC2's default for
        // an AMI flagged IMDSv2-only (AL2023) is 2.
        parameters.append(("MetadataOptions.HttpPutResponseHopLimit", "1"))
        parameters.append(("ClientToken", clientToken))
        if dryRun { parameters.append(("DryRun", "true")) }
        return parameters
    }

    private func validate(clientToken: String) throws(InvalidEC2Request) {
        func invalid(_ reason: String) -> InvalidEC2Request { InvalidEC2Request(operation: "RunInstances", reason: reason) }
        guard count >= 1 else { throw invalid("count is \(count); launch at least 1 instance") }
        if launchTemplate == nil {
            guard imageID != nil, instanceType != nil else {
                throw invalid("give a launch template, or both an image id and an instance type")
            }
        }
        for (name, value) in [("image id", imageID), ("instance type", instanceType), ("subnet id", subnetID)] {
            if let value, value.isEmpty { throw invalid("the \(name) is empty") }
        }
        if let userData, userData.count > Self.maxUserDataBytes {
            throw invalid("user data is \(userData.count) bytes; EC2 accepts at most \(Self.maxUserDataBytes) (before base64)")
        }
        guard !clientToken.isEmpty, clientToken.utf8.count <= Self.maxClientTokenLength,
              clientToken.unicodeScalars.allSatisfy({ $0.isASCII }) else {
            throw invalid("the client token must be 1 to \(Self.maxClientTokenLength) ASCII characters")
        }
        for (resource, tags) in [("instance", instanceTags), ("volume", volumeTags)] {
            guard tags.count <= Self.maxTagsPerResource else {
                throw invalid("\(tags.count) \(resource) tags; EC2 allows at most \(Self.maxTagsPerResource)")
            }
            for (key, value) in tags {
                guard !key.isEmpty, key.count <= Self.maxTagKeyLength else {
                    throw invalid("\(resource) tag key '\(key)' must be 1 to \(Self.maxTagKeyLength) characters")
                }
                guard !key.lowercased().hasPrefix("aws:") else {
                    throw invalid("\(resource) tag key '\(key)': the aws: prefix is reserved for AWS")
                }
                guard value.count <= Self.maxTagValueLength else {
                    throw invalid("\(resource) tag '\(key)' has a value longer than \(Self.maxTagValueLength) characters")
                }
            }
        }
    }
}
