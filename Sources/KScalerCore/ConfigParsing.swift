#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension KScalerConfig {
    /// Types and validates a configuration tree: its shape against the schema, every setting of
    /// `ConfigSettings.all` (absent ones keep the types' defaults), then the rules that span
    /// settings. Reports every problem at once, each with its dotted path, what is wrong and how
    /// to fix it.
    /// `zones` resolves `schedules[].time_zone` names (the caller reads the files); without it
    /// only UTC is known.
    package static func parse(_ root: ConfigValue, zones: ZoneDatabase = .builtIn) -> Result<KScalerConfig, ConfigErrors> {
        var reader = ConfigReader()
        reader.zones = zones
        reader.checkShape(root, ConfigSchema.root, path: [])
        var config = KScalerConfig.blank
        for setting in ConfigSettings.all {
            setting.read(&reader, root.value(at: setting.path), &config)
        }
        reader.checkAcrossSettings(config, given: { root.value(at: $0.split(separator: ".").map(String.init)) != nil })
        // A placeholder `config init` wrote is one problem, "fill it in", whatever else its
        // text upset (a cluster id cannot contain "<"; a launch template name can).
        let placeholders = StarterConfig.placeholderPaths(in: root)
        let problems = placeholders.map { path in
            ConfigProblem(path: path, message: "is still the placeholder `kscaler config init` wrote", fix: StarterConfig.fix(forPlaceholderAt: path))
        } + reader.problems.filter { !placeholders.contains($0.path) }
        return problems.isEmpty ? .success(config) : .failure(ConfigErrors(problems: problems))
    }

    /// Where parsing starts: every default, and blanks where a value is required.
    static var blank: KScalerConfig {
        KScalerConfig(clusterID: "", table: "", prometheus: PrometheusSettings(url: ""),
                      workers: WorkerSettings(sizes: [:], join: JoinParameters(tokenParameter: "", serverURLParameter: "")))
    }
}

extension ConfigReader {
    /// The rules that relate settings to each other. Each is skipped when one of its settings
    /// already has a problem, rather than pile a second, confusing one on top.
    mutating func checkAcrossSettings(_ config: KScalerConfig, given: (String) -> Bool) {
        checkThresholds(up: config.scaleUp, down: config.scaleDown)
        if config.nodes.min > config.nodes.max, !isBroken("nodes.min"), !isBroken("nodes.max") {
            report("nodes.min", "min \(config.nodes.min) is above max \(config.nodes.max)", fix: "make nodes.min at most nodes.max")
        }
        if config.bootGrace > config.provisionTimeout, !isBroken("boot_grace"), !isBroken("provision_timeout") {
            report("boot_grace", "boot grace \(formatDuration(config.bootGrace)) is longer than provision_timeout \(formatDuration(config.provisionTimeout))",
                   fix: "make boot_grace at most provision_timeout: an instance cannot still be booting after it has failed")
        }
        let lease = config.lease, defaults = LeaseSettings()
        if lease.safetyMargin >= lease.ttl, !isBroken("lease.ttl"), !isBroken("lease.safety_margin") {
            report("lease.safety_margin",
                   "safety margin \(formatDuration(lease.safetyMargin)) is not shorter than the lease ttl \(formatDuration(lease.ttl))",
                   fix: "make lease.safety_margin shorter than lease.ttl (defaults \(formatDuration(defaults.safetyMargin)) and "
                       + "\(formatDuration(defaults.ttl))), or no run could ever act")
        }
        if given("pools") {
            checkPools(config, given: given)
        } else {
            checkWorkers(config.workers, backend: config.backend, given: given)
        }
        checkKubernetes(config.kubernetes, given: given)
        checkHeadroom(config, given: given)
    }

