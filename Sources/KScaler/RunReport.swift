import KScalerCore

/// Everything one `kscaler run` or `kscaler plan` saw, decided and did. Printed as a table for
/// people and as one JSON document (`--output json`, stable snake_case keys) for machines;
/// the history event and the Pushgateway metrics are derived from it.
package struct RunReport: Sendable, Codable {
    package enum Mode: String, Sendable, Codable { case run, plan }

    package enum Outcome: String, Sendable, Codable, CaseIterable {
        /// Launched or terminated something (plan: the dry run of the action passed).
        case acted
        /// Nothing to do, or blocked by a cooldown or a safety rule.
        case nothing
        /// Another run holds the lease: a normal outcome.
        case skipped
        /// Observing failed (AWS, Prometheus, the table): no action was taken.
        case failed
        /// An EC2 action failed (plan: its dry run failed, e.g. a missing permission).
        case actionFailed = "action_failed"
        /// An EC2 action was sent but its answer was lost or came after the deadline: it may
        /// have happened. Recorded; the next run looks it up before acting again.
        case actionResultUnknown = "action_result_unknown"

        /// From what this run's own actions (not the ones it recovered) came to.
        static func of(_ actions: [RunEvent.ActionRecord]) -> Outcome? {
            let own = actions.filter { !$0.recovered }
            if own.contains(where: { $0.result == .unknown }) { return .actionResultUnknown }
            if own.contains(where: { $0.result == .failed }) { return .actionFailed }
            return own.isEmpty ? nil : .acted
        }
    }

    package struct LeaseInfo: Sendable, Codable, Equatable {
        package var owner: String?
        package var token: Int
        package var expiresAt: Date?
        enum CodingKeys: String, CodingKey { case owner, token, expiresAt = "expires_at" }
    }

    package var runID: String
    package var mode: Mode
    package var clusterID: String
    package var startedAt: Date
    package var finishedAt: Date
    package var outcome: Outcome
    /// Ours when acquired; the holder's when skipped; nil for a plan.
    package var lease: LeaseInfo?
    package var leaseReleased: Bool?
    package var observation: Observation?
    package var decision: Decision?
    package var actions: [RunEvent.ActionRecord]
    /// The Node objects found ghosts and what became of them; nil without the Kubernetes API.
    package var nodeCleanup: NodeCleanup?
    /// How long each drain that finished (its machine terminated) this run took, in seconds.
    package var drainDurations: [TimeInterval] = []
    /// Drains open once the run is over (the state's list; for a plan, as it stands).
    package var drainsOpen: Int = 0
    /// Facts worth a line that are not decisions (a resumed launch intent, a released lease).
    package var notes: [String]
    package var errors: [String]
    /// The operator's request, for `kscaler scale`.
    package var manual: ManualRequest?
    /// The operator's hold in force once the run is over (set by this run, or still running).
    package var hold: Hold?
    /// This run set a new hold (`--hold`) or lifted one (`--release-hold`, or it had ended).
    package var holdChanged = false
    /// The backend the run acted on (`fleet.backend`).
    package var backend: String?

    package init(runID: String, mode: Mode, clusterID: String, startedAt: Date, backend: String? = nil) {
        self.backend = backend
        self.runID = runID
        self.mode = mode
        self.clusterID = clusterID
        self.startedAt = startedAt
        self.finishedAt = startedAt
        self.outcome = .nothing
        self.actions = []
        self.notes = []
        self.errors = []
    }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", mode, clusterID = "cluster_id", startedAt = "started_at", finishedAt = "finished_at", outcome
        case lease, leaseReleased = "lease_released", observation, decision, actions, nodeCleanup = "node_cleanup"
        case drainDurations = "drain_durations", drainsOpen = "drains_open", notes, errors, manual, hold, holdChanged = "hold_changed"
        case backend
    }

    /// The history event for this run, or nil when it neither decided, did nor failed anything
    /// worth keeping (a quiet run every minute must not fill the table).
    package var historyEvent: RunEvent? {
        let decided = decision.map { $0.action != .none || !$0.failedBoots.isEmpty } ?? false
        let failed = outcome == .failed || outcome == .actionFailed || outcome == .actionResultUnknown
        // An operator's request is always kept, refused or not: the history is its audit trail.
        guard decided || failed || !actions.isEmpty || !errors.isEmpty || manual != nil || holdChanged else { return nil }
        let eventOutcome: RunEvent.Outcome = switch outcome {
        case .acted: .acted
        case .nothing, .skipped: .nothing
        case .failed: .failed
        case .actionFailed: .actionFailed
        case .actionResultUnknown: .actionResultUnknown
        }
        return RunEvent(runID: runID, startedAt: startedAt, finishedAt: finishedAt, outcome: eventOutcome,
                        action: decision?.action.kindName ?? "none", counts: decision?.counts,
                        reasons: decision?.reasons.map(\.message) ?? [], actions: actions, errors: errors, leaseToken: lease?.token,
                        manual: manual, hold: holdChanged ? hold : nil, scheduledWindows: scheduledWindows, backend: backend)
    }

    /// The windows that raised any bound this run decided within; nil when none did.
    var scheduledWindows: [String]? {
        let names = decision?.schedule?.bounds.flatMap(\.raisedBy) ?? []
        return names.isEmpty ? nil : names.reduce(into: []) { unique, name in if !unique.contains(name) { unique.append(name) } }
    }
}

extension Decision.Action {
    /// `none`, `scale_up`, `scale_down`: the names the JSON output and the history use.
    package var kindName: String {
        switch self {
        case .none: "none"
        case .scaleUp: "scale_up"
        case .scaleDown: "scale_down"
        }
    }
}
