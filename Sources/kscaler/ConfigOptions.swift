import ArgumentParser
import AWS
import KScaler
import KScalerCore

/// `--config`, shared by every command that needs the cluster's configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "YAML configuration file.",
        discussion: "Default: $KSCALER_CONFIG, else /etc/kscaler/config.yaml when present, else the environment alone (KSCALER_* variables)."))
    var config: String?

    /// Loads and validates; on any problem prints every one of them and exits 2.
    func load(environment: [String: String]) throws -> ConfigLoader.Loaded {
        switch ConfigLoader.load(explicitPath: config, environment: environment) {
        case .success(let loaded):
            return loaded
        case .failure(let errors):
            printError("kscaler: the configuration is invalid (\(errors.problems.count) problem\(errors.problems.count == 1 ? "" : "s")):")
            for problem in errors.problems { printError("  - \(problem)") }
            throw KScalerExit.invalidConfig
        }
    }
}

/// The process environment, read once per invocation and passed down.
func processEnvironment() -> [String: String] { ProcessInfo.processInfo.environment }
