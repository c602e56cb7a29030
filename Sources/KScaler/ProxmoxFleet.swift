import HTTP
import KScalerCore
import Logging
import Proxmox

/// The fleet on Proxmox VE: each worker is a full clone of a template VM, placed on the node of
/// `fleet.proxmox.nodes` with the most free memory, named `kscaler-<cluster>-<vmid>` (cloud-init
/// makes the VM's name its hostname, so the node's name) and tagged:
///
/// - `kscaler-cluster-<id>`: kscaler's own; nothing else is ever stopped or destroyed;
/// - `kscaler-pool-<pool>`, `kscaler-launch-<launch id>` (made tag-safe, and whole in the
///   description), `kscaler-launched-<unix seconds>` (Proxmox keeps no creation time a
///   listing shows), and `kscaler-protected` set by hand to keep a VM.
///
/// Listing maps Proxmox's state this way: `running` → running (whatever lock a backup or a
/// snapshot holds); anything else — `stopped`, a clone still locked `clone` — → pending: a clone not yet started, which a retried launch starts, or which the failed-boot
/// rule ends after `provision_timeout`. A destroyed VM vanishes from the API at once, so nothing
/// is listed as ended: kscaler's own terminations stay in its state until their Node is gone.
package struct ProxmoxFleet: Fleet {
    package static let clusterTagPrefix = "kscaler-cluster-"
    package static let poolTagPrefix = "kscaler-pool-"
    package static let launchTagPrefix = "kscaler-launch-"
    package static let launchedTagPrefix = "kscaler-launched-"
    package static let protectedTag = "kscaler-protected"
    /// The description line that carries a launch id whole.
    static let launchIDLine = "kscaler-launch-id: "
    /// The description line that carries the pool, for a clone not tagged yet.
    static let poolLine = "kscaler-pool: "

    let client: ProxmoxClient
    let settings: ProxmoxSettings
    let clusterID: String
    /// The pools' names; the first is the one a plan naming none launches into.
    let pools: [String]
    /// VM ids never to terminate, besides those tagged `kscaler-protected`.
    let protectedMachines: Set<String>
    let clock: @Sendable () -> Date
    package let machines: MachineIdentity

    /// - Parameters:
    ///   - pools: the configured pools (`KScalerConfig.workerPools`); their machine types are
    ///     sizes `<cores>c-<memory>g` (or `m` for MiB), e.g. `2c-4g`: see `MachineShape`.
    ///   - tokenSecret: reads the API token's secret (a file, SSM), once, on the first call.
    ///   - transport: `transport(for: settings)`, which trusts `ca_file`; tests pass their own.
    /// - Throws: `ProxmoxError.invalidURL` for an unusable URL or token id.
    package init(settings: ProxmoxSettings, clusterID: String, pools: [PoolSettings], protectedMachines: Set<String>,
                 tokenSecret: @escaping @Sendable () async throws -> String, transport: any HTTPTransport,
                 clock: @escaping @Sendable () -> Date = { Date() }, pollInterval: Duration = .seconds(1),
                 logger: Logger = Logger(label: "kscaler.proxmox", factory: { _ in SwiftLogNoOpLogHandler() })) throws(ProxmoxError) {
        client = try ProxmoxClient(url: settings.url, tokenID: settings.tokenID, tokenSecret: tokenSecret, transport: transport,
                                   pollInterval: pollInterval, logger: logger)
        self.settings = settings
        self.clusterID = clusterID
        self.pools = pools.isEmpty ? ["default"] : pools.map(\.name)
        self.protectedMachines = protectedMachines
        self.clock = clock
        machines = Self.identity(clusterName: settings.clusterName, clusterID: clusterID)
    }

    /// The HTTP transport for the API: `ca_file`'s CAs (else the system's), a request bound
    /// long enough for a busy cluster's listing; tasks are polled, never waited on in one request.
    package static func transport(for settings: ProxmoxSettings) -> CurlTransport {
        CurlTransport(connectTimeout: .seconds(5), totalTimeout: .seconds(60), caBundlePath: settings.caFile)
    }

    /// Provider id `proxmox://<cluster name>/{id}` (as the Proxmox cloud controller manager sets
    /// it), node name `kscaler-<cluster id>-{id}`, ids are VM ids (digits).
    package static func identity(clusterName: String, clusterID: String) -> MachineIdentity {
        MachineIdentity(backend: "proxmox", providerID: try? IdentityTemplate("proxmox://\(clusterName)/{id}"),
                        nodeName: (try? IdentityTemplate("kscaler-\(clusterID)-{id}")) ?? .machineID, machineIDs: "[0-9]+",
                        isMachineID: { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } })
    }

    var clusterTag: String { Self.clusterTagPrefix + clusterID }
    func vmName(_ vmid: Int) -> String { "kscaler-\(clusterID)-\(vmid)" }

    /// Proxmox tags allow `[a-z0-9_+.-]`: a launch id made of those is its own tag; any other is
    /// replaced by its FNV-1a hash (the description keeps it whole).
    package static func launchTag(_ launchID: String) -> String {
        let allowed = launchID.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || "_+.-".contains($0)) }
        if allowed && !launchID.isEmpty { return launchTagPrefix + launchID }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in launchID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return launchTagPrefix + "h" + String(hash, radix: 16)
    }

    // MARK: - Listing

    package func listMachines() async throws -> MachineListing {
        MachineListing(live: try await client.virtualMachines().filter(isOwned).map(managed))
    }

    /// The started VMs of this launch; one cloned but not yet started is not counted, so a
    /// retried launch finishes it (tags, start) rather than cloning again.
    package func instances(launchID: String) async throws -> [ManagedInstance] {
        let tag = Self.launchTag(launchID)
        return try await client.virtualMachines().filter { isOwned($0) && $0.tags.contains(tag) && $0.status == "running" }.map(managed)
    }

    func isOwned(_ vm: ProxmoxVM) -> Bool { !vm.template && vm.tags.contains(clusterTag) }

    func managed(_ vm: ProxmoxVM) -> ManagedInstance {
        let launched = vm.tags.lazy.compactMap { tag in
            tag.hasPrefix(Self.launchedTagPrefix) ? Double(tag.dropFirst(Self.launchedTagPrefix.count)) : nil
        }.first
        let launchTime = launched.map { Date(timeIntervalSince1970: $0) } ?? clock().addingTimeInterval(-Double(vm.uptime ?? 0))
        let pool = vm.tags.first { $0.hasPrefix(Self.poolTagPrefix) }.map { String($0.dropFirst(Self.poolTagPrefix.count)) }
        return ManagedInstance(id: String(vm.vmid), machineType: MachineShape(vm: vm)?.name ?? "template", placement: vm.node, zone: vm.node,
                               launchTime: launchTime, state: vm.status == "running" ? .running : .pending,
                               protected: vm.tags.contains(Self.protectedTag), pool: pool)
    }

    // MARK: - Launch

    package func launch(_ plan: LaunchPlan, dryRun: Bool) async throws -> LaunchResult {
        let pool = plan.pool ?? pools[0]
        guard pools.contains(pool) else { throw LaunchFailure(unavailable: [], reason: "no pool named \(pool) is configured") }
        let candidates = plan.candidates.isEmpty ? [Offering(machineType: nil, placement: nil)] : plan.candidates
        var shapes: [MachineShape?] = []
        for offering in candidates {
            if offering.market == .spot {
                throw LaunchFailure(unavailable: [], reason: "Proxmox has no spot market: set the pool's capacity_type to on-demand")
            }
            guard let type = offering.machineType else { shapes.append(nil); continue }
            guard let shape = MachineShape(type) else {
                throw LaunchFailure(unavailable: [], reason: "machine type \(type) is not a Proxmox size: write <cores>c-<GiB>g or <cores>c-<MiB>m, e.g. 2c-4g")
            }
            shapes.append(shape)
        }
        let vms = try await client.virtualMachines()
        guard let template = vms.first(where: { $0.vmid == settings.templateVMID }) else {
            throw LaunchFailure(unavailable: [], reason: "fleet.proxmox.template_vmid \(settings.templateVMID) is not a VM of this Proxmox cluster")
        }
        // A node that answers its status with an error (offline, fenced) gets no clone this time.
        var free: [String: Int64] = [:]
        var nodeError: ProxmoxError?
        for node in settings.nodes {
            do {
                free[node] = try await client.nodeStatus(node).memory.free
            } catch let error as ProxmoxError {
                guard case .api = error else { throw error }
                nodeError = error
            }
        }
        if free.isEmpty, let nodeError { throw nodeError }
        if dryRun { return LaunchResult(instances: [], offering: candidates[0], unavailable: []) }

        var done = try await finishEarlierClones(of: plan.launchID, in: vms)
        // The first offering whose memory fits a node; a type's memory, else the template's.
        var unavailable: [Offering] = []
        var chosen: (offering: Offering, shape: MachineShape?, need: Int64)?
        for (offering, shape) in zip(candidates, shapes) {
            let need = shape.map { Int64($0.memoryMiB) << 20 } ?? template.maxMemory ?? 0
            let allowed = offering.placement.map { placement in settings.nodes.filter { $0 == placement } } ?? settings.nodes
            if allowed.contains(where: { (free[$0] ?? 0) >= need }) { chosen = (offering, shape, need); break }
            unavailable.append(offering)
        }
        guard let chosen else {
            if !done.isEmpty { return LaunchResult(instances: done, offering: nil, unavailable: unavailable) }
            throw LaunchFailure(unavailable: unavailable,
                                reason: "no node of fleet.proxmox.nodes (\(settings.nodes.joined(separator: ", "))) has the memory free for any offering")
        }
        let allowed = chosen.offering.placement.map { placement in settings.nodes.filter { $0 == placement } } ?? settings.nodes
        while done.count < plan.count {
            // The most free memory, counting what this launch has placed already.
            guard let node = allowed.filter({ (free[$0] ?? 0) >= chosen.need }).max(by: { (free[$0] ?? 0, $1) < (free[$1] ?? 0, $0) }) else { break }
            do {
                done.append(try await cloneAndStart(plan, pool: pool, template: template, on: node, shape: chosen.shape))
            } catch let failure as LaunchFailure {
                if done.isEmpty { throw failure }
                break
            } catch {
                // Machines of this launch exist already: whatever failed, the outcome is unknown.
                if done.isEmpty { throw error }
                throw ProxmoxCallIncomplete(underlying: error)
            }
            free[node, default: 0] -= chosen.need
        }
        if done.isEmpty {
            throw LaunchFailure(unavailable: unavailable + [chosen.offering], reason: "no node has \(chosen.need >> 20) MiB free")
        }
        return LaunchResult(instances: done, offering: chosen.offering, unavailable: unavailable)
    }

    /// VMs an earlier, interrupted launch with this id left: tagged but stopped (started now), or
    /// cloned but not tagged yet (known by their name and the launch id in their description:
    /// tagged and started now). A clone still running that no description names yet makes the
    /// launch refuse (definitely, nothing done): it may be this launch's, and the next run looks again.
    func finishEarlierClones(of launchID: String, in vms: [ProxmoxVM]) async throws -> [ManagedInstance] {
        let tag = Self.launchTag(launchID)
        var finished: [ManagedInstance] = []
        for vm in vms where !vm.template && settings.nodes.contains(vm.node) {
            if vm.lock == "clone" && !isOwned(vm) {
                throw LaunchFailure(unavailable: [], reason: "VM \(vm.vmid) on \(vm.node) is being cloned and may be this launch's: the next run looks again")
            }
            // Tagged: ours when the launch tag says so. Untagged but named as kscaler names its
            // clones: ours when the description names this launch (and it says the pool).
            var untaggedPool: String?
            if isOwned(vm) {
                guard vm.tags.contains(tag) else { continue }
            } else if vm.name == vmName(vm.vmid) {
                let lines = (try await client.config(node: vm.node, vmid: vm.vmid)["description"] ?? "").split(whereSeparator: \.isNewline)
                guard lines.contains(where: { $0 == Self.launchIDLine + launchID }) else { continue }
                untaggedPool = lines.first { $0.hasPrefix(Self.poolLine) }.map { String($0.dropFirst(Self.poolLine.count)) } ?? pools[0]
            } else {
                continue
            }
            do {
                if let untaggedPool {
                    try await client.updateConfig(node: vm.node, vmid: vm.vmid, [("tags", tags(launchID: launchID, pool: untaggedPool))])
                }
                if vm.status != "running" {
                    try await client.wait(for: try await client.start(node: vm.node, vmid: vm.vmid), timeout: taskTimeout)
                }
            } catch {
                throw ProxmoxCallIncomplete(underlying: error)
            }
            var instance = managed(vm)
            instance.state = .running
            finished.append(instance)
        }
        return finished
    }

    var taskTimeout: Duration { .milliseconds(Int64(settings.taskTimeout * 1_000)) }

    func tags(launchID: String, pool: String) -> String {
        [clusterTag, Self.poolTagPrefix + pool, Self.launchTag(launchID), Self.launchedTagPrefix + String(Int(clock().timeIntervalSince1970))]
            .joined(separator: ";")
    }

    /// nextid → full clone (wait) → tags, size, cloud-init → start (wait). A clone whose task
    /// failed is destroyed and throws `LaunchFailure`; anything else after the clone was asked
    /// for throws `ProxmoxCallIncomplete` (the launch's outcome is unknown).
    func cloneAndStart(_ plan: LaunchPlan, pool: String, template: ProxmoxVM, on node: String, shape: MachineShape?) async throws -> ManagedInstance {
        let vmid = try await client.nextID()
        let description = "Worker of kscaler cluster \(clusterID), launched by kscaler.\n\(Self.launchIDLine)\(plan.launchID)\n\(Self.poolLine)\(pool)"
        let request = CloneRequest(newID: vmid, name: vmName(vmid), target: node == template.node ? nil : node, storage: settings.storage,
                                   description: description)
        let task: ProxmoxTask
        do {
            task = try await client.clone(node: template.node, vmid: template.vmid, request)
        } catch let error as ProxmoxError {
            if case .api = error { throw LaunchFailure(unavailable: [], reason: "\(error)") }
            throw ProxmoxCallIncomplete(underlying: error)
        }
        do {
            try await client.wait(for: task, timeout: taskTimeout)
        } catch ProxmoxError.taskFailed(let upid, let exitStatus) {
            // What a failed clone left (qemu-server usually removes it itself) goes too.
            if let leftover = try? await client.destroy(node: node, vmid: vmid) { try? await client.wait(for: leftover, timeout: taskTimeout) }
            throw LaunchFailure(unavailable: [], reason: "the clone of template \(template.vmid) to VM \(vmid) on \(node) failed (task \(upid)): \(exitStatus)")
        } catch {
            throw ProxmoxCallIncomplete(underlying: error)
        }
        do {
            var config = [("tags", tags(launchID: plan.launchID, pool: pool))]
            if let shape { config += [("cores", String(shape.cores)), ("memory", String(shape.memoryMiB))] }
            if let snippet = settings.userDataSnippet { config.append(("cicustom", "user=\(snippet)")) }
            try await client.updateConfig(node: node, vmid: vmid, config)
            try await client.wait(for: try await client.start(node: node, vmid: vmid), timeout: taskTimeout)
        } catch {
            throw ProxmoxCallIncomplete(underlying: error)
        }
        return ManagedInstance(id: String(vmid), machineType: shape?.name ?? MachineShape(vm: template)?.name ?? "template", placement: node,
                               zone: node, launchTime: clock(), state: .running, pool: pool)
    }

    // MARK: - Terminate

    /// Refuses ids that are not VM ids or are listed protected before any call; then, after one
    /// listing, VMs that are not this cluster's or are tagged `kscaler-protected`. Then each is
    /// stopped (when running) and destroyed with its disks. A dry run stops after the checks.
    package func terminate(_ instanceIDs: [String], dryRun: Bool) async throws {
        guard !instanceIDs.isEmpty else { return }
        var refused: [String] = []
        for id in instanceIDs {
            if Int(id) == nil || !machines.isMachineID(Substring(id)) { refused.append("\(id) (not a Proxmox VM id)") }
            else if protectedMachines.contains(id) { refused.append("\(id) (listed in victims.protected_instances)") }
        }
        guard refused.isEmpty else { throw TerminationRefused(instances: refused) }
        let vms = Dictionary(try await client.virtualMachines().map { (String($0.vmid), $0) }, uniquingKeysWith: { first, _ in first })
        for id in instanceIDs {
            guard let vm = vms[id], !vm.template else { refused.append("\(id) (no such VM)"); continue }
            if !vm.tags.contains(clusterTag) { refused.append("\(id) (not tagged \(clusterTag))") }
            else if vm.tags.contains(Self.protectedTag) { refused.append("\(id) (tagged \(Self.protectedTag))") }
        }
        guard refused.isEmpty else { throw TerminationRefused(instances: refused) }
        if dryRun { return }
        for id in instanceIDs {
            guard let vm = vms[id] else { continue }
            do {
                if vm.status != "stopped" {
                    try await client.wait(for: try await client.stop(node: vm.node, vmid: vm.vmid), timeout: taskTimeout)
                }
                try await client.wait(for: try await client.destroy(node: vm.node, vmid: vm.vmid), timeout: taskTimeout)
            } catch {
                throw ProxmoxCallIncomplete(underlying: error, operation: "terminate")
            }
        }
    }

    // MARK: - Outcomes

    /// Refusals, Proxmox's own error answers to reads and to a clone request, and unreadable
    /// settings are definite; a call that was sent without an answer, a task not seen to its
    /// end, or a failure after a clone or a stop was made are unknown.
    package func outcome(of error: any Error) -> FailedCallOutcome {
        switch error {
        case is LaunchFailure, is TerminationRefused: return .nothingHappened
        case is ProxmoxCallIncomplete: return .unknown
        case let error as ProxmoxError:
            switch error {
            case .invalidURL, .secretUnavailable, .api, .unreadable: return .nothingHappened
            case .transport(let transport): return transport.requestWasSent ? .unknown : .nothingHappened
            case .taskFailed, .taskTimedOut: return .unknown
            }
        default: return .unknown
        }
    }
}

