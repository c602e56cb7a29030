import AWS
import HTTP
import KScalerCore
import Logging
import SigV4

/// `kscaler doctor`: one line per check, so an operator sees at once what is missing.
/// Each check reports what it used (never a secret) or what failed and how to fix it.
package struct DoctorCheck: Sendable, Equatable {
    package var name: String
    package var passed: Bool
    package var detail: String

    package init(name: String, passed: Bool, detail: String) {
        self.name = name
        self.passed = passed
        self.detail = detail
    }
}

package enum Doctor {
    /// Runs the AWS identity checks: region, credential source, STS GetCallerIdentity.
    /// Later checks are skipped (and reported as such) when an earlier one they need failed.
    package static func awsChecks(environment: AWSEnvironment, configuredRegion: String?,
                                 transport: any HTTPTransport, logger: Logger) async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let context: AWSContext
        do {
            context = try await AWSContext.resolve(environment: environment, configuredRegion: configuredRegion, transport: transport, logger: logger)
            checks.append(DoctorCheck(name: "region", passed: true, detail: "\(context.region) (from \(context.regionSource))"))
        } catch {
            checks.append(DoctorCheck(name: "region", passed: false, detail: "\(error)"))
            return checks
        }
        do {
            let resolved = try await context.credentials.resolve()
            checks.append(DoctorCheck(name: "credentials", passed: true,
                                      detail: "from \(resolved.source), access key \(resolved.credentials.redactedAccessKeyID)"))
        } catch {
            checks.append(DoctorCheck(name: "credentials", passed: false, detail: "\(error)"))
            return checks
        }
        do {
            let identity = try await context.sts.getCallerIdentity()
            checks.append(DoctorCheck(name: "identity", passed: true, detail: "account \(identity.account), \(identity.arn)"))
        } catch {
            checks.append(DoctorCheck(name: "identity", passed: false, detail: "STS GetCallerIdentity: \(error)"))
        }
        return checks
    }
}

extension Credentials {
    /// The access key id with its middle elided: enough to tell keys apart, not to use one.
    package var redactedAccessKeyID: String {
        guard accessKeyID.count > 8 else { return "…" }
        return "\(accessKeyID.prefix(4))…\(accessKeyID.suffix(4))"
    }
}

extension Doctor {
    /// The checks that need the cluster's configuration: the table and its key schema, the
    /// EC2 launch permission (RunInstances with DryRun=true for the configured settings), the
    /// SSM join parameters, and Prometheus. Run concurrently: each is one round trip.
    package static func clusterChecks(runtime: Runtime) async -> [DoctorCheck] {
        let config = runtime.config
        async let table = tableCheck(runtime)
        async let launch = launchCheck(runtime)
        async let joinToken = parameterCheck(runtime, name: "join token", parameter: config.workers.join.tokenParameter)
        async let serverURL = parameterCheck(runtime, name: "server url", parameter: config.workers.join.serverURLParameter)
        async let prometheus = prometheusCheck(runtime)
        return await [table, launch, joinToken, serverURL, prometheus]
    }

    static func tableCheck(_ runtime: Runtime) async -> DoctorCheck {
        let name = runtime.config.table
        do {
            let table = try await runtime.table.dynamoDB.describeTable(name)
            let expected = ["cluster_id": ("HASH", "S"), "record": ("RANGE", "S")]
            let wrong = expected.filter { key, shape in
                table.keySchema[key] != shape.0 || table.attributeTypes[key] != shape.1
            }.keys.sorted()
            guard wrong.isEmpty else {
                return DoctorCheck(name: "table", passed: false,
                                   detail: "\(name) has the wrong key schema (\(wrong.joined(separator: ", "))): kscaler needs partition key cluster_id (S) and sort key record (S); create it from infra/cloudformation")
            }
            return DoctorCheck(name: "table", passed: true, detail: "\(name) is \(table.status), keys cluster_id (S) + record (S)")
        } catch {
            return DoctorCheck(name: "table", passed: false, detail: "\(error)")
        }
    }

    static func launchCheck(_ runtime: Runtime) async -> DoctorCheck {
        let config = runtime.config
        let first = Offering(machineType: config.workers.instanceTypes.first, placement: config.workers.subnets.first)
        do {
            let plan = LaunchPlan(launchID: "kscaler-doctor", count: 1, candidates: [first])
            _ = try await runtime.fleet.launch(plan, dryRun: true)
            let what: String
            if let template = config.workers.launchTemplate {
                let identity = switch template.identity { case .id(let id): id; case .name(let name): name }
                what = "launch template \(identity) version \(template.version)"
            } else {
                what = "\(first.machineType ?? "?") in \(first.placement ?? "?")"
            }
            return DoctorCheck(name: "ec2 launch", passed: true, detail: "RunInstances dry run passed for \(what)")
        } catch {
            return DoctorCheck(name: "ec2 launch", passed: false, detail: "RunInstances dry run: \(error)")
        }
    }

    /// Reads the parameter with decryption, as a worker will; the value is never printed.
    static func parameterCheck(_ runtime: Runtime, name: String, parameter: String) async -> DoctorCheck {
        do {
            let found = try await runtime.aws.ssm.getParameter(name: parameter, withDecryption: true)
            return DoctorCheck(name: name, passed: true, detail: "\(parameter) readable (\(found.type.rawValue), version \(found.version))")
        } catch {
            return DoctorCheck(name: name, passed: false, detail: "\(error)")
        }
    }

    static func prometheusCheck(_ runtime: Runtime) async -> DoctorCheck {
        do {
            let client = try await runtime.prometheus()
            let nodes = try await client.query("count(kube_node_info)")
            guard let count = nodes.samples.first?.value else {
                return DoctorCheck(name: "prometheus", passed: false,
                                   detail: "\(client.baseURL) answers, but has no kube_node_info: is kube-state-metrics scraped?")
            }
            return DoctorCheck(name: "prometheus", passed: true, detail: "\(client.baseURL) sees \(Int(count)) nodes (kube-state-metrics)")
        } catch {
            return DoctorCheck(name: "prometheus", passed: false, detail: "\(error)")
        }
    }
}
