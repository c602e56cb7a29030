import Foundation
import HTTP
import Proxmox
import Synchronization
import Testing
import TestSupport

/// The Proxmox client's request shapes and answer decoding, against scripted answers written
/// after Proxmox's API schema (pve-docs api-viewer): the wire form the stand-in cannot vouch for.
@Suite struct ProxmoxClientTests {
    static let secret = "6f0e8b7a-secret-9d1c"

    /// Answers each request with the next scripted response and keeps the requests.
    final class ScriptedTransport: HTTPTransport {
        private let state: Mutex<(answers: [HTTPResponse], requests: [HTTPRequest])>
        init(_ answers: [HTTPResponse]) { state = Mutex((answers, [])) }
        var requests: [HTTPRequest] { state.withLock { $0.requests } }

        func send(_ request: HTTPRequest) async throws -> HTTPResponse {
            try state.withLock { state in
                state.requests.append(request)
                guard !state.answers.isEmpty else { throw HTTPError(kind: .receiveFailed, host: "pve", detail: "no more answers", requestWasSent: true) }
                return state.answers.removeFirst()
            }
        }
    }

    static func json(_ text: String, status: Int = 200, reason: String? = nil) -> HTTPResponse {
        HTTPResponse(status: status, headers: [HTTPHeader("Content-Type", "application/json;charset=UTF-8")], body: Data(text.utf8), reason: reason)
    }

    final class Counter: Sendable {
        let count = Mutex(0)
    }

    func client(_ transport: ScriptedTransport, resolved: Counter? = nil) throws -> ProxmoxClient {
        try ProxmoxClient(url: "https://pve.example:8006/", tokenID: "kscaler@pve!autoscaler",
                          tokenSecret: { resolved?.count.withLock { $0 += 1 }; return Self.secret + "\n" }, transport: transport, pollInterval: .milliseconds(1))
    }

