import AWS
import HTTP
import KScalerCore

/// How `act` carries out a decision.
enum ActMode: Sendable {
    /// For real, under this lease: bounded by its safety margin, the launch intent written first.
    case real(Lease)
    /// `plan`: every EC2 call with `DryRun=true`, nothing written.
    case dryRun

    var isDryRun: Bool { if case .dryRun = self { true } else { false } }
}

/// What `observe` found.
struct Observed: Sendable {
    var observation: Observation
    /// An earlier launch that never happened: its id is reused (same ClientToken, so AWS
    /// deduplicates it should it have happened after all).
    var retryLaunchID: String?
    /// An earlier run's launch that did happen but was never recorded: recorded by this run.
    var recovered: [RunEvent.ActionRecord] = []
    /// Whether the state's launch intent has been looked up and can be cleared.
    var intentSettled = false
    var notes: [String] = []
}

/// What `act` did: the actions with their results, the state to record, and the error that
/// stopped it, if one did (the actions before it stay recorded).
struct Acted: Sendable {
    var actions: [RunEvent.ActionRecord] = []
    var changes = StateChanges()
    /// The launch intent written before launching: recorded unless `changes` clears it
    /// (the launch's result is known).
    var intent: LaunchIntent?
    /// Cooldown stamps and unavailable offerings to record, by pool (the state item's key).
    var poolChanges: [String: StateChanges] = [:]
    /// The state as last written during the run (an intent, ghost records before a terminate):
    /// the next write before an action builds on it.
    var written: StateDocument?
    /// Ghost records written before this run's terminations, by machine.
    var terminationRecords: [GhostNode] = []
    /// The state's ghost list to record, when node tending ran.
    var ghostRecords: [GhostNode]?
    var nodeCleanup: NodeCleanup?
    /// The state's open drains and recent aborts to record, when a drain step changed them.
    var drains: [OpenDrain]?
    var abortedDrains: [AbortedDrain]?
    /// How long each drain that finished this run took (for the Pushgateway).
    var drainDurations: [TimeInterval] = []
    var notes: [String] = []
    var error: (any Error)?
}

extension Evaluator {
    /// Prometheus, the fleet and the Kubernetes API concurrently; then the launch intent, if
    /// one is pending. A failed fleet or API read ends the run before any action.
    func observe(state: StateDocument) async throws -> Observed {
        try Task.checkCancellation()
        let machines = fleet.machines
        // With pools, utilisation is each pool's own (below, once its machines are known).
        let queries = config.queries(workerNodes: machines.workerNodeNames).filter { config.pools == nil || !Signal.utilization.contains($0.key) }
        // Types without a configured size are learned from their Ready nodes: one query more
        // in the same batch, and none when every size is configured.
        let sizesQuery = config.typesToLearn.isEmpty ? nil : DefaultQueries.allocatableByInstanceType
        async let metricsObservation = metrics.observe(queries: queries, sizesQuery: sizesQuery, now: clock())
        async let listingResult = fleet.listMachines()
        async let clusterResult = listCluster()
        let readings = await metricsObservation
        let listing = try await listingResult
        let cluster = try await clusterResult.map { listed in
            ClusterView(nodes: listed.nodes.map { node in
                var node = node
                node.machineID = machines.machineID(node.name, node.providerID)
                return node
            }, pods: listed.pods)
        }
        let nodes = readings.nodes.map { $0.identified(by: machines) }
        // kscaler's own terminations count as ended even once EC2 stops listing them.
        let live = Set(listing.live.map(\.id))
        let ended = listing.ended.union(state.ghostNodes.map(\.machine).filter { !live.contains($0) })
        let now = clock()
        var observation = Observation(readings: readings.readings, nodes: nodes, instances: listing.live, endedMachines: ended,
                                      state: state.pool(config.workers.pool), cluster: cluster, drains: state.drains,
                                      abortedDrains: state.abortedDrains.filter { $0.until > now }, hold: state.hold,
                                      learnedSizes: LearnedSizes(nodes: readings.nodeSizes, problems: readings.nodeSizesProblem.map { [$0] } ?? []))
        observation.failedBootsDetectable = machines.detectsFailedBoots
        if let pools = config.pools {
            observation.state = ScalerState()
            observation.poolStates = Dictionary(pools.keys.map { ($0, state.pool($0)) }, uniquingKeysWith: { first, _ in first })
            observation.poolReadings = await poolUtilization(machines: listing.live)
        }
        var observed = Observed(observation: observation)
        guard let intent = state.launchIntent else { return observed }
        let launched = try await fleet.instances(launchID: intent.launchID)
        if launched.isEmpty {
            observed.retryLaunchID = intent.launchID
            observed.notes.append("launch \(intent.launchID) (\(intent.count) nodes) was recorded but no instance carries its tag: "
                + "it never happened; a new launch reuses its id")
        } else {
            // Launched by a run that ended before recording it: recorded now, so every launch
            // reaches the history.
            observed.recovered.append(.init(kind: .launch, instanceIDs: launched.map(\.id), machineType: launched.first?.machineType,
                                            placement: launched.first?.placement, launchID: intent.launchID, recovered: true))
            observed.notes.append("launch \(intent.launchID) had completed: \(launched.map(\.id).joined(separator: ", ")) "
                + "(an earlier run launched them and ended before recording it)")
        }
        observed.intentSettled = true
        return observed
    }

