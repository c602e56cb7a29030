import AWS
import HTTP
import KScalerCore
import Kubernetes
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

/// Whose permissions `doctor` checks: each identity of a deployment needs different things, and
/// checking another's (the autoscaler reading the join token, say) would fail where the
/// least-privilege policy is right.
package enum DoctorRole: String, CaseIterable, Sendable, Codable {
    /// kscaler itself: the table, launches (dry run), Prometheus, the Kubernetes API. Never the join token.
    case autoscaler
    /// The k3s server or kubeadm control plane: reads and writes the join parameters.
    case server
    /// A worker at boot: reads the join parameters, with decryption.
    case worker
}

extension Doctor {
    /// The checks that need the cluster's configuration, for `role`. Autoscaler: the table and
    /// its key schema, the EC2 launch permission (RunInstances with DryRun=true per pool),
    /// Prometheus and the Kubernetes API. Server: each join parameter readable and writable.
    /// Worker: each join parameter readable with decryption. Run concurrently: each is one
    /// or two round trips.
    package static func clusterChecks(runtime: Runtime, role: DoctorRole = .autoscaler) async -> [DoctorCheck] {
        let config = runtime.config
        switch role {
        case .autoscaler:
            async let table = tableCheck(runtime)
            async let launches = concurrently(config.workerPools) { pool in
                await launchCheck(runtime, pool: config.pools == nil ? nil : pool)
            }
            async let machines = config.backend == .ec2 ? nil : machinesCheck(runtime)
            async let prometheus = prometheusCheck(runtime)
            async let kubernetes = kubernetesChecks(runtime: runtime)
            return await [table] + [machines].compactMap { $0 } + launches + [prometheus] + kubernetes
        case .server, .worker:
            // The pools' join parameters are usually one pair; each distinct one is checked once.
            var parameters: [(name: String, parameter: String)] = []
            for pool in config.workerPools {
                for parameter in [("join token", pool.workers.join.tokenParameter), ("server url", pool.workers.join.serverURLParameter)]
                where !parameters.contains(where: { $0.parameter == parameter.1 }) {
                    parameters.append(parameter)
                }
            }
            return await concurrently(parameters) { name, parameter in
                role == .server ? await publishCheck(runtime, name: name, parameter: parameter)
                    : await parameterCheck(runtime, name: name, parameter: parameter)
            }
        }
    }

