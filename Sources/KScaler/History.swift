import AWS
import KScalerCore

/// What one run decided and did: the `event#<time>#<run id>` item of the history, and the
/// record `kscaler history` prints. Stored as JSON in one attribute (plus the keys DynamoDB
/// needs: sort key and `expires_at` for TTL), so its shape can grow without a migration.
package struct RunEvent: Sendable, Equatable, Codable {
    package enum Outcome: String, Sendable, Codable {
        /// Launched or terminated something.
        case acted
        /// Decided that nothing should change (or was blocked by a cooldown / safety rule).
        case nothing
        /// Observation failed: no action was taken.
        case failed
        /// An EC2 action failed: EC2 refused it, nothing happened.
        case actionFailed = "action_failed"
        /// An EC2 action's answer was lost or came too late: it may have happened. The next run
        /// looks it up (the launch id's tag; the instances' state) before acting again.
        case actionResultUnknown = "action_result_unknown"
    }

    package struct ActionRecord: Sendable, Equatable, Codable {
        package enum Kind: String, Sendable, Codable {
            case launch, terminate, terminateFailedBoot = "terminate_failed_boot"
            /// A Node object deleted through the Kubernetes API (its machine gone).
            case deleteNode = "delete_node"
            /// A drain started: the node cordoned and tainted, the drain recorded.
            case drainStart = "drain_start"
            /// Pods evicted from a draining node (`detail`: what blocked the others).
            case evict
            /// The drain's timeout passed with `force_after_timeout`: the pods left were deleted.
            case forceDelete = "drain_force"
            /// The drain's timeout passed: the node uncordoned, not chosen again for a while.
            case drainAbort = "drain_abort"
            /// Pods became unschedulable (or the minimum was at stake): the node uncordoned.
            case drainCancel = "drain_cancel"
            /// Nothing left to drain (the node or its machine went away): the record dropped.
            case drainClose = "drain_close"
            /// kscaler's taint found on a node with no open drain: removed, node uncordoned.
            case untaint
            /// An operator's `kscaler protect` / `unprotect` (`detail`: until when, and who).
            case protect, unprotect
        }

        package enum Result: String, Sendable, Codable {
            case done
            /// EC2 refused it (or it was never sent): nothing happened.
            case failed
            /// Sent, but no usable answer came back: it may have happened.
            case unknown
        }

        package var kind: Kind
        package var instanceIDs: [String]
        package var machineType: String?
        package var placement: String?
        package var launchID: String?
        package var result: Result
        package var error: String?
        /// Done by an earlier run that crashed before recording it; this run found it (by its
        /// launch id) and records it, so every launch reaches the history.
        package var recovered: Bool
        /// The Node objects acted on (`delete_node`, the drain kinds); nil for machine actions.
        package var nodes: [String]?
        /// The pods evicted or deleted (`namespace/name`).
        package var pods: [String]?
        /// Why, for the drain kinds: what blocked an eviction, why a drain was aborted or closed.
        package var detail: String?
        /// The pool acted on, with `pools:` (a launch's, a victim's, a drained node's).
        package var pool: String?
        /// A launch's market (`spot`, `on-demand`).
        package var market: Market?

        package init(kind: Kind, instanceIDs: [String], nodes: [String]? = nil, machineType: String? = nil, placement: String? = nil,
                    launchID: String? = nil, result: Result = .done, error: String? = nil, recovered: Bool = false,
                    pods: [String]? = nil, detail: String? = nil, pool: String? = nil, market: Market? = nil) {
            self.kind = kind
            self.instanceIDs = instanceIDs
            self.nodes = nodes
            self.machineType = machineType
            self.placement = placement
            self.launchID = launchID
            self.result = result
            self.error = error
            self.recovered = recovered
            self.pods = pods
            self.detail = detail
            self.pool = pool
            self.market = market
        }

        enum CodingKeys: String, CodingKey {
            case kind, instanceIDs = "instance_ids", machineType = "instance_type", placement = "subnet_id", launchID = "launch_id"
            case result, error, recovered, nodes, pods, detail, pool, market
        }

        /// Events written before `result` and `recovered` existed read as they meant.
        package init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            kind = try container.decode(Kind.self, forKey: .kind)
            instanceIDs = try container.decode([String].self, forKey: .instanceIDs)
            machineType = try container.decodeIfPresent(String.self, forKey: .machineType)
            placement = try container.decodeIfPresent(String.self, forKey: .placement)
            launchID = try container.decodeIfPresent(String.self, forKey: .launchID)
            error = try container.decodeIfPresent(String.self, forKey: .error)
            result = try container.decodeIfPresent(Result.self, forKey: .result) ?? (error == nil ? .done : .failed)
            recovered = try container.decodeIfPresent(Bool.self, forKey: .recovered) ?? false
            nodes = try container.decodeIfPresent([String].self, forKey: .nodes)
            pods = try container.decodeIfPresent([String].self, forKey: .pods)
            detail = try container.decodeIfPresent(String.self, forKey: .detail)
            pool = try container.decodeIfPresent(String.self, forKey: .pool)
            market = try container.decodeIfPresent(Market.self, forKey: .market)
        }
    }

    package var runID: String
    package var startedAt: Date
    package var finishedAt: Date
    package var outcome: Outcome
    /// `none`, `scale_up`, `scale_down` (from the decision).
    package var action: String
    package var counts: NodeCounts?
    package var reasons: [String]
    package var actions: [ActionRecord]
    package var errors: [String]
    package var leaseToken: Int?
    /// The operator's request, for a `kscaler scale` run: recorded as manual, with its reason.
    package var manual: ManualRequest?
    /// The hold this run set (`kscaler scale --hold`).
    package var hold: Hold?
    /// The `schedules:` windows that raised the bounds this run decided within (none: the base bounds).
    package var scheduledWindows: [String]?
    /// The backend the run acted on (`fleet.backend`); nil in events written before backends.
    package var backend: String?

    package init(runID: String, startedAt: Date, finishedAt: Date, outcome: Outcome, action: String, counts: NodeCounts?,
                reasons: [String], actions: [ActionRecord], errors: [String], leaseToken: Int?, manual: ManualRequest? = nil, hold: Hold? = nil,
                scheduledWindows: [String]? = nil, backend: String? = nil) {
        self.runID = runID
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outcome = outcome
        self.action = action
        self.counts = counts
        self.reasons = reasons
        self.actions = actions
        self.errors = errors
        self.leaseToken = leaseToken
        self.manual = manual
        self.hold = hold
        self.scheduledWindows = scheduledWindows
        self.backend = backend
    }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", startedAt = "started_at", finishedAt = "finished_at", outcome, action, counts, reasons, actions, errors
        case leaseToken = "lease_token", manual, hold, scheduledWindows = "scheduled_windows", backend
    }
}

