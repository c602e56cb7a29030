import Dispatch
import KScaler
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif
import ArgumentParser
import Synchronization

/// SIGTERM (a container being stopped) and SIGINT (Ctrl-C) cancel the run instead of killing
/// the process, so the evaluator still releases the lease; the run's deadline does the same.
enum SignalHandling {
    private static let received = Atomic<Int32>(0)

    /// Runs `body`; on SIGTERM/SIGINT, cancels it and waits for it to unwind (the evaluator
    /// aborts requests in flight and releases the lease on the way out). `deadline` is a last
    /// resort: the evaluator itself stops its work before it and releases by it; nil (the
    /// `lambda` loop, which bounds each invocation itself) means no deadline.
    ///
    /// The handlers are in place before `body` starts: a signal that came while it was taking
    /// the lease would otherwise kill the process with the lease held.
    static func runCancellingOnSignal<T: Sendable>(deadline: ContinuousClock.Instant?, _ body: @escaping @Sendable () async -> T) async -> T {
        let pending = PendingWork<T>()
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                received.store(signalNumber, ordering: .relaxed)
                pending.cancel()
            }
            source.resume()
            sources.append(source)
        }
        let work = pending.start(body)
        // A signal handled before `start` found no task to cancel: it is cancelled now.
        if received.load(ordering: .relaxed) != 0 { work.cancel() }
        let timer = Task {
            guard let deadline else { return }
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { work.cancel() }
        }
        let result = await work.value
        timer.cancel()
        for source in sources { source.cancel() }
        return result
    }

    /// Whether SIGTERM or SIGINT has come (the `lambda` loop: between invocations it ends cleanly).
    static var signalReceived: Bool { received.load(ordering: .relaxed) != 0 }

    /// 128 + the signal number, the shell convention, when a signal ended the run.
    static func exitCodeForReceivedSignal() -> ExitCode? {
        let signalNumber = received.load(ordering: .relaxed)
        return signalNumber == 0 ? nil : ExitCode(128 + signalNumber)
    }
}

/// The run's task, for a signal handler that may fire before it exists.
private final class PendingWork<T: Sendable>: Sendable {
    private let task = Mutex<Task<T, Never>?>(nil)

    func start(_ body: @escaping @Sendable () async -> T) -> Task<T, Never> {
        let started = Task { await body() }
        task.withLock { $0 = started }
        return started
    }

    func cancel() {
        task.withLock { $0?.cancel() }
    }
}
