/// The network and launch resources `kscaler config init --discover` looks for: read-only
/// Describe calls, paged like `describeInstances`.
package struct EC2Subnet: Sendable, Equatable {
    package var id: String
    package var vpcID: String
    package var availabilityZone: String
    package var tags: [String: String]
}

package struct EC2SecurityGroup: Sendable, Equatable {
    package var id: String
    package var name: String
    package var vpcID: String
    package var tags: [String: String]
}

package struct EC2LaunchTemplate: Sendable, Equatable {
    package var id: String
    package var name: String
    package var tags: [String: String]
}

extension EC2Client {
    package func describeSubnets(filters: [(name: String, values: [String])] = []) async throws -> [EC2Subnet] {
        try await paged("DescribeSubnets", Self.filterParameters(filters)) { root in
            (try root.items("subnetSet").map { item in
                EC2Subnet(id: try Self.required(item, "subnetId", "DescribeSubnets"), vpcID: item.string("vpcId") ?? "",
                          availabilityZone: item.string("availabilityZone") ?? "", tags: Self.tags(item))
            }, Self.nextToken(root))
        }
    }

    package func describeSecurityGroups(filters: [(name: String, values: [String])] = []) async throws -> [EC2SecurityGroup] {
        try await paged("DescribeSecurityGroups", Self.filterParameters(filters)) { root in
            (try root.items("securityGroupInfo").map { item in
                EC2SecurityGroup(id: try Self.required(item, "groupId", "DescribeSecurityGroups"), name: item.string("groupName") ?? "",
                                 vpcID: item.string("vpcId") ?? "", tags: Self.tags(item))
            }, Self.nextToken(root))
        }
    }

    package func describeLaunchTemplates(filters: [(name: String, values: [String])] = []) async throws -> [EC2LaunchTemplate] {
        try await paged("DescribeLaunchTemplates", Self.filterParameters(filters)) { root in
            (try root.items("launchTemplates").map { item in
                EC2LaunchTemplate(id: try Self.required(item, "launchTemplateId", "DescribeLaunchTemplates"),
                                  name: item.string("launchTemplateName") ?? "", tags: Self.tags(item))
            }, Self.nextToken(root))
        }
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`, as every Describe call takes them.
    static func filterParameters(_ filters: [(name: String, values: [String])]) -> [(String, String)] {
        var parameters: [(String, String)] = []
        for (index, filter) in filters.enumerated() {
            parameters.append(("Filter.\(index + 1).Name", filter.name))
            for (valueIndex, value) in filter.values.enumerated() {
                parameters.append(("Filter.\(index + 1).Value.\(valueIndex + 1)", value))
            }
        }
        return parameters
    }

    static func nextToken(_ root: XMLElement) -> String? {
        root.string("nextToken").flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `<tagSet><item><key/><value/></item></tagSet>` (AWS and moto); `<tags>` accepted too.
    static func tags(_ item: XMLElement) -> [String: String] {
        var tags: [String: String] = [:]
        for wrapper in ["tagSet", "tags"] {
            for tag in item.items(wrapper) {
                if let key = tag.string("key") { tags[key] = tag.string("value") ?? "" }
            }
        }
        return tags
    }

    static func required(_ item: XMLElement, _ field: String, _ operation: String) throws -> String {
        guard let value = item.string(field), !value.isEmpty else {
            throw AWSResponseError(service: "EC2", operation: operation, httpStatus: 200, detail: "an item has no \(field)")
        }
        return value
    }
}
