import AWS
import HTTP
import KScalerCore
import Logging

/// One run: lease → observe → decide → act → record → release (DESIGN.md "One run").
///
/// Fail-safe by construction: nothing is acted on unless the lease is ours with more than the
/// safety margin left, every signal the core needs is usable and EC2 answered; any failure
/// before `act` means no action. Once the lease is acquired it is released on every path —
/// success, error, deadline, cancellation (SIGTERM) — in the same round trip that records the
/// state and the history.
public struct Evaluator: Sendable {
    let config: KScalerConfig
    let store: any RunStore
    let fleet: any Fleet
    let metrics: any MetricsSource
    let clock: @Sendable () -> Date
    let logger: Logger

    public init(config: KScalerConfig, store: any RunStore, fleet: any Fleet, metrics: any MetricsSource,
                clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "kscaler")) {
        self.config = config
        self.store = store
        self.fleet = fleet
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
    }

    /// Identity of one invocation: the run id names its history event; the owner its lease.
    public struct Invocation: Sendable {
        public var runID: String
        public var owner: String
        /// Rendered worker user data, or nil when the launch template carries its own.
        public var userData: String?
        /// When the run must be over, lease released included (`--timeout`). Work stops a little
        /// earlier (`workDeadline`) to leave time for the release; nil bounds the run by the lease.
        public var deadline: ContinuousClock.Instant?

        public init(runID: String, owner: String, userData: String?, deadline: ContinuousClock.Instant? = nil) {
            self.runID = runID
            self.owner = owner
            self.userData = userData
            self.deadline = deadline
        }
    }

    struct LeaseTooShort: Error, CustomStringConvertible {
        var remaining: TimeInterval
        var margin: TimeInterval
        var description: String {
            "only \(Int(remaining))s of the lease left, less than the safety margin \(Int(margin))s: refusing to start an EC2 action (raise lease.ttl or lower --timeout)"
        }
    }

    /// When work stops so that the release still fits before `end`: a quarter of the time
    /// left, at most 3 s (a release is one request, retries included).
    public static func workDeadline(before end: ContinuousClock.Instant, now: ContinuousClock.Instant = .now) -> ContinuousClock.Instant {
        end - min(.seconds(3), (end - now) / 4)
    }

    // MARK: run

    public func run(_ invocation: Invocation) async -> RunReport {
        var report = RunReport(runID: invocation.runID, mode: .run, clusterID: config.clusterID, startedAt: clock())
        let end = invocation.deadline ?? .now + .seconds(config.lease.ttl)
        let workEnd = Self.workDeadline(before: end)
        let (store, owner, startedAt, ttl, skew) = (store, invocation.owner, report.startedAt, config.lease.ttl, config.lease.maxClockSkew)
        let attempt: Result<LeaseAcquisition, any Error> = await RequestDeadline.enforcing(workEnd) {
            do { return .success(try await store.acquire(owner: owner, ttl: .seconds(ttl), now: startedAt, clockSkew: skew)) } catch { return .failure(error) }
        }
        let lease: Lease, state: StoredState
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

        // Observe, decide, act — stopped at the work deadline (or by SIGTERM): requests in
        // flight are aborted, nothing new starts.
        let changes: StateChanges
        (report, changes) = await RequestDeadline.enforcing(workEnd) { [self, report] in
            var report = report, changes = StateChanges()
            await observeDecideAct(lease: lease, state: state, invocation: invocation, report: &report, changes: &changes)
            return (report, changes)
        }

        // Recorded and released whatever happened above, a cancelled run (SIGTERM, deadline)
        // included, by `end` at the latest.
        report.finishedAt = clock()
        let (event, retention) = (report.historyEvent, config.historyRetention)
        switch await Self.evenIfCancelled(until: end, { try await store.finish(lease: lease, changes: changes, event: event, retention: retention) }) {
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

    private func observeDecideAct(lease: Lease, state: StoredState, invocation: Invocation,
                                  report: inout RunReport, changes: inout StateChanges) async {
        do {
            let (observation, retryLaunchID) = try await observe(state: state, report: &report, changes: &changes)
            let decision = decide(observation, policy: config.policy, now: clock())
            report.decision = decision
            try await act(decision, lease: lease, state: state, invocation: invocation, retryLaunchID: retryLaunchID,
                          report: &report, changes: &changes)
        } catch {
            report.errors.append(describeError(error))
        }
        if Task.isCancelled, !report.errors.contains(describeError(CancellationError())) {
            report.errors.append(describeError(CancellationError()))
        }
        report.outcome = outcome(of: report)
    }

    /// A run whose recording failed: it never says "nothing was done" (exit 3) after acting.
    static func unrecorded(_ actions: [RunEvent.ActionRecord]) -> RunReport.Outcome {
        switch RunReport.Outcome.of(actions) {
        case nil: .failed
        case .actionResultUnknown?: .actionResultUnknown
        default: .actionFailed
        }
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

    // MARK: plan

    /// The full observation and decision with no writes at all: no lease, no state, no
    /// history; EC2 actions only as `DryRun=true`, so missing IAM permissions show up.
    public func plan(_ invocation: Invocation) async -> RunReport {
        let report = RunReport(runID: invocation.runID, mode: .plan, clusterID: config.clusterID, startedAt: clock())
        let end = invocation.deadline ?? .now + .seconds(config.lease.ttl)
        return await RequestDeadline.enforcing(end) { [self, report] in
            var report = report, ignored = StateChanges()
            do {
                let state = try await store.readState()
                let (observation, retryLaunchID) = try await observe(state: state, report: &report, changes: &ignored)
                let decision = decide(observation, policy: config.policy, now: clock())
                report.decision = decision
                try await dryRun(decision, invocation: invocation, retryLaunchID: retryLaunchID, report: &report)
                report.outcome = outcome(of: report)
            } catch {
                report.errors.append(describeError(error))
                report.outcome = report.decision == nil ? .failed : .actionFailed
            }
            report.finishedAt = clock()
            return report
        }
    }

    // MARK: steps

    /// Prometheus and EC2 concurrently; then the launch intent, if one is pending.
    /// Returns the observation and, when an earlier launch never happened, its launch id to
    /// reuse (same ClientToken: AWS deduplicates if it did happen after all).
    func observe(state: StoredState, report: inout RunReport, changes: inout StateChanges) async throws -> (Observation, String?) {
        try Task.checkCancellation()
        async let metricsObservation = metrics.observe(queries: config.queries(), now: clock())
        async let instancesResult = fleet.managedInstances()
        let observed = await metricsObservation
        let instances = try await instancesResult

        var retryLaunchID: String?
        if let intent = state.launchIntent {
            let launched = try await fleet.instances(launchID: intent.launchID)
            if launched.isEmpty {
                retryLaunchID = intent.launchID
                report.notes.append("launch \(intent.launchID) (\(intent.count) nodes) was recorded but no instance carries its tag: it never happened; a new launch reuses its id")
            } else {
                // Launched by a run that ended before recording it: recorded now, so every
                // launch reaches the history.
                report.actions.append(.init(kind: .launch, instanceIDs: launched.map(\.id), instanceType: launched.first?.instanceType,
                                            subnetID: launched.first?.subnetID, launchID: intent.launchID, recovered: true))
                report.notes.append("launch \(intent.launchID) had completed: \(launched.map(\.id).joined(separator: ", ")) "
                    + "(an earlier run launched them and ended before recording it)")
            }
            changes.clearLaunchIntent = true
        }
        let observation = Observation(readings: observed.readings, nodes: observed.nodes, instances: instances, state: state.scaler)
        report.observation = observation
        return (observation, retryLaunchID)
    }

    /// Terminates failed boots, then launches or terminates as decided. Every EC2 call and
    /// state write happens while the lease has more than its safety margin left — a request
    /// still in flight then is cut off — so no run acts while another may already hold the
    /// lease. Each action is recorded with its result: done, failed (nothing happened), or
    /// unknown (sent, no usable answer: it may have happened, and the next run looks first).
    func act(_ decision: Decision, lease: Lease, state: StoredState, invocation: Invocation, retryLaunchID: String?,
             report: inout RunReport, changes: inout StateChanges) async throws {
        let hasWork = decision.action != .none || !decision.failedBoots.isEmpty
        guard hasWork else { return }
        // A cancelled run (SIGTERM, deadline) starts no EC2 action; it only releases the lease.
        try Task.checkCancellation()
        let now = clock()
        let remaining = lease.expiresAt.timeIntervalSince(now)
        guard remaining >= config.lease.safetyMargin else {
            throw LeaseTooShort(remaining: remaining, margin: config.lease.safetyMargin)
        }
        var unavailable = state.scaler.unavailableOfferings.filter { $0.until > now }
        defer {
            if unavailable != state.scaler.unavailableOfferings { changes.unavailableOfferings = unavailable }
        }
        let safeUntil = ContinuousClock.now + .seconds(remaining - config.lease.safetyMargin)
        try await RequestDeadline.bounded(by: safeUntil) {
            if !decision.failedBoots.isEmpty {
                let ids = decision.failedBoots.map(\.instanceID)
                do {
                    try await fleet.terminate(ids, dryRun: false)
                } catch {
                    report.actions.append(.init(kind: .terminateFailedBoot, instanceIDs: ids, result: Self.result(of: error), error: describeError(error)))
                    throw error
                }
                report.actions.append(.init(kind: .terminateFailedBoot, instanceIDs: ids))
                unavailable += decision.failedBoots.map(\.unavailable)
                logger.notice("terminated failed boots", metadata: ["instances": "\(ids.joined(separator: ","))"])
            }

            switch decision.action {
            case .none:
                break
            case .scaleUp(let count):
                let launchID = retryLaunchID ?? Self.newLaunchID()
                try await store.recordLaunchIntent(LaunchIntent(launchID: launchID, count: count, createdAt: now), lease: lease)
                changes.clearLaunchIntent = false
                let plan = LaunchPlan(launchID: launchID, count: count, candidates: decision.launchCandidates, userData: invocation.userData)
                do {
                    let result = try await fleet.launch(plan, dryRun: false)
                    unavailable += result.unavailable.map { unavailableEntry($0, now: now) }
                    changes.lastScaleUpAt = now
                    changes.clearLaunchIntent = true
                    report.actions.append(.init(kind: .launch, instanceIDs: result.instances.map(\.id), instanceType: result.offering?.instanceType,
                                                subnetID: result.offering?.subnetID, launchID: launchID))
                    logger.notice("launched", metadata: ["count": "\(result.instances.count)", "launch_id": "\(launchID)",
                                                         "instances": "\(result.instances.map(\.id).joined(separator: ","))"])
                } catch let failure as LaunchFailure {
                    // Definitive: EC2 refused every offering; nothing was launched.
                    unavailable += failure.unavailable.map { unavailableEntry($0, now: now) }
                    changes.clearLaunchIntent = true
                    report.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, result: .failed, error: failure.description))
                    throw failure
                } catch {
                    // The intent stays either way: the next run looks the launch id up before
                    // launching again, and reuses it (EC2 deduplicates its ClientToken).
                    report.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, result: Self.result(of: error),
                                                error: describeError(error)))
                    throw error
                }
            case .scaleDown(let victims):
                let ids = victims.map(\.instanceID)
                do {
                    try await fleet.terminate(ids, dryRun: false)
                } catch {
                    report.actions.append(.init(kind: .terminate, instanceIDs: ids, result: Self.result(of: error), error: describeError(error)))
                    throw error
                }
                changes.lastScaleDownAt = now
                report.actions.append(.init(kind: .terminate, instanceIDs: ids))
                logger.notice("terminated", metadata: ["instances": "\(ids.joined(separator: ","))"])
            }
        }
    }

    /// An action that failed with `error`: refused (nothing happened), or unknown.
    static func result(of error: any Error) -> RunEvent.ActionRecord.Result {
        mayHaveTakenEffect(error) ? .unknown : .failed
    }

    func dryRun(_ decision: Decision, invocation: Invocation, retryLaunchID: String?, report: inout RunReport) async throws {
        if !decision.failedBoots.isEmpty {
            let ids = decision.failedBoots.map(\.instanceID)
            try await fleet.terminate(ids, dryRun: true)
            report.actions.append(.init(kind: .terminateFailedBoot, instanceIDs: ids))
        }
        switch decision.action {
        case .none:
            break
        case .scaleUp(let count):
            let plan = LaunchPlan(launchID: retryLaunchID ?? Self.newLaunchID(), count: count,
                                  candidates: decision.launchCandidates, userData: invocation.userData)
            let result = try await fleet.launch(plan, dryRun: true)
            report.actions.append(.init(kind: .launch, instanceIDs: [], instanceType: result.offering?.instanceType ?? plan.candidates.first?.instanceType,
                                        subnetID: result.offering?.subnetID ?? plan.candidates.first?.subnetID, launchID: plan.launchID))
        case .scaleDown(let victims):
            let ids = victims.map(\.instanceID)
            try await fleet.terminate(ids, dryRun: true)
            report.actions.append(.init(kind: .terminate, instanceIDs: ids))
        }
    }

    // MARK: helpers

    /// What this run came to: its own actions' results first; else nothing, unless it failed
    /// (an error, or signals missing).
    func outcome(of report: RunReport) -> RunReport.Outcome {
        if let fromActions = RunReport.Outcome.of(report.actions) { return fromActions }
        return report.errors.isEmpty && report.decision?.halt != .missingSignals ? .nothing : .failed
    }

    func unavailableEntry(_ offering: Offering, now: Date) -> UnavailableOffering {
        UnavailableOffering(instanceType: offering.instanceType ?? "launch-template", subnetID: offering.subnetID,
                            until: now.addingTimeInterval(config.unavailableFor))
    }

    func finished(_ report: RunReport, outcome: RunReport.Outcome, error: String? = nil) -> RunReport {
        var report = report
        report.outcome = outcome
        if let error { report.errors.append(error) }
        report.finishedAt = clock()
        return report
    }

    /// A launch id: sortable by time, unique, valid as an EC2 ClientToken (≤ 64 ASCII).
    static func newLaunchID() -> String {
        "ks-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }
}

/// Every offering answered with a capacity error (or the request was refused outright):
/// nothing was launched.
public struct LaunchFailure: Error, Sendable, CustomStringConvertible {
    public var unavailable: [Offering]
    public var reason: String

    public init(unavailable: [Offering], reason: String) {
        self.unavailable = unavailable
        self.reason = reason
    }

    public var description: String { "launch failed: \(reason)" }
}

func describe(_ date: Date) -> String { date.formatted(.iso8601) }

/// Errors as one line for reports and logs. Every error type kscaler throws already describes
/// itself without secrets.
func describeError(_ error: any Error) -> String {
    if error is CancellationError { return "the run was cancelled (deadline or signal) before it finished" }
    return "\(error)"
}
