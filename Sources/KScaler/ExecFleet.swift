import KScalerCore
import Spawn

/// The fleet as a user's program sees it: `fleet.backend: exec` runs `fleet.exec.command` with
/// `list`, `launch` or `terminate` and one JSON request on stdin, and reads one JSON answer
/// (docs/backends/exec.md, protocol version 1). kscaler keeps its own guarantees around the
/// program: it names only machines the program listed as this cluster's and unprotected; a
/// call that fails without saying "nothing launched" is unknown; a launch is retried only
/// under its launch id.
package struct ExecFleet: Fleet {
    package static let protocolVersion = 1

    let settings: ExecBackendSettings
    let clusterID: String
    /// Each pool's bootstrap, by name; `defaultPool` for a plan naming none.
    let bootstraps: [String: WorkerBootstrap]
    let defaultPool: String
    let protectedInstances: Set<String>
    /// The program's environment: kscaler's, without its AWS credentials.
    let environment: [String: String]
    package let machines: MachineIdentity

    package init(settings: ExecBackendSettings, clusterID: String, pools: [PoolSettings], protectedInstances: Set<String>,
                 environment: [String: String]) {
        self.settings = settings
        self.clusterID = clusterID
        bootstraps = Dictionary(pools.map { ($0.name, WorkerBootstrap(clusterID: clusterID, workers: $0.workers)) },
                                uniquingKeysWith: { first, _ in first })
        defaultPool = pools.first?.name ?? "default"
        self.protectedInstances = protectedInstances
        var environment = environment.filter { !Self.withheldVariables.contains($0.key) }
        environment["KSCALER_PROTOCOL"] = String(Self.protocolVersion)
        environment["KSCALER_CLUSTER_ID"] = clusterID
        self.environment = environment
        machines = Self.identity(settings)
    }

    /// kscaler's own credentials are none of the program's business.
    static let withheldVariables: Set<String> = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]

    /// The node-matching rules the configuration declares (checked when it was parsed).
    package static func identity(_ settings: ExecBackendSettings) -> MachineIdentity {
        MachineIdentity(backend: "exec", providerID: settings.providerID.flatMap { try? IdentityTemplate($0) },
                        nodeName: (try? IdentityTemplate(settings.nodeName)) ?? .machineID, machineIDs: settings.machineIDs)
    }

    package init(config: KScalerConfig, settings: ExecBackendSettings, environment: [String: String]) {
        self.init(settings: settings, clusterID: config.clusterID, pools: config.workerPools,
                  protectedInstances: config.victims.protectedInstances, environment: environment)
    }

    // MARK: Fleet

    package func listMachines() async throws -> MachineListing {
        let machines = try await list(dryRun: false)
        return MachineListing(live: machines.compactMap(\.managed), ended: Set(machines.filter { $0.state == .ended }.map(\.id)))
    }

    package func instances(launchID: String) async throws -> [ManagedInstance] {
        try await list(dryRun: false).filter { $0.launchID == launchID }.compactMap(\.managed)
    }

    /// One call per offering, in order, until one launches: an offering answered with a
    /// capacity shortage is skipped (and reported unavailable); any other definite failure
    /// stops with nothing launched; an unknown outcome stops and goes up as it is.
    package func launch(_ plan: LaunchPlan, dryRun: Bool) async throws -> LaunchResult {
        let pool = plan.pool ?? defaultPool
        guard let bootstrap = bootstraps[pool] else {
            throw LaunchFailure(unavailable: [], reason: "pool \(pool) is not configured")
        }
        let candidates = plan.candidates.isEmpty ? [Offering(machineType: nil, placement: nil)] : plan.candidates
        var unavailable: [Offering] = []
        var lastShortage = ""
        for offering in dryRun ? [candidates[0]] : candidates {
            let request = ExecRequest(operation: .launch, clusterID: clusterID, dryRun: dryRun, launchID: plan.launchID,
                                      count: plan.count, offering: offering, bootstrap: bootstrap)
            do {
                let answer = try await call(request)
                let launched = try answer.machines(from: "launch").compactMap(\.managed)
                return LaunchResult(instances: dryRun ? [] : launched, offering: offering, unavailable: unavailable)
            } catch let failure as ExecCallFailure where failure.outcome == .nothingLaunched && failure.capacity && !dryRun {
                unavailable.append(offering)
                lastShortage = failure.message
            } catch let failure as ExecCallFailure where failure.outcome == .nothingLaunched {
                throw LaunchFailure(unavailable: unavailable, reason: failure.description)
            }
        }
        throw LaunchFailure(unavailable: unavailable, reason: "every offering was short of capacity (last: \(lastShortage))")
    }

    /// Lists first and refuses anything that is not a live, unprotected machine of this
    /// cluster as the program itself listed it, before asking it to terminate anything.
    package func terminate(_ instanceIDs: [String], dryRun: Bool) async throws {
        guard !instanceIDs.isEmpty else { return }
        let listed = Dictionary(try await list(dryRun: false).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var refused: [String] = []
        for id in instanceIDs {
            guard let machine = listed[id], machine.state != .ended else { refused.append("\(id) (not listed live by the program)"); continue }
            if machine.protected == true { refused.append("\(id) (listed protected)") }
            else if protectedInstances.contains(id) { refused.append("\(id) (listed in victims.protected_instances)") }
        }
        guard refused.isEmpty else { throw TerminationRefused(instances: refused) }
        let answer = try await call(ExecRequest(operation: .terminate, clusterID: clusterID, dryRun: dryRun, machineIDs: instanceIDs))
        guard answer.terminated != nil || dryRun else {
            throw ExecCallFailure(operation: .terminate, outcome: .unknown, message: "the answer has no \"terminated\" list")
        }
    }

    package func outcome(of error: any Error) -> FailedCallOutcome {
        switch error {
        case is LaunchFailure, is TerminationRefused: .nothingHappened
        case let failure as ExecCallFailure: failure.outcome == .nothingLaunched ? .nothingHappened : .unknown
        default: .unknown
        }
    }

    // MARK: Calls

    func list(dryRun: Bool) async throws -> [ExecMachine] {
        try await call(ExecRequest(operation: .list, clusterID: clusterID, dryRun: dryRun)).machines(from: "list")
    }

    /// Runs the program once. Exit 0 with a JSON answer is the result; anything else is an
    /// `ExecCallFailure` whose outcome is the program's word when it gave a valid one, else
    /// unknown (a list failing is never "nothing happened" either: the run stops before acting).
    func call(_ request: ExecRequest) async throws -> ExecAnswer {
        let operation = request.operation
        guard let program = settings.command.first,
              let executable = BoundedProcess.resolve(program, path: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin") else {
            throw ExecCallFailure(operation: operation, outcome: .nothingLaunched,
                                  message: "\(settings.command.first ?? "(no program)") was not found (fleet.exec.command)")
        }
        let started = await BoundedProcess.run(
            executable: executable, arguments: Array(settings.command.dropFirst()) + [operation.rawValue], environment: environment,
            stdin: request.encoded(), timeout: .milliseconds(Int64(settings.timeout * 1000)), terminationGrace: .seconds(5))
        let output: BoundedProcess.Output
        switch started {
        case .failure(let error):
            throw ExecCallFailure(operation: operation, outcome: .nothingLaunched, message: "\(executable) cannot be started: \(error.reason)")
        case .success(let finished): output = finished
        }
        let stderr = ExecRedaction.tail(of: output.stderr)
        let decoded = ExecAnswer.decode(output.stdout)
        switch output.ending {
        case .exited(0):
            let answer: ExecAnswer
            switch decoded {
            case .success(let usable): answer = usable
            case .failure(let problem):
                throw ExecCallFailure(operation: operation, outcome: .unknown, message: "its answer is not usable: \(problem)", stderr: stderr)
            }
            if let error = answer.error {
                throw ExecCallFailure(operation: operation, outcome: .unknown,
                                      message: "it exited 0 but answered an error: \(ExecRedaction.redacted(error.message ?? ""))", stderr: stderr)
            }
            return answer
        case .exited(let status):
            let said = try? decoded.get().error
            let outcome = said?.outcome.flatMap(ExecCallFailure.Outcome.init(rawValue:)) ?? .unknown
            let message = said?.message.map(ExecRedaction.redacted) ?? "exited with status \(status)"
            throw ExecCallFailure(operation: operation, outcome: outcome, capacity: said?.capacity ?? false,
                                  message: message + (said == nil ? " without a JSON error (treated as unknown)" : ""), stderr: stderr)
        case .signalled(let signal):
            throw ExecCallFailure(operation: operation, outcome: .unknown, message: "killed by signal \(signal)", stderr: stderr)
        case .timedOut:
            throw ExecCallFailure(operation: operation, outcome: .unknown,
                                  message: "did not finish within \(formatDuration(settings.timeout)) (fleet.exec.timeout): stopped", stderr: stderr)
        case .cancelled:
            throw ExecCallFailure(operation: operation, outcome: .unknown, message: "cancelled: stopped", stderr: stderr)
        }
    }
}

