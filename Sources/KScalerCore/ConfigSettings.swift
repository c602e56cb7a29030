#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One setting of the configuration: where it lives, what it means, how it is read into a
/// `KScalerConfig` and how it is written back out. `ConfigSettings.all` is the one list that
/// the schema (unknown keys, `KSCALER_*` names), parsing, the `config check` listing and the
/// environment spelling all follow; defaults are the configuration types' own (a setting that
/// is absent leaves the value a blank configuration starts with).
struct SettingSpec {
    enum Shape {
        /// One value (a string, number, list of scalars…).
        case value
        /// A map with user-chosen keys; in the environment one variable holding `k=v,k=v`.
        case dictionary
        /// A map of fixed keys read together (their meaning depends on each other).
        case section([String])
        /// A map of user-chosen names to sections of one schema (`pools.<name>`).
        case named(SchemaNode)
        /// A list of sections of one schema (`schedules`).
        case list(SchemaNode)
    }

    let path: [String]
    let shape: Shape
    /// What the setting does, in one line.
    let summary: String
    /// Reads the setting's value from the tree (nil when absent) into the configuration.
    let read: (inout ConfigReader, ConfigValue?, inout KScalerConfig) -> Void
    /// Lines of `config check`: every effective value as a user would write it ("" when unset).
    /// The fleet's machine identity gives the default queries their worker selector.
    let listing: (KScalerConfig, MachineIdentity) -> [(path: [String], value: String)]
    /// The values a `KSCALER_*` variable would carry to set this configuration (nothing for an
    /// unset or default-derived value).
    let environment: (KScalerConfig) -> [(path: [String], value: String)]
    /// How to fix the setting's absence, for a value that must be given and has no default
    /// (`config init` writes a placeholder for it).
    var requiredFix: String? = nil

    var dotted: String { path.joined(separator: ".") }

    /// A single value at `keyPath`. `required` is the fix when the setting must be given.
    static func value<Value>(_ path: String, _ summary: String, _ keyPath: WritableKeyPath<KScalerConfig, Value>,
                             _ parse: @escaping (ConfigValue) -> Result<Value, ScalarError>, format: @escaping (Value) -> String,
                             required: String? = nil) -> SettingSpec {
        let keys = path.split(separator: ".").map(String.init)
        return SettingSpec(
            path: keys, shape: .value, summary: summary,
            read: { reader, value, config in
                guard let value else {
                    if let required { reader.report(path, "is required", fix: required) }
                    return
                }
                switch parse(value) {
                case .success(let parsed): config[keyPath: keyPath] = parsed
                case .failure(let error): reader.report(path, error.message, fix: error.fix)
                }
            },
            listing: { config, _ in [(keys, format(config[keyPath: keyPath]))] },
            environment: { [(keys, format($0[keyPath: keyPath]))] },
            requiredFix: required)
    }

    /// A single value whose rule is the backend's: EC2's ids and types, or any name another
    /// backend gives (`fleet:` is read first).
    static func byBackend<Value>(_ path: String, _ summary: String, _ keyPath: WritableKeyPath<KScalerConfig, Value>,
                                 ec2: @escaping (ConfigValue) -> Result<Value, ScalarError>,
                                 other: @escaping (ConfigValue) -> Result<Value, ScalarError>, format: @escaping (Value) -> String) -> SettingSpec {
        let keys = path.split(separator: ".").map(String.init)
        return SettingSpec(
            path: keys, shape: .value, summary: summary,
            read: { reader, value, config in
                guard let value else { return }
                switch (config.backend == .ec2 ? ec2 : other)(value) {
                case .success(let parsed): config[keyPath: keyPath] = parsed
                case .failure(let error): reader.report(path, error.message, fix: error.fix)
                }
            },
            listing: { config, _ in [(keys, format(config[keyPath: keyPath]))] },
            environment: { [(keys, format($0[keyPath: keyPath]))] })
    }

