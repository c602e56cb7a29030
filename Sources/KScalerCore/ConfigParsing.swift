#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension KScalerConfig {
    /// Types and validates a configuration tree, applying the schema's defaults. Reports every
    /// problem at once, each with its dotted path, what is wrong and how to fix it.
    public static func parse(_ root: ConfigValue) -> Result<KScalerConfig, ConfigErrors> {
        var reader = ConfigReader()
        let config = reader.readConfig(root)
        if let config, reader.problems.isEmpty { return .success(config) }
        return .failure(ConfigErrors(problems: reader.problems))
    }
}

extension ConfigReader {
    /// Reads every section, then the checks that span fields. Nil when a required part is unusable.
    fileprivate mutating func readConfig(_ root: ConfigValue) -> KScalerConfig? {
        let top = section(root, at: "")
        let clusterID = require(top, "cluster_id", fix: "set cluster_id to a short name of [a-z0-9-], e.g. demo", TextRule.clusterID.parse)
        let region = read(top, "region", TextRule.region.parse)
        let table = require(top, "table", fix: "set table to the DynamoDB table name, e.g. kscaler", TextRule.table.parse)
        let prometheus = readPrometheus(section(top.value("prometheus"), at: "prometheus"))
        let utilization = read(top, "utilization", { Scalar.oneOf($0, UtilizationMode.allCases.map(\.rawValue)) })
            .flatMap(UtilizationMode.init(rawValue:)) ?? .requests
        let signalQueries = readSignals(section(top.value("signals"), at: "signals"))
        let nodes = readNodes(section(top.value("nodes"), at: "nodes"))
        let scaleUp = readScaleUp(section(top.value("scale_up"), at: "scale_up"))
        let scaleDown = readScaleDown(section(top.value("scale_down"), at: "scale_down"))
        checkThresholds(up: scaleUp, down: scaleDown)
        let bootGrace = positiveDuration(top, "boot_grace") ?? KScalerConfig.Defaults.bootGrace
        let provisionTimeout = positiveDuration(top, "provision_timeout") ?? KScalerConfig.Defaults.provisionTimeout
        if bootGrace > provisionTimeout, !isBroken("boot_grace"), !isBroken("provision_timeout") {
            report("boot_grace", "boot grace \(formatDuration(bootGrace)) is longer than provision_timeout \(formatDuration(provisionTimeout))",
                   fix: "make boot_grace at most provision_timeout: an instance cannot still be booting after it has failed")
        }
        let unavailableFor = positiveDuration(top, "unavailable_for") ?? KScalerConfig.Defaults.unavailableFor
        let health = readHealth(section(top.value("health"), at: "health"))
        let victims = readVictims(section(top.value("victims"), at: "victims"))
        let workers = readWorkers(section(top.value("workers"), at: "workers"), clusterID: clusterID ?? "")
        let lease = readLease(section(top.value("lease"), at: "lease"))
        let historyRetention = positiveDuration(section(top.value("history"), at: "history"), "retention")
            ?? KScalerConfig.Defaults.historyRetention
        let pushgateway = section(top.value("pushgateway"), at: "pushgateway")
        let pushgatewayURL = read(pushgateway, "url", { value in
            // An empty string is the schema's way of saying "not configured".
            if case .string(let text) = value, Scalar.trimmed(text).isEmpty { return .success("") }
            return urlParser(field: "pushgateway.url")(value)
        })

        guard let clusterID, let table, let prometheus, let workers else { return nil }
        return KScalerConfig(
            clusterID: clusterID, region: region, table: table, prometheus: prometheus, utilization: utilization,
            signalQueries: signalQueries, nodes: nodes, scaleUp: scaleUp, scaleDown: scaleDown,
            bootGrace: bootGrace, provisionTimeout: provisionTimeout, unavailableFor: unavailableFor,
            health: health, victims: victims, workers: workers, lease: lease, historyRetention: historyRetention,
            pushgatewayURL: pushgatewayURL.flatMap { $0.isEmpty ? nil : $0 }
        )
    }

