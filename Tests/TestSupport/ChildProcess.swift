import Foundation

/// Starting real peers (Prometheus, exporters, kscaler itself) from async tests.
public enum ChildProcess {
    /// Starts `executable`. A child inherits the spawning thread's signal mask, and Swift's
    /// concurrency threads block SIGTERM: the mask is emptied just for the spawn, or the child
    /// would ignore `terminate()` (and kscaler could not be tested with SIGTERM at all).
    public static func launch(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                              stdout: Any? = nil, stderr: Any? = nil, stdin: Any? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = stdout ?? FileHandle.nullDevice
        process.standardError = stderr ?? FileHandle.nullDevice
        process.standardInput = stdin ?? FileHandle.nullDevice
        var empty = sigset_t(), previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
        return process
    }

    /// Starts `executable` with stdout and stderr going to `log` (created empty).
    public static func launch(_ executable: String, _ arguments: [String], log: URL, stdin: Any? = nil) throws -> Process {
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw TestSupportError("cannot create \(log.path)")
        }
        let handle = try FileHandle(forWritingTo: log)
        return try launch(executable, arguments, stdout: handle, stderr: handle, stdin: stdin)
    }

    /// Terminates, waits up to `grace`, then SIGKILLs (the process and its process group).
    public static func stop(_ process: Process, grace: Duration = .seconds(5)) async {
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(-process.processIdentifier, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
        }
    }

    /// Polls a log file (`timeout` at most) for the first line satisfying `matches`.
    public static func firstLine(of file: URL, timeout: Duration = .seconds(10), what: String,
                                 matching matches: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { matches(String($0)) }) { return String(line) }
            try await Task.sleep(for: .milliseconds(20))
        }
        let log = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        throw TestSupportError("did not see \(what) within \(timeout); output so far:\n\(log.suffix(2_000))")
    }

    public static func temporaryDirectory(_ prefix: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