    /// The decision again with EC2's estimate for the types it left without a size, when it
    /// needs them: it launches (a preferred type may have been skipped) or could not decide at
    /// all for want of sizes. One `DescribeInstanceTypes` call for all those types; a run that
    /// needs no size (steady, scale-down, every size known) makes none. A failed call is said
    /// in the reasons and the types stay skipped (never launched on doubt).
    func withEstimatedSizes(_ decision: Decision, observed: inout Observed, at decidedAt: Date) async -> Decision {
        let unknown = decision.sizes.filter { $0.size == nil }.map(\.machineType)
        let launches = if case .scaleUp = decision.action { true } else { false }
        guard !unknown.isEmpty, launches || decision.halt == .unknownSizes, let sizing = fleet as? any MachineSizing else { return decision }
        do {
            let estimated = try await sizing.estimatedSizes(of: unknown)
            observed.observation.learnedSizes.ec2.merge(estimated) { first, _ in first }
            let missing = unknown.filter { estimated[$0] == nil }
            if !missing.isEmpty {
                observed.observation.learnedSizes.problems.append("EC2 DescribeInstanceTypes gave no usable size for "
                    + "\(missing.joined(separator: ", ")) (not described, or too small for the kubelet's reservation)")
            }
        } catch {
            observed.observation.learnedSizes.problems.append("EC2 DescribeInstanceTypes failed: \(describeError(error))")
        }
        return decider(observed.observation, decidedAt)
    }

    /// Each pool's utilisation signals, measured on its own machines' nodes: the default
    /// queries with the pool's instance ids as the worker selector, all pools concurrently.
    /// (A signal overridden under `signals.` is the cluster's; `config check` says pools use
    /// kscaler's own utilisation queries.)
    private func poolUtilization(machines: [ManagedInstance]) async -> [String: [Signal: Reading]] {
        let window = max(1, Int(config.scaleDown.stabilizationWindow.rounded()))
        return await withTaskGroup(of: (String, [Signal: Reading]).self) { group in
            for pool in config.workerPools {
                let ids = machines.filter { $0.pool == pool.name }.map(\.id).sorted()
                // No machine: a selector no node name can match (a colon is not allowed in one).
                let selector = ids.isEmpty ? "kscaler:none" : ids.joined(separator: "|")
                let queries = Dictionary(Signal.utilization.map { signal in
                    (signal, DefaultQueries.query(for: signal, mode: config.utilization, windowSeconds: window, workerNodes: selector))
                }, uniquingKeysWith: { first, _ in first })
                group.addTask { (pool.name, await metrics.observe(queries: queries, now: clock()).readings) }
            }
            var readings: [String: [Signal: Reading]] = [:]
            for await (pool, poolReadings) in group { readings[pool] = poolReadings }
            return readings
        }
    }

    /// The API's nodes and pods (listed concurrently), or nil when kscaler runs without the API.
    private func listCluster() async throws -> ClusterView? {
        guard let cluster else { return nil }
        async let nodes = cluster.nodes()
        async let pods = cluster.pods()
        do {
            return ClusterView(nodes: try await nodes, pods: try await pods)
        } catch {
            throw KubernetesCallFailed(what: "listing the nodes and pods", error: error)
        }
    }

