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
                      ConfigCommand.self, LeaseCommand.self, HistoryCommand.self, BacktestCommand.self, UserdataCommand.self]
    )
}

/// Options every subcommand shares: logging.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Log format on stderr: plain (for people) or json (JSON lines, for CloudWatch or Loki).")
    var logFormat: LogFormat = .plain

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: LogLevelArgument = .init(.info)
}