    /// An optional value: absent is nil, listed as "".
    static func optional<Value>(_ path: String, _ summary: String, _ keyPath: WritableKeyPath<KScalerConfig, Value?>,
                                _ parse: @escaping (ConfigValue) -> Result<Value, ScalarError>,
                                format: @escaping (Value) -> String) -> SettingSpec {
        optional(path, summary, keyPath, { parse($0).map(Optional.some) }, format: format)
    }

    /// An optional value whose parser may also say "unset" (nil).
    static func optional<Value>(_ path: String, _ summary: String, _ keyPath: WritableKeyPath<KScalerConfig, Value?>,
                                _ parse: @escaping (ConfigValue) -> Result<Value?, ScalarError>,
                                format: @escaping (Value) -> String) -> SettingSpec {
        let keys = path.split(separator: ".").map(String.init)
        return SettingSpec(
            path: keys, shape: .value, summary: summary,
            read: { reader, value, config in
                guard let value else { return }
                switch parse(value) {
                case .success(let parsed): config[keyPath: keyPath] = parsed
                case .failure(let error): reader.report(path, error.message, fix: error.fix)
                }
            },
            listing: { config, _ in [(keys, config[keyPath: keyPath].map(format) ?? "")] },
            environment: { config in config[keyPath: keyPath].map { [(keys, format($0))] } ?? [] })
    }
}

/// Parsers with a condition on top, and the formatters that write values back the same way.
enum Parse {
    static func checked<Value>(_ parse: @escaping (ConfigValue) -> Result<Value, ScalarError>, _ condition: @escaping (Value) -> Bool,
                               _ message: @escaping (Value) -> String, fix: String) -> (ConfigValue) -> Result<Value, ScalarError> {
        { value in
            parse(value).flatMap { parsed in condition(parsed) ? .success(parsed) : .failure(ScalarError(message: message(parsed), fix: fix)) }
        }
    }

    static var positiveDuration: (ConfigValue) -> Result<TimeInterval, ScalarError> {
        checked(Scalar.duration, { $0 > 0 }, { "must be longer than 0, got \(formatDuration($0))" }, fix: "write a positive duration such as 30s or 5m")
    }

    static func integer(atLeast minimum: Int) -> (ConfigValue) -> Result<Int, ScalarError> {
        checked(Scalar.integer, { $0 >= minimum }, { "must be at least \(minimum), got \($0)" }, fix: "write a whole number of \(minimum) or more")
    }

    static func oneOf<Choice: RawRepresentable & CaseIterable>(_: Choice.Type) -> (ConfigValue) -> Result<Choice, ScalarError>
    where Choice.RawValue == String {
        { value in Scalar.oneOf(value, Choice.allCases.map(\.rawValue)).map { Choice(rawValue: $0)! } }
    }

    static func percent(_ fraction: Double) -> String { formatNumber(fraction * 100) }
    static func list(_ items: [String]) -> String { items.joined(separator: ",") }
}

enum ConfigSettings {
    /// Every setting, in documentation order (the order `config check` lists them).
    static var all: [SettingSpec] {
        connection + fleet + Signal.allCases.map(signalQuery) + scaling + [headroom] + workers + [expander, pools, ScheduleSection.setting] + kubernetes
            + drain + bookkeeping
    }

    /// The settings a pool section takes, by their top-level spelling: every `workers.*` key
    /// but the pool's name (its key), `nodes.min`/`nodes.max` (a pool's `min`/`max`) and the
    /// scale-up/scale-down settings and the headroom a pool may override.
    static var poolScoped: [SettingSpec] {
        let overridable: Set<String> = ["scale_up.cpu_threshold", "scale_up.memory_threshold", "scale_up.max_step", "scale_up.cooldown",
                                        "scale_down.cpu_threshold", "scale_down.memory_threshold", "scale_down.max_step",
                                        "scale_down.cooldown", "scale_down.delay_after_scale_up", "nodes.min", "nodes.max"]
        return workers.filter { $0.dotted != "workers.pool" } + scaling.filter { overridable.contains($0.dotted) } + [headroom]
    }

    /// A top-level path as it is spelled inside `pools.<name>`: `workers.sizes` → `sizes`, `nodes.min` → `min`.
    static func poolKey(_ path: [String]) -> [String] {
        ["workers", "nodes"].contains(path.first) ? Array(path.dropFirst()) : path
    }

