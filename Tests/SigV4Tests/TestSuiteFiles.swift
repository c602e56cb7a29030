#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SigV4
import Testing

/// One case of the public SigV4 test suite in `../shared/sigv4-test-suite` (see its README.md):
/// the request to sign, how to sign it, and the expected result of every stage.
struct SuiteCase: Sendable, CustomTestStringConvertible {
    /// The case folder relative to the suite folder, e.g. `normalize-path/get-slash`.
    let id: String
    let request: SigningRequest
    let signer: SigV4Signer
    let date: Date
    let canonicalRequest: String
    let stringToSign: String
    let signature: String
    let authorization: String
    /// The headers of the expected signed request, without `Authorization` (checked via `authorization`).
    let signedHeaders: [(name: String, value: String)]

    var testDescription: String { id }

    static let classic = Result { try loadClassic() }
    static let awsCAuth = Result { try loadAWSCAuth() }
    static func all() throws -> [SuiteCase] { try classic.get() + awsCAuth.get() }
}

// MARK: - The suite's fixed signing parameters (README "Signing parameters")

private let accessKeyID = "AKIDEXAMPLE"
private let secretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
private let signingDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
private let stsToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
private let vanillaToken = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

struct SuiteFileError: Error, CustomStringConvertible {
    let description: String
}

// MARK: - Locating and loading

/// The suite folder: `shared/sigv4-test-suite` next to the package root or one of its ancestors
/// (`/work/wt-x` + `/work/shared` here, `<dir>/main` + `<dir>/shared` in CI).
func suiteRoot(searchingUpFrom filePath: String = #filePath) throws -> URL {
    var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
    while directory.pathComponents.count > 1 {
        let candidate = directory.appendingPathComponent("shared/sigv4-test-suite")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw SuiteFileError(description: """
        SigV4 test suite not found: no directory above \(filePath) contains shared/sigv4-test-suite. \
        Check out the shared data next to the package (e.g. /work/shared beside /work/main).
        """)
}

private func readText(_ url: URL) throws -> String {
    String(decoding: try Data(contentsOf: url), as: UTF8.self)
}

/// The classic set: every folder holding `<name>.req`, with `.creq`, `.sts`, `.authz`, `.sreq`.
private func loadClassic() throws -> [SuiteCase] {
    let root = try suiteRoot()
    let ids = try FileManager.default.subpathsOfDirectory(atPath: root.path)
        .filter { $0.hasSuffix(".req") }
        .map { $0.split(separator: "/").dropLast().joined(separator: "/") }  // the case folder
        .sorted()
    return try ids.map { id in
        let folder = root.appendingPathComponent(id)
        let name = folder.lastPathComponent
        let file = { (ext: String) in try readText(folder.appendingPathComponent("\(name).\(ext)")) }
        let authorization = try file("authz")
        guard let signature = authorization.components(separatedBy: "Signature=").last, signature.count == 64 else {
            throw SuiteFileError(description: "\(id).authz has no 64-hex Signature=")
        }
        // Tokens: README "Signing parameters"; post-sts-header-after signs without the token.
        let token = id.hasPrefix("post-sts-token/") ? stsToken : id == "get-vanilla-with-session-token" ? vanillaToken : nil
        let signer = SigV4Signer(
            credentials: Credentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: token),
            region: "us-east-1", service: "service",
            signSessionToken: id != "post-sts-token/post-sts-header-after")
        return SuiteCase(
            id: id, request: try parseRequest(file("req"), id: id), signer: signer, date: signingDate,
            canonicalRequest: try file("creq"), stringToSign: try file("sts"),
            signature: String(signature), authorization: authorization,
            signedHeaders: try parseRequest(file("sreq"), id: id).headers.filter { $0.name.lowercased() != "authorization" })
    }
}

/// `context.json` of an aws-c-auth case.
private struct Context: Decodable {
    struct Credentials: Decodable { let accessKeyId: String; let secretAccessKey: String; let token: String? }
    let credentials: Credentials
    let region: String
    let service: String
    let timestamp: String
    let normalize: Bool
    let signBody: Bool
    let omitSessionToken: Bool?
}