    /// Terminates failed boots, then launches or terminates as decided — for real or as a dry
    /// run, one code path. For real, every EC2 call and state write happens while the lease has
    /// more than its safety margin left (a request still in flight then is cut off), so no run
    /// acts while another may already hold the lease. Each action is recorded with its result:
    /// done, failed (nothing happened), or unknown (sent, no usable answer: it may have happened,
    /// and the next run looks first).
    func act(_ decision: Decision, mode: ActMode, state: StateDocument, observed: Observed) async -> Acted {
        var acted = Acted()
        guard decision.action != .none || !decision.failedBoots.isEmpty || !decision.drain.steps.isEmpty
                || !decision.drain.untaint.isEmpty || !decision.drain.interrupted.isEmpty else { return acted }
        let now = clock()
        // Unavailable offerings are each pool's own memory.
        let poolOfMachine = Dictionary(observed.observation.instances.map { ($0.id, stateKey(of: $0)) }, uniquingKeysWith: { first, _ in first })
        let poolNames = config.workerPools.map(\.name)
        let recorded = Dictionary(poolNames.map { ($0, state.pool($0).unavailableOfferings) }, uniquingKeysWith: { first, _ in first })
        var unavailable = recorded.mapValues { $0.filter { $0.until > now } }
        do {
            try await withinActionWindow(mode, now: now) {
                try await terminateFailedBoots(decision, mode: mode, state: state, observed: observed, into: &acted)
                if !mode.isDryRun {
                    for boot in decision.failedBoots { unavailable[poolOfMachine[boot.instanceID] ?? config.workers.pool, default: []].append(boot.unavailable) }
                }
                // Open drains go first: a cancelled one gives its node back before any launch.
                try await advanceDrains(decision.drain, mode: mode, state: state, observed: observed, now: now, into: &acted)
                if !decision.drain.interrupted.isEmpty {
                    try await startDrains(decision.drain.interrupted, mode: mode, state: state, observed: observed, now: now, into: &acted)
                }
                switch decision.action {
                case .none:
                    break
                case .scaleDown(let victims) where decision.drain.drainVictims:
                    try await startDrains(victims, mode: mode, state: state, observed: observed, now: now, into: &acted)
                case .scaleUp:
                    let launchID = observed.retryLaunchID ?? Self.newLaunchID()
                    var definite = true
                    for launch in decision.launches {
                        let pool = launch.pool ?? config.workers.pool
                        let outcome = try await self.launch(launch.count, pool: launch.pool, candidates: launch.candidates, launchID: launchID,
                                                            total: decision.launches.map(\.count).reduce(0, +), mode: mode, state: state,
                                                            now: now, into: &acted)
                        unavailable[pool, default: []] += outcome.unavailable
                        if !mode.isDryRun, outcome.launched { acted.poolChanges[pool, default: StateChanges()].lastScaleUpAt = now }
                        definite = definite && outcome.definite
                    }
                    // Every launch's result is known (a launch whose result is not threw above):
                    // the intent has done its work.
                    if !mode.isDryRun && definite { acted.changes.clearLaunchIntent = true }
                case .scaleDown(let victims):
                    try await terminate(.terminate, victims.map(\.instanceID), mode: mode, state: state, observed: observed, into: &acted)
                    if !mode.isDryRun { acted.poolChanges[victims.first?.pool ?? config.workers.pool, default: StateChanges()].lastScaleDownAt = now }
                }
            }
        } catch {
            acted.error = error
        }
        if !mode.isDryRun {
            for (pool, entries) in unavailable where entries != recorded[pool] ?? [] {
                acted.poolChanges[pool, default: StateChanges()].unavailableOfferings = entries
            }
        }
        return acted
    }

    /// The pool whose state a machine's actions change: its own with `pools:`; a `workers:`
    /// configuration keeps one state whatever its machines are tagged.
    func stateKey(of machine: ManagedInstance?) -> String {
        config.pools == nil ? config.workers.pool : machine?.pool ?? config.workers.pool
    }

    /// For real: no action is started once the run is cancelled or with less lease left than
    /// the safety margin, and every request inside is bounded by that margin.
    func withinActionWindow(_ mode: ActMode, now: Date, _ body: () async throws -> Void) async throws {
        guard case .real(let lease) = mode else { return try await body() }
        try Task.checkCancellation()
        let remaining = lease.expiresAt.timeIntervalSince(now)
        guard remaining >= config.lease.safetyMargin else {
            throw LeaseTooShort(remaining: remaining, margin: config.lease.safetyMargin)
        }
        try await RequestDeadline.bounded(by: .now + .seconds(remaining - config.lease.safetyMargin), body)
    }

    private func terminateFailedBoots(_ decision: Decision, mode: ActMode, state: StateDocument, observed: Observed,
                                      into acted: inout Acted) async throws {
        guard !decision.failedBoots.isEmpty else { return }
        try await terminate(.terminateFailedBoot, decision.failedBoots.map(\.instanceID), mode: mode, state: state, observed: observed,
                            into: &acted)
    }

