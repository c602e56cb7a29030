import Foundation

/// Starting real peers (Prometheus, exporters, kscaler itself) from async tests.
///
/// Nothing here blocks Swift's cooperative pool, which has one thread per core: on a loaded
/// 2-core machine, one blocked pool thread per test starves every other task, including a
/// readiness poll that then "times out" with the line it waited for already written. Blocking
/// waits (reading a pipe to its end, waiting for an exit) run on threads of their own.
package enum ChildProcess {
    /// Starts `executable` (its environment: `environment`, or this process's). `stdout`,
    /// `stderr` and `stdin` are a `Pipe`, a `FileHandle` or nil (/dev/null).
    package static func launch(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                              stdout: Any? = nil, stderr: Any? = nil, stdin: Any? = nil) throws -> SpawnedProcess {
        try SpawnedProcess(executable, arguments, environment: environment, stdin: stdin, stdout: stdout, stderr: stderr)
    }

    /// Starts `executable` with stdout and stderr going to `log` (created empty).
    package static func launch(_ executable: String, _ arguments: [String], log: URL, stdin: Any? = nil) throws -> SpawnedProcess {
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw TestSupportError("cannot create \(log.path)")
        }
        let handle = try FileHandle(forWritingTo: log)
        return try launch(executable, arguments, stdout: handle, stderr: handle, stdin: stdin)
    }

    /// What a finished child wrote and how it ended.
    package struct Output: Sendable {
        package var status: Int32
        package var stdout: Data
        package var stderr: Data
    }

    /// Drains both pipes while the child runs (so neither fills up and stalls it), waits for
    /// it to exit, and SIGTERMs it (then SIGKILLs it) should it outlive `timeout`. Every
    /// blocking read and wait happens on a thread of its own.
    package static func collect(_ process: SpawnedProcess, stdout: Pipe, stderr: Pipe, timeout: Duration = .seconds(120)) async -> Output {
        async let out = onOwnThread { stdout.fileHandleForReading.readDataToEndOfFile() }
        async let err = onOwnThread { stderr.fileHandleForReading.readDataToEndOfFile() }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if process.isRunning { await stop(process) }
        let status = await onOwnThread { process.waitUntilExit(); return process.terminationStatus }
        return Output(status: status, stdout: await out, stderr: await err)
    }

    /// Terminates, waits up to `grace`, then SIGKILLs (the process and its process group).
    package static func stop(_ process: SpawnedProcess, grace: Duration = .seconds(5)) async {
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(-process.processIdentifier, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
        }
    }

    /// Polls a log file for the first line satisfying `matches`. The bound is generous (a
    /// loaded 2-core machine can take many seconds to start a peer), and the file is read once
    /// more after it passes, so a line written just before the deadline is never missed.
    package static func firstLine(of file: URL, timeout: Duration = .seconds(60), what: String,
                                 matching matches: (String) -> Bool) async throws -> String {
        func find() -> String? {
            let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first(where: { matches(String($0)) }).map(String.init)
        }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = find() { return line }
            try await Task.sleep(for: .milliseconds(20))
        }
        if let line = find() { return line }
        let log = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        throw TestSupportError("did not see \(what) within \(timeout); output so far:\n\(log.suffix(2_000))")
    }

    package static func temporaryDirectory(_ prefix: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}

/// Runs blocking `work` (a pipe read, a `waitUntilExit`, a `popen`) on a new thread and
/// suspends the caller until it is done, leaving the cooperative pool free.
package func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: work()) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

package struct TestSupportError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
