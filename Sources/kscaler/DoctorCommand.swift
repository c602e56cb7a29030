import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that this identity can do what its role needs; one line per check.",
        discussion: """
        --role autoscaler (the default) checks what kscaler needs: the table, a RunInstances dry \
        run per pool, Prometheus and the Kubernetes API; never the join token, which kscaler's \
        policy rightly may not read. --role server checks that the join parameters can be read \
        and written (without changing them); --role worker that they can be read with decryption. \
        Exits 0 only if every check passes, 5 otherwise. Never prints a secret.
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions

    @Option(help: "AWS region (overrides the config's region, AWS_REGION and the profile).")
    var region: String?

    @Option(help: "Whose permissions to check: autoscaler, server or worker.")
    var role: DoctorRole = .autoscaler

    @Option(name: .long, help: "Output: human or json.") var output: OutputFormat = .human

    func run() async throws {
        let logger = global.makeLogger()
        let variables = processEnvironment()
        let environment = AWSEnvironment(variables: variables)
        let transport = CurlTransport()

        // Without any configuration the AWS identity checks still run: that is what a new
        // operator needs first. With one, every dependency of a run is checked.
        var loaded: ConfigLoader.Loaded?
        var checks: [DoctorCheck] = []
        let configured = ConfigLoader.isConfigured(explicitPath: configOptions.config, environment: variables)
        if configured {
            switch ConfigLoader.load(explicitPath: configOptions.config, environment: variables) {
            case .success(let value):
                loaded = value
                checks.append(DoctorCheck(name: "config", passed: true, detail: value.file.map { "valid (\($0))" } ?? "valid (environment only)"))
            case .failure(let errors):
                let problems = errors.listing.map { $0.trimmingPrefix("  - ") }.joined(separator: "; ")
                let noFile = ConfigLoader.filePath(explicitPath: configOptions.config, environment: variables) == nil
                checks.append(DoctorCheck(name: "config", passed: false, detail: noFile
                    ? "no configuration file (looked at \(ConfigLoader.searchedLocations)) and the KSCALER_* variables are incomplete: "
                        + problems + "; to start one, \(ConfigLoader.initHint)"
                    : problems))
            }
        }
        checks += await Doctor.awsChecks(environment: environment, configuredRegion: region ?? loaded?.config.region, transport: transport,
                                         logger: logger)
        if let loaded, checks.allSatisfy(\.passed) {
            do {
                var config = loaded.config
                if let region { config.region = region }
                let runtime = try await Runtime.make(config: config, environment: environment, transport: transport, logger: logger)
                checks += await Doctor.clusterChecks(runtime: runtime, role: role)
            } catch {
                checks.append(DoctorCheck(name: "runtime", passed: false, detail: "\(error)"))
            }
        }
        var notes: [String] = []
        if !configured {
            notes.append("no configuration found (no file at \(ConfigLoader.searchedLocations), no KSCALER_* variables): "
                         + (role == .autoscaler ? "table, EC2, Prometheus and Kubernetes were not checked" : "the join parameters were not checked")
                         + "; to start one, \(ConfigLoader.initHint)")
        }
        let passed = checks.allSatisfy(\.passed)
        if output == .json {
            print(try JSONOutput.render(DoctorOutput(role: role, passed: passed, checks: checks, notes: notes)))
        } else {
            for check in checks {
                print("\(check.passed ? "ok  " : "FAIL") \(ReportPrinter.pad(check.name, 12)) \(check.detail)")
            }
            for note in notes { print("note \(note)") }
        }
        if !passed { throw KScalerExit.checksFailed }
    }
}

extension DoctorRole: ExpressibleByArgument {}

/// `doctor --output json`: the role checked, whether every check passed, each check.
struct DoctorOutput: Encodable {
    struct Check: Encodable {
        var name: String
        var passed: Bool
        var detail: String
    }
    var role: DoctorRole
    var passed: Bool
    var checks: [Check]
    var notes: [String]

    init(role: DoctorRole, passed: Bool, checks: [DoctorCheck], notes: [String]) {
        (self.role, self.passed, self.notes) = (role, passed, notes)
        self.checks = checks.map { Check(name: $0.name, passed: $0.passed, detail: $0.detail) }
    }
}
