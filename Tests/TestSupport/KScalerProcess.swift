import Foundation

/// Runs the built `kscaler` binary as a separate process, as cron or a scheduler would.
package enum KScalerProcess {
    package struct Result: Sendable {
        package var status: Int32
        package var stdout: String
        package var stderr: String
        package var combined: String { stdout + stderr }

        package init(_ output: ChildProcess.Output) {
            status = output.status
            stdout = String(decoding: output.stdout, as: UTF8.self)
            stderr = String(decoding: output.stderr, as: UTF8.self)
        }
    }

    /// `KSTEST_BINARY` (the test command sets it to the release build), else the binary next to
    /// the test bundle (`.build/debug/kscaler`).
    package static func binaryPath() throws -> String {
        if let override = ProcessInfo.processInfo.environment["KSTEST_BINARY"] { return override }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("kscaler").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw TestSupportError("kscaler binary not found near \(CommandLine.arguments[0]); run `swift build` first or set KSTEST_BINARY")
    }

    /// Starts kscaler with exactly `environment` (nothing inherited) and returns the process;
    /// output goes to the given pipes.
    package static func start(_ arguments: [String], environment: [String: String], stdout: Pipe, stderr: Pipe) throws -> SpawnedProcess {
        try ChildProcess.launch(try binaryPath(), arguments, environment: environment, stdout: stdout, stderr: stderr)
    }

    /// Runs kscaler to completion (bounded by `timeout`; stopped after it) and collects its output.
    package static func run(_ arguments: [String], environment: [String: String], timeout: Duration = .seconds(60)) async throws -> Result {
        let out = Pipe(), err = Pipe()
        let process = try start(arguments, environment: environment, stdout: out, stderr: err)
        return Result(await ChildProcess.collect(process, stdout: out, stderr: err, timeout: timeout))
    }
}
