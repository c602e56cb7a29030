import ArgumentParser
import AWS

@main
struct KScalerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kscaler",
        abstract: "A run-once node autoscaler for self-managed Kubernetes on EC2.",
        discussion: """
        Each invocation takes a lease in DynamoDB, reads Prometheus and EC2, decides, acts, \
        records and exits. Run it from cron, a systemd timer, or a scheduled container.

        \(KScalerExit.helpText)
        """,
        version: kscalerVersion,
        subcommands: [RunCommand.self, PlanCommand.self, ScaleCommand.self, ProtectCommand.self, UnprotectCommand.self, DoctorCommand.self,
                      ConfigCommand.self, LeaseCommand.self, HistoryCommand.self, BacktestCommand.self, UserdataCommand.self,
                      LambdaCommand.self, BackendCommand.self]
    )

    /// Started by AWS Lambda as `bootstrap` (`AWS_LAMBDA_RUNTIME_API` set, no arguments), the
    /// binary is the `lambda` loop; otherwise the command line decides.
    ///
    /// `kscaler --version` is answered before swift-argument-parser builds its command tree:
    /// that costs about 14M instructions, most of them the Swift runtime's first-time
    /// protocol-conformance lookups (BENCHMARKS.md), for one line of output.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments == ["--version"] {
            print(kscalerVersion)
            return
        }
        if arguments.isEmpty, let api = processEnvironment()["AWS_LAMBDA_RUNTIME_API"], !api.isEmpty {
            await main(["lambda"])
        } else {
            await main(nil)
        }
    }
}

/// Options every subcommand shares: logging. Each flag falls back to its environment variable
/// (`KSCALER_LOG_FORMAT`, `KSCALER_LOG_LEVEL`), so a unit file or a task definition sets the
/// format its log shipper parses once, for every subcommand.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log format on stderr: plain (for people) or json (JSON lines, for CloudWatch or Loki). Default: $KSCALER_LOG_FORMAT, else plain.")
    var logFormat: LogFormat?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical. Default: $KSCALER_LOG_LEVEL, else info.")
    var logLevel: LogLevelArgument?

    /// The settings in force; an unusable environment value is a configuration error (exit 2),
    /// found before anything else runs.
    func validate() throws {
        _ = try settings()
    }

    func settings(environment: [String: String] = processEnvironment()) throws -> LogSettings {
        do {
            return try LogSettings.resolve(format: logFormat, level: logLevel?.level, environment: environment)
        } catch {
            printError("kscaler: \(error)")
            throw KScalerExit.invalidConfig
        }
    }
}
