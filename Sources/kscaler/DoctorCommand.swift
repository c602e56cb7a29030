import ArgumentParser
import AWS
import HTTP
import KScaler

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that kscaler can reach what it needs; one line per check.",
        discussion: "Exits 0 only if every check passes, 5 otherwise. Never prints a secret."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "AWS region (overrides AWS_REGION and the profile).")
    var region: String?

    func run() async throws {
        _ = global.makeLogger()
        let environment = AWSEnvironment(variables: ProcessInfo.processInfo.environment)
        let transport = CurlTransport()
        let checks = await Doctor.awsChecks(environment: environment, configuredRegion: region, transport: transport)
        for check in checks {
            print("\(check.passed ? "ok  " : "FAIL") \(ReportPrinter.pad(check.name, 12)) \(check.detail)")
        }
        if checks.contains(where: { !$0.passed }) { throw KScalerExit.checksFailed }
    }
}
