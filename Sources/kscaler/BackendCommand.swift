import ArgumentParser
import KScaler
import KScalerCore
import Spawn

struct BackendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backend", abstract: "Check a fleet backend program.", subcommands: [Test.self])

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the exec backend conformance checks against a program (docs/backends/exec.md).",
            discussion: """
            Runs PROG for real under a throwaway cluster id: list, a refused unknown protocol, a dry \
            run, a launch, the same launch again (nothing more may launch), a launch of the missing \
            one, terminate, and terminate again. It launches at most two machines through PROG and \
            terminates them before it ends. Exit 0 when every check passes, 5 when one fails, 2 when \
            PROG cannot be found. Needs no kscaler configuration.
            """)

        @Option(name: .customLong("exec"), parsing: .unconditional, help: ArgumentHelp("The program to check.", valueName: "PROG"))
        var program: String

        @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Its first arguments (the operation is appended).", valueName: "ARGS"))
        var arguments: [String] = []

        @Option(name: .long, help: ArgumentHelp("The machine type to launch (default: the program's).", valueName: "type"))
        var machineType: String?

        @Option(name: .long, help: ArgumentHelp("The placement to launch in (default: the program's).", valueName: "placement"))
        var placement: String?

        @Option(name: .long, help: ArgumentHelp("Longest one call may take, in seconds.", valueName: "seconds"))
        var timeout: Double = ExecBackendSettings.defaultTimeout

        @Option(name: .long, help: "Output: human or json.") var output: OutputFormat = .human

        func run() async throws {
            let environment = processEnvironment()
            guard let resolved = BoundedProcess.resolve(program, path: environment["PATH"] ?? ""), BoundedProcess.isExecutable(resolved) else {
                printError("kscaler: \(program) was not found or is not executable. Fix: give the program's path.")
                throw KScalerExit.invalidConfig
            }
            let suffix = Runtime.newRunID()
            let conformance = ExecConformance(command: [program] + arguments, timeout: timeout, clusterID: "kscaler-conformance-\(suffix)",
                                              machineType: machineType, placement: placement, environment: environment,
                                              launchID: "conformance-\(suffix)")
            let checks = await conformance.run()
            let passed = checks.allSatisfy(\.passed)
            if output == .json {
                print(jsonObject(["passed": passed ? "true" : "false", "checks": "[" + checks.map { check in
                    jsonObject(["name": jsonQuoted(check.name), "passed": check.passed ? "true" : "false", "detail": jsonQuoted(check.detail)])
                }.joined(separator: ",") + "]"]))
            } else {
                for check in checks { print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
                print(passed ? "\(program) passes the exec backend protocol checks" : "\(program) fails \(checks.count(where: { !$0.passed })) check(s)")
            }
            if !passed { throw KScalerExit.checksFailed }
        }

        private func jsonObject(_ fields: KeyValuePairs<String, String>) -> String {
            "{" + fields.map { "\(jsonQuoted($0.key)):\($0.value)" }.joined(separator: ",") + "}"
        }
    }
}
