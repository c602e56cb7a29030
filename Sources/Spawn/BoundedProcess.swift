#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs a program to completion, bounded in time and output: the Kubernetes exec credential
/// plugins and the `exec` fleet backend's programs.
///
/// Spawning, feeding its stdin, reading its pipes and waiting for it all block, so the whole
/// run happens on a thread of its own (`runOnDedicatedThread`), never on Swift's cooperative
/// pool. The child gets stdin from the given bytes (or /dev/null), an empty signal mask and
/// default signal handlers (Swift's threads block SIGTERM, which a child would otherwise
/// inherit), and a process group of its own, so a program that outlives the timeout is ended
/// with everything it started.
package enum BoundedProcess {
    package struct Output: Sendable {
        package enum Ending: Sendable, Equatable {
            case exited(Int32)
            case signalled(Int32)
            case timedOut
            /// The calling task was cancelled; the plugin was killed.
            case cancelled
        }
        package var ending: Ending
        package var stdout: Data
        package var stderr: Data
    }

    /// Output beyond these is read and dropped: an ExecCredential or a fleet answer is a few kilobytes.
    package static let maxStdoutBytes = 1 << 20
    package static let maxStderrBytes = 64 << 10

    /// - Parameters:
    ///   - stdin: written to the child's stdin, which is then closed; nil: /dev/null.
    ///   - terminationGrace: on timeout or cancellation the process group gets SIGTERM, and
    ///     SIGKILL this long after (zero: SIGKILL at once).
    /// - Returns: The output, or the `errno` of a failed spawn (no such file, not executable).
    package static func run(executable: String, arguments: [String], environment: [String: String], stdin: Data? = nil,
                            timeout: Duration, terminationGrace: Duration = .zero) async -> Result<Output, SpawnError> {
        let cancelled = CancelFlag()
        return await withTaskCancellationHandler {
            await runOnDedicatedThread {
                runBlocking(executable: executable, arguments: arguments, environment: environment, stdin: stdin, timeout: timeout,
                            grace: terminationGrace, cancelled: cancelled)
            }
        } onCancel: {
            cancelled.set()
        }
    }

    /// Set from the cancelling thread, read by the plugin's.
    private final class CancelFlag: Sendable {
        private let flag = Mutex(false)
        func set() { flag.withLock { $0 = true } }
        var isSet: Bool { flag.withLock { $0 } }
    }

    package struct SpawnError: Error, Sendable {
        package var code: Int32
        package var reason: String { String(cString: strerror(code)) }
    }

    /// The file `command` names: itself when it holds a `/`, else the first executable of that
    /// name on `path` (a `PATH` value); nil when there is none.
    package static func resolve(_ command: String, path: String) -> String? {
        if command.contains("/") { return command }
        for directory in path.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = "\(directory)/\(command)"
            if isExecutable(candidate) { return candidate }
        }
        return nil
    }

    /// A regular file this process may execute.
    package static func isExecutable(_ file: String) -> Bool {
        var status = stat()
        return stat(file, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG && access(file, X_OK) == 0
    }

    private static func runBlocking(executable: String, arguments: [String], environment: [String: String], stdin input: Data?,
                                    timeout: Duration, grace: Duration, cancelled: CancelFlag) -> Result<Output, SpawnError> {
        var stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1], stdinPipe: [Int32] = [-1, -1]
        guard pipe(&stdoutPipe) == 0 else { return .failure(SpawnError(code: errno)) }
        guard pipe(&stderrPipe) == 0 else {
            let code = errno
            stdoutPipe.forEach { close($0) }
            return .failure(SpawnError(code: code))
        }
        if input != nil, pipe(&stdinPipe) != 0 {
            let code = errno
            (stdoutPipe + stderrPipe).forEach { close($0) }
            return .failure(SpawnError(code: code))
        }
        // Close-on-exec, so no other child spawned meanwhile keeps a write end open.
        for fd in stdoutPipe + stderrPipe + stdinPipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input != nil {
            posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        // dup2 clears close-on-exec on the copies; the originals close at exec.
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        // Nothing else of kscaler's (its connection to the API server, files being written)
        // reaches the plugin, whichever descriptor lacks close-on-exec.
        _ = addCloseFrom?(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        var pid = pid_t()
        var spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        // "Text file busy": the program is open for writing somewhere (being replaced, or a file
        // just written whose descriptor another process's spawn inherited for a moment).
        for attempt in 1...5 where spawned == ETXTBSY {
            usleep(useconds_t(20_000 * attempt))
            spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        close(stdoutPipe[1])
        close(stderrPipe[1])
        if input != nil { close(stdinPipe[0]) }
        guard spawned == 0 else {
            close(stdoutPipe[0])
            close(stderrPipe[0])
            if input != nil { close(stdinPipe[1]) }
            return .failure(SpawnError(code: spawned))
        }
        defer {
            close(stdoutPipe[0])
            close(stderrPipe[0])
        }
        // The request is written as the child reads it, between reads of its output, so a child
        // that answers before reading everything never deadlocks against kscaler.
        var pending = input.map { [UInt8]($0)[...] } ?? []
        var stdinOpen = input != nil
        if stdinOpen {
            // A child that exits without reading makes the write fail with EPIPE; the SIGPIPE
            // that comes with it is blocked on this thread (its own) and taken off below,
            // rather than ending kscaler.
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            _ = fcntl(stdinPipe[1], F_SETFL, fcntl(stdinPipe[1], F_GETFL) | O_NONBLOCK)
            if pending.isEmpty { close(stdinPipe[1]); stdinOpen = false }
        }
        defer { if stdinOpen { close(stdinPipe[1]) } }

        var stdout = Data(), stderr = Data()
        let deadline = ContinuousClock.now + timeout
        var open = [stdoutPipe[0], stderrPipe[0]]
        var status: Int32 = 0
        var exited = false
        // Read until both pipes close. A child that exits but leaves a child holding its
        // stdout is not waited for: once it has exited, what is already in the pipes is read
        // and the rest ignored.
        func killed(_ ending: Output.Ending) -> Result<Output, SpawnError> {
            if grace > .zero, !exited {
                // SIGTERM first, so a program can clean up (or record what it started).
                kill(-pid, SIGTERM)
                let hardDeadline = ContinuousClock.now + grace
                while ContinuousClock.now < hardDeadline, waitpid(pid, &status, WNOHANG) == 0 { usleep(10_000) }
                if waitpid(pid, &status, WNOHANG) != 0 { exited = true }
            }
            kill(-pid, SIGKILL)
            if !exited { kill(pid, SIGKILL) }
            if !exited { _ = waitpid(pid, &status, 0) }
            return .success(Output(ending: ending, stdout: stdout, stderr: stderr))
        }
        while !open.isEmpty {
            if cancelled.isSet { return killed(.cancelled) }
            if ContinuousClock.now >= deadline { return killed(.timedOut) }
            if !exited, waitpid(pid, &status, WNOHANG) == pid { exited = true }
            if stdinOpen {
                let written = pending.withUnsafeBytes { write(stdinPipe[1], $0.baseAddress, $0.count) }
                if written > 0 { pending = pending.dropFirst(written) }
                // Done, or the child closed its stdin (EPIPE): either way nothing more goes in.
                if written < 0 && errno == EPIPE {
                    var pipeSignal = sigset_t(), timeout = timespec(tv_sec: 0, tv_nsec: 0)
                    sigemptyset(&pipeSignal)
                    sigaddset(&pipeSignal, SIGPIPE)
                    _ = sigtimedwait(&pipeSignal, nil, &timeout)
                }
                if pending.isEmpty || (written < 0 && errno != EAGAIN && errno != EINTR) {
                    close(stdinPipe[1])
                    stdinOpen = false
                }
            }
            var descriptors = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Short waits, so the deadline and the child's exit are noticed within 50 ms.
            let ready = poll(&descriptors, nfds_t(descriptors.count), exited ? 0 : (stdinOpen ? 5 : 50))
            if ready < 0 && errno != EINTR { break }
            if ready == 0 && exited { break }
            for descriptor in descriptors where descriptor.revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 16 << 10)
                let count = read(descriptor.fd, &chunk, chunk.count)
                if count <= 0 {
                    if count < 0 && errno == EINTR { continue }
                    open.removeAll { $0 == descriptor.fd }
                } else if descriptor.fd == stdoutPipe[0] {
                    if stdout.count < maxStdoutBytes { stdout.append(contentsOf: chunk[..<min(count, maxStdoutBytes - stdout.count)]) }
                } else {
                    if stderr.count < maxStderrBytes { stderr.append(contentsOf: chunk[..<min(count, maxStderrBytes - stderr.count)]) }
                }
            }
        }
        if !exited {
            // Both pipes closed; the child is exiting. Bounded all the same.
            while waitpid(pid, &status, WNOHANG) == 0 {
                if cancelled.isSet { return killed(.cancelled) }
                if ContinuousClock.now >= deadline { return killed(.timedOut) }
                usleep(5_000)
            }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as functions.
        let ending: Output.Ending = (status & 0x7F) == 0 ? .exited((status >> 8) & 0xFF) : .signalled(status & 0x7F)
        return .success(Output(ending: ending, stdout: stdout, stderr: stderr))
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift cannot see (it is
/// declared for _GNU_SOURCE only); nil on a C library without it.
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
private let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: AddCloseFrom.self) }