    @Test func cloneIsAFormEncodedPostWithTheTokenHeader() async throws {
        let transport = ScriptedTransport([Self.json(#"{"data":"UPID:pve1:0000A1B2:0001C3D4:65F0A1B2:qmclone:9000:kscaler@pve!autoscaler:"}"#)])
        let task = try await client(transport).clone(
            node: "pve1", vmid: 9000,
            CloneRequest(newID: 101, name: "kscaler-demo-101", target: "pve2", storage: "local-lvm", description: "kscaler-launch-id: ks-1\nx"))
        #expect(task == ProxmoxTask(node: "pve1", upid: "UPID:pve1:0000A1B2:0001C3D4:65F0A1B2:qmclone:9000:kscaler@pve!autoscaler:"))
        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(request.url == "https://pve.example:8006/api2/json/nodes/pve1/qemu/9000/clone")
        #expect(request.headers.contains(HTTPHeader("Authorization", "PVEAPIToken=kscaler@pve!autoscaler=\(Self.secret)")))
        #expect(request.headers.contains(HTTPHeader("Content-Type", "application/x-www-form-urlencoded")))
        #expect(String(decoding: request.body, as: UTF8.self)
                == "newid=101&full=1&name=kscaler-demo-101&target=pve2&storage=local-lvm&description=kscaler-launch-id%3A%20ks-1%0Ax")
    }

    @Test func destroyPurgesTheVMAndItsDisksAndTaskIdsArePathSegments() async throws {
        let upid = "UPID:pve2:00001:00002:65F0A1B2:qmdestroy:101:kscaler@pve!autoscaler:"
        let transport = ScriptedTransport([Self.json(#"{"data":"\#(upid)"}"#), Self.json(#"{"data":{"status":"stopped","exitstatus":"OK"}}"#)])
        let client = try client(transport)
        let task = try await client.destroy(node: "pve2", vmid: 101)
        try await client.wait(for: task, timeout: .seconds(60))
        #expect(transport.requests.map(\.method) == ["DELETE", "GET"])
        #expect(transport.requests[0].url == "https://pve.example:8006/api2/json/nodes/pve2/qemu/101?purge=1&destroy-unreferenced-disks=1")
        #expect(transport.requests[1].url == "https://pve.example:8006/api2/json/nodes/pve2/tasks/\(upid.percentEncodedAllButUnreserved)/status")
        #expect(transport.requests[1].url.contains("UPID%3Apve2%3A"))
    }

    @Test func readsNextIDAsTextAndVMsWithTheirTags() async throws {
        let transport = ScriptedTransport([
            Self.json(#"{"data":"104"}"#),
            Self.json(#"{"data":[{"id":"qemu/104","vmid":104,"node":"pve2","type":"qemu","name":"kscaler-demo-104","status":"running","#
                      + #""template":0,"tags":"kscaler-cluster-demo;kscaler-pool-default","maxcpu":2,"maxmem":4294967296,"uptime":42},"#
                      + #"{"id":"lxc/200","vmid":200,"node":"pve1","type":"lxc","status":"running","template":0},"#
                      + #"{"id":"qemu/9000","vmid":9000,"node":"pve1","type":"qemu","name":"tmpl","status":"stopped","template":1}]}"#),
        ])
        let client = try client(transport)
        #expect(try await client.nextID() == 104)
        let vms = try await client.virtualMachines()
        #expect(transport.requests[1].url == "https://pve.example:8006/api2/json/cluster/resources?type=vm")
        #expect(vms == [ProxmoxVM(vmid: 104, node: "pve2", name: "kscaler-demo-104", status: "running", tags: ["kscaler-cluster-demo", "kscaler-pool-default"],
                                  cores: 2, maxMemory: 4 << 30, uptime: 42),
                        ProxmoxVM(vmid: 9000, node: "pve1", name: "tmpl", status: "stopped", template: true, tags: [])])
    }

    @Test func errorAnswersSayWhatProxmoxSaidWithoutTheSecret() async throws {
        // A parameter check: 400, the reason in the status line, one message per parameter
        // (pve-http-server's shape); one message echoes the header as a hostile proxy might.
        let transport = ScriptedTransport([
            Self.json(#"{"errors":{"tags":"invalid format - invalid characters in tag 'A B'","memory":"saw PVEAPIToken=kscaler@pve!autoscaler=\#(Self.secret)"},"data":null}"#,
                      status: 400, reason: "Parameter verification failed."),
            Self.json(#"{"data":null}"#, status: 401, reason: "authentication failure"),
            HTTPResponse(status: 200, body: Data("<html>proxy</html>".utf8)),
        ])
        let client = try client(transport)
        let parameterError = await #expect(throws: ProxmoxError.self) { try await client.updateConfig(node: "pve1", vmid: 101, [("tags", "A B")]) }
        let text = "\(try #require(parameterError))"
        #expect(text.contains("Proxmox refused PUT /nodes/pve1/qemu/101/config (HTTP 400): Parameter verification failed."))
        #expect(text.contains("tags: invalid format - invalid characters in tag 'A B'"))
        #expect(!text.contains(Self.secret))
        let authError = await #expect(throws: ProxmoxError.self) { try await client.nextID() }
        #expect("\(try #require(authError))".contains("HTTP 401): authentication failure (check fleet.proxmox.token_id"))
        let unreadable = await #expect(throws: ProxmoxError.self) { try await client.nextID() }
        #expect("\(try #require(unreadable))".contains("body is not {\"data\": …} as expected: <html>proxy</html>"))
    }

    @Test func tasksEndingBadlyOrTooLateAreErrors() async throws {
        let task = ProxmoxTask(node: "pve1", upid: "UPID:pve1:1:2:3:qmclone:9000:u:")
        let failing = ScriptedTransport([Self.json(#"{"data":{"status":"running"}}"#),
                                         Self.json(#"{"data":{"status":"stopped","exitstatus":"clone failed: storage 'local-lvm' is full"}}"#)])
        await #expect {
            try await client(failing).wait(for: task, timeout: .seconds(60))
        } throws: { "\($0)" == "Proxmox task UPID:pve1:1:2:3:qmclone:9000:u: failed: clone failed: storage 'local-lvm' is full" }
        let running = ScriptedTransport([Self.json(#"{"data":{"status":"running"}}"#)])
        await #expect {
            try await client(running).wait(for: task, timeout: .zero)
        } throws: { error in
            if case ProxmoxError.taskTimedOut = error { true } else { false }
        }
        let warnings = ScriptedTransport([Self.json(#"{"data":{"status":"stopped","exitstatus":"WARNINGS: 1"}}"#)])
        try await client(warnings).wait(for: task, timeout: .seconds(60))
    }

    @Test func theSecretIsReadOnceAndNeverDescribed() async throws {
        let resolved = Counter()
        let transport = ScriptedTransport([Self.json(#"{"data":"100"}"#), Self.json(#"{"data":"101"}"#)])
        let client = try client(transport, resolved: resolved)
        _ = try await client.nextID()
        _ = try await client.nextID()
        #expect(resolved.count.withLock { $0 } == 1)
        #expect("\(client)" == "ProxmoxClient(https://pve.example:8006/api2/json, token kscaler@pve!autoscaler=<redacted>)")
        #expect(!String(reflecting: client).contains(Self.secret))
        // The newline a secret file ends with is not part of the secret.
        #expect(transport.requests.allSatisfy { $0.headers.contains(HTTPHeader("Authorization", "PVEAPIToken=kscaler@pve!autoscaler=\(Self.secret)")) })
    }

    @Test func unusableSettingsAreRefusedWithTheFix() {
        let transport = ScriptedTransport([])
        #expect { try ProxmoxClient(url: "https://root:pw@pve:8006", tokenID: "a@pve!t", tokenSecret: { "" }, transport: transport) } throws: {
            "\($0)".contains("without credentials") && !"\($0)".contains("pw")
        }
        #expect { try ProxmoxClient(url: "https://pve:8006", tokenID: "a@pve!t=\(Self.secret)", tokenSecret: { "" }, transport: transport) } throws: {
            "\($0)".contains("user@realm!tokenid") && !"\($0)".contains(Self.secret)
        }
        #expect(throws: Never.self) { try ProxmoxClient(url: "https://pve:8006/api2/json", tokenID: "a@pve!t", tokenSecret: { "" }, transport: transport) }
    }
}
