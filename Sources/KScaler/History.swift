import AWS
import KScalerCore

/// What one run decided and did: the `event#<time>#<run id>` item of the history, and the
/// record `kscaler history` prints. Stored as JSON in one attribute (plus the keys DynamoDB
/// needs: sort key and `expires_at` for TTL), so its shape can grow without a migration.
public struct RunEvent: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable {
        /// Launched or terminated something.
        case acted
        /// Decided that nothing should change (or was blocked by a cooldown / safety rule).
        case nothing
        /// Observation failed: no action was taken.
        case failed
        /// An EC2 action failed part-way.
        case actionFailed = "action_failed"
    }

    public struct ActionRecord: Sendable, Equatable, Codable {
        public enum Kind: String, Sendable, Codable { case launch, terminate, terminateFailedBoot = "terminate_failed_boot" }
        public var kind: Kind
        public var instanceIDs: [String]
        public var instanceType: String?
        public var subnetID: String?
        public var launchID: String?
        public var error: String?

        public init(kind: Kind, instanceIDs: [String], instanceType: String? = nil, subnetID: String? = nil,
                    launchID: String? = nil, error: String? = nil) {
            self.kind = kind
            self.instanceIDs = instanceIDs
            self.instanceType = instanceType
            self.subnetID = subnetID
            self.launchID = launchID
            self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case kind, instanceIDs = "instance_ids", instanceType = "instance_type", subnetID = "subnet_id", launchID = "launch_id", error
        }
    }

    public var runID: String
    public var startedAt: Date
    public var finishedAt: Date
    public var outcome: Outcome
    /// `none`, `scale_up`, `scale_down` (from the decision).
    public var action: String
    public var counts: NodeCounts?
    public var reasons: [String]
    public var actions: [ActionRecord]
    public var errors: [String]
    public var leaseToken: Int?

    public init(runID: String, startedAt: Date, finishedAt: Date, outcome: Outcome, action: String, counts: NodeCounts?,
                reasons: [String], actions: [ActionRecord], errors: [String], leaseToken: Int?) {
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
    }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", startedAt = "started_at", finishedAt = "finished_at", outcome, action, counts, reasons, actions, errors
        case leaseToken = "lease_token"
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

    /// `event#<time>#<run id>`: sorted by time, unique per run.
    func historyKey(_ event: RunEvent) -> DynamoDBItem {
        ["cluster_id": .s(clusterID), "record": .s(Self.eventPrefix + Self.timestamp(event.startedAt) + "#" + event.runID)]
    }

    /// Newest first, with a description of each item that could not be read (skipped, so one
    /// damaged item does not hide the rest).
    public func history(limit: Int) async throws -> (events: [RunEvent], unreadable: [String]) {
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
