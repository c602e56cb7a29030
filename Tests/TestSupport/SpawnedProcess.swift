import Foundation
import Synchronization

/// A child process started with `posix_spawn`, for the tests' peers and the kscaler binary.
///
/// Not Foundation's `Process`: on Linux its `run()` crashes now and then (a 256-byte over-read
/// of `d_name` while it scans /proc/self/fd, swift-corelibs-foundation#5472, fixed upstream in
/// 2026 but not in this toolchain); a suite that spawns hundreds of children hit it on a loaded
/// CI run. This does what the tests used: the child gets its own process group (so `stop` can
/// kill what it started), an empty signal mask and default handlers (Swift's concurrency threads
/// block SIGTERM, and a child would inherit that), and no descriptor but 0, 1 and 2.
package final class SpawnedProcess: Sendable {
    package let processIdentifier: Int32
    /// The wait status once reaped; nil while it runs.
    private let reaped = Mutex<Int32?>(nil)
    /// The pipes and files given, kept as long as the child (as `Process` keeps them): a peer
    /// started with `stdin: Pipe()` exits when its stdin closes, so the pipe's write end must
    /// live as long as this object. Never read or written here.
    nonisolated(unsafe) private let streams: [AnyObject]

    init(_ executable: String, _ arguments: [String], environment: [String: String]?, stdin: Any?, stdout: Any?, stderr: Any?) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var parentCopies: [FileHandle] = []
        for (target, stream, reading) in [(Int32(0), stdin, true), (1, stdout, false), (2, stderr, false)] {
            switch stream {
            case let pipe as Pipe:
                let end = reading ? pipe.fileHandleForReading : pipe.fileHandleForWriting
                posix_spawn_file_actions_adddup2(&actions, end.fileDescriptor, target)
                parentCopies.append(end)  // the child's end: closed here once spawned, so EOF comes when the child exits
            case let handle as FileHandle:
                posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, target)
            default:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", reading ? O_RDONLY : O_WRONLY, 0)
            }
        }
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

        let variables = environment ?? ProcessInfo.processInfo.environment
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        for end in parentCopies { try? end.close() }
        guard spawned == 0 else {
            throw TestSupportError("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        processIdentifier = pid
        streams = [stdin, stdout, stderr].compactMap { $0 as AnyObject? }.filter { $0 is Pipe || $0 is FileHandle }
    }

    /// Reaps the child without blocking if it has exited.
    package var isRunning: Bool {
        reaped.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            if waitpid(processIdentifier, &raw, WNOHANG) == processIdentifier { status = raw }
            return status == nil
        }
    }

    /// Blocks until the child has exited (polling, so `isRunning` may be asked meanwhile):
    /// call it on a thread of its own (`onOwnThread`), never on the cooperative pool.
    package func waitUntilExit() {
        while isRunning { usleep(5_000) }
    }

    /// The exit code, or 128 + the signal that ended it (as a shell says); -1 while it runs.
    package var terminationStatus: Int32 {
        guard let status = reaped.withLock({ $0 }) else { return -1 }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// The signal that ended it, if one did.
    package var terminationSignal: Int32? {
        guard let status = reaped.withLock({ $0 }), status & 0x7F != 0 else { return nil }
        return status & 0x7F
    }

    /// SIGTERM, as `Process.terminate()`.
    package func terminate() { kill(processIdentifier, SIGTERM) }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), declared for _GNU_SOURCE only,
/// so Swift cannot see it.
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
private let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: AddCloseFrom.self) }