    /// `check` of each item, run concurrently, in the items' order.
    private static func concurrently<Item: Sendable>(_ items: [Item], _ check: @escaping @Sendable (Item) async -> DoctorCheck) async -> [DoctorCheck] {
        await withTaskGroup(of: (Int, DoctorCheck).self) { group in
            for (index, item) in items.enumerated() { group.addTask { (index, await check(item)) } }
            var checks: [(Int, DoctorCheck)] = []
            for await check in group { checks.append(check) }
            return checks.sorted { $0.0 < $1.0 }.map(\.1)
        }
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

    /// RunInstances with DryRun=true for a pool's first offering (in its first market: a Spot
    /// pool proves it may launch Spot), or for `workers:` when `pool` is nil.
    static func launchCheck(_ runtime: Runtime, pool: PoolSettings? = nil) async -> DoctorCheck {
        let workers = pool?.workers ?? runtime.config.workers
        let first = Offering(machineType: workers.instanceTypes.first, placement: workers.subnets.first,
                             market: pool?.capacityType.markets.first ?? .onDemand)
        let backend = runtime.config.backend
        let name = pool.map { "\(backend.name) launch (pool \($0.name))" } ?? "\(backend.name) launch"
        do {
            let plan = LaunchPlan(launchID: "kscaler-doctor", count: 1, candidates: [first], pool: pool?.name)
            _ = try await runtime.fleet.launch(plan, dryRun: true)
            guard backend == .ec2 else {
                return DoctorCheck(name: name, passed: true, detail: "dry-run launch passed for \(first.machineType ?? "the default type")"
                    + (first.placement.map { " in \($0)" } ?? ""))
            }
            let what: String
            if let template = workers.launchTemplate {
                let identity = switch template.identity { case .id(let id): id; case .name(let name): name }
                what = "launch template \(identity) version \(template.version)"
            } else {
                what = "\(first.machineType ?? "?") in \(first.placement ?? "?")"
            }
            return DoctorCheck(name: name, passed: true, detail: "RunInstances dry run passed for \(what)" + (first.market == .spot ? " (Spot)" : ""))
        } catch {
            return DoctorCheck(name: name, passed: false, detail: backend == .ec2 ? "RunInstances dry run: \(error)" : "dry-run launch: \(error)")
        }
    }

    /// Another backend than EC2: its listing works and holds this cluster's machines.
    static func machinesCheck(_ runtime: Runtime) async -> DoctorCheck {
        let name = "\(runtime.config.backend.name) machines"
        do {
            let listing = try await runtime.fleet.listMachines()
            return DoctorCheck(name: name, passed: true, detail: "\(listing.live.count) live and \(listing.ended.count) ended machines listed")
        } catch {
            return DoctorCheck(name: name, passed: false, detail: "\(error)")
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

    /// What the server needs to publish a parameter, proved without changing it: it reads the
    /// parameter (not decrypted: the value is not needed), then sends PutParameter with
    /// Overwrite=false. SSM authorizes a call before it looks at the parameter, so
    /// ParameterAlreadyExists means the write is allowed, and nothing was written. A
    /// parameter not published yet is not probed: the probe would create it.
    static func publishCheck(_ runtime: Runtime, name: String, parameter: String) async -> DoctorCheck {
        let ssm = runtime.aws.ssm
        let found: SSMClient.Parameter
        do {
            found = try await ssm.getParameter(name: parameter, withDecryption: false)
        } catch is SSMClient.ParameterNotFound {
            return DoctorCheck(name: name, passed: true,
                               detail: "\(parameter) is not published yet (the server publishes it at first boot); PutParameter not probed, as the probe would create it")
        } catch {
            return DoctorCheck(name: name, passed: false, detail: "\(error)")
        }
        do {
            _ = try await ssm.putParameter(name: parameter, value: "kscaler-doctor-probe", type: found.type, overwrite: false)
            // Only a parameter deleted between the two calls gets here; say so rather than hide it.
            return DoctorCheck(name: name, passed: false,
                               detail: "\(parameter) vanished between GetParameter and the PutParameter probe, which created it with a placeholder: delete it and let the server publish it")
        } catch let error as AWSError where error.code == "ParameterAlreadyExists" {
            return DoctorCheck(name: name, passed: true, detail: "\(parameter) readable and writable (\(found.type.rawValue), version \(found.version))")
        } catch {
            return DoctorCheck(name: name, passed: false, detail: "PutParameter \(parameter): \(error)")
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

extension Doctor {
    /// What kscaler asks of the API, as (verb, group, resource, subresource): nodes to list,
    /// read, cordon and delete, pods to list and evict, budgets to read, events to write.
    package static let kubernetesPermissions: [(verb: String, group: String, resource: String, subresource: String?)] = [
        ("list", "", "nodes", nil), ("get", "", "nodes", nil), ("patch", "", "nodes", nil), ("delete", "", "nodes", nil),
        ("list", "", "pods", nil), ("create", "", "pods", "eviction"), ("list", "policy", "poddisruptionbudgets", nil),
        ("create", "", "events", nil),
    ]

    /// The API: reachable and trusted (`/version`), who kscaler is there, and each permission
    /// it needs (one SelfSubjectAccessReview each, concurrently), naming the RBAC rule for any
    /// that is missing. With the API off, one line saying plainly what that means.
    package static func kubernetesChecks(runtime: Runtime) async -> [DoctorCheck] {
        guard runtime.kubernetes.isOn else {
            return [DoctorCheck(name: "kubernetes", passed: true,
                                detail: runtime.kubernetes.description + ": no drain, so no scale-down unless scale_down.without_drain, and the Node objects of terminated instances are left behind")]
        }
        let client: KubernetesClient
        do {
            guard let made = try await runtime.kubernetes.client(ssm: runtime.aws.ssm, timeout: .seconds(runtime.config.kubernetes.timeout),
                                                                  logger: runtime.aws.logger) else { return [] }
            client = made
        } catch {
            return [DoctorCheck(name: "kubernetes", passed: false, detail: "\(runtime.kubernetes.description): \(error)")]
        }
        let version: String
        do {
            version = try await client.version()
        } catch {
            return [DoctorCheck(name: "kubernetes", passed: false, detail: "\(runtime.kubernetes.description): \(error)")]
        }
        var checks = [DoctorCheck(name: "kubernetes", passed: true, detail: "\(client.endpoint.server) answers (\(version)); \(runtime.kubernetes.description)")]
        do {
            let user = try await client.whoAmI()
            checks.append(DoctorCheck(name: "k8s user", passed: true,
                                      detail: user.map { "authenticated as \($0)" } ?? "authenticated (the server has no SelfSubjectReview to say as whom)"))
        } catch {
            checks.append(DoctorCheck(name: "k8s user", passed: false, detail: "\(error)"))
            return checks
        }
        // Each review's verdict as plain values: allowed, or the line that says what is missing.
        // (A task group returning Result values of a typed throw was miscompiled in release
        // builds here: the verdicts came back on the wrong permissions.)
        let verdicts: [Int: String?] = await withTaskGroup(of: (Int, String?).self) { group in
            for (index, permission) in kubernetesPermissions.enumerated() {
                group.addTask {
                    let resource = permission.resource + (permission.subresource.map { "/\($0)" } ?? "")
                    do {
                        let review = try await client.accessReview(verb: permission.verb, group: permission.group,
                                                                   resource: permission.resource, subresource: permission.subresource)
                        if review.allowed { return (index, nil) }
                        let rule = RBACRule(verb: permission.verb, apiGroup: permission.group, resource: resource)
                        return (index, "\(permission.verb) \(resource): grant \(rule)")
                    } catch {
                        return (index, "\(permission.verb) \(resource): \(error)")
                    }
                }
            }
            var verdicts: [Int: String?] = [:]
            for await (index, missing) in group { verdicts[index] = missing }
            return verdicts
        }
        let missing = kubernetesPermissions.indices.compactMap { verdicts[$0] ?? "review \($0) gave no answer" }
        if missing.isEmpty {
            checks.append(DoctorCheck(name: "k8s rbac", passed: true, detail: "every permission kscaler needs is allowed: "
                + kubernetesPermissions.map { "\($0.verb) \($0.resource)\($0.subresource.map { "/\($0)" } ?? "")" }.joined(separator: ", ")))
        } else {
            checks.append(DoctorCheck(name: "k8s rbac", passed: false, detail: "missing: " + missing.joined(separator: "; ")
                + " (infra/kubernetes/kscaler-rbac.yaml grants them all)"))
        }
        return checks
    }
}
