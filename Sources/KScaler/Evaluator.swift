import AWS
import HTTP
import KScalerCore
import Logging

/// One run: lease → observe → decide → act → record → release (docs/architecture.md "One run").
///
/// Fail-safe by construction: nothing is acted on unless the lease is ours with more than the
/// safety margin left, every signal the core needs is usable and EC2 answered; any failure
/// before `act` means no action. The lease is taken and given back in one place
/// (`withLease`): released on every path — success, error, deadline, cancellation (SIGTERM) —
/// in the same round trip that records the state and the history.
///
/// What a run decides is injected (`Decider`): the policy's `decide` by default; a manual
/// target or a drain step later, with the same lease, observation and actions around it.
package struct Evaluator: Sendable {
    /// Turns what was observed into a decision at the given time; pure.
    package typealias Decider = @Sendable (Observation, Date) -> Decision

    let config: KScalerConfig
    let store: any RunStore
    let fleet: any Fleet
    let metrics: any MetricsSource
    /// The Kubernetes API, or nil when `kubernetes.enabled` is off (Node objects left alone).
    let cluster: (any ClusterAPI)?
    let decider: Decider
    let clock: @Sendable () -> Date
    let logger: Logger

    package init(config: KScalerConfig, store: any RunStore, fleet: any Fleet, metrics: any MetricsSource,
                cluster: (any ClusterAPI)? = nil, decider: Decider? = nil, clock: @escaping @Sendable () -> Date = { Date() },
                logger: Logger = Logger(label: "kscaler")) {
        self.config = config
        self.store = store
        self.fleet = fleet
        self.metrics = metrics
        self.cluster = cluster
        let policy = config.policy
        self.decider = decider ?? { observation, now in decide(observation, policy: policy, now: now) }
        self.clock = clock
        self.logger = logger
    }

    /// Identity of one invocation: the run id names its history event; the owner its lease.
    package struct Invocation: Sendable {
        package var runID: String
        package var owner: String
        /// When the run must be over, lease released included (`--timeout`). Work stops a little
        /// earlier (`workDeadline`) to leave time for the release; nil bounds the run by the lease.
        package var deadline: ContinuousClock.Instant?

        package init(runID: String, owner: String, deadline: ContinuousClock.Instant? = nil) {
            self.runID = runID
            self.owner = owner
            self.deadline = deadline
        }
    }

    /// When work stops so that the release still fits before `end`: a quarter of the time
    /// left, at most 3 s (a release is one request, retries included).
    package static func workDeadline(before end: ContinuousClock.Instant, now: ContinuousClock.Instant = .now) -> ContinuousClock.Instant {
        end - min(.seconds(3), (end - now) / 4)
    }

    // MARK: run and plan

    package func run(_ invocation: Invocation) async -> RunReport {
        let report = RunReport(runID: invocation.runID, mode: .run, clusterID: config.clusterID, startedAt: clock(), backend: config.backend.name)
        return await withLease(invocation, report: report) { [self] lease, state, report in
            await evaluate(state: state, mode: .real(lease), report: report)
        }
    }

    /// The full observation and decision with no writes at all: no lease, no state, no
    /// history; EC2 actions only as `DryRun=true`, so missing IAM permissions show up.
    package func plan(_ invocation: Invocation) async -> RunReport {
        await plan(invocation, report: RunReport(runID: invocation.runID, mode: .plan, clusterID: config.clusterID, startedAt: clock(), backend: config.backend.name))
    }

    /// An operator's request (`kscaler scale`): a run under the lease that decides by
    /// `Decision.manual` instead of the policy, acts the same way, sets or lifts the hold, and
    /// is recorded as manual whatever came of it. `dryRun` is its plan: nothing written.
    package func scale(_ invocation: Invocation, request: ManualRequest, dryRun: Bool = false) async -> RunReport {
        var report = RunReport(runID: invocation.runID, mode: dryRun ? .plan : .run, clusterID: config.clusterID, startedAt: clock(), backend: config.backend.name)
        report.manual = request
        let policy = config.policy
        let manual = Evaluator(config: config, store: store, fleet: fleet, metrics: metrics, cluster: cluster, decider: { observation, now in
            Decision.manual(request, observation: observation, policy: policy, now: now)
        }, clock: clock, logger: logger)
        let settle: Settle = { decision, now, after, report in
            guard decision.halt == nil else { return }
            if let length = request.hold, let target = decision.manualTarget {
                // Whole seconds: the hold reads the same in the state, the history and the output.
                let setAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
                after.hold = Hold(target: target, pool: request.pool, until: setAt.addingTimeInterval(length.rounded(.up)),
                                  forced: decision.reasons.contains { $0.code == .manualForce }, by: request.by, reason: request.reason, setAt: setAt)
            } else {
                // A new request (or --release-hold) replaces the hold it would otherwise fight with.
                after.hold = nil
            }
        }
        guard !dryRun else { return await manual.plan(invocation, report: report, settle: settle) }
        return await manual.withLease(invocation, report: report) { lease, state, report in
            await manual.evaluate(state: state, mode: .real(lease), report: report, settle: settle)
        }
    }

    private func plan(_ invocation: Invocation, report: RunReport, settle: Settle? = nil) async -> RunReport {
        let end = invocation.deadline ?? .now + .seconds(config.lease.ttl)
        return await RequestDeadline.enforcing(end) { [self, store, report] in
            var report = report
            do {
                (report, _) = await evaluate(state: try await store.readState(), mode: .dryRun, report: report, settle: settle)
            } catch {
                report.errors.append(describeError(error))
                report.outcome = .failed
            }
            report.finishedAt = clock()
            return report
        }
    }

    // MARK: the lease, written once

    /// What a run does while it holds the lease: from the lease and the state the acquisition
    /// read, the report so far to the report and the state to record.
    typealias LeaseBody = @Sendable (Lease, StateDocument, RunReport) async -> (RunReport, StateDocument)

    /// Takes the lease, runs `body` until the work deadline (or SIGTERM) cancels it, then
    /// records and releases — on every path, cancelled ones included, by the run's deadline.
    func withLease(_ invocation: Invocation, report: RunReport, _ body: @escaping LeaseBody) async -> RunReport {
        var report = report
        let end = invocation.deadline ?? .now + .seconds(config.lease.ttl)
        let workEnd = Self.workDeadline(before: end)
        let (store, owner, startedAt, ttl, skew) = (store, invocation.owner, report.startedAt, config.lease.ttl, config.lease.maxClockSkew)
        let attempt: Result<LeaseAcquisition, any Error> = await RequestDeadline.enforcing(workEnd) {
            do { return .success(try await store.acquire(owner: owner, ttl: .seconds(ttl), now: startedAt, clockSkew: skew)) } catch { return .failure(error) }
        }
        let lease: Lease, state: StateDocument
        switch attempt {
        case .failure(let error):
            if mayHaveTakenEffect(error) {
                // The lease may be ours with its answer lost: give it back rather than leave
                // every run blocked until it expires. Conditional on our owner id: harmless if not.
                _ = await Self.evenIfCancelled(until: end) { try await store.giveBack(owner: owner) }
            }
            return finished(report, outcome: .failed, error: "lease: \(describeError(error))")
        case .success(.acquired(let acquired, let stored)):
            (lease, state) = (acquired, stored)
        case .success(.heldByOther(let holder)):
            report.lease = .init(owner: holder.owner, token: holder.token ?? 0, expiresAt: holder.expiresAt)
            report.notes.append("lease held by \(holder.owner ?? "?") until \(holder.expiresAt.map(describe) ?? "?"): skipped")
            return finished(report, outcome: .skipped)
        case .success(.untrustworthy(let holder, let problems)):
            report.lease = holder.map { .init(owner: $0.owner, token: $0.token ?? 0, expiresAt: $0.expiresAt) }
            return finished(report, outcome: .failed, error: "the state item cannot be trusted: " + problems.joined(separator: "; ")
                + ". Nothing was changed; `kscaler lease status` shows the lease, `kscaler lease break --yes` clears it "
                + "(and resets an unreadable fencing token)")
        }
        report.lease = .init(owner: lease.owner, token: lease.token, expiresAt: lease.expiresAt)
        logger.debug("lease acquired", metadata: ["lease_token": "\(lease.token)", "expires_at": "\(describe(lease.expiresAt))"])

        // Stopped at the work deadline (or by SIGTERM): requests in flight are aborted, nothing new starts.
        let after: StateDocument
        (report, after) = await RequestDeadline.enforcing(workEnd) { [report] in await body(lease, state, report) }

        report.finishedAt = clock()
        let (event, retention, document) = (report.historyEvent, config.historyRetention, after == state ? nil : after)
        switch await Self.evenIfCancelled(until: end, { try await store.finish(lease: lease, document: document, event: event, retention: retention) }) {
        case .success(true):
            report.leaseReleased = true
        case .success(false):
            report.leaseReleased = false
            report.errors.append("the lease was lost before the run finished (another run took it over after expiry); nothing was recorded")
            report.outcome = Self.unrecorded(report.actions)
        case .failure(let error):
            report.leaseReleased = false
            report.errors.append("recording and releasing the lease failed: \(describeError(error)); it expires at \(describe(lease.expiresAt))")
            report.outcome = Self.unrecorded(report.actions)
        }
        return report
    }

    /// Runs `body` in a task of its own, so a cancelled run (SIGTERM, deadline) still sends it,
    /// bounded by `end`: the lease is released (or given back) whatever happened.
    static func evenIfCancelled<T: Sendable>(until end: ContinuousClock.Instant,
                                             _ body: @escaping @Sendable () async throws -> T) async -> Result<T, any Error> {
        await Task {
            await RequestDeadline.$current.withValue(end) {
                do { return .success(try await body()) } catch { return .failure(error) }
            }
        }.value
    }

    /// A run whose recording failed: it never says "nothing was done" (exit 3) after acting.
    static func unrecorded(_ actions: [RunEvent.ActionRecord]) -> RunReport.Outcome {
        switch RunReport.Outcome.of(actions) {
        case nil: .failed
        case .actionResultUnknown?: .actionResultUnknown
        default: .actionFailed
        }
    }

    // MARK: the steps

    /// Said by every plan, and by every run that terminates, while the API is off.
    package static let withoutKubernetes = "the Kubernetes API is off (kubernetes.enabled, or no credentials found): no node is drained, "
        + "so there is no scale-down unless scale_down.without_drain terminates nodes without one, and the Node objects of terminated "
        + "instances are left behind, NotReady (kscaler does not count them); `kscaler config check` says why"

    /// What an operator's request changes in the state besides the actions: the hold.
    typealias Settle = @Sendable (Decision, Date, inout StateDocument, inout RunReport) -> Void

    /// Observe, decide, act; each step returns what it found or did, and any failure ends the
    /// steps with what had happened so far. Returns the report and the state to record.
    func evaluate(state: StateDocument, mode: ActMode, report: RunReport, settle: Settle? = nil) async -> (RunReport, StateDocument) {
        var report = report, after = state
        do {
            var observed = try await observe(state: state)
            report.notes += observed.notes
            report.actions += observed.recovered
            after = state.applying(StateChanges(clearLaunchIntent: observed.intentSettled), pool: config.workers.pool)
            let decidedAt = clock()
            let decision = await withEstimatedSizes(decider(observed.observation, decidedAt), observed: &observed, at: decidedAt)
            report.observation = observed.observation
            report.decision = decision
            // A hold that ended is lifted by the first run that sees it.
            if let hold = state.hold, !hold.isActive(at: decidedAt) { after.hold = nil }
            settle?(decision, decidedAt, &after, &report)
            var acted = await act(decision, mode: mode, state: state, observed: observed)
            if let nodes = observed.observation.cluster?.nodes {
                await tendNodes(nodes, observed: observed, mode: mode, state: state, into: &acted)
            }
            report.actions += config.pools == nil ? acted.actions : acted.actions.map { naming(pool: $0, observed.observation.instances) }
            report.nodeCleanup = acted.nodeCleanup
            if cluster == nil, mode.isDryRun || acted.actions.contains(where: { $0.kind == .terminate || $0.kind == .terminateFailedBoot }) {
                report.notes.append(Self.withoutKubernetes)
            }
            report.notes += acted.notes
            // A launch written as a new intent decides about it; else the lookup above does.
            if let intent = acted.intent { after.launchIntent = intent }
            after = after.applying(acted.changes, pool: config.workers.pool)
            for (pool, changes) in acted.poolChanges.sorted(by: { $0.key < $1.key }) { after = after.applying(changes, pool: pool) }
            if let ghosts = acted.ghostRecords { after.ghostNodes = ghosts }
            if let drains = acted.drains { after.drains = drains }
            if let aborted = acted.abortedDrains { after.abortedDrains = aborted }
            report.drainDurations = acted.drainDurations
            report.drainsOpen = after.drains.count
            report.hold = after.hold
            report.holdChanged = after.hold != state.hold
            if let error = acted.error { report.errors.append(describeError(error)) }
        } catch {
            report.errors.append(describeError(error))
        }
        if Task.isCancelled, !report.errors.contains(describeError(CancellationError())) {
            report.errors.append(describeError(CancellationError()))
        }
        report.outcome = outcome(of: report)
        return (report, after)
    }

    /// `record` with the pool of the machines it acted on, when they are all of one.
    func naming(pool record: RunEvent.ActionRecord, _ machines: [ManagedInstance]) -> RunEvent.ActionRecord {
        guard record.pool == nil else { return record }
        let pools = Set(record.instanceIDs.compactMap { id in machines.first { $0.id == id }?.pool })
        var record = record
        if pools.count == 1 { record.pool = pools.first }
        return record
    }

    /// What this run came to: its own actions' results first; else nothing, unless it failed
    /// (an error, or signals missing).
    func outcome(of report: RunReport) -> RunReport.Outcome {
        if let fromActions = RunReport.Outcome.of(report.actions) { return fromActions }
        // No action on doubt is a failed run: signals missing, or no instance type of known size.
        let doubtful = report.decision?.halt.map { $0 == .missingSignals || $0 == .unknownSizes } ?? false
        return report.errors.isEmpty && !doubtful ? .nothing : .failed
    }

    func finished(_ report: RunReport, outcome: RunReport.Outcome, error: String? = nil) -> RunReport {
        var report = report
        report.outcome = outcome
        if let error { report.errors.append(error) }
        report.finishedAt = clock()
        return report
    }
}

func describe(_ date: Date) -> String { date.formatted(.iso8601) }

/// Errors as one line for reports and logs. Every error type kscaler throws already describes
/// itself without secrets.
func describeError(_ error: any Error) -> String {
    if error is CancellationError { return "the run was cancelled (deadline or signal) before it finished" }
    return "\(error)"
}
