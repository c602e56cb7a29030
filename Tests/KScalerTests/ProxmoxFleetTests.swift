import Foundation
import HTTP
import KScalerCore
import Logging
import Proxmox
import Testing
import TestSupport
@testable import KScaler

/// The Proxmox fleet against the stateful stand-in of the Proxmox API
/// (infra/local/ksandbox/proxmox.py): which VMs are kscaler's, where clones go, what a crash
/// between two calls leaves and how the next launch finishes it, what is refused, and that
/// the API token's secret shows nowhere.
@Suite struct ProxmoxFleetTests {
    static let cluster = "demo"

    static func pool(_ name: String = "default") -> PoolSettings {
        PoolSettings(workers: WorkerSettings(pool: name, instanceTypes: ["2c-4g"], sizes: ["2c-4g": WorkerSize(cpuCores: 1.9, memoryBytes: 3 << 30)],
                                             join: .defaults(clusterID: cluster)),
                     nodes: NodeBounds(min: 0, max: 10))
    }

    static let offering = Offering(machineType: "2c-4g", placement: nil)

    func fleet(_ api: ProxmoxProcess, protected: Set<String> = [], nodes: [String] = ["pve1", "pve2", "pve3"],
               log: CapturedLog? = nil, secret: String? = nil) throws -> ProxmoxFleet {
        let settings = ProxmoxSettings(url: api.url, tokenID: api.tokenID, tokenSecret: .file(path: api.secretFile), nodes: nodes,
                                       templateVMID: ProxmoxProcess.templateVMID, storage: "local-lvm",
                                       userDataSnippet: "local:snippets/kscaler-worker.yaml", clusterName: "lab", taskTimeout: 120)
        let secretFile = api.secretFile
        return try ProxmoxFleet(settings: settings, clusterID: Self.cluster, pools: [Self.pool(), Self.pool("batch")], protectedMachines: protected,
                                tokenSecret: { try secret ?? String(contentsOfFile: secretFile, encoding: .utf8) },
                                transport: CurlTransport(connectTimeout: .seconds(10), totalTimeout: .seconds(60)),
                                pollInterval: .milliseconds(50), logger: log?.logger(label: "kscaler.proxmox") ?? .init(label: "x", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Starts the stand-in, runs `body`, stops it whatever happens.
    func withProxmox(nodes: String = "pve1:16,pve2:32,pve3:8", _ body: (ProxmoxProcess) async throws -> Void) async throws {
        let api = try await ProxmoxProcess.start(nodes: nodes)
        do {
            try await body(api)
        } catch {
            await api.stop()
            throw error
        }
        await api.stop()
    }

    func plan(_ id: String, count: Int, pool: String? = nil) -> LaunchPlan {
        LaunchPlan(launchID: id, count: count, candidates: [Self.offering], pool: pool)
    }

    func clones(_ api: ProxmoxProcess) async throws -> Int {
        try await api.requests().count { $0.hasSuffix("/clone") && $0.hasPrefix("POST") }
    }

    @Test func launchClonesTagsSizesAndStartsOnTheNodeWithTheMostFreeMemory() async throws {
        try await withProxmox() { api in
            let fleet = try fleet(api)
            let result = try await fleet.launch(plan("ks-abc123", count: 2, pool: "batch"), dryRun: false)
            #expect(result.instances.count == 2)
            #expect(result.offering == Self.offering)
            let vms = try await api.vms()
            #expect(vms.count == 2)
            for (vmid, vm) in vms {
                let config = try #require(vm["config"] as? [String: Any])
                #expect(vm["node"] as? String == "pve2")  // 32 GiB free, then 28: the most both times
                #expect(vm["status"] as? String == "running")
                #expect(vm["storage"] as? String == "local-lvm")
                #expect(config["name"] as? String == "kscaler-demo-\(vmid)")
                #expect(config["cores"] as? Int == 2 && config["memory"] as? Int == 4096)
                #expect(config["cicustom"] as? String == "user=local:snippets/kscaler-worker.yaml")
                let tags = Set((config["tags"] as? String ?? "").split(separator: ";").map(String.init))
                #expect(tags.isSuperset(of: ["kscaler-cluster-demo", "kscaler-pool-batch", "kscaler-launch-ks-abc123"]))
                #expect((config["description"] as? String ?? "").contains("kscaler-launch-id: ks-abc123"))
            }
            let listed = try await fleet.listMachines().live
            #expect(Set(listed.map(\.id)) == Set(vms.keys.map(String.init)))
            #expect(listed.allSatisfy { $0.state == .running && $0.machineType == "2c-4g" && $0.pool == "batch" && $0.placement == "pve2" })
            #expect(Set(result.instances.map(\.id)) == Set(listed.map(\.id)))
            #expect(Set(try await fleet.instances(launchID: "ks-abc123").map(\.id)) == Set(listed.map(\.id)))
            // Each launch's memory is counted: the stand-in's pve2 lost 8 GiB.
            let nodes = try #require(try await api.state()["nodes"] as? [String: [String: Int]])
            #expect(nodes["pve2"]?["free"] == 24 << 30)
        }
    }

    @Test func aNodeThatCannotSayItsMemoryGetsNoClone() async throws {
        try await withProxmox { api in
            let fleet = try fleet(api)
            try await api.injectFaults(json: #"[{"method": "GET", "path_regex": "^/nodes/pve2/status$", "status": 595, "reason": "no route to host"}]"#)
            let launched = try await fleet.launch(plan("ks-offline", count: 1), dryRun: false)
            #expect(launched.instances.map(\.placement) == ["pve1"])  // 16 GiB: the most after pve2's 32
        }
    }

    @Test func theSameLaunchIDAgainClonesNothing() async throws {
        try await withProxmox() { api in
            let fleet = try fleet(api)
            let first = try await fleet.launch(plan("ks-again", count: 2), dryRun: false)
            let again = try await fleet.launch(plan("ks-again", count: 2), dryRun: false)
            #expect(try await clones(api) == 2)
            #expect(Set(again.instances.map(\.id)) == Set(first.instances.map(\.id)))
            #expect(try await api.vms().count == 2)
        }
    }

    @Test func aCrashBetweenCloneAndStartIsFinishedByTheNextLaunchWithoutASecondClone() async throws {
        try await withProxmox() { api in
            let fleet = try fleet(api)
            // The start is refused once: the run stops there, as if it had died after the clone.
            try await api.injectFaults(json: #"[{"method": "POST", "path_regex": "/status/start$", "status": 500, "reason": "stand-in crash"}]"#)
            let error = await #expect(throws: (any Error).self) { try await fleet.launch(plan("ks-crash", count: 1), dryRun: false) }
            #expect(fleet.outcome(of: try #require(error)) == .unknown)
            #expect(try await fleet.instances(launchID: "ks-crash").isEmpty)  // cloned, not started: the run retries the launch
            #expect(try await fleet.listMachines().live.map(\.state) == [.pending])

            let retried = try await fleet.launch(plan("ks-crash", count: 1), dryRun: false)
            #expect(try await clones(api) == 1)
            #expect(retried.instances.map(\.state) == [.running])
            #expect(try await api.vms().values.map { $0["status"] as? String } == ["running"])
        }
    }

    @Test func aLostCloneAnswerIsUnknownAndTheNextLaunchAdoptsTheCloneByItsDescription() async throws {
        try await withProxmox() { api in
            let fleet = try fleet(api)
            // Proxmox clones, the answer never arrives: the VM is named and described, not tagged.
            try await api.injectFaults(json: #"[{"method": "POST", "path_regex": "/clone$", "lose_answer": true}]"#)
            let error = await #expect(throws: (any Error).self) { try await fleet.launch(plan("ks-lost", count: 1), dryRun: false) }
            #expect(fleet.outcome(of: try #require(error)) == .unknown)
            // Readiness: the stand-in's clone runs 0.3 s; until it ends the next launch refuses (a clone in progress).
            let deadline = ContinuousClock.now + .seconds(60)
            while try await api.vms().values.contains(where: { ($0["config"] as? [String: Any])?["lock"] != nil }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await fleet.listMachines().live.isEmpty)  // not tagged yet: not listed as the cluster's

            let retried = try await fleet.launch(plan("ks-lost", count: 1), dryRun: false)
            #expect(try await clones(api) == 1)
            let vm = try #require(try await api.vms().values.first)
            #expect(retried.instances.map(\.id) == ["\(vm["vmid"] as? Int ?? 0)"])
            #expect(vm["status"] as? String == "running")
            let tags: String = (vm["config"] as? [String: Any])?["tags"] as? String ?? ""
            #expect(tags.contains("kscaler-launch-ks-lost"))
        }
    }

    @Test func terminateStopsAndDestroysWithTheDisks() async throws {
        try await withProxmox() { api in
            let fleet = try fleet(api)
            let launched = try await fleet.launch(plan("ks-term", count: 2), dryRun: false).instances.map(\.id)
            try await fleet.terminate([launched[0]], dryRun: false)
            #expect(try await api.vms().keys.map(String.init) == [launched[1]])
            #expect(try await fleet.listMachines().live.map(\.id) == [launched[1]])
            let requests = try await api.state()["requests"] as? [[String: Any]] ?? []
            let destroy = try #require(requests.first { $0["method"] as? String == "DELETE" })
            #expect(destroy["path"] as? String == "/nodes/pve2/qemu/\(launched[0])")
            #expect(destroy["query"] as? [String: String] == ["purge": "1", "destroy-unreferenced-disks": "1"])
            #expect(try await api.requests().contains("POST /nodes/pve2/qemu/\(launched[0])/status/stop"))
        }
    }

    @Test func foreignAndProtectedVMsAreRefusedBeforeAnyChange() async throws {
        try await withProxmox() { api in
            try await api.seed(json: #"""
                {"vms": [{"vmid": 150, "node": "pve1", "name": "database", "tags": "prod", "status": "running"},
                         {"vmid": 151, "node": "pve1", "name": "kscaler-other-151", "tags": "kscaler-cluster-other", "status": "running"},
                         {"vmid": 152, "node": "pve1", "name": "kscaler-demo-152", "tags": "kscaler-cluster-demo;kscaler-protected", "status": "running"},
                         {"vmid": 153, "node": "pve1", "name": "kscaler-demo-153", "tags": "kscaler-cluster-demo", "status": "running"}]}
                """#)
            let fleet = try fleet(api, protected: ["153"])
            #expect(try await fleet.listMachines().live.map(\.id).sorted() == ["152", "153"])
            #expect(try await fleet.listMachines().live.first { $0.id == "152" }?.protected == true)
            let before = try await api.requests().count
            // Listed protected, or not a VM id: refused with no call at all.
            for ids in [["153"], ["kscaler-demo-153"]] {
                await #expect(throws: TerminationRefused.self) { try await fleet.terminate(ids, dryRun: false) }
            }
            #expect(try await api.requests().count == before)
            // Foreign, another cluster's, tagged protected, missing: refused after one listing, nothing changed.
            for id in ["150", "151", "152", "999"] {
                let error = await #expect(throws: TerminationRefused.self) { try await fleet.terminate([id], dryRun: false) }
                #expect(fleet.outcome(of: try #require(error)) == .nothingHappened)
            }
            let after = try await api.requests()
            #expect(after.dropFirst(before).allSatisfy { $0 == "GET /cluster/resources" })
            #expect(try await api.vms().count == 4)
        }
    }

    @Test func failuresBeforeAnythingExistsLaunchNothing() async throws {
        try await withProxmox(nodes: "pve1:16,pve2:3,pve3:3") { api in
            let fleet = try fleet(api)

            // The clone task fails: what it left is destroyed, and nothing was launched.
            try await api.injectFaults(json: #"[{"clone_fails": "clone failed: storage 'local-lvm' is full"}]"#)
            let cloneFailure = await #expect(throws: LaunchFailure.self) { try await fleet.launch(plan("ks-f1", count: 1), dryRun: false) }
            #expect(cloneFailure?.reason.contains("storage 'local-lvm' is full") == true)
            #expect(fleet.outcome(of: try #require(cloneFailure)) == .nothingHappened)
            #expect(try await api.vms().isEmpty)

            // Proxmox refuses the clone outright.
            try await api.injectFaults(json: #"[{"method": "POST", "path_regex": "/clone$", "status": 500, "reason": "unable to create VM 100: config file already exists"}]"#)
            let refused = await #expect(throws: LaunchFailure.self) { try await fleet.launch(plan("ks-f2", count: 1), dryRun: false) }
            #expect(refused?.reason.contains("config file already exists") == true)

            // No node has 4 GiB free: the offering is out of capacity, nothing is cloned.
            let tight = try self.fleet(api, nodes: ["pve2", "pve3"])
            let full = await #expect(throws: LaunchFailure.self) { try await tight.launch(plan("ks-f3", count: 1), dryRun: false) }
            #expect(full?.unavailable == [Self.offering])

            // The listing fails: an error, nothing done.
            try await api.injectFaults(json: #"[{"method": "GET", "path_regex": "^/cluster/resources$", "status": 500, "reason": "cluster not ready - no quorum?"}]"#)
            let listing = await #expect(throws: ProxmoxError.self) { try await fleet.launch(plan("ks-f4", count: 1), dryRun: false) }
            #expect("\(try #require(listing))".contains("cluster not ready - no quorum?"))
            #expect(fleet.outcome(of: try #require(listing)) == .nothingHappened)

            #expect(try await clones(api) == 2)
            #expect(try await api.vms().isEmpty)
        }
    }

    @Test func theTokenSecretIsInNoLogLineAndNoError() async throws {
        try await withProxmox() { api in
            let log = CapturedLog()
            let fleet = try fleet(api, log: log)
            let launched = try await fleet.launch(plan("ks-log", count: 1), dryRun: false).instances.map(\.id)
            try await fleet.terminate(launched, dryRun: false)
            try await api.injectFaults(json: #"[{"method": "GET", "path_regex": "^/cluster/resources$", "status": 400, "reason": "bad", "body": {"errors": {"type": "x"}, "data": null}}]"#)
            let apiError = await #expect(throws: ProxmoxError.self) { try await fleet.listMachines() }
            // A wrong secret: the stand-in answers 401, and the error says what to check.
            let wrong = try self.fleet(api, log: log, secret: "not-the-\(api.secret)")
            let authError = await #expect(throws: ProxmoxError.self) { try await wrong.listMachines() }
            let authText = "\(try #require(authError))"
            #expect(authText.contains("HTTP 401") && authText.contains("check fleet.proxmox.token_id"))
            #expect(log.records("proxmox request").count >= 8)
            for text in [log.text, "\(try #require(apiError))", authText, "\(fleet.client)"] {
                #expect(!text.contains(api.secret))
            }
        }
    }

    @Test func aDryRunReadsOnly() async throws {
        try await withProxmox() { api in
            let fleet = try fleet(api)
            let result = try await fleet.launch(plan("ks-dry", count: 3), dryRun: true)
            #expect(result.instances.isEmpty && result.offering == Self.offering)
            #expect(try await api.requests().allSatisfy { $0.hasPrefix("GET ") })
        }
    }

    @Test func identityTypesAndTags() throws {
        let identity = ProxmoxFleet.identity(clusterName: "lab", clusterID: "demo")
        #expect(identity.machineID("kscaler-demo-101", "proxmox://lab/101") == "101")
        #expect(identity.machineID("anything", "proxmox://lab/102") == "102")
        #expect(identity.machineID("kscaler-demo-103", nil) == "103")
        #expect(identity.machineID("kscaler-demo-abc", "aws:///us-east-1a/i-0abc") == nil)
        #expect(identity.workerNodeNames == "kscaler-demo-(?:[0-9]+)")
        #expect(MachineShape("2c-4g") == MachineShape(cores: 2, memoryMiB: 4096))
        #expect(MachineShape("4c-1536m")?.name == "4c-1536m")
        #expect(MachineShape("t3.large") == nil && MachineShape("0c-4g") == nil && MachineShape("2c-4") == nil)
        #expect(ProxmoxFleet.launchTag("ks-1x2y") == "kscaler-launch-ks-1x2y")
        let hashed = ProxmoxFleet.launchTag("Launch 7/A")
        #expect(hashed.hasPrefix("kscaler-launch-h") && hashed == ProxmoxFleet.launchTag("Launch 7/A") && hashed != ProxmoxFleet.launchTag("Launch 7/B"))
    }

    @Test func spotAndUnknownTypesAreRefusedBeforeAnyCall() async throws {
        try await withProxmox() { api in
            let fleet = try fleet(api)
            let spot = LaunchPlan(launchID: "ks-s", count: 1, candidates: [Offering(machineType: "2c-4g", placement: nil, market: .spot)])
            let typo = LaunchPlan(launchID: "ks-t", count: 1, candidates: [Offering(machineType: "t3.large", placement: nil)])
            for plan in [spot, typo] {
                await #expect(throws: LaunchFailure.self) { try await fleet.launch(plan, dryRun: false) }
            }
            #expect(try await api.requests().isEmpty)
        }
    }
}
