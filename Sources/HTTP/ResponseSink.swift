import CCurl

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Collects one response from libcurl's header and body callbacks.
/// Lives on the exchange's thread only; libcurl reaches it through the callbacks' userdata.
final class ResponseSink {
    private(set) var headers: [HTTPHeader] = []
    /// The final status line's reason phrase (`VM 101 is locked (clone)`); nil when empty.
    private(set) var reasonPhrase: String?
    private(set) var body = Data()
    /// Set when the body outgrew `maxBodyBytes` and the transfer was aborted on purpose.
    private(set) var bodyLimitExceeded = false
    /// Set when libcurl was about to send the request a second time, and was stopped.
    private(set) var refusedResend = false
    private var sends = 0
    private let maxBodyBytes: Int

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// `CURLOPT_WRITEFUNCTION`: returning less than given makes libcurl abort with CURLE_WRITE_ERROR.
    static let receiveBody: kscaler_curl_data_cb = { data, size, count, userdata in
        guard let data, let userdata else { return 0 }
        let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        guard sink.body.count + length <= sink.maxBodyBytes else {
            sink.bodyLimitExceeded = true
            return 0
        }
        sink.body.append(UnsafeRawBufferPointer(start: data, count: length).assumingMemoryBound(to: UInt8.self))
        return length
    }

    /// `CURLOPT_PREREQFUNCTION`: called just before the request goes out on a connection.
    /// libcurl re-sends a request on its own when a reused connection closes without an answer
    /// (it assumes the peer dropped an idle connection before reading) — POSTs included, though
    /// the peer may have read and acted on the first one. That second send is refused: the
    /// exchange fails as "sent, no answer", and the caller's retry policy, which knows what an
    /// unanswered conditional write or launch means, decides what to do.
    static let beforeSending: kscaler_curl_prereq_cb = { userdata, _, _, _, _ in
        guard let userdata else { return Int32(CURL_PREREQFUNC_ABORT) }
        let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
        sink.sends += 1
        if sink.sends > 1 {
            sink.refusedResend = true
            return Int32(CURL_PREREQFUNC_ABORT)
        }
        return Int32(CURL_PREREQFUNC_OK)
    }

    /// `CURLOPT_HEADERFUNCTION`: called once per complete header line, status line included.
    static let receiveHeader: kscaler_curl_data_cb = { data, size, count, userdata in
        guard let data, let userdata else { return 0 }
        let sink = Unmanaged<ResponseSink>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        sink.takeHeaderLine(String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self))
        return length
    }

    private func takeHeaderLine(_ rawLine: String) {
        let line = rawLine.trimmingTrailing(where: \.isNewline)  // "\r\n" is one Character
        if line.hasPrefix("HTTP/") {
            // A new status line starts a new response (e.g. the final one after `100 Continue`).
            headers.removeAll(keepingCapacity: true)
            // "HTTP/1.1 500 VM is locked (clone)": what follows the code; HTTP/2 has none.
            let reason = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).dropFirst(2).first
            reasonPhrase = reason.map { String($0).trimmingOWS() }.flatMap { $0.isEmpty ? nil : $0 }
        } else if let first = line.first, first == " " || first == "\t" {
            // Obsolete line folding: the line continues the previous header's value.
            if !headers.isEmpty {
                headers[headers.count - 1].value += " " + line.trimmingOWS()
            }
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingOWS()
            let value = String(line[line.index(after: colon)...]).trimmingOWS()
            if !name.isEmpty { headers.append(HTTPHeader(name, value)) }
        }
    }
}

extension String {
    fileprivate func trimmingTrailing(where isTrimmed: (Character) -> Bool) -> String {
        var end = endIndex
        while end > startIndex, isTrimmed(self[index(before: end)]) { end = index(before: end) }
        return String(self[..<end])
    }

    /// Strips HTTP optional whitespace (spaces and tabs) from both ends.
    fileprivate func trimmingOWS() -> String {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isOWS($0) }), let last = lastIndex(where: { !isOWS($0) }) else { return "" }
        return String(self[first...last])
    }
}
