// What the client logs at debug level: each request's method, path, status and time; never a
// header, query string, body or credential.
import Foundation
import HTTP
import Kubernetes
import TestSupport
import Testing

@Suite struct KubernetesClientLoggingTests {
    @Test func eachRequestIsOneDebugLineWithoutHeadersOrQuery() async throws {
        let log = CapturedLog()
        let transport = ScriptedTransport(json: listJSON(kind: "PodList", items: []))
        let kube = try KubernetesClient(endpoint: KubernetesEndpoint(server: testServer, auth: .bearerToken(testToken)),
                                        transport: transport, logger: log.logger())
        _ = try await kube.listPods(nodeName: "secret-node-name-in-query")
        let record = try #require(log.records("kubernetes request").first)
        #expect(record.level == .debug)
        #expect(record.metadata["method"] == "GET")
        #expect(record.metadata["path"] == "/api/v1/pods")
        #expect(record.metadata["status"] == "200")
        #expect(record.metadata["bytes"] != nil)
        #expect(Double(record.metadata["elapsed_ms"] ?? "") != nil)
        #expect(!log.text.contains(testToken))
        #expect(!log.text.contains("secret-node-name-in-query"))
        #expect(!log.text.contains("Bearer"))
    }

    @Test func aFailedExchangeIsLoggedWithItsReason() async throws {
        let log = CapturedLog()
        let transport = ScriptedTransport { _, _ in throw HTTPError(kind: .couldNotConnect, host: "kube.test:6443", detail: "connection refused") }
        let kube = try KubernetesClient(endpoint: KubernetesEndpoint(server: testServer, auth: .bearerToken(testToken)),
                                        transport: transport, logger: log.logger())
        _ = await kubernetesError { _ = try await kube.getNode(name: "n1") }
        let record = try #require(log.records("kubernetes request failed").first)
        #expect(record.metadata["path"] == "/api/v1/nodes/n1")
        #expect(record.metadata["reason"]?.contains("connection refused") == true)
        #expect(!log.text.contains(testToken))
    }

    @Test func anExecPluginRunIsLoggedWithoutItsToken() async throws {
        let scratch = try ScratchDirectory()
        _ = try writePlugin(scratch)
        let path = try scratch.write("kubeconfig", kubeconfigYAML(cluster: "server: https://10.0.0.1:6443", user: execUser(command: "kube-plugin")))
        let endpoint = try KubernetesEndpointResolver(environment: ["PATH": "\(scratch.path)/bin:/usr/bin:/bin"], homeDirectory: scratch.path)
            .fromKubeconfig(path: path)
        let log = CapturedLog()
        let kube = try KubernetesClient(endpoint: endpoint, transport: ScriptedTransport(json: #"{"gitVersion":"v1"}"#), logger: log.logger())
        _ = try await kube.version()
        let record = try #require(log.records("kubernetes exec plugin ran").first)
        #expect(record.metadata["command"] == "\(scratch.path)/bin/kube-plugin")
        #expect(record.metadata["expires"] == "never")
        #expect(!log.text.contains("exec-token"))
    }
}
