import CCurl

/// A request URL as libcurl's own URL parser reads it, so what is checked here is exactly
/// what libcurl will connect to. Rejects anything but absolute `http`/`https` URLs before any
/// network I/O, and remembers which parts may hold secrets so no error ever repeats them.
final class RequestTarget {
    /// The parsed URL (`CURLU *`), handed to libcurl with `CURLOPT_CURLU`.
    let parsed: OpaquePointer
    /// `host` or `host:port` as written in the URL: safe to show, useful to read.
    let displayHost: String
    /// Userinfo, query and fragment: where presigned URLs and tokens live.
    private let secretParts: [String]

    init(_ url: String) throws(HTTPError) {
        guard !url.utf8.contains(0) else {
            throw HTTPError(kind: .invalidURL, host: "", detail: "the URL contains a NUL byte")
        }
        guard let parsed = curl_url() else {
            throw HTTPError(kind: .other, host: "", detail: "libcurl could not allocate a URL handle (out of memory?)")
        }
        self.parsed = parsed  // from here on, deinit frees it whatever is thrown

        let code = curl_url_set(parsed, CURLUPART_URL, url, 0)
        if code == CURLUE_UNSUPPORTED_SCHEME {
            throw HTTPError(kind: .unsupportedScheme, host: "", detail: "the URL's scheme is not supported; use an http:// or https:// URL")
        }
        guard code == CURLUE_OK else {
            let reason = String(cString: curl_url_strerror(code))
            throw HTTPError(kind: .invalidURL, host: "", detail: "the URL is malformed (curl URL error \(code.rawValue): \(reason)); expected an absolute http:// or https:// URL")
        }

        let host = Self.part(CURLUPART_HOST, of: parsed) ?? ""
        let port = Self.part(CURLUPART_PORT, of: parsed)
        displayHost = port.map { "\(host):\($0)" } ?? host
        secretParts = [CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_QUERY, CURLUPART_FRAGMENT]
            .compactMap { Self.part($0, of: parsed) }
            .filter { !$0.isEmpty }

        let scheme = Self.part(CURLUPART_SCHEME, of: parsed) ?? ""
        guard scheme == "http" || scheme == "https" else {
            throw HTTPError(kind: .unsupportedScheme, host: displayHost, detail: "scheme '\(scheme)' is not allowed; only http:// and https:// URLs are")
        }
        guard !host.isEmpty else {
            throw HTTPError(kind: .invalidURL, host: "", detail: "the URL has no host; expected an absolute http:// or https:// URL")
        }
    }

    deinit { curl_url_cleanup(parsed) }

    /// libcurl's error text, unless it happens to quote a secret-bearing part of the URL.
    func redacting(_ message: String) -> String? {
        secretParts.contains { message.contains($0) } ? nil : message
    }

    /// One component as written (still percent-encoded); nil when the URL lacks it.
    private static func part(_ which: CURLUPart, of url: OpaquePointer) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard curl_url_get(url, which, &value, 0) == CURLUE_OK, let value else { return nil }
        defer { curl_free(value) }
        return String(cString: value)
    }
}