    private mutating func readPrometheus(_ prometheus: Section) -> PrometheusSettings? {
        let url = require(prometheus, "url", fix: "set prometheus.url, e.g. http://127.0.0.1:9090", urlParser(field: "prometheus.url"))
        let auth = readAuth(section(prometheus.value("auth"), at: "prometheus.auth"))
        let timeout = positiveDuration(prometheus, "timeout") ?? 5
        let staleness = positiveDuration(prometheus, "staleness") ?? 5 * 60
        guard let url, let auth else { return nil }
        return PrometheusSettings(url: url, auth: auth, timeout: timeout, staleness: staleness)
    }

    /// Each auth type names the fields it needs; any other field is a mistake worth reporting
    /// (e.g. a token_file that would silently be ignored).
    private mutating func readAuth(_ auth: Section) -> PrometheusAuth? {
        let types = ["none", "basic", "bearer", "sigv4"]
        let type = read(auth, "type", { Scalar.oneOf($0, types) }) ?? (auth.has("type") ? nil : "none")
        guard let type else { return nil }
        let fieldsByType: [String: [String]] = [
            "none": [], "basic": ["username", "password_file"], "bearer": ["token_file"], "sigv4": ["region"],
        ]
        let allowed = fieldsByType[type] ?? []
        for field in ["username", "password_file", "token_file", "region"] where auth.has(field) && !allowed.contains(field) {
            let owner = fieldsByType.first(where: { $0.value.contains(field) })?.key ?? "another type"
            report(auth.path(field), "is not used with auth type \(type)", fix: "remove it, or set prometheus.auth.type: \(owner)")
        }
        switch type {
        case "basic":
            let username = require(auth, "username", fix: "set the user name for basic auth", TextRule.nonEmpty.parse)
            let passwordFile = require(auth, "password_file", fix: "set the path of a file holding the password", TextRule.path.parse)
            guard let username, let passwordFile else { return nil }
            return .basic(username: username, passwordFile: passwordFile)
        case "bearer":
            let tokenFile = require(auth, "token_file", fix: "set the path of a file holding the bearer token", TextRule.path.parse)
            return tokenFile.map { .bearer(tokenFile: $0) }
        case "sigv4":
            let region = read(auth, "region", TextRule.region.parse)
            return auth.has("region") && region == nil ? nil : .sigv4(region: region)
        default:
            return PrometheusAuth.none
        }
    }

    private mutating func readSignals(_ signals: Section) -> [Signal: String] {
        var queries: [Signal: String] = [:]
        for signal in Signal.allCases {
            let fix = "write a PromQL expression, or remove the key to use the default"
            queries[signal] = check(read(signals, signal.rawValue, Scalar.string), signals.path(signal.rawValue),
                                    { !Scalar.trimmed($0).isEmpty }, { _ in "is an empty query" }, fix: fix)
        }
        return queries
    }

    private mutating func readNodes(_ nodes: Section) -> NodeBounds {
        let bounds = NodeBounds(
            min: integer(nodes, "min", atLeast: 0) ?? NodeBounds().min,
            max: integer(nodes, "max", atLeast: 1) ?? NodeBounds().max
        )
        if bounds.min > bounds.max, !isBroken(nodes.path("min")), !isBroken(nodes.path("max")) {
            report(nodes.path("min"), "min \(bounds.min) is above max \(bounds.max)", fix: "make nodes.min at most nodes.max")
        }
        return bounds
    }

    private mutating func readScaleUp(_ scaleUp: Section) -> ScaleUpPolicy {
        let defaults = ScaleUpPolicy()
        return ScaleUpPolicy(
            cpuThreshold: read(scaleUp, "cpu_threshold", Scalar.percent) ?? defaults.cpuThreshold,
            memoryThreshold: read(scaleUp, "memory_threshold", Scalar.percent) ?? defaults.memoryThreshold,
            maxStep: integer(scaleUp, "max_step", atLeast: 1) ?? defaults.maxStep,
            cooldown: positiveDuration(scaleUp, "cooldown") ?? defaults.cooldown
        )
    }

