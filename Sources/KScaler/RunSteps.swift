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
    /// Every Node object the Kubernetes API listed, machines resolved; nil without the API.
    var clusterNodes: [ClusterNode]?
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
        async let metricsObservation = metrics.observe(queries: config.queries(workerNodes: machines.workerNodeNames), now: clock())
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
        var observed = Observed(observation: Observation(readings: readings.readings, nodes: nodes, instances: listing.live,
                                                         endedMachines: ended, state: state.pool(config.workers.pool), cluster: cluster,
                                                         drains: state.drains, abortedDrains: state.abortedDrains.filter { $0.until > now }))
        observed.clusterNodes = cluster?.nodes
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
                || !decision.drain.untaint.isEmpty else { return acted }
        let now = clock()
        let recorded = state.pool(config.workers.pool).unavailableOfferings
        var unavailable = recorded.filter { $0.until > now }
        do {
            try await withinActionWindow(mode, now: now) {
                try await terminateFailedBoots(decision, mode: mode, state: state, observed: observed, into: &acted)
                unavailable += mode.isDryRun ? [] : decision.failedBoots.map(\.unavailable)
                // Open drains go first: a cancelled one gives its node back before any launch.
                try await advanceDrains(decision.drain, mode: mode, state: state, observed: observed, now: now, into: &acted)
                switch decision.action {
                case .none:
                    break
                case .scaleDown(let victims) where decision.drain.drainVictims:
                    try await startDrains(victims, mode: mode, state: state, observed: observed, now: now, into: &acted)
                case .scaleUp(let count):
                    unavailable += try await launch(count, decision: decision, mode: mode, state: state, retryLaunchID: observed.retryLaunchID,
                                                    now: now, into: &acted)
                case .scaleDown(let victims):
                    try await terminate(.terminate, victims.map(\.instanceID), mode: mode, state: state, observed: observed, into: &acted)
                    if !mode.isDryRun { acted.changes.lastScaleDownAt = now }
                }
            }
        } catch {
            acted.error = error
        }
        if !mode.isDryRun, unavailable != recorded { acted.changes.unavailableOfferings = unavailable }
        return acted
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
        let records = (observed.clusterNodes ?? []).filter { node in node.machineID.map(targets.contains) == true }
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

    /// Launches `count` (for real: after writing the intent, so a crash cannot launch twice) and
    /// records it. Returns the offerings found out of capacity on the way.
    private func launch(_ count: Int, decision: Decision, mode: ActMode, state: StateDocument, retryLaunchID: String?, now: Date, into acted: inout Acted) async throws -> [UnavailableOffering] {
        let launchID = retryLaunchID ?? Self.newLaunchID()
        if case .real(let lease) = mode {
            var withIntent = acted.written ?? state
            withIntent.launchIntent = LaunchIntent(launchID: launchID, count: count, createdAt: now)
            try await store.write(withIntent, lease: lease)
            acted.written = withIntent
            acted.intent = withIntent.launchIntent
        }
        let plan = LaunchPlan(launchID: launchID, count: count, candidates: decision.launchCandidates)
        do {
            let result = try await fleet.launch(plan, dryRun: mode.isDryRun)
            let offering = result.offering ?? plan.candidates.first
            acted.actions.append(.init(kind: .launch, instanceIDs: result.instances.map(\.id), machineType: offering?.machineType,
                                       placement: offering?.placement, launchID: launchID))
            if !mode.isDryRun {
                acted.changes.lastScaleUpAt = now
                acted.changes.clearLaunchIntent = true
                logger.notice("launched", metadata: ["count": "\(result.instances.count)", "launch_id": "\(launchID)",
                                                     "instances": "\(result.instances.map(\.id).joined(separator: ","))"])
            }
            return result.unavailable.map { unavailableEntry($0, now: now) }
        } catch let failure as LaunchFailure {
            // Definitive: EC2 refused every offering; nothing was launched.
            acted.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, result: .failed, error: failure.description))
            if !mode.isDryRun { acted.changes.clearLaunchIntent = true }
            acted.error = failure
            return failure.unavailable.map { unavailableEntry($0, now: now) }
        } catch {
            // The intent stays either way: the next run looks the launch id up before launching
            // again, and reuses it (EC2 deduplicates its ClientToken).
            acted.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, result: result(of: error, mode: mode),
                                       error: describeError(error)))
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
                            until: now.addingTimeInterval(config.unavailableFor))
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

