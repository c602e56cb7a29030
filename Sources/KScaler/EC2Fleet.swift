import AWS
import KScalerCore

/// The fleet on EC2. Managed instances are those tagged `kscaler:cluster=<id>` in state
/// pending/running; shutting-down and terminated ones (EC2 lists them for a while) are ended.
package struct EC2Fleet: Fleet {
    package static let clusterTag = "kscaler:cluster"
    package static let poolTag = "kscaler:pool"
    package static let launchIDTag = "kscaler:launch-id"
    package static let protectedTag = "kscaler:protected"
    /// When a protection ends (RFC 3339); absent: `kscaler:protected=true` is for ever.
    package static let protectedUntilTag = "kscaler:protected-until"

    /// What the workers boot with, rendered once when the fleet is made.
    package enum UserData: Sendable, Equatable {
        /// The launch template carries its own.
        case fromLaunchTemplate
        case rendered(String)
        /// The configuration holds a value the user data cannot: every launch refuses (and
        /// `run`, `plan` and `config check` exit 2 before that).
        case unrenderable(String)

        /// The text to pass to RunInstances; nil when the launch template carries its own.
        package var rendered: String? {
            if case .rendered(let text) = self { text } else { nil }
        }

        package init(for config: KScalerConfig) {
            do {
                self = try UserDataRenderer.workerUserData(for: config).map(UserData.rendered) ?? .fromLaunchTemplate
            } catch {
                self = .unrenderable("\(error)")
            }
        }
    }

    /// One pool's launch settings and what its workers boot with.
    package struct Pool: Sendable, Equatable {
        package var workers: WorkerSettings
        package var userData: UserData

        package init(workers: WorkerSettings, userData: UserData) {
            self.workers = workers
            self.userData = userData
        }
    }

    let ec2: EC2Client
    let clusterID: String
    /// The pool a plan without one launches into (a `workers:` configuration's only pool).
    let defaultPool: Pool
    let pools: [String: Pool]
    /// Instance ids never to terminate, besides those tagged protected.
    let protectedInstances: Set<String>
    /// Tells whether a tagged protection has ended, when a termination re-checks it.
    let clock: @Sendable () -> Date

    package init(ec2: EC2Client, clusterID: String, workers: WorkerSettings, protectedInstances: Set<String>, userData: UserData,
                 clock: @escaping @Sendable () -> Date = { Date() }) {
        self.init(ec2: ec2, clusterID: clusterID, pools: [Pool(workers: workers, userData: userData)], protectedInstances: protectedInstances,
                  clock: clock)
    }

    /// - Parameter pools: not empty; the first is the one a plan naming no pool launches into.
    package init(ec2: EC2Client, clusterID: String, pools: [Pool], protectedInstances: Set<String>, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
        self.ec2 = ec2
        self.clusterID = clusterID
        defaultPool = pools[0]
        self.pools = Dictionary(pools.map { ($0.workers.pool, $0) }, uniquingKeysWith: { first, _ in first })
        self.protectedInstances = protectedInstances
    }

    /// Every configured pool, each with its user data rendered once.
    package init(ec2: EC2Client, config: KScalerConfig) {
        self.init(ec2: ec2, clusterID: config.clusterID,
                  pools: config.workerPools.map { Pool(workers: $0.workers, userData: UserData(for: config.scoped(to: $0))) },
                  protectedInstances: config.victims.protectedInstances)
    }

    /// The pool a plan launches into.
    func pool(of plan: LaunchPlan) -> Pool { plan.pool.flatMap { pools[$0] } ?? defaultPool }

    /// The first pool whose user data this configuration cannot render, and why (`run` and
    /// `plan` refuse to start on it, exit 2; each launch into it would refuse anyway).
    package var unrenderableUserData: (pool: String, problem: String)? {
        for pool in pools.values.sorted(by: { $0.workers.pool < $1.workers.pool }) {
            if case .unrenderable(let problem) = pool.userData { return (pool.workers.pool, problem) }
        }
        return nil
    }

    /// kscaler's EC2 workers are named after their instance id (the user data names the node:
    /// userdata/); a node named otherwise is matched by its provider id, as the AWS cloud
    /// provider sets it.
    package static let machines = MachineIdentity(
        backend: "ec2", providerID: try! IdentityTemplate("aws:///{zone}/{id}"), nodeName: .machineID,
        machineIDs: "i-[0-9a-f]+", isMachineID: isInstanceID)

    package var machines: MachineIdentity { Self.machines }

    static func instanceID(nodeName: String, providerID: String?) -> String? {
        machines.machineID(nodeName, providerID)
    }

    private static func isInstanceID(_ text: Substring) -> Bool {
        text.hasPrefix("i-") && text.count > 2 && text.dropFirst(2).allSatisfy { $0.isASCII && $0.isHexDigit && !$0.isUppercase }
    }

    /// `LaunchFailure` (EC2 refused every offering, or the user data cannot be rendered) and
    /// `TerminationRefused` (kscaler refused before calling EC2) are definite; for anything
    /// else AWS's retry bookkeeping says (a 5xx or a lost answer may have acted).
    package func outcome(of error: any Error) -> FailedCallOutcome {
        switch error {
        case is LaunchFailure, is TerminationRefused: .nothingHappened
        default: mayHaveTakenEffect(error) ? .unknown : .nothingHappened
        }
    }

    var liveManagedFilters: [(name: String, values: [String])] {
        [("tag:\(Self.clusterTag)", [clusterID]), ("instance-state-name", ["pending", "running"])]
    }

    /// One DescribeInstances for live and ended alike: EC2 lists a terminated instance for
    /// about an hour, long enough for its Node object to be found a ghost (and kscaler's own
    /// terminations are in the state until their Node is deleted). When a live instance is a
    /// Spot one, one DescribeSpotInstanceRequests more finds those EC2 has given notice to
    /// (DescribeInstances does not show it); a failure of either fails the listing.
    package func listMachines() async throws -> MachineListing {
        let filters = [("tag:\(Self.clusterTag)", [clusterID]), ("instance-state-name", ["pending", "running", "shutting-down", "terminated"])]
        let instances = try await ec2.describeInstances(filters: filters)
        var live = instances.compactMap(Self.managed)
        let spotRequests = instances.filter { ($0.state == .pending || $0.state == .running) && $0.market == .spot }
            .compactMap(\.spotInstanceRequestID)
        if !spotRequests.isEmpty {
            let noticed = Set(try await ec2.describeSpotInstanceRequests(ids: spotRequests)
                .filter(\.interruptionPending).compactMap(\.instanceID))
            for index in live.indices where noticed.contains(live[index].id) { live[index].interrupted = true }
        }
        return MachineListing(live: live, ended: Set(instances.filter { $0.state == .shuttingDown || $0.state == .terminated }.map(\.id)))
    }

    package func instances(launchID: String) async throws -> [ManagedInstance] {
        try await ec2.describeInstances(filters: liveManagedFilters + [("tag:\(Self.launchIDTag)", [launchID])]).compactMap(Self.managed)
    }

    package func launch(_ plan: LaunchPlan, dryRun: Bool) async throws -> LaunchResult {
        if case .unrenderable(let problem) = pool(of: plan).userData {
            throw LaunchFailure(unavailable: [], reason: "the worker user data cannot be rendered from this configuration: \(problem)")
        }
        let candidates = plan.candidates.isEmpty ? [Offering(machineType: nil, placement: nil)] : plan.candidates
        if dryRun {
            try await ec2.runInstancesDryRun(request(plan, offering: candidates[0], attempt: 0))
            return LaunchResult(instances: [], offering: candidates[0], unavailable: [])
        }
        var unavailable: [Offering] = []
        var lastError: AWSError?
        for (attempt, offering) in candidates.enumerated() {
            do {
                let launched = try await ec2.runInstances(request(plan, offering: offering, attempt: attempt))
                return LaunchResult(instances: launched.compactMap(Self.managed), offering: offering, unavailable: unavailable)
            } catch let error as AWSError where error.isCapacityError && !error.earlierAttemptMayHaveSucceeded {
                // (After an attempt that may have launched, a capacity error proves nothing:
                // the error goes up as it is, and the launch's result is unknown.)
                unavailable.append(offering)
                lastError = error
            }
        }
        throw LaunchFailure(unavailable: unavailable,
                            reason: "every offering answered with a capacity error (last: \(lastError.map { "\($0.code): \($0.message)" } ?? "none"))")
    }

    package func terminate(_ instanceIDs: [String], dryRun: Bool) async throws {
        guard !instanceIDs.isEmpty else { return }
        // Re-read the victims right before acting: only live, managed, unprotected instances go.
        let current = try await ec2.describeInstances(filters: [("instance-state-name", ["pending", "running"])], instanceIDs: instanceIDs)
        let byID = Dictionary(current.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var refused: [String] = []
        for id in instanceIDs {
            guard let instance = byID[id] else { refused.append("\(id) (not pending/running)"); continue }
            if instance.tags[Self.clusterTag] != clusterID { refused.append("\(id) (not tagged \(Self.clusterTag)=\(clusterID))") }
            else if instance.tags[Self.protectedTag] == "true", Protection.isActive(until: Self.protectedUntil(instance), now: clock()) {
                refused.append("\(id) (tagged \(Self.protectedTag)=true" + (Self.protectedUntil(instance).map { " until \(formatDate($0))" } ?? "") + ")")
            }
            else if protectedInstances.contains(id) { refused.append("\(id) (listed in victims.protected_instances)") }
        }
        guard refused.isEmpty else { throw TerminationRefused(instances: refused) }
        if dryRun {
            try await ec2.terminateInstancesDryRun(ids: instanceIDs)
        } else {
            _ = try await ec2.terminateInstances(ids: instanceIDs)
        }
    }

    func request(_ plan: LaunchPlan, offering: Offering, attempt: Int) -> RunInstancesRequest {
        let pool = pool(of: plan)
        let workers = pool.workers
        let tags = [Self.clusterTag: clusterID, Self.poolTag: workers.pool, Self.launchIDTag: plan.launchID,
                    "Name": "kscaler-\(clusterID)-\(workers.pool)"]
        let template = workers.launchTemplate.map { reference -> LaunchTemplateReference in
            switch reference.identity {
            case .id(let id): LaunchTemplateReference(.id(id), version: reference.version)
            case .name(let name): LaunchTemplateReference(.name(name), version: reference.version)
            }
        }
        return RunInstancesRequest(
            launchTemplate: template, imageID: workers.imageID, instanceType: offering.machineType, count: plan.count,
            subnetID: offering.placement, securityGroupIDs: workers.securityGroups,
            instanceProfile: workers.instanceProfile.map(IAMInstanceProfile.init(nameOrARN:)),
            instanceTags: tags, volumeTags: [Self.clusterTag: clusterID, Self.poolTag: workers.pool],
            userData: pool.userData.rendered.map { Data($0.utf8) },
            // One token per (launch, pool, offering): a retry of the same attempt is deduplicated
            // by EC2; another pool or offering is a different request, which EC2 requires.
            clientToken: plan.launchID + (plan.pool.map { "-\($0)" } ?? "") + (attempt == 0 ? "" : "-\(attempt)"),
            market: offering.market == .spot ? .spot : .onDemand)
    }

    static func managed(_ instance: EC2Instance) -> ManagedInstance? {
        let state: ManagedInstance.State
        switch instance.state {
        case .pending: state = .pending
        case .running: state = .running
        default: return nil
        }
        return ManagedInstance(id: instance.id, machineType: instance.instanceType, placement: instance.subnetID,
                               zone: instance.availabilityZone, launchTime: instance.launchTime, state: state,
                               protected: instance.tags[protectedTag] == "true", pool: instance.tags[poolTag],
                               market: instance.market == .spot ? .spot : .onDemand, protectedUntil: protectedUntil(instance))
    }

    /// When a tagged protection ends; nil: for ever, also when the tag cannot be read (doubt keeps the machine).
    static func protectedUntil(_ instance: EC2Instance) -> Date? {
        instance.tags[protectedUntilTag].flatMap(Protection.parseTime)
    }
}

extension EC2Fleet: MachineSizing {
    /// `DescribeInstanceTypes` for all of them in one call, each less the kubelet's reservation
    /// (`KubeletReservation`, 110 pods); a type whose reservation leaves nothing is left out.
    package func estimatedSizes(of machineTypes: [String]) async throws -> [String: WorkerSize] {
        var sizes: [String: WorkerSize] = [:]
        for info in try await ec2.describeInstanceTypes(machineTypes) {
            sizes[info.name] = KubeletReservation.allocatable(vcpus: info.vcpus, memoryMiB: info.memoryMiB)
        }
        return sizes
    }
}
