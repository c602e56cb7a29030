import CCurl

extension HTTPError {
    /// Classifies a failed `curl_easy_perform`. `message` is libcurl's specific text (already
    /// cleared of URL secrets); without it, the generic text for the code is used.
    init(curlCode code: CURLcode, host: String, message: String?, requestWasSent: Bool) {
        let (kind, what) = Self.isTLSAlert(code, message) ? (.tls, "the server refused the TLS session (it may want a client certificate, or not trust the one given)")
            : Self.classify(code)
        let specific = message.flatMap { $0.isEmpty ? nil : $0 } ?? String(cString: curl_easy_strerror(code))
        self.init(kind: kind, host: host, detail: "\(what) (curl error \(code.rawValue): \(specific))", requestWasSent: requestWasSent)
    }

    /// Under TLS 1.3 a server checks the client's certificate after the client's handshake is
    /// done, so a refusal arrives as an alert on the first read (curl error 56, "SSL_read: …
    /// tlsv13 alert certificate required"): a TLS failure no retry cures, not a dropped connection.
    private static func isTLSAlert(_ code: CURLcode, _ message: String?) -> Bool {
        guard code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR, let message else { return false }
        return message.contains("SSL") && message.contains(" alert ")
    }

    private static func classify(_ code: CURLcode) -> (Kind, String) {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            (.couldNotResolveHost, "could not resolve the host name")
        case CURLE_COULDNT_CONNECT:
            (.couldNotConnect, "could not connect")
        case CURLE_OPERATION_TIMEDOUT:
            (.timedOut, "timed out")
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
             CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT, CURLE_USE_SSL_FAILED:
            (.tls, "TLS handshake or certificate verification failed")
        case CURLE_SEND_ERROR, CURLE_SEND_FAIL_REWIND:
            (.sendFailed, "sending the request failed")
        case CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            (.receiveFailed, "the connection failed before the whole response arrived")
        case CURLE_WEIRD_SERVER_REPLY, CURLE_BAD_CONTENT_ENCODING:
            (.other, "the server's reply is not valid HTTP")
        case CURLE_UNSUPPORTED_PROTOCOL:
            // The scheme was checked before sending, so libcurl means the reply here: 7.88
            // reports a reply without a status line ("HTTP/0.9") this way.
            (.other, "the server's reply is not valid HTTP")
        case CURLE_URL_MALFORMAT:
            (.invalidURL, "the URL is malformed")
        default:
            (.other, "the exchange failed")
        }
    }
}
