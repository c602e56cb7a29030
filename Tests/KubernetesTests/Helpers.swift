import Foundation
import HTTP
import Kubernetes
import Synchronization
import TestSupport
import Testing

/// A transport that answers from a script and keeps every request: for request shapes and
/// for every kind of answer, without a network.
final class ScriptedTransport: HTTPTransport {
    private let handler: @Sendable (HTTPRequest, Int) throws -> HTTPResponse
    private let recorded = Mutex<[HTTPRequest]>([])

    /// `handler` gets each request and its number (0 = the first).
    init(_ handler: @escaping @Sendable (HTTPRequest, Int) throws -> HTTPResponse) {
        self.handler = handler
    }

    /// Always the same answer.
    convenience init(status: Int = 200, json: String, headers: [HTTPHeader] = []) {
        self.init { _, _ in HTTPResponse(status: status, headers: headers + [HTTPHeader("Content-Type", "application/json")], body: Data(json.utf8)) }
    }

    var requests: [HTTPRequest] { recorded.withLock { $0 } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let number = recorded.withLock { requests in
            requests.append(request)
            return requests.count - 1
        }
        return try handler(request, number)
    }
}

func json(_ text: String, status: Int = 200, headers: [HTTPHeader] = []) -> HTTPResponse {
    HTTPResponse(status: status, headers: headers + [HTTPHeader("Content-Type", "application/json")], body: Data(text.utf8))
}

let testToken = "s3cr3t-t0ken-abc123"
let testServer = "https://kube.test:6443"

func client(_ transport: any HTTPTransport, auth: KubernetesAuth = .bearerToken(testToken)) throws -> KubernetesClient {
    try KubernetesClient(endpoint: KubernetesEndpoint(server: testServer, auth: auth), transport: transport)
}

/// Path and decoded query parameters of a request URL (in order; repeats kept).
struct SentURL {
    var path: String
    var query: [(String, String)]
    var rawQuery: String

    init(_ url: String) {
        let afterHost = url.dropFirst(testServer.count)
        let parts = afterHost.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts[0])
        rawQuery = parts.count > 1 ? String(parts[1]) : ""
        query = rawQuery.split(separator: "&").map { pair in
            let halves = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { String($0).removingPercentEncoding ?? "?" }
            return (halves[0], halves.count > 1 ? halves[1] : "")
        }
    }

    func parameter(_ name: String) -> String? { query.first { $0.0 == name }?.1 }
}

extension HTTPRequest {
    var sent: SentURL { SentURL(url) }
    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    var jsonBody: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: body) }
}

/// Runs `body` and returns the KubernetesError it throws (recording an issue if it throws
/// none, or another error).
func kubernetesError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> KubernetesError? {
    do {
        try await body()
        Issue.record("expected a KubernetesError, got none", sourceLocation: sourceLocation)
    } catch let error as KubernetesError {
        return error
    } catch {
        Issue.record("expected a KubernetesError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

func kubernetesError(sync body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> KubernetesError? {
    do {
        try body()
        Issue.record("expected a KubernetesError, got none", sourceLocation: sourceLocation)
    } catch let error as KubernetesError {
        return error
    } catch {
        Issue.record("expected a KubernetesError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// A node as the API writes it (trimmed from a k3s v1.30 node).
func nodeJSON(name: String = "ip-10-0-1-5.ec2.internal", uid: String = "6f1c2d3e-0000-4000-8000-000000000001",
              resourceVersion: String = "4711", unschedulable: Bool? = nil, ready: String = "True") -> String {
    """
    {"kind":"Node","apiVersion":"v1",
     "metadata":{"name":"\(name)","uid":"\(uid)","resourceVersion":"\(resourceVersion)",
       "creationTimestamp":"2024-05-01T10:00:00Z",
       "labels":{"kubernetes.io/hostname":"\(name)","node.kubernetes.io/instance-type":"m5.large"},
       "annotations":{"k3s.io/node-args":"[]"},"managedFields":[{"manager":"k3s"}]},
     "spec":{"podCIDR":"10.42.1.0/24","providerID":"aws:///us-east-1a/i-0123456789abcdef0"
       \(unschedulable.map { ",\"unschedulable\":\($0)" } ?? ""),
       "taints":[{"key":"node.kubernetes.io/unschedulable","effect":"NoSchedule","timeAdded":"2024-05-01T11:00:00Z"},
                 {"key":"dedicated","value":"batch","effect":"NoExecute"}]},
     "status":{"capacity":{"cpu":"2","memory":"8023512Ki","pods":"110"},
       "allocatable":{"cpu":"2","memory":"7921112Ki","pods":"110","ephemeral-storage":"19316009748"},
       "conditions":[{"type":"MemoryPressure","status":"False","lastTransitionTime":"2024-05-01T10:00:10Z"},
                     {"type":"Ready","status":"\(ready)","lastHeartbeatTime":"2024-05-01T12:00:00Z",
                      "lastTransitionTime":"2024-05-01T10:00:30Z","reason":"KubeletReady"}],
       "nodeInfo":{"kubeletVersion":"v1.30.4+k3s1"}}}
    """
}

func listJSON(kind: String, items: [String], continueToken: String? = nil) -> String {
    let metadata = continueToken.map { #"{"resourceVersion":"99","continue":"\#($0)"}"# } ?? #"{"resourceVersion":"99"}"#
    return #"{"kind":"\#(kind)","apiVersion":"v1","metadata":\#(metadata),"items":[\#(items.joined(separator: ","))]}"#
}

func statusJSON(code: Int, reason: String, message: String, details: String? = nil) -> String {
    #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"\#(message)","reason":"\#(reason)","code":\#(code)\#(details.map { ",\"details\":\($0)" } ?? "")}"#
}

/// A scratch directory, removed when the value goes away.
final class ScratchDirectory: Sendable {
    let path: String

    init() throws {
        path = try ChildProcess.temporaryDirectory("kscaler-kube").path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ relative: String, _ content: String, executable: Bool = false) throws -> String {
        let full = "\(path)/\(relative)"
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Close-on-exec: a child another test spawns meanwhile must not inherit the descriptor,
        // or running this file as a plugin fails with "Text file busy" while that child lives.
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, executable ? 0o755 : 0o644)
        guard fd >= 0 else { throw TestSupportError("cannot write \(full): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try handle.write(contentsOf: Data(content.utf8))
        try handle.close()
        return full
    }

    func read(_ relative: String) -> String? {
        try? String(contentsOfFile: "\(path)/\(relative)", encoding: .utf8)
    }
}