/// What a machine boots to join with, the same for every backend: the cluster, its pool, the
/// labels and taints it registers with. EC2 renders it into user data; `exec` hands it over.
package struct WorkerBootstrap: Sendable, Equatable {
    package var clusterID: String
    package var pool: String
    package var labels: [String: String]
    package var taints: [String]

    package init(clusterID: String, workers: WorkerSettings) {
        self.clusterID = clusterID
        pool = workers.pool
        labels = workers.labels.merging(["kscaler.io/cluster": clusterID, "kscaler.io/pool": workers.pool]) { _, own in own }
        taints = workers.taints.map(\.description)
    }
}

/// A call the program failed, with what it said of the outcome.
package struct ExecCallFailure: Error, Sendable, CustomStringConvertible {
    package enum Outcome: String, Sendable {
        case nothingLaunched = "nothing_launched"
        case unknown
    }

    package var operation: ExecRequest.Operation
    package var outcome: Outcome
    /// The program said the offering is short of capacity (try the next one).
    package var capacity = false
    package var message: String
    /// The last of its stderr, secrets redacted.
    package var stderr = ""

    package var description: String {
        "exec backend \(operation.rawValue) failed (\(outcome == .unknown ? "it may have acted" : "nothing changed")): \(message)"
            + (stderr.isEmpty ? "" : "; stderr: \(stderr)")
    }
}