    private static var connection: [SettingSpec] {
        [
            .value("cluster_id", "a short name for the cluster; tags managed instances kscaler:cluster=<id>", \.clusterID,
                   TextRule.clusterID.parse, format: { $0 }, required: "set cluster_id to a short name of [a-z0-9-], e.g. demo"),
            .optional("region", "the AWS region (else AWS_REGION, the profile, instance metadata)", \.region, TextRule.region.parse, format: { $0 }),
            .value("table", "the DynamoDB table holding the lease, the state and the history", \.table,
                   TextRule.table.parse, format: { $0 }, required: "set table to the DynamoDB table name, e.g. kscaler"),
            .value("prometheus.url", "the Prometheus (or compatible) base URL", \.prometheus.url,
                   urlParser(field: "prometheus.url"), format: { $0 }, required: "set prometheus.url, e.g. http://127.0.0.1:9090"),
            prometheusAuth,
            .value("prometheus.timeout", "how long one query may take", \.prometheus.timeout, Parse.positiveDuration, format: formatDuration),
            .value("prometheus.staleness", "a sample older than this is stale (no action)", \.prometheus.staleness,
                   Parse.positiveDuration, format: formatDuration),
            .value("utilization", "requests (requested over allocatable) or usage (node-exporter)", \.utilization,
                   Parse.oneOf(UtilizationMode.self), format: \.rawValue),
        ]
    }

    private static var scaling: [SettingSpec] {
        [
            .value("nodes.min", "never fewer managed workers than this", \.nodes.min, Parse.integer(atLeast: 0), format: String.init),
            .value("nodes.max", "never more managed workers than this", \.nodes.max, Parse.integer(atLeast: 1), format: String.init),
            .value("scale_up.cpu_threshold", "percent: CPU utilisation above it asks for one more node", \.scaleUp.cpuThreshold,
                   Scalar.percent, format: Parse.percent),
            .value("scale_up.memory_threshold", "percent: memory utilisation above it asks for one more node", \.scaleUp.memoryThreshold,
                   Scalar.percent, format: Parse.percent),
            .value("scale_up.max_step", "most nodes launched in one run", \.scaleUp.maxStep, Parse.integer(atLeast: 1), format: String.init),
            .value("scale_up.cooldown", "least time between two scale-ups", \.scaleUp.cooldown, Parse.positiveDuration, format: formatDuration),
            .value("scale_down.cpu_threshold", "percent: the window's CPU maximum must stay below it to scale down", \.scaleDown.cpuThreshold,
                   Scalar.percent, format: Parse.percent),
            .value("scale_down.memory_threshold", "percent: the window's memory maximum must stay below it to scale down",
                   \.scaleDown.memoryThreshold, Scalar.percent, format: Parse.percent),
            .value("scale_down.max_step", "most nodes removed in one run", \.scaleDown.maxStep, Parse.integer(atLeast: 1), format: String.init),
            .value("scale_down.cooldown", "least time between two scale-downs", \.scaleDown.cooldown, Parse.positiveDuration, format: formatDuration),
            .value("scale_down.delay_after_scale_up", "no scale-down this long after a scale-up", \.scaleDown.delayAfterScaleUp,
                   Parse.positiveDuration, format: formatDuration),
            .value("scale_down.stabilization_window", "utilisation must stay low this long before a scale-down", \.scaleDown.stabilizationWindow,
                   Parse.checked(Parse.positiveDuration, { $0 >= 1 }, { "must be at least 1s, got \(formatDuration($0))" }, fix: "write a window such as 10m"),
                   format: formatDuration),
            .value("scale_down.without_drain", "without the Kubernetes API, terminate victims without a drain (default: no scale-down)",
                   \.scaleDown.withoutDrain, Scalar.bool, format: { String($0) }),
            .value("boot_grace", "a new instance not Ready yet is booting capacity this long", \.bootGrace,
                   Parse.positiveDuration, format: formatDuration),
            .value("provision_timeout", "an instance with no node after this long is a failed boot", \.provisionTimeout,
                   Parse.positiveDuration, format: formatDuration),
            .value("unavailable_for", "how long an instance type and subnet that failed is skipped", \.unavailableFor,
                   Parse.positiveDuration, format: formatDuration),
            .value("health.max_not_ready_fraction", "no action when more than this share of nodes…", \.health.maxNotReadyFraction,
                   Parse.checked(Scalar.number, { (0...1).contains($0) }, { "\(formatNumber($0)) is not a fraction between 0 and 1" },
                                 fix: "write a fraction such as 0.45 (not a percentage)"),
                   format: { formatNumber($0) }),
            .value("health.max_not_ready_nodes", "…and more than this many nodes are not Ready", \.health.maxNotReadyNodes,
                   Parse.integer(atLeast: 0), format: String.init),
            .value("victims.order", "newest_first or oldest_first, after fewest pods", \.victims.order, Parse.oneOf(VictimOrder.self), format: \.rawValue),
            .byBackend("victims.protected_instances", "instance (machine) ids never terminated", \.victims.protectedInstances,
                       ec2: { TextRule.instanceID.parseList($0).map(Set.init) }, other: { TextRule.machineID.parseList($0).map(Set.init) },
                       format: { Parse.list($0.sorted()) }),
        ]
    }