    private mutating func readScaleDown(_ scaleDown: Section) -> ScaleDownPolicy {
        let defaults = ScaleDownPolicy()
        let window = check(positiveDuration(scaleDown, "stabilization_window"), scaleDown.path("stabilization_window"),
                           { $0 >= 1 }, { "must be at least 1s, got \(formatDuration($0))" }, fix: "write a window such as 10m")
        return ScaleDownPolicy(
            cpuThreshold: read(scaleDown, "cpu_threshold", Scalar.percent) ?? defaults.cpuThreshold,
            memoryThreshold: read(scaleDown, "memory_threshold", Scalar.percent) ?? defaults.memoryThreshold,
            maxStep: integer(scaleDown, "max_step", atLeast: 1) ?? defaults.maxStep,
            cooldown: positiveDuration(scaleDown, "cooldown") ?? defaults.cooldown,
            delayAfterScaleUp: positiveDuration(scaleDown, "delay_after_scale_up") ?? defaults.delayAfterScaleUp,
            stabilizationWindow: window ?? defaults.stabilizationWindow
        )
    }

    /// Down-thresholds must sit below up-thresholds, or one run's scale-down is the next one's scale-up.
    private mutating func checkThresholds(up: ScaleUpPolicy, down: ScaleDownPolicy) {
        for (resource, downValue, upValue) in [("cpu", down.cpuThreshold, up.cpuThreshold),
                                               ("memory", down.memoryThreshold, up.memoryThreshold)] {
            let downPath = "scale_down.\(resource)_threshold", upPath = "scale_up.\(resource)_threshold"
            guard downValue >= upValue, !isBroken(downPath), !isBroken(upPath) else { continue }
            report(downPath, "scale-down threshold \(formatPercent(downValue)) is not below the scale-up threshold \(formatPercent(upValue))",
                   fix: "make \(downPath) lower than \(upPath) (defaults 30 and 70)")
        }
    }

    private mutating func readHealth(_ health: Section) -> HealthGate {
        let defaults = HealthGate()
        let fraction = check(read(health, "max_not_ready_fraction", Scalar.number), health.path("max_not_ready_fraction"),
                             { (0...1).contains($0) }, { "\(formatNumber($0)) is not a fraction between 0 and 1" },
                             fix: "write a fraction such as 0.45 (not a percentage)")
        return HealthGate(
            maxNotReadyFraction: fraction ?? defaults.maxNotReadyFraction,
            maxNotReadyNodes: integer(health, "max_not_ready_nodes", atLeast: 0) ?? defaults.maxNotReadyNodes
        )
    }

    private mutating func readVictims(_ victims: Section) -> VictimPolicy {
        let order = read(victims, "order", { Scalar.oneOf($0, VictimOrder.allCases.map(\.rawValue)) })
            .flatMap(VictimOrder.init(rawValue:)) ?? .newestFirst
        let protected = read(victims, "protected_instances", TextRule.instanceID.parseList) ?? []
        return VictimPolicy(order: order, protectedInstances: Set(protected))
    }

    private mutating func readWorkers(_ workers: Section, clusterID: String) -> WorkerSettings? {
        let pool = read(workers, "pool", TextRule.pool.parse) ?? "default"
        let launchTemplate = readLaunchTemplate(section(workers.value("launch_template"), at: "workers.launch_template"))
        let imageID = read(workers, "image_id", TextRule.imageID.parse)
        let instanceTypes = read(workers, "instance_types", TextRule.instanceType.parseList)
        let subnets = read(workers, "subnets", TextRule.subnetID.parseList)
        let securityGroups = read(workers, "security_groups", TextRule.securityGroupID.parseList) ?? []
        let instanceProfile = read(workers, "instance_profile", TextRule.instanceProfile.parse)
        let sizes = readSizes(workers, instanceTypes: instanceTypes ?? [])
        let labels = readLabels(workers)
        let taints = readTaints(workers)
        let join = readJoin(section(workers.value("join"), at: "workers.join"), clusterID: clusterID)

        let usesTemplate = workers.has("launch_template")
        if !usesTemplate {
            let fix = "set workers.launch_template (id or name), or both workers.image_id and workers.instance_types"
            if !workers.has("image_id") { report(workers.path("image_id"), "is required without a launch template", fix: fix) }
            if !workers.has("instance_types") || instanceTypes?.isEmpty == true {
                report(workers.path("instance_types"), "needs at least one instance type without a launch template", fix: fix)
            }
            if !workers.has("subnets") || subnets?.isEmpty == true {
                report(workers.path("subnets"), "needs at least one subnet without a launch template",
                       fix: "list the subnets workers may launch in, e.g. [subnet-0abc…, subnet-0def…]")
            }
        }
        guard let sizes, usesTemplate ? launchTemplate != nil : imageID != nil else { return nil }
        return WorkerSettings(
            pool: pool, launchTemplate: launchTemplate, imageID: imageID, instanceTypes: instanceTypes ?? [],
            subnets: subnets ?? [], securityGroups: securityGroups, instanceProfile: instanceProfile,
            sizes: sizes, labels: labels, taints: taints, join: join
        )
    }

