import CCurl
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `HTTPTransport` over libcurl's easy interface.
///
/// Safe by construction for a tool that holds cloud credentials: TLS verification is on unless
/// `TLSOptions.insecureSkipVerify` (a kubeconfig's own choice) turns it off, only
/// `http`/`https` are spoken, redirects are never followed
/// (a 3xx is handed back as a response, so a signed request is never replayed elsewhere),
/// and errors name the host but never the query string, headers or body.
///
/// Each exchange blocks a thread while libcurl drives it, so it runs on a thread of its own
/// rather than on Swift's cooperative pool (one thread per core): parallel Prometheus queries
/// really overlap, and a slow peer cannot starve the rest of the run.
///
/// Every exchange is bounded and can be stopped: its timeout is the smaller of its own and the
/// time left before `RequestDeadline.current`, and cancelling the calling task (SIGTERM, a
/// run's deadline) aborts the transfer at once — libcurl's multi interface waits in
/// `curl_multi_poll`, which `curl_multi_wakeup` interrupts from the cancelling thread.
/// Finished handles go back to a small idle pool with their connection cache, so sequential
/// requests to one host reuse one TCP/TLS connection.
package final class CurlTransport: HTTPTransport {
    /// Time allowed to establish a connection (TCP + TLS), whatever the request's own timeout.
    package let connectTimeout: Duration
    /// Time allowed for a whole exchange unless the request sets its own `timeout`.
    package let totalTimeout: Duration
    /// Larger bodies fail with `HTTPError` instead of exhausting a small node's memory.
    package let maxResponseBytes: Int
    /// Whether to offer gzip/deflate/br/zstd; libcurl decodes the body, headers stay as sent.
    package let acceptsCompressedResponses: Bool
    /// CAs to trust, client certificate to present, verification on or off; the same for every
    /// request, so pooled connections never mix identities.
    package let tls: TLSOptions

    private let maxIdleHandles: Int
    private let idleHandles = Mutex<[EasyHandle]>([])

    package init(
        connectTimeout: Duration = .seconds(3),
        totalTimeout: Duration = .seconds(10),
        maxIdleHandles: Int = 8,
        maxResponseBytes: Int = 64 << 20,
        acceptsCompressedResponses: Bool = true,
        tls: TLSOptions = TLSOptions()
    ) {
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.maxIdleHandles = max(0, maxIdleHandles)
        self.maxResponseBytes = max(0, maxResponseBytes)
        self.acceptsCompressedResponses = acceptsCompressedResponses
        self.tls = tls
    }

    /// `tls: TLSOptions(trustedCA: .file(path:))` as callers written before `TLSOptions` spell it.
    package convenience init(connectTimeout: Duration = .seconds(3), totalTimeout: Duration = .seconds(10), maxIdleHandles: Int = 8,
                             maxResponseBytes: Int = 64 << 20, acceptsCompressedResponses: Bool = true, caBundlePath: String?) {
        self.init(connectTimeout: connectTimeout, totalTimeout: totalTimeout, maxIdleHandles: maxIdleHandles, maxResponseBytes: maxResponseBytes,
                  acceptsCompressedResponses: acceptsCompressedResponses,
                  tls: TLSOptions(trustedCA: caBundlePath.map { .file(path: $0) } ?? .system))
    }

    package func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        // A cancelled run starts nothing: the request was never sent.
        try Task.checkCancellation()
        let timeout = Self.timeout(request.timeout ?? totalTimeout, remaining: RequestDeadline.remaining)
        let abort = AbortSignal()
        let result = await withTaskCancellationHandler {
            await runOnDedicatedThread { [self] in
                Result { () throws(HTTPError) in try exchange(request, timeout: timeout, abort: abort) }
            }
        } onCancel: {
            abort.fire()
        }
        return try result.get()
    }

    /// The request's own timeout, cut to what is left before the deadline (`limited`), if that is sooner.
    static func timeout(_ own: Duration, remaining: Duration?) -> (duration: Duration, limited: Bool) {
        guard let remaining, remaining < own else { return (own, false) }
        return (remaining, true)
    }

    // MARK: - Handle pool

    private func checkOutHandle(for host: String) throws(HTTPError) -> EasyHandle {
        if let idle = idleHandles.withLock({ $0.popLast() }) { return idle }
        guard let fresh = EasyHandle() else {
            throw HTTPError(kind: .other, host: host, detail: "libcurl could not create a handle (out of memory?)", requestWasSent: false)
        }
        return fresh
    }

    /// Keeps the handle for the next request if the pool has room: its connections and DNS
    /// cache survive, while `perform` has already cleared its per-request options.
    private func checkIn(_ handle: EasyHandle) {
        idleHandles.withLock { idle in
            if idle.count < maxIdleHandles { idle.append(handle) }
        }
    }

    // MARK: - One exchange

    /// Validates everything that needs no network first, so bad input never opens a socket.
    private func exchange(_ request: HTTPRequest, timeout: (duration: Duration, limited: Bool), abort: AbortSignal) throws(HTTPError) -> HTTPResponse {
        let target = try RequestTarget(request.url)
        try Self.validateMethodAndHeaders(of: request, host: target.displayHost)
        guard curlGlobalInit == CURLE_OK else {
            throw HTTPError(kind: .other, host: target.displayHost, detail: "libcurl failed to initialise (curl error \(curlGlobalInit.rawValue))",
                            requestWasSent: false)
        }
        guard timeout.duration > .zero else {
            throw HTTPError(kind: .timedOut, host: target.displayHost, detail: "the run's deadline passed before the request was sent",
                            requestWasSent: false)
        }
        let handle = try checkOutHandle(for: target.displayHost)
        defer { checkIn(handle) }
        guard abort.attach(handle.multi) else {
            throw HTTPError(kind: .cancelled, host: target.displayHost, detail: "the request was cancelled before it was sent", requestWasSent: false)
        }
        defer { abort.detach() }
        return try perform(request, to: target, on: handle, timeout: timeout, abort: abort)
    }

    private func perform(_ request: HTTPRequest, to target: RequestTarget, on handle: EasyHandle,
                         timeout: (duration: Duration, limited: Bool), abort: AbortSignal) throws(HTTPError) -> HTTPResponse {
        let curl = handle.raw
        let sink = ResponseSink(maxBodyBytes: maxResponseBytes)
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        let headerList = Self.headerList(for: request)
        defer { curl_slist_free_all(headerList) }

        var status = 0, requestBytes = 0
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errorBytes in
            request.body.withUnsafeBytes { body in
                withExtendedLifetime(sink) {
                    // The handle must not keep pointers into this frame once it goes back to the pool.
                    defer { curl_easy_reset(curl) }
                    let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
                    let setup: [CURLcode] = [
                        kscaler_curl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, errorBytes.baseAddress),
                        kscaler_curl_setopt_pointer(curl, CURLOPT_CURLU, UnsafeMutableRawPointer(target.parsed)),
                        kscaler_curl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https"),
                        kscaler_curl_setopt_string(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"),
                        kscaler_curl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0),
                        kscaler_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1),
                        kscaler_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, min(connectTimeout, timeout.duration).wholeMilliseconds),
                        kscaler_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, timeout.duration.wholeMilliseconds),
                        // "" offers every decoder this libcurl has; nil offers none.
                        kscaler_curl_setopt_string(curl, CURLOPT_ACCEPT_ENCODING, acceptsCompressedResponses ? "" : nil),
                        kscaler_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList),
                        kscaler_curl_setopt_callback(curl, CURLOPT_WRITEFUNCTION, ResponseSink.receiveBody),
                        kscaler_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, sinkPointer),
                        kscaler_curl_setopt_callback(curl, CURLOPT_HEADERFUNCTION, ResponseSink.receiveHeader),
                        kscaler_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, sinkPointer),
                        kscaler_curl_setopt_prereq(curl, ResponseSink.beforeSending),
                        kscaler_curl_setopt_pointer(curl, CURLOPT_PREREQDATA, sinkPointer),
                    ] + Self.setTLSOptions(tls, on: curl)
                      + Self.setMethodAndBody(request.method, body: body, on: curl)
                    // A libcurl too old for an option must not quietly run with fewer safeguards.
                    if let refused = setup.first(where: { $0 != CURLE_OK }) { return refused }
                    let code = Self.drive(handle, abort: abort)
                    _ = kscaler_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
                    _ = kscaler_curl_getinfo_long(curl, CURLINFO_REQUEST_SIZE, &requestBytes)
                    return code
                }
            }
        }

        guard code == CURLE_OK else {
            // Bytes of the request went out: the peer may have acted on it (say, launched
            // instances) although no answer came back. Callers tell "not done" from "unknown" by this.
            let sent = requestBytes > 0
            if abort.fired {
                throw HTTPError(kind: .cancelled, host: target.displayHost,
                                detail: "the request was cancelled (the run's deadline or a signal) before its answer arrived", requestWasSent: sent)
            }
            if sink.refusedResend {
                throw HTTPError(kind: .receiveFailed, host: target.displayHost,
                                detail: "the connection closed after the request was sent and before any answer arrived", requestWasSent: true)
            }
            if sink.bodyLimitExceeded {
                throw HTTPError(kind: .receiveFailed, host: target.displayHost,
                                detail: "response body exceeds the limit of \(maxResponseBytes) bytes", requestWasSent: sent)
            }
            let message = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var error = HTTPError(curlCode: code, host: target.displayHost, message: target.redacting(message), requestWasSent: sent)
            if error.kind == .timedOut && timeout.limited {
                error.detail = "the run's deadline came first: " + error.detail
            }
            throw error
        }
        return HTTPResponse(status: status, headers: sink.headers, body: sink.body, reason: sink.reasonPhrase)
    }

    /// Runs the transfer through the handle's multi handle until it is done or `abort` fires.
    /// libcurl enforces the connect and total timeouts itself; the poll wakes at least every
    /// 100 ms anyway, and at once on `curl_multi_wakeup`.
    private static func drive(_ handle: EasyHandle, abort: AbortSignal) -> CURLcode {
        guard curl_multi_add_handle(handle.multi, handle.raw) == CURLM_OK else { return CURLE_FAILED_INIT }
        defer { curl_multi_remove_handle(handle.multi, handle.raw) }
        var running: Int32 = 1
        while true {
            guard curl_multi_perform(handle.multi, &running) == CURLM_OK else { return CURLE_FAILED_INIT }
            var done: Int32 = 0
            let result = kscaler_curl_multi_done_result(handle.multi, &done)
            if done != 0 { return result }
            if running == 0 { return CURLE_FAILED_INIT }  // libcurl said nothing runs, yet reported no result
            if abort.fired { return CURLE_ABORTED_BY_CALLBACK }
            var ready: Int32 = 0
            guard curl_multi_poll(handle.multi, nil, 0, 100, &ready) == CURLM_OK else { return CURLE_FAILED_INIT }
            if abort.fired { return CURLE_ABORTED_BY_CALLBACK }
        }
    }

    /// CA data replaces the system's trust store (libcurl ignores `CAINFO` once `CAINFO_BLOB` is
    /// set; `CAPATH`, which Debian's libcurl sets, is cleared here), as kubectl trusts only the
    /// kubeconfig's CA. Blobs are copied by libcurl and dropped by `curl_easy_reset`.
    private static func setTLSOptions(_ tls: TLSOptions, on curl: UnsafeMutableRawPointer) -> [CURLcode] {
        var results: [CURLcode] = []
        switch tls.trustedCA {
        case .system:
            break
        case .file(let path):
            results.append(kscaler_curl_setopt_string(curl, CURLOPT_CAINFO, path))
        case .pem(let data):
            results += [kscaler_curl_setopt_string(curl, CURLOPT_CAINFO, nil),
                        kscaler_curl_setopt_string(curl, CURLOPT_CAPATH, nil),
                        setBlob(CURLOPT_CAINFO_BLOB, data, on: curl)]
        }
        if let client = tls.clientCertificate {
            results += [kscaler_curl_setopt_string(curl, CURLOPT_SSLCERTTYPE, "PEM"),
                        setBlob(CURLOPT_SSLCERT_BLOB, client.certificatePEM, on: curl),
                        kscaler_curl_setopt_string(curl, CURLOPT_SSLKEYTYPE, "PEM"),
                        setBlob(CURLOPT_SSLKEY_BLOB, client.privateKeyPEM, on: curl)]
        }
        if tls.insecureSkipVerify {
            results += [kscaler_curl_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 0),
                        kscaler_curl_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 0)]
        }
        return results
    }

    private static func setBlob(_ option: CURLoption, _ data: Data, on curl: UnsafeMutableRawPointer) -> CURLcode {
        data.withUnsafeBytes { kscaler_curl_setopt_blob(curl, option, $0.baseAddress, $0.count) }
    }

    /// libcurl picks the method from the body options: GET by default, POST when a body is
    /// set, HEAD with NOBODY; any other verb rides on CUSTOMREQUEST. Methods that carry a body
    /// always send one (maybe empty, so `Content-Length: 0`), as servers may insist on it.
    private static func setMethodAndBody(_ method: String, body: UnsafeRawBufferPointer, on curl: UnsafeMutableRawPointer) -> [CURLcode] {
        if method == "HEAD" && body.isEmpty {
            return [kscaler_curl_setopt_long(curl, CURLOPT_NOBODY, 1)]
        }
        let sendsBody = !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method)
        var results: [CURLcode] = []
        if sendsBody {
            results.append(kscaler_curl_setopt_offset(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            if let bytes = body.baseAddress {
                // Not copied: the bytes stay valid until `curl_easy_perform` returns.
                results.append(kscaler_curl_setopt_pointer(curl, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes)))
            } else {
                // Without any body pointer libcurl would read the body from a callback (stdin).
                results.append(kscaler_curl_setopt_string(curl, CURLOPT_COPYPOSTFIELDS, ""))
            }
        }
        if method != (sendsBody ? "POST" : "GET") {
            results.append(kscaler_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, method))
        }
        return results
    }

    /// The caller's headers in order, plus blanks that stop libcurl from adding its own:
    /// `Expect: 100-continue` costs a round trip; `Content-Type: application/x-www-form-urlencoded`
    /// and `Accept: */*` would be headers nobody asked for.
    private static func headerList(for request: HTTPRequest) -> UnsafeMutablePointer<curl_slist>? {
        var list: UnsafeMutablePointer<curl_slist>?
        func append(_ line: String) { list = curl_slist_append(list, line) }
        let named = Set(request.headers.map { $0.name.lowercased() })
        for header in request.headers {
            // "Name:" would tell libcurl to delete the header; "Name;" sends it with an empty value.
            append(header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)")
        }
        for suppressed in ["Expect", "Content-Type", "Accept"] where !named.contains(suppressed.lowercased()) {
            append("\(suppressed):")
        }
        return list
    }

    /// Rejects what would otherwise be smuggled onto the wire (CR/LF/NUL in a header or method).
    /// Only header *names* appear in the error: values may be credentials.
    private static func validateMethodAndHeaders(of request: HTTPRequest, host: String) throws(HTTPError) {
        guard !request.method.isEmpty, request.method.utf8.allSatisfy(isTokenByte) else {
            throw HTTPError(kind: .other, host: host, detail: "method '\(request.method.prefix(20))' is not a valid HTTP token")
        }
        for header in request.headers {
            guard !header.name.isEmpty, header.name.utf8.allSatisfy(isTokenByte) else {
                throw HTTPError(kind: .other, host: host, detail: "header name '\(header.name.prefix(40))' is not a valid HTTP token")
            }
            guard !header.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw HTTPError(kind: .other, host: host, detail: "value of header '\(header.name)' contains a line break or NUL")
            }
        }
    }

    /// RFC 9110 `tchar`: visible ASCII except separators.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// A libcurl easy handle and the multi handle that drives it (and keeps its connections).
