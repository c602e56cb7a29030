import SigV4
import Testing

/// Every case of both sets of the public SigV4 test suite, checked stage by stage. Each stage gets the
/// previous stage's *expected* output, so a failure points at the stage that is wrong.
@Suite("SigV4 test suite (classic + aws-c-auth v4)")
struct TestSuiteTests {
    @Test("all cases were found: 34 classic, 38 aws-c-auth v4")
    func discoversEveryCase() throws {
        let classic = try SuiteCase.classic.get()
        let awsCAuth = try SuiteCase.awsCAuth.get()
        #expect(classic.count == 34)
        #expect(awsCAuth.count == 38)
        #expect(Set((classic + awsCAuth).map(\.id)).count == 72)
    }

    @Test("canonical request", arguments: try SuiteCase.all())
    func canonicalRequest(_ suiteCase: SuiteCase) {
        let canonical = suiteCase.signer.canonicalRequest(for: suiteCase.request, at: suiteCase.date)
        #expect(canonical.text == suiteCase.canonicalRequest)
        let lines = suiteCase.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(canonical.signedHeaders == String(lines[lines.count - 2]))
        #expect(canonical.payloadHash == String(lines[lines.count - 1]))
    }

    @Test("string to sign", arguments: try SuiteCase.all())
    func stringToSign(_ suiteCase: SuiteCase) {
        let stringToSign = suiteCase.signer.stringToSign(canonicalRequest: suiteCase.canonicalRequest, at: suiteCase.date)
        #expect(stringToSign == suiteCase.stringToSign)
    }

    @Test("signature", arguments: try SuiteCase.all())
    func signature(_ suiteCase: SuiteCase) {
        let signer = suiteCase.signer
        let key = SigV4Signer.signingKey(secretAccessKey: signer.credentials.secretAccessKey,
                                         dateStamp: SigV4Signer.dateStamp(suiteCase.date),
                                         region: signer.region, service: signer.service)
        #expect(SigV4Signer.signature(stringToSign: suiteCase.stringToSign, signingKey: key) == suiteCase.signature)
    }

    @Test("signed request: Authorization and headers to send", arguments: try SuiteCase.all())
    func signedRequest(_ suiteCase: SuiteCase) {
        let signed = suiteCase.signer.sign(suiteCase.request, at: suiteCase.date)
        #expect(signed.canonicalRequest == suiteCase.canonicalRequest)
        #expect(signed.stringToSign == suiteCase.stringToSign)
        #expect(signed.signature == suiteCase.signature)
        #expect(signed.authorization == suiteCase.authorization)
        #expect(signed.headers.last?.name == "Authorization")
        #expect(signed.headers.last?.value == signed.authorization)
        // Compared as a set (the expected files order them differently), values without surrounding blanks.
        let sent = comparable(signed.headers.dropLast())
        #expect(sent == comparable(suiteCase.signedHeaders))
        #expect(sent.filter { $0.name == "x-amz-date" }.count == 1)
    }
}

private struct ComparableHeader: Hashable, Comparable, CustomStringConvertible {
    let name: String
    let value: String
    static func < (lhs: Self, rhs: Self) -> Bool { (lhs.name, lhs.value) < (rhs.name, rhs.value) }
    var description: String { "\(name):\(value)" }
}

private func comparable(_ headers: some Sequence<(name: String, value: String)>) -> [ComparableHeader] {
    headers.map {
        let value = $0.value.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed()
        return ComparableHeader(name: $0.name.lowercased(), value: String(value))
    }.sorted()
}
