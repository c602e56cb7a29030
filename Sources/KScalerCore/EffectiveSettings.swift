#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One line of `kscaler config check`: a dotted path and its effective value, in the spelling a
/// user would write (durations `10m`, thresholds in percent, memory `8Gi`).
package struct ConfigSetting: Sendable, Equatable {
    package var path: String
    package var value: String
    /// Printers redact these (`prometheus.auth.*`): they are file paths, not secrets, but
    /// they point at secrets and the habit of hiding them is cheap.
    package var sensitive: Bool

    package init(path: String, value: String, sensitive: Bool) {
        self.path = path
        self.value = value
        self.sensitive = sensitive
    }
}

extension KScalerConfig {
    /// Every effective setting, defaults included, in schema order. Unset optional settings
    /// are listed with an empty value so the listing shows what could be set. Default queries
    /// select the workers as `machines` names them.
    /// With `pools:`, `workers.*` and `nodes.min` mean nothing and are left out: each pool lists its own.
    package func effectiveSettings(machines: MachineIdentity) -> [ConfigSetting] {
        ConfigSettings.all.flatMap { $0.listing(self, machines) }
            .filter { line in pools == nil || (line.path.first != "workers" && line.path != ["nodes", "min"]) }
            .map { line in
            let path = line.path.joined(separator: ".")
            return ConfigSetting(path: path, value: line.value, sensitive: ConfigSchema.isSensitive(path))
        }
    }

    /// The `KSCALER_*` variables that, alone, configure exactly this (`parse` of them gives it
    /// back): every value set or different from its default, in the environment's spelling.
    package func environment() -> [String: String] {
        Dictionary(ConfigSettings.all.flatMap { $0.environment(self) }.map { (Self.environmentVariableName(for: $0.path), $0.value) },
                   uniquingKeysWith: { first, _ in first })
    }
}