    /// `pools:` replaces `workers:` (which is one pool), and each pool has its own min.
    private mutating func checkPools(_ config: KScalerConfig, given: (String) -> Bool) {
        if given("workers") {
            report("workers", "is set together with pools", fix: "move the workers settings into a pool (workers: is the one pool named default)")
        }
        if given("nodes.min") {
            report("nodes.min", "is per pool with pools", fix: "remove nodes.min and set min in each pool; nodes.max stays the cap across pools")
        }
        if config.pools?.isEmpty == true, !isBroken("pools") {
            report("pools", "has no pool", fix: "name at least one pool, e.g. pools: {general: {launch_template: {name: …}, sizes: {…}}}")
        }
        // Each pool's utilisation is measured on its own nodes by kscaler's queries: an override
        // written for the whole fleet would silently measure something else.
        for signal in Signal.allCases where Signal.utilization.contains(signal) && config.signalQueries[signal] != nil {
            report("signals.\(signal.rawValue)", "cannot be overridden with pools: each pool's utilisation is measured on its own nodes",
                   fix: "remove signals.\(signal.rawValue) (utilization: requests or usage chooses kscaler's query)")
        }
        if let pools = config.pools, pools.values.map(\.nodes.min).reduce(0, +) > config.nodes.max, !isBroken("nodes.max") {
            report("nodes.max", "the pools' min add up to \(pools.values.map(\.nodes.min).reduce(0, +)), above the cluster-wide max \(config.nodes.max)",
                   fix: "raise nodes.max or lower the pools' min")
        }
    }

    /// What `workers:` is checked for, for one pool read at the top-level spellings
    /// (`PoolSection` moves the problems under the pool), and its own min ≤ max.
    mutating func checkPool(_ pool: KScalerConfig, given: (String) -> Bool) {
        checkThresholds(up: pool.scaleUp, down: pool.scaleDown)
        if pool.nodes.min > pool.nodes.max, !isBroken("nodes.min"), !isBroken("nodes.max") {
            report("nodes.min", "min \(pool.nodes.min) is above max \(pool.nodes.max)", fix: "make nodes.min at most nodes.max")
        }
        checkWorkers(pool.workers, backend: pool.backend, given: given)
    }

    /// The token-in-SSM path needs its server and its token together, and is one way to reach
    /// the API: a kubeconfig beside it would leave which one is used to a rule nobody reads.
    private mutating func checkKubernetes(_ kubernetes: KubernetesSettings, given: (String) -> Bool) {
        let server = given("kubernetes.server"), token = given("kubernetes.token_parameter")
        if server && !token && !isBroken("kubernetes.server") {
            report("kubernetes.token_parameter", "is required with kubernetes.server",
                   fix: "set kubernetes.token_parameter to the SSM SecureString holding the service-account token (infra/README.md, Kubernetes access)")
        }
        if token && !server && !isBroken("kubernetes.token_parameter") {
            report("kubernetes.server", "is required with kubernetes.token_parameter", fix: "set kubernetes.server to the API URL, e.g. https://10.0.0.10:6443")
        }
        if given("kubernetes.ca_data") && !server {
            report("kubernetes.ca_data", "is used only with kubernetes.server", fix: "remove it (a kubeconfig carries its own CA), or set kubernetes.server")
        }
        if server, given("kubernetes.kubeconfig") || given("kubernetes.context") {
            report("kubernetes.server", "is set together with kubernetes.kubeconfig or kubernetes.context",
                   fix: "use one way to reach the API: server + token_parameter, or a kubeconfig")
        }
    }

    /// Another backend's workers: no EC2 launch settings, and machine types each with a size
    /// (only EC2 can be asked how big a type is; a type no node has reported could never launch).
    private mutating func checkMachines(_ workers: WorkerSettings, backend: FleetBackend, given: (String) -> Bool) {
        for key in ["launch_template", "image_id", "security_groups", "instance_profile"] where given("workers.\(key)") {
            report("workers.\(key)", "is an EC2 setting, and fleet.backend is \(backend.name)", fix: "remove it: the \(backend.name) backend makes its own machines")
        }
        if case .proxmox = backend, given("workers.subnets") {
            report("workers.subnets", "is an EC2 setting, and fleet.backend is proxmox", fix: "remove it: fleet.proxmox.nodes says where clones run")
        }
        guard !isBroken("workers.instance_types"), !isBroken("workers.sizes") else { return }
        if workers.instanceTypes.isEmpty {
            report("workers.instance_types", "needs at least one machine type with fleet.backend: \(backend.name)",
                   fix: "list the machine types to launch, each with a size, e.g. instance_types: [small] and sizes: {small: {cpu: 2, memory: 4Gi}}")
            return
        }
        for type in workers.instanceTypes where workers.sizes[type] == nil {
            report("workers.sizes.\(type)", "\(type) has no size, and the \(backend.name) backend cannot be asked for one",
                   fix: "give its allocatable, e.g. sizes: {\(type): {cpu: 2, memory: 4Gi}}")
        }
        for type in workers.sizes.keys.sorted() where !workers.instanceTypes.contains(type) {
            report("workers.sizes.\(type)", "\(type) is not one of workers.instance_types", fix: "size only the listed types, or add \(type) to workers.instance_types")
        }
    }

