import Foundation
import Testing
import TestSupport
@testable import KScaler

/// What the Swift renderer produces is user data cloud-init 22.4 accepts (`cloud-init schema -c`,
/// the Debian package): every kind, with values at their longest, servers with and without the
/// kscaler install section.
@Suite struct UserDataCloudInitTests {
    static let cases: [(kind: UserDataKind, installKscaler: Bool)] = UserDataKind.allCases.flatMap { kind in
        kind.isWorker ? [(kind, false)] : [(kind, false), (kind, true)]
    }

    static func schemaCheck(_ userData: String) async throws -> ExternalTool.Result {
        let directory = try ChildProcess.temporaryDirectory("kscaler-userdata")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("user-data")
        try userData.write(to: file, atomically: true, encoding: .utf8)
        return try await ExternalTool.run("cloud-init", ["schema", "-c", file.path])
    }

    @Test(arguments: cases)
    func cloudInitAcceptsTheRenderedUserData(kind: UserDataKind, installKscaler: Bool) async throws {
        let rendered = try UserDataRenderer.render(kind, UserDataValidationTests.longValueInputs(kind, installKscaler: installKscaler))
        #expect(rendered.utf8.count < UserDataRenderer.ec2Limit)
        let result = try await Self.schemaCheck(rendered)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Valid cloud-config"))
    }

    /// The check above can fail: the same user data with one permission unquoted is refused.
    @Test func cloudInitRefusesBrokenUserData() async throws {
        let rendered = try UserDataRenderer.render(.k3sWorker, UserDataValidationTests.longValueInputs(.k3sWorker))
        let broken = try #require(rendered.firstRange(of: "permissions: '0644'")).lowerBound
        let result = try await Self.schemaCheck(rendered.replacingCharacters(in: broken..<rendered.index(broken, offsetBy: 19), with: "permissions: 644"))
        #expect(result.status == 1)
        #expect((result.stdout + result.stderr).contains("is not of type 'string'"))
    }
}
