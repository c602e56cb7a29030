#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One line of `kscaler config check`: a dotted path and its effective value, in the spelling a
/// user would write (durations `10m`, thresholds in percent, memory `8Gi`).
public struct ConfigSetting: Sendable, Equatable {
    public var path: String
    public var value: String
    /// Printers redact these (`prometheus.auth.*`): they are file paths, not secrets, but
    /// they point at secrets and the habit of hiding them is cheap.
    public var sensitive: Bool

    public init(path: String, value: String, sensitive: Bool) {
        self.path = path
        self.value = value
        self.sensitive = sensitive
    }
}

extension KScalerConfig {
    /// Every effective setting, defaults included, in schema order. Unset optional settings
    /// are listed with an empty value so the listing shows what could be set.
    public func effectiveSettings() -> [ConfigSetting] {
        var settings: [ConfigSetting] = []
        func add(_ path: String, _ value: String) {
            settings.append(ConfigSetting(path: path, value: value, sensitive: ConfigSchema.isSensitive(path)))
        }
        func list(_ items: [String]) -> String { items.joined(separator: ",") }

        add("cluster_id", clusterID)
        add("region", region ?? "")
        add("table", table)
        add("prometheus.url", prometheus.url)
        add("prometheus.auth.type", prometheus.auth.typeName)
        switch prometheus.auth {
        case .none: break
        case .basic(let username, let passwordFile):
            add("prometheus.auth.username", username)
            add("prometheus.auth.password_file", passwordFile)
        case .bearer(let tokenFile):
            add("prometheus.auth.token_file", tokenFile)
        case .sigv4(let region):
            add("prometheus.auth.region", region ?? "")
        }
        add("prometheus.timeout", formatDuration(prometheus.timeout))
        add("prometheus.staleness", formatDuration(prometheus.staleness))
        add("utilization", utilization.rawValue)
        let queries = queries()
        for signal in Signal.allCases {
            add("signals.\(signal.rawValue)", queries[signal] ?? "")
        }
        add("nodes.min", String(nodes.min))
        add("nodes.max", String(nodes.max))
        add("scale_up.cpu_threshold", formatNumber(scaleUp.cpuThreshold * 100))
        add("scale_up.memory_threshold", formatNumber(scaleUp.memoryThreshold * 100))
        add("scale_up.max_step", String(scaleUp.maxStep))
        add("scale_up.cooldown", formatDuration(scaleUp.cooldown))
        add("scale_down.cpu_threshold", formatNumber(scaleDown.cpuThreshold * 100))
        add("scale_down.memory_threshold", formatNumber(scaleDown.memoryThreshold * 100))
        add("scale_down.max_step", String(scaleDown.maxStep))
        add("scale_down.cooldown", formatDuration(scaleDown.cooldown))
        add("scale_down.delay_after_scale_up", formatDuration(scaleDown.delayAfterScaleUp))
        add("scale_down.stabilization_window", formatDuration(scaleDown.stabilizationWindow))
        add("boot_grace", formatDuration(bootGrace))
        add("provision_timeout", formatDuration(provisionTimeout))
        add("unavailable_for", formatDuration(unavailableFor))
        add("health.max_not_ready_fraction", formatNumber(health.maxNotReadyFraction))
        add("health.max_not_ready_nodes", String(health.maxNotReadyNodes))
        add("victims.order", victims.order.rawValue)
        add("victims.protected_instances", list(victims.protectedInstances.sorted()))
        add("workers.pool", workers.pool)
        if let template = workers.launchTemplate {
            switch template.identity {
            case .id(let id): add("workers.launch_template.id", id)
            case .name(let name): add("workers.launch_template.name", name)
            }
            add("workers.launch_template.version", template.version)
        }
        add("workers.image_id", workers.imageID ?? "")
        add("workers.instance_types", list(workers.instanceTypes))
        add("workers.subnets", list(workers.subnets))
        add("workers.security_groups", list(workers.securityGroups))
        add("workers.instance_profile", workers.instanceProfile ?? "")
        for (type, size) in workers.sizes.sorted(by: { $0.key < $1.key }) {
            add("workers.sizes.\(type).cpu", formatNumber(size.cpuCores))
            add("workers.sizes.\(type).memory", formatQuantity(size.memoryBytes))
        }
        for (key, value) in workers.labels.sorted(by: { $0.key < $1.key }) {
            add("workers.labels.\(key)", value)
        }
        add("workers.taints", list(workers.taints.map(\.description)))
        add("workers.join.token_parameter", workers.join.tokenParameter)
        add("workers.join.server_url_parameter", workers.join.serverURLParameter)
        add("lease.ttl", formatDuration(lease.ttl))
        add("lease.safety_margin", formatDuration(lease.safetyMargin))
        add("lease.max_clock_skew", formatDuration(lease.maxClockSkew))
        add("history.retention", formatDuration(historyRetention))
        add("pushgateway.url", pushgatewayURL ?? "")
        return settings
    }
}
