#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Signs requests with AWS Signature Version 4, `Authorization`-header form.
///
/// Pure: credentials and the signing time come in as arguments; no clock, no I/O. Each stage
/// (canonical request → string to sign → signing key → signature) is public so it can be checked
/// on its own against the AWS test suite. Presigned (query-string) URLs are not implemented.
package struct SigV4Signer: Sendable {
    package static let algorithm = "AWS4-HMAC-SHA256"

    /// Headers never signed, even when present: proxies and HTTP clients may add, drop or rewrite
    /// them, the AWS SDKs do not sign them, and botocore-based verifiers (moto) drop them before
    /// checking, so signing them fails there.
    package static let unsignedHeaderNames: Set<String> = [
        "authorization", "connection", "expect", "transfer-encoding", "user-agent", "x-amzn-trace-id",
    ]

    package var credentials: Credentials
    package var region: String
    package var service: String
    /// Remove dot segments and repeated slashes from the path before signing; `false` for S3.
    package var normalizePath: Bool
    /// Add and sign `x-amz-content-sha256` (S3 requires it; other services accept it).
    package var signContentSHA256: Bool
    /// Sign `X-Amz-Security-Token`; with `false` it is still sent but left out of the signature,
    /// as a few services require.
    package var signSessionToken: Bool

    package init(
        credentials: Credentials,
        region: String,
        service: String,
        normalizePath: Bool = true,
        signContentSHA256: Bool = false,
        signSessionToken: Bool = true
    ) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.normalizePath = normalizePath
        self.signContentSHA256 = signContentSHA256
        self.signSessionToken = signSessionToken
    }

    /// Signs `request` as of `date`.
    ///
    /// Returns the headers to send: the request's own (minus any stale `Authorization`) plus
    /// `X-Amz-Date`, `X-Amz-Security-Token` when the credentials carry a token, `x-amz-content-sha256`
    /// when asked for, and `Authorization` last. A header of those names that the request already
    /// has is given the signer's value in place, never added twice.
    package func sign(_ request: SigningRequest, at date: Date) -> SignedRequest {
        let headers = headersToSend(for: request, at: date)
        let canonical = canonicalRequest(method: request.method, path: request.path, query: request.query,
                                         headers: headers, body: request.body)
        let stringToSign = stringToSign(canonicalRequest: canonical.text, at: date)
        let key = Self.signingKey(secretAccessKey: credentials.secretAccessKey,
                                  dateStamp: Self.dateStamp(date), region: region, service: service)
        let signature = Self.signature(stringToSign: stringToSign, signingKey: key)
        let authorization = "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(credentialScope(at: date)), "
            + "SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        return SignedRequest(
            headers: headers + [(name: "Authorization", value: authorization)],
            canonicalRequest: canonical.text,
            stringToSign: stringToSign,
            authorization: authorization,
            signature: signature
        )
    }

    /// Stage 1: the canonical request for `request` as it will be sent (with the headers `sign` adds).
    package func canonicalRequest(for request: SigningRequest, at date: Date) -> CanonicalRequest {
        canonicalRequest(method: request.method, path: request.path, query: request.query,
                         headers: headersToSend(for: request, at: date), body: request.body)
    }

    /// Stage 2: the string to sign: algorithm, timestamp, credential scope, hex SHA-256 of the canonical request.
    package func stringToSign(canonicalRequest: String, at date: Date) -> String {
        [Self.algorithm, Self.amzDate(date), credentialScope(at: date), hexSHA256(Data(canonicalRequest.utf8))]
            .joined(separator: "\n")
    }

    /// `yyyyMMdd/region/service/aws4_request`: what the signing key, and so the signature, is valid for.
    package func credentialScope(at date: Date) -> String {
        "\(Self.dateStamp(date))/\(region)/\(service)/aws4_request"
    }

    /// Stage 3: the signing key, an HMAC-SHA256 chain from `"AWS4" + secret` through the date stamp
    /// (`yyyyMMdd`), region, service and `aws4_request`. It depends only on these, so it is valid a whole day.
    package static func signingKey(secretAccessKey: String, dateStamp: String, region: String, service: String) -> SigningKey {
        var key = Array("AWS4\(secretAccessKey)".utf8)
        for scopePart in [dateStamp, region, service, "aws4_request"] {
            key = Digest.hmacSHA256(Array(scopePart.utf8), key: key)
        }
        return SigningKey(bytes: key)
    }

    /// Stage 4: the signature, lowercase hex HMAC-SHA256 of the string to sign under the signing key.
    package static func signature(stringToSign: String, signingKey: SigningKey) -> String {
        hex(Digest.hmacSHA256(Array(stringToSign.utf8), key: signingKey))
    }

    /// The `X-Amz-Date` form of `date`: `yyyyMMdd'T'HHmmss'Z'` in UTC, e.g. `20150830T123600Z`.
    package static func amzDate(_ date: Date) -> String {
        date.formatted(amzDateStyle)
    }

    /// The credential-scope date of `date`: `yyyyMMdd` in UTC.
    package static func dateStamp(_ date: Date) -> String {
        String(amzDate(date).prefix(8))
    }

    private static let amzDateStyle = Date.ISO8601FormatStyle(
        dateSeparator: .omitted, dateTimeSeparator: .standard, timeSeparator: .omitted, timeZone: .gmt)

    /// The request's headers with the signer's own set: what is both signed and sent.
    private func headersToSend(for request: SigningRequest, at date: Date) -> [(name: String, value: String)] {
        var headers = request.headers.filter { $0.name.lowercased() != "authorization" }
        setHeader("X-Amz-Date", to: Self.amzDate(date), in: &headers)
        if let token = credentials.sessionToken {
            setHeader("X-Amz-Security-Token", to: token, in: &headers)
        }
        if signContentSHA256, !headers.contains(where: { $0.name.lowercased() == "x-amz-content-sha256" }) {
            setHeader("x-amz-content-sha256", to: hexSHA256(request.body), in: &headers)
        }
        return headers
    }

    /// Builds the canonical request from the final headers. A request's own `x-amz-content-sha256`
    /// (e.g. `UNSIGNED-PAYLOAD` for S3) stands in for the body hash, as AWS does when verifying.
    private func canonicalRequest(
        method: String, path: String, query: [(name: String, value: String)],
        headers: [(name: String, value: String)], body: Data
    ) -> CanonicalRequest {
        let payloadHash = headers.first { $0.name.lowercased() == "x-amz-content-sha256" }
            .map { collapsingWhitespace($0.value) } ?? hexSHA256(body)
        let (headerBlock, signedHeaders) = canonicalHeaders(headers) { name in
            !Self.unsignedHeaderNames.contains(name) && (signSessionToken || name != "x-amz-security-token")
        }
        let text = [
            method,
            canonicalURI(path: path, normalize: normalizePath),
            canonicalQuery(query),
            headerBlock,  // ends with "\n", which yields the blank line before the signed-headers list
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        return CanonicalRequest(text: text, signedHeaders: signedHeaders, payloadHash: payloadHash)
    }
}

/// Sets header `name` (compared case-insensitively) to `value`: where the first one was, with any
/// repeats dropped, or appended when absent.
private func setHeader(_ name: String, to value: String, in headers: inout [(name: String, value: String)]) {
    let lowercasedName = name.lowercased()
    let isSameHeader = { (header: (name: String, value: String)) in header.name.lowercased() == lowercasedName }
    let position = headers.firstIndex(where: isSameHeader) ?? headers.endIndex
    headers.removeAll(where: isSameHeader)
    headers.insert((name: name, value: value), at: position)
}

private func hexSHA256(_ data: Data) -> String {
    hex(Digest.sha256(data))
}

/// Lowercase hex of a digest or MAC.
private func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in bytes {
        text += [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
    }
    return String(decoding: text, as: UTF8.self)
}