    private static var workers: [SettingSpec] {
        [
            .value("workers.pool", "the pool name new workers carry (label kscaler.io/pool)", \.workers.pool, TextRule.pool.parse, format: { $0 }),
            launchTemplate,
            .optional("workers.image_id", "the AMI, without a launch template", \.workers.imageID, TextRule.imageID.parse, format: { $0 }),
            .byBackend("workers.instance_types", "instance types in preference order (other backends: machine types)", \.workers.instanceTypes,
                       ec2: TextRule.instanceType.parseList, other: TextRule.machineType.parseList, format: Parse.list),
            .byBackend("workers.subnets", "subnets to launch in, fewest workers first (exec: placements)", \.workers.subnets,
                       ec2: TextRule.subnetID.parseList, other: TextRule.placement.parseList, format: Parse.list),
            .value("workers.security_groups", "security groups of new workers", \.workers.securityGroups,
                   TextRule.securityGroupID.parseList, format: Parse.list),
            .optional("workers.instance_profile", "the instance profile of new workers", \.workers.instanceProfile,
                      TextRule.instanceProfile.parse, format: { $0 }),
            workerSizes,
            workerLabels,
            .value("workers.taints", "taints new workers register with (key[=value]:Effect)", \.workers.taints,
                   { Scalar.stringList($0).flatMap(parseTaints) }, format: { Parse.list($0.map(\.description)) }),
            joinParameter("workers.join.token_parameter", "the SSM parameter holding the join token", \.tokenParameter),
            joinParameter("workers.join.server_url_parameter", "the SSM parameter holding the server URL", \.serverURLParameter),
        ]
    }

    private static var expander: SettingSpec {
        .value("expander", "with pools: which pool grows for pods several can take (priority, least-waste, cheapest)", \.expander,
               Parse.oneOf(Expander.self), format: \.rawValue)
    }

