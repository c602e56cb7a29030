#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
@testable import SigV4
import Testing

private let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
private let token = "FQoGZXIvYXdzEXAMPLE-session-token"
private let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

private func signer(token: String? = token, signContentSHA256: Bool = false) -> SigV4Signer {
    SigV4Signer(credentials: Credentials(accessKeyID: "AKIDTESTKEYNOTREAL01", secretAccessKey: secret, sessionToken: token),
                region: "us-east-1", service: "sts", signContentSHA256: signContentSHA256)
}

@Suite("Secrets stay out of descriptions")
struct RedactionTests {
    @Test func credentialsDescriptionHidesSecretAndToken() {
        let credentials = Credentials(accessKeyID: "AKIDTESTKEYNOTREAL01", secretAccessKey: secret, sessionToken: token)
        let expected = "Credentials(accessKeyID: AKID…AL01, secretAccessKey: <redacted>, sessionToken: <redacted>)"
        #expect(credentials.description == expected)
        #expect(String(reflecting: credentials) == expected)
        #expect(String(describing: signer()).contains("<redacted>"))
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in [credentials.description, String(reflecting: credentials), dumped, String(describing: signer())] {
            #expect(!text.contains(secret) && !text.contains(token) && !text.contains("AKIDTESTKEYNOTREAL01"))
        }
    }

    @Test func credentialsWithoutTokenSayNilAndShortKeysAreHidden() {
        let credentials = Credentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t-value")
        #expect(credentials.description == "Credentials(accessKeyID: <redacted>, secretAccessKey: <redacted>, sessionToken: nil)")
    }

    @Test func signedRequestDescriptionHidesAuthorizationAndToken() {
        let signed = signer().sign(SigningRequest(method: "GET", path: "/", headers: [("Host", "sts.amazonaws.com")]), at: date)
        var dumped = ""
        dump(signed, to: &dumped)
        for text in [signed.description, String(reflecting: signed), dumped] {
            #expect(text.contains("Host: sts.amazonaws.com"))
            #expect(!text.contains(token) && !text.contains(signed.signature))
        }
    }
}

@Suite("Canonical forms")
struct CanonicalFormTests {
    @Test func headerValuesAreTrimmedAndWhitespaceRunsCollapsed() {
        let (block, signedHeaders) = canonicalHeaders(
            [("X-Spaces", "  a   b \t c  "), ("X-Folded", "one\r\n   two\n\tthree"), ("X-Quoted", "\"a   b\""),
             ("Host", " example.com "), ("x-spaces", " second ")],
            isSigned: { _ in true })
        #expect(block == "host:example.com\nx-folded:one two three\nx-quoted:\"a b\"\nx-spaces:a b c,second\n")
        #expect(signedHeaders == "host;x-folded;x-quoted;x-spaces")
    }

    @Test func reservedCharactersArePercentEncodedWithUppercaseHex() {
        #expect(percentEncode("!*'();:@&=+$,/?#[] %") == "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D%20%25")
        #expect(percentEncode("AZaz09-._~") == "AZaz09-._~")
        #expect(percentEncode("ሴ/é") == "%E1%88%B4%2F%C3%A9")
    }

    @Test(arguments: [
        ("", true, "/"), ("", false, "/"), ("/a/b/../c", true, "/a/c"), ("/a/b/..", true, "/a"),
        ("/a/b/../", true, "/a/"), ("/../..", true, "/"), ("/a b/+", true, "/a%20b/%2B"),
        ("/a//b/./", false, "/a//b/./"), ("/a b", false, "/a%20b"),
    ])
    func canonicalURIs(path: String, normalize: Bool, expected: String) {
        #expect(canonicalURI(path: path, normalize: normalize) == expected)
    }

    @Test func queryPairsAreEncodedThenSortedByNameThenValue() {
        #expect(canonicalQuery([]) == "")
        let query = canonicalQuery([("b", "2"), ("a b", "x=y"), ("b", "10"), ("a", ""), ("B", "1")])
        #expect(query == "B=1&a=&a%20b=x%3Dy&b=10&b=2")
    }
}

@Suite("Signer")
struct SignerTests {
    @Test func signingKeyMatchesAWSDocumentedExample() {
        let key = SigV4Signer.signingKey(secretAccessKey: secret, dateStamp: "20120215", region: "us-east-1", service: "iam")
        let hex = key.withUnsafeBytes { lowercaseHex($0) }
        #expect(hex == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d")
    }

    @Test func datesAreFormattedInUTCAndTruncatedToTheSecond() {
        #expect(SigV4Signer.amzDate(Date(timeIntervalSince1970: 1_440_938_160.999)) == "20150830T123600Z")
        #expect(SigV4Signer.dateStamp(Date(timeIntervalSince1970: 1_440_979_199)) == "20150830")  // 23:59:59
        #expect(signer().credentialScope(at: date) == "20150830/us-east-1/sts/aws4_request")
    }