    /// Terminates machines. With the Kubernetes API, their Node objects are written into the
    /// state's ghost list first (for real), so that a run killed right after the call still has
    /// its Nodes deleted by the next run.
    func terminate(_ kind: RunEvent.ActionRecord.Kind, _ ids: [String], mode: ActMode, state: StateDocument, observed: Observed,
                           into acted: inout Acted) async throws {
        let targets = Set(ids)
        let records = (observed.observation.cluster?.nodes ?? []).filter { node in node.machineID.map(targets.contains) == true }
            .map { GhostNode(node: $0.name, machine: $0.machineID ?? $0.name, since: clock(), terminatedByKscaler: true) }
        if case .real(let lease) = mode, !records.isEmpty {
            var withRecords = acted.written ?? state
            withRecords.ghostNodes = withRecords.ghostNodes.filter { !targets.contains($0.machine) } + records
            try await store.write(withRecords, lease: lease)
            acted.written = withRecords
        }
        acted.terminationRecords += records
        try await record(kind, ids: ids, mode: mode, into: &acted) { ids in try await fleet.terminate(ids, dryRun: mode.isDryRun) }
    }

    /// Runs one termination and records it with its result.
    private func record(_ kind: RunEvent.ActionRecord.Kind, ids: [String], mode: ActMode, into acted: inout Acted,
                        _ call: ([String]) async throws -> Void) async throws {
        do {
            try await call(ids)
        } catch {
            acted.actions.append(.init(kind: kind, instanceIDs: ids, result: result(of: error, mode: mode), error: describeError(error)))
            throw error
        }
        acted.actions.append(.init(kind: kind, instanceIDs: ids))
        if !mode.isDryRun { logger.notice("terminated", metadata: ["kind": "\(kind.rawValue)", "instances": "\(ids.joined(separator: ","))"]) }
    }

    /// Launches `count` into `pool` (for real: after writing the run's intent, once for all its
    /// launches, so a crash cannot launch twice) and records it. Returns the offerings found out
    /// of capacity on the way, whether anything launched, and whether the result is definite.
    private func launch(_ count: Int, pool: String?, candidates: [Offering], launchID: String, total: Int, mode: ActMode,
                        state: StateDocument, now: Date, into acted: inout Acted) async throws -> (unavailable: [UnavailableOffering], launched: Bool, definite: Bool) {
        if case .real(let lease) = mode, acted.intent == nil {
            var withIntent = acted.written ?? state
            withIntent.launchIntent = LaunchIntent(launchID: launchID, count: total, createdAt: now)
            try await store.write(withIntent, lease: lease)
            acted.written = withIntent
            acted.intent = withIntent.launchIntent
        }
        let plan = LaunchPlan(launchID: launchID, count: count, candidates: candidates, pool: pool)
        do {
            let result = try await fleet.launch(plan, dryRun: mode.isDryRun)
            let offering = result.offering ?? plan.candidates.first
            acted.actions.append(.init(kind: .launch, instanceIDs: result.instances.map(\.id), machineType: offering?.machineType,
                                       placement: offering?.placement, launchID: launchID, pool: pool,
                                       market: config.pools == nil ? nil : offering?.market))
            if !mode.isDryRun {
                logger.notice("launched", metadata: ["count": "\(result.instances.count)", "launch_id": "\(launchID)",
                                                     "instances": "\(result.instances.map(\.id).joined(separator: ","))"]
                    .merging(pool.map { ["pool": "\($0)"] } ?? [:], uniquingKeysWith: { first, _ in first }))
            }
            return (result.unavailable.map { unavailableEntry($0, now: now) }, true, true)
        } catch let failure as LaunchFailure {
            // Definitive: EC2 refused every offering; nothing was launched.
            acted.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, result: .failed, error: failure.description, pool: pool))
            acted.error = failure
            return (failure.unavailable.map { unavailableEntry($0, now: now) }, false, true)
        } catch {
            // The intent stays either way: the next run looks the launch id up before launching
            // again, and reuses it (EC2 deduplicates its ClientToken).
            acted.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, result: result(of: error, mode: mode),
                                       error: describeError(error), pool: pool))
            throw error
        }
    }

    /// An action that failed with `error`: refused (nothing happened), or unknown, as the fleet
    /// tells. A dry run never acts, whatever became of its answer.
    func result(of error: any Error, mode: ActMode) -> RunEvent.ActionRecord.Result {
        !mode.isDryRun && fleet.outcome(of: error) == .unknown ? .unknown : .failed
    }

    func unavailableEntry(_ offering: Offering, now: Date) -> UnavailableOffering {
        UnavailableOffering(machineType: offering.machineType ?? "launch-template", placement: offering.placement,
                            until: now.addingTimeInterval(config.unavailableFor), market: offering.market)
    }

    /// A launch id: sortable by time, unique, valid as an EC2 ClientToken (≤ 64 ASCII).
    static func newLaunchID() -> String {
        "ks-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }
}

struct LeaseTooShort: Error, CustomStringConvertible {
    var remaining: TimeInterval
    var margin: TimeInterval
    var description: String {
        "only \(Int(remaining))s of the lease left, less than the safety margin \(Int(margin))s: refusing to start an EC2 action (raise lease.ttl or lower --timeout)"
    }
}