extension KScalerTable {
    /// The history item for `event`, expiring after `retention` (DynamoDB TTL on `expires_at`).
    func historyItem(_ event: RunEvent, retention: TimeInterval) throws -> DynamoDBItem {
        historyKey(event).merging([
            "outcome": .s(event.outcome.rawValue),
            "event": .s(String(decoding: try Self.encoder.encode(event), as: UTF8.self)),
            "expires_at": .number(Int(event.startedAt.timeIntervalSince1970 + retention)),
        ]) { key, _ in key }
    }

    /// Adds an operator's event outside any run: its key is new (a fresh id), so the put never
    /// replaces a run's record, and it needs no lease.
    package func record(_ event: RunEvent, retention: TimeInterval) async throws {
        _ = try await dynamoDB.putItem(table: tableName, item: try historyItem(event, retention: retention),
                                       condition: DynamoDBExpression("attribute_not_exists(#record)", names: ["#record": "record"]))
    }

    /// `event#<time>#<run id>`: sorted by time, unique per run.
    func historyKey(_ event: RunEvent) -> DynamoDBItem {
        ["cluster_id": .s(clusterID), "record": .s(Self.eventPrefix + Self.timestamp(event.startedAt) + "#" + event.runID)]
    }

    /// Newest first, with a description of each item that could not be read (skipped, so one
    /// damaged item does not hide the rest).
    package func history(limit: Int) async throws -> (events: [RunEvent], unreadable: [String]) {
        let page = try await dynamoDB.query(
            table: tableName,
            keyCondition: DynamoDBExpression("#cluster = :cluster AND begins_with(#record, :prefix)",
                                             names: ["#cluster": "cluster_id", "#record": "record"],
                                             values: [":cluster": .s(clusterID), ":prefix": .s(Self.eventPrefix)]),
            newestFirst: true, limit: limit)
        var events: [RunEvent] = [], unreadable: [String] = []
        for item in page.items {
            if let json = item["event"]?.string, let event = try? Self.decoder.decode(RunEvent.self, from: Data(json.utf8)) {
                events.append(event)
            } else {
                unreadable.append("history item \(item["record"]?.string ?? "?") has no readable `event` attribute")
            }
        }
        return (events, unreadable)
    }

    /// Sortable UTC time with milliseconds: the history's sort key orders by it.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