/// A launch or termination that made changes, then failed: what it left is unknown until the
/// next run lists (a launch is finished by its id, a termination retried).
package struct ProxmoxCallIncomplete: Error, Sendable, CustomStringConvertible {
    package var underlying: any Error
    package var operation: String = "launch"

    package var description: String { "Proxmox \(operation) interrupted after it changed something: \(underlying)" }
}

/// A Proxmox machine type: cores and memory, named `<cores>c-<memory>g` (GiB) or
/// `<cores>c-<memory>m` (MiB), e.g. `2c-4g`, `4c-1536m`. Set on the clone as `cores` and
/// `memory`; a plan without a type keeps the template's size, and listings name each VM's type
/// from its own cores and memory, so `workers.sizes` keys match what is listed.
package struct MachineShape: Sendable, Equatable {
    package var cores: Int
    package var memoryMiB: Int

    package init(cores: Int, memoryMiB: Int) {
        self.cores = cores
        self.memoryMiB = memoryMiB
    }

    package init?(_ name: String) {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].hasSuffix("c"), let cores = Int(parts[0].dropLast()), cores > 0,
              let unit = parts[1].last, unit == "g" || unit == "m", let amount = Int(parts[1].dropLast()), amount > 0,
              amount <= (unit == "g" ? 1 << 20 : 1 << 30) else { return nil }
        self.init(cores: cores, memoryMiB: unit == "g" ? amount * 1024 : amount)
    }

    init?(vm: ProxmoxVM) {
        guard let cores = vm.cores, cores > 0, let bytes = vm.maxMemory, bytes > 0 else { return nil }
        self.init(cores: cores, memoryMiB: Int(bytes >> 20))
    }

    /// `2c-4g` when the memory is whole GiB, else `2c-1536m`.
    package var name: String { memoryMiB % 1024 == 0 ? "\(cores)c-\(memoryMiB / 1024)g" : "\(cores)c-\(memoryMiB)m" }
}
