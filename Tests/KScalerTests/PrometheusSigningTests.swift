import Foundation
import HTTP
import SigV4
import Testing
@testable import KScaler

/// SigV4 for Amazon Managed Service for Prometheus (service `aps`): the signer signs the
/// request exactly as it will be sent — host with port, path, query, body.
@Suite struct PrometheusSigningTests {
    let credentials = Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                  sessionToken: "session-token")
    let time = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z

    @Test func aQueryIsSignedForApsWithItsHostPathAndParameters() throws {
        let signer = SigV4RequestSigner(credentials: credentials, region: "eu-west-1", service: "aps")
        let request = HTTPRequest(method: "GET",
                                  url: "https://aps-workspaces.eu-west-1.amazonaws.com:8443/workspaces/ws-1/api/v1/query?query=up%20%3D%3D%201&time=1")
        let signed = try signer.sign(request, at: time)

        let expected = SigV4Signer(credentials: credentials, region: "eu-west-1", service: "aps").sign(
            SigningRequest(method: "GET", path: "/workspaces/ws-1/api/v1/query",
                           query: [("query", "up == 1"), ("time", "1")],
                           headers: [("Host", "aps-workspaces.eu-west-1.amazonaws.com:8443")]),
            at: time)
        #expect(signed.header("Authorization") == expected.authorization)
        #expect(signed.header("Authorization")?.contains("/eu-west-1/aps/aws4_request") == true)
        #expect(signed.header("X-Amz-Date") == "20150830T123600Z")
        #expect(signed.header("X-Amz-Security-Token") == "session-token")
        #expect(signed.url == request.url)
    }

    @Test func aPostBodyIsPartOfTheSignature() throws {
        let signer = SigV4RequestSigner(credentials: credentials, region: "us-east-1", service: "aps")
        func sign(_ body: String) throws -> String? {
            try signer.sign(HTTPRequest(method: "POST", url: "https://aps.example/api/v1/query",
                                        headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")],
                                        body: Data(body.utf8)), at: time).header("Authorization")
        }
        #expect(try sign("query=up") != sign("query=down"))
    }
}

extension HTTPRequest {
    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
}