/// The aws-c-auth v4 set, header variant: every folder of `aws-c-auth-v4` holding `context.json`.
private func loadAWSCAuth() throws -> [SuiteCase] {
    let root = try suiteRoot().appendingPathComponent("aws-c-auth-v4")
    let names = try FileManager.default.contentsOfDirectory(atPath: root.path)
        .filter { FileManager.default.fileExists(atPath: root.appendingPathComponent("\($0)/context.json").path) }
        .sorted()
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try names.map { name in
        let id = "aws-c-auth-v4/\(name)"
        let file = { (fileName: String) in try readText(root.appendingPathComponent("\(name)/\(fileName)")) }
        let context = try decoder.decode(Context.self, from: Data(file("context.json").utf8))
        let signer = SigV4Signer(
            credentials: Credentials(accessKeyID: context.credentials.accessKeyId,
                                     secretAccessKey: context.credentials.secretAccessKey,
                                     sessionToken: context.credentials.token),
            region: context.region, service: context.service,
            normalizePath: context.normalize, signContentSHA256: context.signBody,
            signSessionToken: !(context.omitSessionToken ?? false))
        let signedRequest = try parseRequest(file("header-signed-request.txt"), id: id)
        guard let authorization = signedRequest.headers.first(where: { $0.name == "Authorization" })?.value else {
            throw SuiteFileError(description: "\(id)/header-signed-request.txt has no Authorization header")
        }
        return SuiteCase(
            id: id, request: try parseRequest(file("request.txt"), id: id), signer: signer,
            date: try Date(context.timestamp, strategy: .iso8601),
            canonicalRequest: try file("header-canonical-request.txt"),
            stringToSign: try file("header-string-to-sign.txt"),
            signature: try file("header-signature.txt"), authorization: authorization,
            signedHeaders: signedRequest.headers.filter { $0.name != "Authorization" })
    }
}

// MARK: - Parsing the suite's HTTP/1.1 request files

/// Parses a `.req`-style request: `METHOD SP target SP HTTP/1.1`, then `Name:value` lines (a line
/// starting with whitespace continues the previous value, kept as sent: `\n` plus the line), then
/// after an empty line the body. LF line endings, final newline optional.
///
/// The method runs to the first space and the version starts after the last one, so a path with a
/// space (`/example space/`) survives. Query names and values are percent-decoded, as the signer
/// takes decoded pairs.
func parseRequest(_ text: String, id: String) throws -> SigningRequest {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let requestLine = lines[0]
    guard let firstSpace = requestLine.firstIndex(of: " "), let lastSpace = requestLine.lastIndex(of: " "),
          firstSpace < lastSpace
    else { throw SuiteFileError(description: "\(id): bad request line \(requestLine)") }
    let target = requestLine[requestLine.index(after: firstSpace)..<lastSpace]
    let path = target.prefix { $0 != "?" }
    let queryString = target.dropFirst(path.count + 1)

    var query: [(name: String, value: String)] = []
    for pair in queryString.split(separator: "&") {
        let name = pair.prefix { $0 != "=" }
        query.append((name: try percentDecoded(name, id: id), value: try percentDecoded(pair.dropFirst(name.count + 1), id: id)))
    }

    var headers: [(name: String, value: String)] = []
    var index = 1
    while index < lines.count, !lines[index].isEmpty {
        let line = lines[index]
        if line.first == " " || line.first == "\t", !headers.isEmpty {
            headers[headers.count - 1].value += "\n" + line
        } else if let colon = line.firstIndex(of: ":") {
            headers.append((name: String(line[..<colon]), value: String(line[line.index(after: colon)...])))
        } else {
            throw SuiteFileError(description: "\(id): bad header line \(line)")
        }
        index += 1
    }
    let body = lines.dropFirst(index + 1).joined(separator: "\n")
    return SigningRequest(method: String(requestLine[..<firstSpace]), path: String(path), query: query,
                          headers: headers, body: Data(body.utf8))
}

/// `%XX` sequences decoded to bytes, then read as UTF-8; everything else (including `+`) kept.
private func percentDecoded(_ text: Substring, id: String) throws -> String {
    var bytes: [UInt8] = []
    var rest = text.utf8[...]
    while let byte = rest.popFirst() {
        guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
        guard rest.count >= 2, let decoded = UInt8(String(decoding: rest.prefix(2), as: UTF8.self), radix: 16) else {
            throw SuiteFileError(description: "\(id): bad percent-encoding in \(text)")
        }
        bytes.append(decoded)
        rest = rest.dropFirst(2)
    }
    return String(decoding: bytes, as: UTF8.self)
}
