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
            Self.report(errors, explicitPath: config, environment: environment)
            throw KScalerExit.invalidConfig
        }
    }

    /// Every problem; when no file was found, first where kscaler looked and how to start one,
    /// since a list of missing fields alone does not say that a file was never read.
    static func report(_ errors: ConfigErrors, explicitPath: String?, environment: [String: String]) {
        guard ConfigLoader.filePath(explicitPath: explicitPath, environment: environment) == nil else { return report(errors) }
        let variablesSet = ConfigLoader.isConfigured(explicitPath: nil, environment: environment, fileExists: { _ in false })
        printError("kscaler: no configuration found: no file at \(ConfigLoader.searchedLocations), and "
                   + (variablesSet ? "the KSCALER_* environment variables are not a complete configuration:" : "no KSCALER_* environment variables set."))
        if variablesSet { for line in errors.listing { printError(line) } }
        printError("kscaler: to start one, \(ConfigLoader.initHint).")
    }

    /// Every problem on stderr, each with its path and fix.
    static func report(_ errors: ConfigErrors) {
        printError("kscaler: the configuration is invalid (\(errors.problems.count) problem\(errors.problems.count == 1 ? "" : "s")):")
        for line in errors.listing { printError(line) }
    }
}

extension ConfigOptions {
    /// Worker user data for launches (nil when the launch template carries its own); a value
    /// it cannot hold is a configuration error (exit 2), reported by `config check` and `run` alike.
    static func workerUserData(for config: KScalerConfig) throws {
        // Only EC2 launches with kscaler's user data; other backends boot their own way.
        guard config.backend == .ec2 else { return }
        for pool in config.workerPools {
            do {
                _ = try UserDataRenderer.workerUserData(for: config.scoped(to: pool))
            } catch {
                let which = config.pools == nil ? "" : " of pool \(pool.name)"
                printError("kscaler: the worker user data\(which) cannot be rendered from this configuration: \(error)")
                throw KScalerExit.invalidConfig
            }
        }
    }
}

/// The process environment, read once per invocation and passed down.
func processEnvironment() -> [String: String] { ProcessInfo.processInfo.environment }