    private mutating func readLaunchTemplate(_ template: Section) -> LaunchTemplateRef? {
        guard !template.fields.isEmpty else { return nil }
        let id = read(template, "id", TextRule.launchTemplateID.parse)
        let name = read(template, "name", TextRule.nonEmpty.parse)
        let version = read(template, "version", TextRule.launchTemplateVersion.parse) ?? "$Latest"
        switch (template.has("id"), template.has("name")) {
        case (true, true):
            report(template.path("name"), "both id and name are set", fix: "keep one of workers.launch_template.id or .name")
            return nil
        case (false, false):
            report(template.path("id"), "a launch template needs an id or a name", fix: "set workers.launch_template.id (lt-…) or .name")
            return nil
        case (true, false): return id.map { LaunchTemplateRef(identity: .id($0), version: version) }
        case (false, true): return name.map { LaunchTemplateRef(identity: .name($0), version: version) }
        }
    }

    /// Sizes are the scale-up sizing unit: every configured instance type needs one, and with a
    /// launch template alone at least one entry must exist (the smallest is used).
    private mutating func readSizes(_ workers: Section, instanceTypes: [String]) -> [String: WorkerSize]? {
        let path = workers.path("sizes")
        let example = "e.g. sizes: {t3.large: {cpu: 2, memory: 8Gi}}"
        var sizes: [String: WorkerSize] = [:]
        var valid = true
        switch workers.value("sizes") {
        case nil:
            break
        case .map(let entries)?:
            for (type, entry) in entries.sorted(by: { $0.key < $1.key }) {
                let entryPath = "\(path).\(type)"
                guard case .map(let fields) = entry else {
                    report(entryPath, "expected {cpu, memory}, got \(entry.kindName)", fix: example)
                    valid = false
                    continue
                }
                for key in fields.keys.sorted() where key != "cpu" && key != "memory" {
                    report("\(entryPath).\(key)", "unknown key \"\(key)\"",
                           fix: closestMatch(to: key, among: ["cpu", "memory"]).map { "did you mean \"\($0)\"?" } ?? "only cpu and memory belong here")
                }
                let entrySection = Section(path: entryPath, fields: fields)
                let cpu = require(entrySection, "cpu", fix: "set the allocatable CPU cores, e.g. cpu: 2", Scalar.cpuCores)
                let memory = require(entrySection, "memory", fix: "set the allocatable memory, e.g. memory: 8Gi", Scalar.memoryBytes)
                if let cpu, let memory { sizes[type] = WorkerSize(cpuCores: cpu, memoryBytes: memory) } else { valid = false }
            }
        case .string(let text)?:
            for item in Scalar.splitList(text) {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                let amounts = parts.count == 2 ? parts[1].split(separator: "/").map(String.init) : []
                guard amounts.count == 2,
                      case .success(let cpu) = Scalar.cpuCores(.string(amounts[0])),
                      case .success(let memory) = Scalar.memoryBytes(.string(amounts[1])) else {
                    report(path, "\"\(item)\" is not TYPE=CPU/MEMORY", fix: "write e.g. t3.large=2/8Gi,m5.xlarge=4/16Gi")
                    valid = false
                    continue
                }
                sizes[parts[0]] = WorkerSize(cpuCores: cpu, memoryBytes: memory)
            }
        case let other?:
            report(path, "expected a map of instance type to {cpu, memory}, got \(other.kindName)", fix: example)
            return nil
        }
        for type in instanceTypes where sizes[type] == nil && valid {
            report("\(path).\(type)", "no size for instance type \(type)",
                   fix: "add workers.sizes.\(type): {cpu: <cores>, memory: <bytes, e.g. 8Gi>} (allocatable, used to size scale-ups)")
        }
        if !instanceTypes.isEmpty {
            for type in sizes.keys.sorted() where !instanceTypes.contains(type) {
                let suggestion = closestMatch(to: type, among: instanceTypes).map { "did you mean \($0)? " } ?? ""
                report("\(path).\(type)", "\(type) is not one of workers.instance_types",
                       fix: suggestion + "size only the listed types, or add \(type) to workers.instance_types")
            }
        } else if sizes.isEmpty && valid && workers.has("launch_template") {
            report(path, "with only a launch template kscaler cannot know how big a worker is",
                   fix: "give at least one entry, e.g. sizes: {t3.large: {cpu: 2, memory: 8Gi}}; the smallest entry is the sizing unit for scale-ups")
        }
        return valid ? sizes : nil
    }