    private static var pools: SettingSpec { SettingSpec(
        path: ["pools"], shape: .named(PoolSection.schema),
        summary: "named pools of workers, each with the workers keys, min, max, capacity_type, priority, prices and overrides",
        read: { reader, value, config in
            guard case .map(let entries)? = value else { return }
            var pools: [String: PoolSettings] = [:]
            for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
                if let pool = PoolSection.read(name: name, entry, base: config, into: &reader) { pools[name] = pool }
            }
            config.pools = pools
        },
        listing: { config, _ in PoolSection.lines(config) },
        environment: { _ in [] }) }

    private static var kubernetes: [SettingSpec] {
        [
            // Listed as `auto` when unset, so `config check` says what the default means.
            .value("kubernetes.enabled", "true, false or auto (default: on when a credential source resolves)", \.kubernetes.enabled,
                   { value -> Result<Bool?, ScalarError> in
                       if case .string(let text) = value, ["auto", ""].contains(Scalar.trimmed(text).lowercased()) { return .success(nil) }
                       return Scalar.bool(value).map(Optional.some)
                   }, format: { $0.map { String($0) } ?? "auto" }),
            .optional("kubernetes.kubeconfig", "the kubeconfig file (default $KUBECONFIG, then ~/.kube/config)", \.kubernetes.kubeconfig,
                      TextRule.path.parse, format: { $0 }),
            .optional("kubernetes.context", "the kubeconfig context (default: its current context)", \.kubernetes.context,
                      TextRule.nonEmpty.parse, format: { $0 }),
            .optional("kubernetes.server", "the API server URL, with token_parameter (no kubeconfig)", \.kubernetes.server,
                      urlParser(field: "kubernetes.server"), format: { $0 }),
            .optional("kubernetes.ca_data", "the cluster CA, base64 PEM as in a kubeconfig (default: the system's CAs)", \.kubernetes.caData,
                      TextRule.base64.parse, format: { $0 }),
            .optional("kubernetes.token_parameter", "the SSM SecureString holding a service-account token, with server", \.kubernetes.tokenParameter,
                      TextRule.ssmParameter.parse, format: { $0 }),
            .value("kubernetes.ghost_grace", "a Node whose instance is gone is deleted after this long", \.kubernetes.ghostGrace,
                   Parse.positiveDuration, format: formatDuration),
            .value("kubernetes.timeout", "how long one Kubernetes API request may take", \.kubernetes.timeout,
                   Parse.positiveDuration, format: formatDuration),
        ]
    }

    private static var drain: [SettingSpec] {
        [
            .value("drain.timeout", "a drain not done after this long is aborted (or forced)", \.drain.timeout,
                   Parse.positiveDuration, format: formatDuration),
            .value("drain.delete_bare_pods", "drain nodes running pods without a controller (they are not recreated)",
                   \.drain.deleteBarePods, Scalar.bool, format: { String($0) }),
            .value("drain.evict_local_storage", "drain nodes running pods with emptyDir or hostPath volumes (their data is lost)",
                   \.drain.evictLocalStorage, Scalar.bool, format: { String($0) }),
            .value("drain.evict_kube_system", "drain nodes running kube-system pods that are not DaemonSet pods",
                   \.drain.evictKubeSystem, Scalar.bool, format: { String($0) }),
            .value("drain.force_after_timeout", "at the timeout, delete the pods left and terminate instead of aborting",
                   \.drain.forceAfterTimeout, Scalar.bool, format: { String($0) }),
            .value("drain.abort_backoff", "a node whose drain was aborted is not chosen again for this long", \.drain.abortBackoff,
                   Parse.positiveDuration, format: formatDuration),
        ]
    }

    private static var bookkeeping: [SettingSpec] {
        [
            .value("lease.ttl", "how long a lease lasts if never released", \.lease.ttl, Parse.positiveDuration, format: formatDuration),
            .value("lease.safety_margin", "no EC2 action with less lease left", \.lease.safetyMargin, Parse.positiveDuration, format: formatDuration),
            .value("lease.max_clock_skew", "how far the hosts' clocks may disagree", \.lease.maxClockSkew, Parse.positiveDuration, format: formatDuration),
            .value("history.retention", "how long history events are kept", \.historyRetention, Parse.positiveDuration, format: formatDuration),
            .optional("pushgateway.url", "a Pushgateway to push each run's metrics to (empty: none)", \.pushgatewayURL,
                      { value in
                          // An empty string is the listing's way of saying "not configured".
                          if case .string(let text) = value, Scalar.trimmed(text).isEmpty { return .success(nil) }
                          return urlParser(field: "pushgateway.url")(value).map(Optional.some)
                      }, format: { $0 }),
        ]
    }

    // MARK: Settings read together

    /// A signal's PromQL: listed with its effective query, set in the environment only when overridden.
    private static func signalQuery(_ signal: Signal) -> SettingSpec {
        let path = ["signals", signal.rawValue]
        return SettingSpec(
            path: path, shape: .value, summary: "PromQL for \(signal.rawValue) (default: fits kube-state-metrics and node-exporter)",
            read: { reader, value, config in
                guard let value else { return }
                switch Parse.checked(Scalar.string, { !Scalar.trimmed($0).isEmpty }, { _ in "is an empty query" },
                                     fix: "write a PromQL expression, or remove the key to use the default")(value) {
                case .success(let query): config.signalQueries[signal] = query
                case .failure(let error): reader.report(path.joined(separator: "."), error.message, fix: error.fix)
                }
            },
            listing: { config, machines in [(path, config.queries(workerNodes: machines.workerNodeNames)[signal] ?? "")] },
            environment: { config in config.signalQueries[signal].map { [(path, $0)] } ?? [] })
    }

    /// Each auth type names the fields it needs; any other field is a mistake worth reporting
    /// (a token_file that would silently be ignored).
    private static var prometheusAuth: SettingSpec { SettingSpec(
        path: ["prometheus", "auth"], shape: .section(["type", "username", "password_file", "token_file", "region"]),
        summary: "none, basic (username, password_file), bearer (token_file) or sigv4 (region) for Amazon Managed Prometheus",
        read: { reader, value, config in
            let auth = reader.section(value, at: "prometheus.auth")
            let fieldsByType: [String: [String]] = ["none": [], "basic": ["username", "password_file"], "bearer": ["token_file"], "sigv4": ["region"]]
            guard let type = reader.read(auth, "type", { Scalar.oneOf($0, ["none", "basic", "bearer", "sigv4"]) }) ?? (auth.has("type") ? nil : "none")
            else { return }
            let allowed = fieldsByType[type] ?? []
            for field in ["username", "password_file", "token_file", "region"] where auth.has(field) && !allowed.contains(field) {
                let owner = fieldsByType.first(where: { $0.value.contains(field) })?.key ?? "another type"
                reader.report(auth.path(field), "is not used with auth type \(type)", fix: "remove it, or set prometheus.auth.type: \(owner)")
            }
            switch type {
            case "basic":
                let username = reader.require(auth, "username", fix: "set the user name for basic auth", TextRule.nonEmpty.parse)
                let passwordFile = reader.require(auth, "password_file", fix: "set the path of a file holding the password", TextRule.path.parse)
                if let username, let passwordFile { config.prometheus.auth = .basic(username: username, passwordFile: passwordFile) }
            case "bearer":
                if let tokenFile = reader.require(auth, "token_file", fix: "set the path of a file holding the bearer token", TextRule.path.parse) {
                    config.prometheus.auth = .bearer(tokenFile: tokenFile)
                }
            case "sigv4":
                let region = reader.read(auth, "region", TextRule.region.parse)
                if !auth.has("region") || region != nil { config.prometheus.auth = .sigv4(region: region) }
            default:
                config.prometheus.auth = .none
            }
        },
        listing: { config, _ in authLines(config) },
        environment: { authLines($0).filter { !$0.value.isEmpty } }) }

    private static var launchTemplate: SettingSpec { SettingSpec(
        path: ["workers", "launch_template"], shape: .section(["id", "name", "version"]),
        summary: "a launch template (id or name, and version) to launch workers from",
        read: { reader, value, config in
            let template = reader.section(value, at: "workers.launch_template")
            guard !template.fields.isEmpty else { return }
            let id = reader.read(template, "id", TextRule.launchTemplateID.parse)
            let name = reader.read(template, "name", TextRule.nonEmpty.parse)
            let version = reader.read(template, "version", TextRule.launchTemplateVersion.parse) ?? LaunchTemplateRef(identity: .name("")).version
            switch (template.has("id"), template.has("name")) {
            case (true, true):
                reader.report(template.path("name"), "both id and name are set", fix: "keep one of workers.launch_template.id or .name")
            case (false, false):
                reader.report(template.path("id"), "a launch template needs an id or a name", fix: "set workers.launch_template.id (lt-…) or .name")
            case (true, false):
                if let id { config.workers.launchTemplate = LaunchTemplateRef(identity: .id(id), version: version) }
            case (false, true):
                if let name { config.workers.launchTemplate = LaunchTemplateRef(identity: .name(name), version: version) }
            }
            // Recorded even when unusable, so the checks across fields know one was meant.
            if config.workers.launchTemplate == nil { reader.markBroken("workers.launch_template") }
        },
        listing: { config, _ in templateLines(config) }, environment: templateLines) }

    private static func authLines(_ config: KScalerConfig) -> [(path: [String], value: String)] {
        let auth = config.prometheus.auth
        var lines: [(path: [String], value: String)] = [(["prometheus", "auth", "type"], auth.typeName)]
        switch auth {
        case .none: break
        case .basic(let username, let passwordFile):
            lines += [(["prometheus", "auth", "username"], username), (["prometheus", "auth", "password_file"], passwordFile)]
        case .bearer(let tokenFile): lines.append((["prometheus", "auth", "token_file"], tokenFile))
        case .sigv4(let region): lines.append((["prometheus", "auth", "region"], region ?? ""))
        }
        return lines
    }

    private static func templateLines(_ config: KScalerConfig) -> [(path: [String], value: String)] {
        guard let template = config.workers.launchTemplate else { return [] }
        let identity: (path: [String], value: String) = switch template.identity {
        case .id(let id): (["workers", "launch_template", "id"], id)
        case .name(let name): (["workers", "launch_template", "name"], name)
        }
        return [identity, (["workers", "launch_template", "version"], template.version)]
    }

    /// Sizes are the scale-up sizing unit: a listed instance type without one is learned at run
    /// time (Ready nodes, then EC2); with a launch template alone at least one entry must exist
    /// (the smallest is used).
    private static var workerSizes: SettingSpec { SettingSpec(
        path: ["workers", "sizes"], shape: .dictionary,
        summary: "allocatable cpu and memory per instance type (sizes a burst in one run)",
        read: { reader, value, config in
            let path = "workers.sizes"
            let example = "e.g. sizes: {t3.large: {cpu: 2, memory: 8Gi}}"
            var sizes: [String: WorkerSize] = [:]
            var valid = true
            switch value {
            case nil:
                break
            case .map(let entries)?:
                for (type, entry) in entries.sorted(by: { $0.key < $1.key }) {
                    let entryPath = "\(path).\(type)"
                    guard case .map(let fields) = entry else {
                        reader.report(entryPath, "expected {cpu, memory}, got \(entry.kindName)", fix: example)
                        valid = false
                        continue
                    }
                    for key in fields.keys.sorted() where key != "cpu" && key != "memory" {
                        reader.report("\(entryPath).\(key)", "unknown key \"\(key)\"",
                                      fix: closestMatch(to: key, among: ["cpu", "memory"]).map { "did you mean \"\($0)\"?" } ?? "only cpu and memory belong here")
                    }
                    let entrySection = Section(path: entryPath, fields: fields)
                    let cpu = reader.require(entrySection, "cpu", fix: "set the allocatable CPU cores, e.g. cpu: 2", Scalar.cpuCores)
                    let memory = reader.require(entrySection, "memory", fix: "set the allocatable memory, e.g. memory: 8Gi", Scalar.memoryBytes)
                    if let cpu, let memory { sizes[type] = WorkerSize(cpuCores: cpu, memoryBytes: memory) } else { valid = false }
                }
            case .string(let text)?:
                for item in Scalar.splitList(text) {
                    let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                    let amounts = parts.count == 2 ? parts[1].split(separator: "/").map(String.init) : []
                    guard amounts.count == 2,
                          case .success(let cpu) = Scalar.cpuCores(.string(amounts[0])),
                          case .success(let memory) = Scalar.memoryBytes(.string(amounts[1])) else {
                        reader.report(path, "\"\(item)\" is not TYPE=CPU/MEMORY", fix: "write e.g. t3.large=2/8Gi,m5.xlarge=4/16Gi")
                        valid = false
                        continue
                    }
                    sizes[parts[0]] = WorkerSize(cpuCores: cpu, memoryBytes: memory)
                }
            case let other?:
                reader.report(path, "expected a map of instance type to {cpu, memory}, got \(other.kindName)", fix: example)
                reader.markBroken(path)
                return
            }
            config.workers.sizes = sizes
            if !valid { reader.markBroken(path) }
        },
        listing: { config, _ in
            config.workers.sizes.sorted(by: { $0.key < $1.key }).flatMap { type, size in
                [(["workers", "sizes", type, "cpu"], formatNumber(size.cpuCores)), (["workers", "sizes", type, "memory"], formatQuantity(size.memoryBytes))]
            }
        },
        environment: { config in
            config.workers.sizes.isEmpty ? [] : [(["workers", "sizes"], config.workers.sizes.sorted(by: { $0.key < $1.key })
                .map { "\($0.key)=\(formatNumber($0.value.cpuCores))/\(formatQuantity($0.value.memoryBytes))" }.joined(separator: ","))]
        }) }

    private static var workerLabels: SettingSpec { SettingSpec(
        path: ["workers", "labels"], shape: .dictionary, summary: "labels new workers register with",
        read: { reader, value, config in
            let path = "workers.labels"
            let fix = "write labels as key: value (or KEY=VALUE,… in the environment); keys [prefix/]name, values up to 63 of letters, digits, - _ ."
            var pairs: [(String, ConfigValue)] = []
            switch value {
            case nil: return
            case .map(let entries)?: pairs = entries.sorted(by: { $0.key < $1.key })
            case .string(let text)?:
                for item in Scalar.splitList(text) {
                    let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                    guard parts.count == 2 else {
                        reader.report(path, "\"\(item)\" is not KEY=VALUE", fix: fix)
                        continue
                    }
                    pairs.append((parts[0], .string(parts[1])))
                }
            case let other?:
                reader.report(path, "expected a map of labels, got \(other.kindName)", fix: fix)
                return
            }
            for (key, value) in pairs {
                guard isKubernetesKey(key), case .success(let text) = Scalar.string(value), isKubernetesValue(text) else {
                    reader.report("\(path).\(key)", "is not a valid Kubernetes label", fix: fix)
                    continue
                }
                config.workers.labels[key] = text
            }
        },
        listing: { config, _ in config.workers.labels.sorted(by: { $0.key < $1.key }).map { (["workers", "labels", $0.key], $0.value) } },
        environment: { config in
            config.workers.labels.isEmpty ? [] : [(["workers", "labels"], config.workers.labels.sorted(by: { $0.key < $1.key })
                .map { "\($0.key)=\($0.value)" }.joined(separator: ","))]
        }) }

    /// Defaults to `/kscaler/<cluster>/…`: set in the environment only when it differs.
    private static func joinParameter(_ path: String, _ summary: String, _ field: WritableKeyPath<JoinParameters, String>) -> SettingSpec {
        let keys = path.split(separator: ".").map(String.init)
        let join: WritableKeyPath<KScalerConfig, JoinParameters> = \.workers.join
        let keyPath = join.appending(path: field)
        return SettingSpec(
            path: keys, shape: .value, summary: summary + " (default /kscaler/<cluster_id>/…)",
            read: { reader, value, config in
                guard let value else {
                    config[keyPath: keyPath] = JoinParameters.defaults(clusterID: config.clusterID)[keyPath: field]
                    return
                }
                switch TextRule.ssmParameter.parse(value) {
                case .success(let parameter): config[keyPath: keyPath] = parameter
                case .failure(let error): reader.report(path, error.message, fix: error.fix)
                }
            },
            listing: { config, _ in [(keys, config[keyPath: keyPath])] },
            environment: { config in
                config[keyPath: keyPath] == JoinParameters.defaults(clusterID: config.clusterID)[keyPath: field] ? [] : [(keys, config[keyPath: keyPath])]
            })
    }

    /// Every taint, or one error naming every bad one.
    private static func parseTaints(_ texts: [String]) -> Result<[Taint], ScalarError> {
        var taints: [Taint] = [], errors: [ScalarError] = []
        for text in texts {
            switch parseTaint(text) {
            case .success(let taint): taints.append(taint)
            case .failure(let error): errors.append(error)
            }
        }
        guard let first = errors.first else { return .success(taints) }
        return .failure(ScalarError(message: errors.map(\.message).joined(separator: "; "), fix: first.fix))
    }
}
