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

        public init(runID: String, owner: String, userData: String?) {
            self.runID = runID
            self.owner = owner
            self.userData = userData
        }
    }

    struct LeaseTooShort: Error, CustomStringConvertible {
        var remaining: TimeInterval
        var margin: TimeInterval
        var description: String {
            "only \(Int(remaining))s of the lease left, less than the safety margin \(Int(margin))s: refusing to start an EC2 action (raise lease.ttl or lower --timeout)"
        }
    }

    // MARK: run

    public func run(_ invocation: Invocation) async -> RunReport {
        var report = RunReport(runID: invocation.runID, mode: .run, clusterID: config.clusterID, startedAt: clock())
        let acquisition: LeaseAcquisition
        do {
            acquisition = try await store.acquire(owner: invocation.owner, ttl: .seconds(config.lease.ttl), now: report.startedAt,
                                                  clockSkew: config.lease.maxClockSkew)
        } catch {
            return finished(report, outcome: .failed, error: "lease: \(describeError(error))")
        }
        let lease: Lease, state: StoredState
        switch acquisition {
        case .acquired(let acquired, let stored):
            (lease, state) = (acquired, stored)
        case .heldByOther(let holder):
            report.lease = .init(owner: holder.owner, token: holder.token ?? 0, expiresAt: holder.expiresAt)
            report.notes.append("lease held by \(holder.owner ?? "?") until \(holder.expiresAt.map(describe) ?? "?"): skipped")
            return finished(report, outcome: .skipped)
        case .untrustworthy(let holder, let problems):
            report.lease = holder.map { .init(owner: $0.owner, token: $0.token ?? 0, expiresAt: $0.expiresAt) }
            return finished(report, outcome: .failed, error: "the state item cannot be trusted: " + problems.joined(separator: "; ")
                + ". Nothing was changed; `kscaler lease status` shows the lease, `kscaler lease break --yes` clears it "
                + "(and resets an unreadable fencing token)")
        }
        report.lease = .init(owner: lease.owner, token: lease.token, expiresAt: lease.expiresAt)
        logger.debug("lease acquired", metadata: ["lease_token": "\(lease.token)", "expires_at": "\(describe(lease.expiresAt))"])

        var changes = StateChanges()
        do {
            let (observation, retryLaunchID) = try await observe(state: state, report: &report, changes: &changes)
            let decision = decide(observation, policy: config.policy, now: clock())
            report.decision = decision
            try await act(decision, lease: lease, state: state, invocation: invocation, retryLaunchID: retryLaunchID,
                          report: &report, changes: &changes)
            report.outcome = outcome(for: decision, actions: report.actions)
        } catch {
            report.errors.append(describeError(error))
            report.outcome = report.actions.isEmpty ? .failed : .actionFailed
        }
        if Task.isCancelled && !report.errors.contains(where: { $0 == describeError(CancellationError()) }) {
            report.errors.append(describeError(CancellationError()))
            if report.outcome != .actionFailed { report.outcome = .failed }
        }

        report.finishedAt = clock()
        // Released whatever happened above; a cancelled task (SIGTERM) still sends this request.
        do {
            report.leaseReleased = try await store.finish(lease: lease, changes: changes, event: report.historyEvent,
                                                          retention: config.historyRetention)
            if report.leaseReleased == false {
                report.errors.append("the lease was lost before the run finished (another run took it over after expiry); nothing was recorded")
                if report.outcome != .actionFailed { report.outcome = .failed }
            }
        } catch {
            report.leaseReleased = false
            report.errors.append("recording and releasing the lease failed: \(describeError(error)); it expires at \(describe(lease.expiresAt))")
            if report.outcome == .nothing || report.outcome == .acted { report.outcome = report.actions.isEmpty ? .failed : .actionFailed }
        }
        return report
    }

    // MARK: plan

    /// The full observation and decision with no writes at all: no lease, no state, no
    /// history; EC2 actions only as `DryRun=true`, so missing IAM permissions show up.
    public func plan(_ invocation: Invocation) async -> RunReport {
        var report = RunReport(runID: invocation.runID, mode: .plan, clusterID: config.clusterID, startedAt: clock())
        var ignored = StateChanges()
        do {
            let state = try await store.readState()
            let (observation, retryLaunchID) = try await observe(state: state, report: &report, changes: &ignored)
            let decision = decide(observation, policy: config.policy, now: clock())
            report.decision = decision
            try await dryRun(decision, invocation: invocation, retryLaunchID: retryLaunchID, report: &report)
            report.outcome = outcome(for: decision, actions: report.actions)
        } catch {
            report.errors.append(describeError(error))
            report.outcome = report.decision == nil ? .failed : .actionFailed
        }
        report.finishedAt = clock()
        return report
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
                report.notes.append("launch \(intent.launchID) had completed: \(launched.map(\.id).joined(separator: ", "))")
            }
            changes.clearLaunchIntent = true
        }
        let observation = Observation(readings: observed.readings, nodes: observed.nodes, instances: instances, state: state.scaler)
        report.observation = observation
        return (observation, retryLaunchID)
    }

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

        if !decision.failedBoots.isEmpty {
            let ids = decision.failedBoots.map(\.instanceID)
            try await fleet.terminate(ids, dryRun: false)
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
                report.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, error: failure.description))
                throw failure
            } catch {
                // Unknown whether EC2 launched (a timeout, a lost answer): keep the intent, so the
                // next run looks the launch id up before launching again.
                report.actions.append(.init(kind: .launch, instanceIDs: [], launchID: launchID, error: describeError(error)))
                throw error
            }
        case .scaleDown(let victims):
            let ids = victims.map(\.instanceID)
            do {
                try await fleet.terminate(ids, dryRun: false)
            } catch {
                report.actions.append(.init(kind: .terminate, instanceIDs: ids, error: describeError(error)))
                throw error
            }
            changes.lastScaleDownAt = now
            report.actions.append(.init(kind: .terminate, instanceIDs: ids))
            logger.notice("terminated", metadata: ["instances": "\(ids.joined(separator: ","))"])
        }
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

    func outcome(for decision: Decision, actions: [RunEvent.ActionRecord]) -> RunReport.Outcome {
        if decision.halt == .missingSignals { return .failed }
        return actions.isEmpty ? .nothing : .acted
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