    private mutating func readLabels(_ workers: Section) -> [String: String] {
        let path = workers.path("labels")
        let fix = "write labels as key: value (or KEY=VALUE,… in the environment); keys [prefix/]name, values up to 63 of letters, digits, - _ ."
        var pairs: [(String, ConfigValue)] = []
        switch workers.value("labels") {
        case nil: return [:]
        case .map(let entries)?: pairs = entries.sorted(by: { $0.key < $1.key })
        case .string(let text)?:
            for item in Scalar.splitList(text) {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 2 else {
                    report(path, "\"\(item)\" is not KEY=VALUE", fix: fix)
                    continue
                }
                pairs.append((parts[0], .string(parts[1])))
            }
        case let other?:
            report(path, "expected a map of labels, got \(other.kindName)", fix: fix)
            return [:]
        }
        var labels: [String: String] = [:]
        for (key, value) in pairs {
            guard isKubernetesKey(key), case .success(let text) = Scalar.string(value), isKubernetesValue(text) else {
                report("\(path).\(key)", "is not a valid Kubernetes label", fix: fix)
                continue
            }
            labels[key] = text
        }
        return labels
    }

    private mutating func readTaints(_ workers: Section) -> [Taint] {
        guard let texts = read(workers, "taints", Scalar.stringList) else { return [] }
        var taints: [Taint] = []
        for text in texts {
            switch parseTaint(text) {
            case .success(let taint): taints.append(taint)
            case .failure(let error): report(workers.path("taints"), error.message, fix: error.fix)
            }
        }
        return taints
    }

    private mutating func readJoin(_ join: Section, clusterID: String) -> JoinParameters {
        let defaults = JoinParameters.defaults(clusterID: clusterID)
        return JoinParameters(
            tokenParameter: read(join, "token_parameter", TextRule.ssmParameter.parse) ?? defaults.tokenParameter,
            serverURLParameter: read(join, "server_url_parameter", TextRule.ssmParameter.parse) ?? defaults.serverURLParameter
        )
    }

    private mutating func readLease(_ lease: Section) -> LeaseSettings {
        let defaults = LeaseSettings()
        let settings = LeaseSettings(
            ttl: positiveDuration(lease, "ttl") ?? defaults.ttl,
            safetyMargin: positiveDuration(lease, "safety_margin") ?? defaults.safetyMargin,
            maxClockSkew: positiveDuration(lease, "max_clock_skew") ?? defaults.maxClockSkew
        )
        if settings.safetyMargin >= settings.ttl, !isBroken(lease.path("ttl")), !isBroken(lease.path("safety_margin")) {
            report(lease.path("safety_margin"),
                   "safety margin \(formatDuration(settings.safetyMargin)) is not shorter than the lease ttl \(formatDuration(settings.ttl))",
                   fix: "make lease.safety_margin shorter than lease.ttl (defaults 20s and 2m), or no run could ever act")
        }
        return settings
    }
}