    /// Down-thresholds must sit below up-thresholds, or one run's scale-down is the next one's scale-up.
    mutating func checkThresholds(up: ScaleUpPolicy, down: ScaleDownPolicy) {
        let defaults = (up: ScaleUpPolicy(), down: ScaleDownPolicy())
        for (resource, downValue, upValue) in [("cpu", down.cpuThreshold, up.cpuThreshold),
                                               ("memory", down.memoryThreshold, up.memoryThreshold)] {
            let downPath = "scale_down.\(resource)_threshold", upPath = "scale_up.\(resource)_threshold"
            guard downValue >= upValue, !isBroken(downPath), !isBroken(upPath) else { continue }
            report(downPath, "scale-down threshold \(formatPercent(downValue)) is not below the scale-up threshold \(formatPercent(upValue))",
                   fix: "make \(downPath) lower than \(upPath) (defaults \(Parse.percent(defaults.down.cpuThreshold)) "
                       + "and \(Parse.percent(defaults.up.cpuThreshold)))")
        }
    }

    /// A launch template, or an image, instance types and subnets; and a size for every
    /// instance type (the sizing unit for scale-ups), or at least one with a template alone.
    mutating func checkWorkers(_ workers: WorkerSettings, backend: FleetBackend, given: (String) -> Bool) {
        guard backend == .ec2 else { return checkMachines(workers, backend: backend, given: given) }
        let usesTemplate = given("workers.launch_template")
        if !usesTemplate {
            let fix = "set workers.launch_template (id or name), or both workers.image_id and workers.instance_types"
            if !given("workers.image_id") { report("workers.image_id", "is required without a launch template", fix: fix) }
            if !given("workers.instance_types") || (workers.instanceTypes.isEmpty && !isBroken("workers.instance_types")) {
                report("workers.instance_types", "needs at least one instance type without a launch template", fix: fix)
            }
            if !given("workers.subnets") || (workers.subnets.isEmpty && !isBroken("workers.subnets")) {
                report("workers.subnets", "needs at least one subnet without a launch template",
                       fix: "list the subnets workers may launch in, e.g. [subnet-0abc…, subnet-0def…]")
            }
        }
        guard !isBroken("workers.sizes") else { return }
        // A listed type without a size is learned at run time (Ready nodes, then EC2); only a
        // launch template alone names no type to learn about.
        let path = "workers.sizes", sizes = workers.sizes, instanceTypes = workers.instanceTypes
        if !instanceTypes.isEmpty {
            for type in sizes.keys.sorted() where !instanceTypes.contains(type) {
                let suggestion = closestMatch(to: type, among: instanceTypes).map { "did you mean \($0)? " } ?? ""
                report("\(path).\(type)", "\(type) is not one of workers.instance_types",
                       fix: suggestion + "size only the listed types, or add \(type) to workers.instance_types")
            }
        } else if sizes.isEmpty && usesTemplate && !isBroken("workers.instance_types") {
            // (A broken or placeholder instance_types is reported already; its types would be learned.)
            report(path, "with only a launch template kscaler cannot know how big a worker is",
                   fix: "give at least one entry, e.g. sizes: {t3.large: {cpu: 2, memory: 8Gi}} (the smallest entry is the sizing unit for "
                       + "scale-ups), or list workers.instance_types so their sizes are learned from Ready nodes or EC2")
        }
    }
}
