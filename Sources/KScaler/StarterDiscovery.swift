import AWS
import KScalerCore

/// What `kscaler config init --discover` can learn from EC2 for the starter file, and what it
/// could not. The rule, documented in README ("Getting a first config"):
/// - region: the one the AWS environment resolves (`AWS_REGION`, the profile, instance metadata);
/// - subnets: with `--vpc`, every subnet of that VPC; otherwise those tagged
///   `kscaler:cluster=<id>` or whose Name tag contains the cluster id;
/// - security groups (in the VPC when given): tagged `kscaler:cluster=<id>`, or whose group
///   name or Name tag contains the cluster id;
/// - launch template: tagged `kscaler:cluster=<id>` or named with the cluster id; filled only
///   when exactly one matches (tagged ones first), else the candidates are listed.
/// Only Describe calls: nothing is changed.
package enum StarterDiscovery {
    package struct Outcome: Sendable {
        /// Dotted path → YAML value, for `StarterConfig.values`.
        package var values: [String: String] = [:]
        /// What was found, one line each.
        package var found: [String] = []
        /// What was not, and what to set instead, one line each.
        package var missing: [String] = []

        /// The lines the file's header carries.
        package var notes: [String] {
            ["--discover found:"] + (found.isEmpty ? ["  nothing"] : found.map { "  \($0)" })
                + (missing.isEmpty ? [] : ["--discover did not find:"] + missing.map { "  \($0)" })
        }
    }

    package static func discover(ec2: EC2Client, region: String, regionSource: String, clusterID: String?, vpcID: String?) async -> Outcome {
        var outcome = Outcome()
        outcome.values["region"] = StarterConfig.yaml(region)
        outcome.found.append("region: \(region) (from \(regionSource))")
        let tag = EC2Fleet.clusterTag
        let vpcFilter: [(name: String, values: [String])] = vpcID.map { [(name: "vpc-id", values: [$0])] } ?? []
        func mentions(_ text: String?) -> Bool { clusterID.map { id in text?.contains(id) == true } ?? false }
        func tagged(_ tags: [String: String]) -> Bool { clusterID.map { tags[tag] == $0 } ?? false }
        let rule = clusterID.map { "tagged \(tag)=\($0) or named with \"\($0)\"" } ?? "(no --cluster-id to match by)"

        do {
            let subnets = try await ec2.describeSubnets(filters: vpcFilter)
                .filter { vpcID != nil || tagged($0.tags) || mentions($0.tags["Name"]) }
                .sorted { ($0.availabilityZone, $0.id) < ($1.availabilityZone, $1.id) }
            if subnets.isEmpty {
                outcome.missing.append("workers.subnets: no subnet \(vpcID.map { "in \($0)" } ?? rule); the launch template's subnet is used, or list them")
            } else {
                outcome.values["workers.subnets"] = yamlList(subnets.map(\.id))
                let zones = Set(subnets.map(\.availabilityZone)).sorted().joined(separator: ", ")
                outcome.found.append("workers.subnets: \(subnets.map(\.id).joined(separator: ", ")) (\(vpcID.map { "every subnet of \($0)" } ?? rule); \(zones))")
            }
        } catch {
            outcome.missing.append("workers.subnets: could not list subnets: \(error)")
        }

        do {
            let groups = try await ec2.describeSecurityGroups(filters: vpcFilter)
                .filter { tagged($0.tags) || mentions($0.name) || mentions($0.tags["Name"]) }
                .sorted { $0.id < $1.id }
            if groups.isEmpty {
                outcome.missing.append("workers.security_groups: no security group \(rule)\(vpcID.map { " in \($0)" } ?? ""); the launch template's own are used, or list them")
            } else {
                outcome.values["workers.security_groups"] = yamlList(groups.map(\.id))
                outcome.found.append("workers.security_groups: \(groups.map { "\($0.id) (\($0.name))" }.joined(separator: ", "))")
            }
        } catch {
            outcome.missing.append("workers.security_groups: could not list security groups: \(error)")
        }

        do {
            let templates = try await ec2.describeLaunchTemplates().filter { tagged($0.tags) || mentions($0.name) }
            let preferred = templates.filter { tagged($0.tags) }
            let candidates = (preferred.isEmpty ? templates : preferred).sorted { $0.name < $1.name }
            if candidates.count == 1, let template = candidates.first {
                outcome.values["workers.launch_template.name"] = StarterConfig.yaml(template.name)
                outcome.found.append("workers.launch_template: \(template.name) (\(template.id))")
            } else if candidates.isEmpty {
                outcome.missing.append("workers.launch_template: no launch template \(rule); fill in its name")
            } else {
                outcome.missing.append("workers.launch_template: \(candidates.count) match, pick one: "
                                       + candidates.map { "\($0.name) (\($0.id))" }.joined(separator: ", "))
            }
        } catch {
            outcome.missing.append("workers.launch_template: could not list launch templates: \(error)")
        }
        outcome.missing.append("workers.instance_types: not discoverable (the types to launch, in preference order); fill it in")
        return outcome
    }

    static func yamlList(_ items: [String]) -> String {
        "[" + items.map(StarterConfig.yaml).joined(separator: ", ") + "]"
    }
}
