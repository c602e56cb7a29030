import Foundation
import HTTP
import Testing
import TestSupport

/// The stand-in API server as the Swift tests start it: seeded, read back, faulted, stopped.
@Suite struct KubeAPIProcessTests {
    @Test(.timeLimit(.minutes(2)))
    func startsSeedsReadsBackAndStops() async throws {
        let api = try await KubeAPIProcess.start()
        do {
            #expect(api.server == "https://127.0.0.1:\(api.port)")
            #expect(!api.token.isEmpty)
            for file in [api.caFile, api.clientCertFile, api.clientKeyFile, api.kubeconfigToken, api.kubeconfigCert, api.kubeconfigCertFiles] {
                #expect(FileManager.default.fileExists(atPath: file))
            }
            try await api.seed(json: """
                {"nodes": [{"name": "i-0abc", "provider_id": "aws:///us-east-1a/i-0abc", "ready": true, "labels": {"pool": "w"}}],
                 "pods": [], "pdbs": []}
                """)
            #expect(try await api.nodeNames() == ["i-0abc"])
            let nodes = try await api.state()["nodes"] as? [[String: Any]] ?? []
            #expect((nodes.first?["spec"] as? [String: Any])?["providerID"] as? String == "aws:///us-east-1a/i-0abc")

            let node = try await api.request("GET", "/api/v1/nodes/i-0abc")
            #expect(node.status == 200)
            let missing = try await api.request("GET", "/api/v1/nodes/i-0nope")
            #expect(missing.status == 404)
            #expect(String(decoding: missing.body, as: UTF8.self).contains(#"nodes \"i-0nope\" not found"#))

            try await api.injectFaults(json: #"[{"method": "DELETE", "path_regex": "^/api/v1/nodes/", "status": 500, "body": "garbage", "times": 1}]"#)
            let faulted = try await api.request("DELETE", "/api/v1/nodes/i-0abc")
            #expect(faulted.status == 500 && String(decoding: faulted.body, as: UTF8.self) == "garbage")
            try await api.clearFaults()

            try await api.setPermissions(json: #"{"system:serviceaccount:kube-system:kscaler": [{"verb": "delete", "group": "", "resource": "nodes"}]}"#)
            let denied = try await api.request("DELETE", "/api/v1/nodes/i-0abc")
            #expect(denied.status == 403)
            try await api.setPermissions(json: "{}")
            let deleted = try await api.request("DELETE", "/api/v1/nodes/i-0abc")
            #expect(deleted.status == 200)
            #expect(try await api.nodeNames() == [])
        } catch {
            await api.stop()
            throw error
        }
        await api.stop()
        // Stopped: nothing listens on its port any more.
        let error = await #expect(throws: HTTPError.self) {
            _ = try await CurlTransport(connectTimeout: .seconds(2), totalTimeout: .seconds(5))
                .send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(api.port)/version"))
        }
        #expect(error?.kind == .couldNotConnect)
    }
}