/// Not thread-safe in itself: the transport's pool hands each to exactly one exchange at a
/// time, which is what makes sharing the reference sound; only `curl_multi_wakeup`, which
/// libcurl allows from any thread, is called from elsewhere (see `AbortSignal`).
private final class EasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let multi: UnsafeMutableRawPointer

    init?() {
        guard let raw = curl_easy_init() else { return nil }
        guard let multi = curl_multi_init() else {
            curl_easy_cleanup(raw)
            return nil
        }
        self.raw = raw
        self.multi = multi
    }

    deinit {
        curl_multi_cleanup(multi)
        curl_easy_cleanup(raw)
    }
}

/// Stops one exchange from another thread: `fire()` marks it aborted and wakes its
/// `curl_multi_poll`. The multi handle is reachable only between `attach` and `detach`, under
/// the lock, so a late cancellation never wakes a handle that went back to the pool (or was freed).
private final class AbortSignal: Sendable {
    /// `curl_multi_wakeup` may be called from any thread, which makes the pointer shareable here.
    private struct Multi: @unchecked Sendable { let pointer: UnsafeMutableRawPointer }
    private struct State: Sendable {
        var fired = false
        var multi: Multi?
    }
    private let state = Mutex(State())

    var fired: Bool { state.withLock { $0.fired } }

    /// False when already fired: the exchange must not start.
    func attach(_ multi: UnsafeMutableRawPointer) -> Bool {
        let multi = Multi(pointer: multi)
        return state.withLock { state in
            guard !state.fired else { return false }
            state.multi = multi
            return true
        }
    }

    func detach() { state.withLock { $0.multi = nil } }

    func fire() {
        state.withLock { state in
            state.fired = true
            if let multi = state.multi { _ = curl_multi_wakeup(multi.pointer) }
        }
    }
}

/// `curl_global_init` must run once per process before any handle exists; a global `let`
/// is initialised lazily and exactly once, thread-safely.
private let curlGlobalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

extension Duration {
    /// libcurl reads 0 as "no timeout", so anything shorter than a millisecond becomes 1 ms.
    fileprivate var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        guard seconds < Int64(Int.max / 1000) else { return Int.max }
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