    @Test func headersThatProxiesRewriteAreSentButNotSigned() {
        let request = SigningRequest(method: "POST", path: "/", headers: [
            ("Host", "sts.amazonaws.com"), ("User-Agent", "kscaler/1"), ("Expect", "100-continue"),
            ("Connection", "keep-alive"), ("Transfer-Encoding", "chunked"), ("X-Amzn-Trace-Id", "Root=1"),
        ])
        let signed = signer(token: nil).sign(request, at: date)
        #expect(signed.authorization.contains("SignedHeaders=host;x-amz-date,"))
        #expect(signed.headers.map(\.name) == request.headers.map(\.name) + ["X-Amz-Date", "Authorization"])
    }

    @Test func signerOwnedHeadersAreSetOnceAndStaleAuthorizationDropped() {
        let request = SigningRequest(method: "GET", path: "/", headers: [
            ("Host", "sts.amazonaws.com"), ("x-amz-date", "19990101T000000Z"), ("Authorization", "stale"),
            ("X-AMZ-DATE", "19990101T000000Z"), ("x-amz-security-token", "old-token"),
        ])
        let signed = signer().sign(request, at: date)
        #expect(signed.headers.map(\.name) == ["Host", "X-Amz-Date", "X-Amz-Security-Token", "Authorization"])
        #expect(signed.headers[1].value == "20150830T123600Z")
        #expect(signed.headers[2].value == token)
        #expect(signed.canonicalRequest.contains("\nx-amz-security-token:\(token)\n"))
    }

    @Test func sessionTokenCanBeSentUnsigned() {
        let request = SigningRequest(method: "GET", path: "/", headers: [("Host", "sts.amazonaws.com")])
        var unsignedToken = signer()
        unsignedToken.signSessionToken = false
        let signed = unsignedToken.sign(request, at: date)
        #expect(signed.headers.contains { $0.name == "X-Amz-Security-Token" && $0.value == token })
        #expect(!signed.canonicalRequest.contains(token))
        #expect(signed.signature == signer(token: nil).sign(request, at: date).signature)
    }

    @Test func contentSHA256IsAddedAndSignedOrTakenFromTheRequest() {
        let body = Data("Action=GetCallerIdentity".utf8)
        // sha256sum of "Action=GetCallerIdentity", computed outside kscaler.
        let bodyHash = "b4b2eab8379f56ae8a4197079d53323c1523a50007a3c9b1cb4dccb185d6e267"
        let request = SigningRequest(method: "POST", path: "/", headers: [("Host", "sts.amazonaws.com")], body: body)

        let signed = signer(token: nil, signContentSHA256: true).sign(request, at: date)
        #expect(signed.headers.contains { $0.name == "x-amz-content-sha256" && $0.value == bodyHash })
        #expect(signed.canonicalRequest.hasSuffix("x-amz-content-sha256;x-amz-date\n\(bodyHash)"))

        var unsignedPayload = request
        unsignedPayload.headers.append(("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"))
        let canonical = signer(token: nil, signContentSHA256: true).canonicalRequest(for: unsignedPayload, at: date)
        #expect(canonical.payloadHash == "UNSIGNED-PAYLOAD")
        #expect(canonical.text.hasSuffix("\nUNSIGNED-PAYLOAD"))
    }

    @Test func signIsDeterministicAndDependsOnTime() {
        let request = SigningRequest(method: "GET", path: "/", headers: [("Host", "sts.amazonaws.com")])
        #expect(signer().sign(request, at: date).signature == signer().sign(request, at: date).signature)
        #expect(signer().sign(request, at: date).signature != signer().sign(request, at: date + 1).signature)
    }
}

private func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// libcrypto behind `Digest`, checked against published vectors (FIPS 180-2 and RFC 4231), apart
/// from the AWS suite that uses them through every stage of a signature.
@Suite("Digest: SHA-256 and HMAC-SHA256 from libcrypto")
struct DigestTests {
    @Test func sha256MatchesFIPS180Vectors() {
        #expect(lowercaseHex(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(lowercaseHex(Digest.sha256([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(lowercaseHex(Digest.sha256(million)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hmacSHA256MatchesRFC4231() {
        // Test case 1: 20 bytes of 0x0b, "Hi There".
        #expect(lowercaseHex(Digest.hmacSHA256(Array("Hi There".utf8), key: [UInt8](repeating: 0x0b, count: 20)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 6: a 131-byte key, longer than the block, is hashed first.
        #expect(lowercaseHex(Digest.hmacSHA256(Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
                                               key: [UInt8](repeating: 0xaa, count: 131)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func aSigningKeyDescribesNoneOfItsBytes() {
        let key = SigV4Signer.signingKey(secretAccessKey: secret, dateStamp: "20120215", region: "us-east-1", service: "iam")
        #expect(String(describing: key) == "SigningKey(32 bytes, redacted)")
        #expect(!"\(key)".contains("f4780e2d"))
    }
}
