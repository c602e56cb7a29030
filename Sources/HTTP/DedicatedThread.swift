#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs blocking `work` on a fresh thread and suspends the caller until it finishes.
///
/// Swift's cooperative pool has one thread per core; blocking it in `curl_easy_perform`
/// would serialise parallel requests on a 2-core node. Dispatch's global queues are capped
/// the same way, so each exchange gets a detached POSIX thread (tens of microseconds to
/// start, nothing next to a network round trip).
package func runOnDedicatedThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        startDetachedThread { continuation.resume(returning: work()) }
    }
}

private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts `body` on a detached POSIX thread of its own (no pool, so no cap but the system's).
package func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    let context = Unmanaged.passRetained(ThreadBody(body))
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let result = pthread_create(&thread, &attributes, { context in
        Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context.toOpaque())
    if result != 0 {
        // Out of threads: still answer, on the caller's thread, rather than fail the request.
        context.takeRetainedValue().run()
    }
}
