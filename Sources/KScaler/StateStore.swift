import AWS
import KScalerCore

/// A launch written into the state item *before* RunInstances is called, so that a run that
/// crashes (or times out) between the call and the record cannot make the next run launch
/// again: the next run looks the intent's launch id up in EC2 (tag `kscaler:launch-id`) first.
public struct LaunchIntent: Sendable, Equatable, Codable {
    public var launchID: String
    public var count: Int
    public var createdAt: Date

    public init(launchID: String, count: Int, createdAt: Date) {
        self.launchID = launchID
        self.count = count
        self.createdAt = createdAt
    }
}

/// The scaler's memory between runs, as stored in the state item.
public struct StoredState: Sendable, Equatable {
    public var scaler: ScalerState
    public var launchIntent: LaunchIntent?

    public init(scaler: ScalerState = ScalerState(), launchIntent: LaunchIntent? = nil) {
        self.scaler = scaler
        self.launchIntent = launchIntent
    }
}

/// What a run changes in the state item when it finishes.
public struct StateChanges: Sendable, Equatable {
    public var lastScaleUpAt: Date?
    public var lastScaleDownAt: Date?
    /// The complete list to store (expired entries already dropped), or nil to leave it.
    public var unavailableOfferings: [UnavailableOffering]?
    public var clearLaunchIntent: Bool

    public init(lastScaleUpAt: Date? = nil, lastScaleDownAt: Date? = nil, unavailableOfferings: [UnavailableOffering]? = nil,
                clearLaunchIntent: Bool = false) {
        self.lastScaleUpAt = lastScaleUpAt
        self.lastScaleDownAt = lastScaleDownAt
        self.unavailableOfferings = unavailableOfferings
        self.clearLaunchIntent = clearLaunchIntent
    }

    public var isEmpty: Bool { self == StateChanges() }
}

extension KScalerTable {
    /// The state item as a plan (no lease) sees it; a missing item is the empty state.
    public func readState() async throws -> StoredState {
        Self.state(from: try await dynamoDB.getItem(table: tableName, key: stateKey) ?? [:])
    }

    /// Writes the launch intent; fails with `ConditionalCheckFailed` if the lease was lost.
    public func recordLaunchIntent(_ intent: LaunchIntent, lease: Lease) async throws {
        try await dynamoDB.updateItem(
            table: tableName, key: stateKey,
            update: DynamoDBExpression("SET #intent = :intent", names: ["#intent": "launch_intent"],
                                       values: [":intent": .m(Self.item(intent))]),
            condition: Self.heldBy(lease))
    }

    /// Ends a run in one round trip: applies `changes` to the state item, appends `event` to
    /// the history and releases the lease — all conditional on still holding it (owner and
    /// fencing token). Returns false when the lease was lost: then nothing was written.
    public func finish(lease: Lease, changes: StateChanges, event: RunEvent?, retention: TimeInterval) async throws -> Bool {
        var set: [String] = []
        var remove = Self.leaseFields.keys.sorted()
        var names = Self.leaseFields
        var values: DynamoDBItem = [:]
        if let date = changes.lastScaleUpAt {
            set.append("#up = :up"); names["#up"] = "last_scale_up_at"; values[":up"] = .number(date.timeIntervalSince1970)
        }
        if let date = changes.lastScaleDownAt {
            set.append("#down = :down"); names["#down"] = "last_scale_down_at"; values[":down"] = .number(date.timeIntervalSince1970)
        }
        if let offerings = changes.unavailableOfferings {
            set.append("#unavailable = :unavailable"); names["#unavailable"] = "unavailable"
            values[":unavailable"] = .l(offerings.map { .m(Self.item($0)) })
        }
        if changes.clearLaunchIntent {
            remove.append("#intent"); names["#intent"] = "launch_intent"
        }
        let update = DynamoDBExpression((set.isEmpty ? "" : "SET " + set.joined(separator: ", ") + " ") + "REMOVE " + remove.joined(separator: ", "),
                                        names: names, values: values)
        do {
            if let event {
                try await dynamoDB.transactWrite([
                    .update(table: tableName, key: stateKey, update: update, condition: Self.heldBy(lease)),
                    .put(table: tableName, item: try historyItem(event, retention: retention), condition: nil),
                ])
            } else {
                try await dynamoDB.updateItem(table: tableName, key: stateKey, update: update, condition: Self.heldBy(lease))
            }
            return true
        } catch is DynamoDBClient.ConditionalCheckFailed {
            return false
        }
    }

    static func state(from item: DynamoDBItem) -> StoredState {
        let unavailable = (item["unavailable"]?.list ?? []).compactMap { value -> UnavailableOffering? in
            guard let fields = value.map, let type = fields["instance_type"]?.string, let until = fields["until"]?.double else { return nil }
            return UnavailableOffering(instanceType: type, subnetID: fields["subnet_id"]?.string, until: Date(timeIntervalSince1970: until))
        }
        var intent: LaunchIntent?
        if let fields = item["launch_intent"]?.map, let id = fields["launch_id"]?.string, let count = fields["count"]?.int,
           let created = fields["created_at"]?.double {
            intent = LaunchIntent(launchID: id, count: count, createdAt: Date(timeIntervalSince1970: created))
        }
        return StoredState(
            scaler: ScalerState(lastScaleUpAt: item["last_scale_up_at"]?.double.map(Date.init(timeIntervalSince1970:)),
                                lastScaleDownAt: item["last_scale_down_at"]?.double.map(Date.init(timeIntervalSince1970:)),
                                unavailableOfferings: unavailable),
            launchIntent: intent)
    }

    static func item(_ intent: LaunchIntent) -> DynamoDBItem {
        ["launch_id": .s(intent.launchID), "count": .number(intent.count), "created_at": .number(intent.createdAt.timeIntervalSince1970)]
    }

    static func item(_ offering: UnavailableOffering) -> DynamoDBItem {
        var fields: DynamoDBItem = ["instance_type": .s(offering.instanceType), "until": .number(offering.until.timeIntervalSince1970)]
        if let subnet = offering.subnetID { fields["subnet_id"] = .s(subnet) }
        return fields
    }
}
