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

/// Runs a credential plugin to completion, bounded in time and output.
///
/// Spawning, reading its pipes and waiting for it all block, so the whole run happens on a
/// thread of its own (`runOnDedicatedThread`), never on Swift's cooperative pool. The child
/// gets stdin from /dev/null (it is not interactive), an empty signal mask and default signal
/// handlers (Swift's threads block SIGTERM, which a child would otherwise inherit), and a
/// process group of its own, so a plugin that outlives the timeout is killed with everything
/// it started.
enum PluginProcess {
    struct Output: Sendable {
        enum Ending: Sendable, Equatable {
            case exited(Int32)
            case signalled(Int32)
            case timedOut
            /// The calling task was cancelled; the plugin was killed.
            case cancelled
        }
        var ending: Ending
        var stdout: Data
        var stderr: Data
    }

    /// Output beyond these is read and dropped: an ExecCredential is a few kilobytes.
    static let maxStdoutBytes = 1 << 20
    static let maxStderrBytes = 64 << 10

    /// - Returns: The output, or the `errno` of a failed spawn (no such file, not executable).
    static func run(executable: String, arguments: [String], environment: [String: String],
                    timeout: Duration) async -> Result<Output, SpawnError> {
        let cancelled = CancelFlag()
        return await withTaskCancellationHandler {
            await runOnDedicatedThread {
                runBlocking(executable: executable, arguments: arguments, environment: environment, timeout: timeout, cancelled: cancelled)
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

    struct SpawnError: Error, Sendable {
        var code: Int32
        var reason: String { String(cString: strerror(code)) }
    }

    private static func runBlocking(executable: String, arguments: [String], environment: [String: String],
                                    timeout: Duration, cancelled: CancelFlag) -> Result<Output, SpawnError> {
        var stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        guard pipe(&stdoutPipe) == 0 else { return .failure(SpawnError(code: errno)) }
        guard pipe(&stderrPipe) == 0 else {
            let code = errno
            stdoutPipe.forEach { close($0) }
            return .failure(SpawnError(code: code))
        }
        // Close-on-exec, so no other child spawned meanwhile keeps a write end open.
        for fd in stdoutPipe + stderrPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
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
        // "Text file busy": the plugin is open for writing somewhere (being replaced, or a file
        // just written whose descriptor another process's spawn inherited for a moment).
        for attempt in 1...5 where spawned == ETXTBSY {
            usleep(useconds_t(20_000 * attempt))
            spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdoutPipe[0])
            close(stderrPipe[0])
            return .failure(SpawnError(code: spawned))
        }
        defer {
            close(stdoutPipe[0])
            close(stderrPipe[0])
        }

        var stdout = Data(), stderr = Data()
        let deadline = ContinuousClock.now + timeout
        var open = [stdoutPipe[0], stderrPipe[0]]
        var status: Int32 = 0
        var exited = false
        // Read until both pipes close. A plugin that exits but leaves a child holding its
        // stdout is not waited for: once it has exited, what is already in the pipes is read
        // and the rest ignored.
        func killed(_ ending: Output.Ending) -> Result<Output, SpawnError> {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
            if !exited { _ = waitpid(pid, &status, 0) }
            return .success(Output(ending: ending, stdout: stdout, stderr: stderr))
        }
        while !open.isEmpty {
            if cancelled.isSet { return killed(.cancelled) }
            if ContinuousClock.now >= deadline { return killed(.timedOut) }
            if !exited, waitpid(pid, &status, WNOHANG) == pid { exited = true }
            var descriptors = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Short waits, so the deadline and the plugin's exit are noticed within 50 ms.
            let ready = poll(&descriptors, nfds_t(descriptors.count), exited ? 0 : 50)
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
            // Both pipes closed; the plugin is exiting. Bounded all the same.
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
