import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that kscaler can reach what it needs; one line per check.",
        discussion: "Exits 0 only if every check passes, 5 otherwise. Never prints a secret."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions

    @Option(help: "AWS region (overrides the config's region, AWS_REGION and the profile).")
    var region: String?

    func run() async throws {
        let logger = global.makeLogger()
        let variables = processEnvironment()
        let environment = AWSEnvironment(variables: variables)
        let transport = CurlTransport()

        // Without any configuration the AWS identity checks still run: that is what a new
        // operator needs first. With one, every dependency of a run is checked.
        var loaded: ConfigLoader.Loaded?
        var checks: [DoctorCheck] = []
        if ConfigLoader.isConfigured(explicitPath: configOptions.config, environment: variables) {
            switch ConfigLoader.load(explicitPath: configOptions.config, environment: variables) {
            case .success(let value):
                loaded = value
                checks.append(DoctorCheck(name: "config", passed: true, detail: value.file.map { "valid (\($0))" } ?? "valid (environment only)"))
            case .failure(let errors):
                checks.append(DoctorCheck(name: "config", passed: false,
                                          detail: errors.listing.map { $0.trimmingPrefix("  - ") }.joined(separator: "; ")))
            }
        }
        checks += await Doctor.awsChecks(environment: environment, configuredRegion: region ?? loaded?.config.region, transport: transport,
                                         logger: logger)
        if let loaded, checks.allSatisfy(\.passed) {
            do {
                var config = loaded.config
                if let region { config.region = region }
                let runtime = try await Runtime.make(config: config, environment: environment, transport: transport, logger: logger)
                checks += await Doctor.clusterChecks(runtime: runtime)
            } catch {
                checks.append(DoctorCheck(name: "runtime", passed: false, detail: "\(error)"))
            }
        }
        for check in checks {
            print("\(check.passed ? "ok  " : "FAIL") \(ReportPrinter.pad(check.name, 12)) \(check.detail)")
        }
        if loaded == nil && checks.allSatisfy(\.passed) {
            print("note no configuration found (--config, KSCALER_CONFIG, \(ConfigLoader.defaultPath), KSCALER_* variables): table, EC2, SSM and Prometheus were not checked")
        }
        if checks.contains(where: { !$0.passed }) { throw KScalerExit.checksFailed }
    }
}
