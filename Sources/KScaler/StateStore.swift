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

    func updating(clearLaunchIntent: Bool) -> StateChanges {
        var changes = self
        changes.clearLaunchIntent = clearLaunchIntent
        return changes
    }
}

extension KScalerTable {
    /// The state item as a plan (no lease) sees it; a missing item is the empty state.
    public func readState() async throws -> StoredState {
        try Self.state(from: try await stateItem())
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
    ///
    /// A retry after a lost answer meets its own release ("the condition did not hold"): then
    /// the table says whether the first attempt applied — the event is in the history (the
    /// transaction is all or nothing; real DynamoDB also answers the retry's
    /// `ClientRequestToken` with success), or, without an event, the lease is gone and no run
    /// has taken it since (the token is still ours).
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
                ], clientRequestToken: String(event.runID.prefix(36)))
            } else {
                try await dynamoDB.updateItem(table: tableName, key: stateKey, update: update, condition: Self.heldBy(lease))
            }
            return true
        } catch let failed as DynamoDBClient.ConditionalCheckFailed {
            guard failed.earlierAttemptMayHaveSucceeded else { return false }
            if let event {
                return try await dynamoDB.getItem(table: tableName, key: historyKey(event)) != nil
            }
            let holder = try await holder()
            return holder.owner != lease.owner && holder.token == lease.token
        }
    }

    /// The scaler's memory from the state item, read strictly (`ItemReader`). An entry that
    /// cannot be read is an error naming it, never silently dropped: a cooldown stamp or a
    /// launch intent that vanished would let a run act twice.
    static func state(from item: DynamoDBItem) throws(StateItemError) -> StoredState {
        var reader = ItemReader(item)
        var unavailable: [UnavailableOffering] = []
        for (index, value) in (reader.list("unavailable") ?? []).enumerated() {
            guard let fields = value.map else {
                let _: Void? = reader.report("unavailable[\(index)]", "is \(value.typeDescription), expected a map (M)")
                continue
            }
            var entry = ItemReader(fields, prefix: "unavailable[\(index)].")
            let type = entry.string("instance_type")
            let subnet = entry.string("subnet_id")
            let until = entry.time("until")
            if let type, let until {
                unavailable.append(UnavailableOffering(instanceType: type, subnetID: subnet, until: until))
            } else if entry.problems.isEmpty {
                let _: Void? = entry.report(type == nil ? "instance_type" : "until", "is missing")
            }
            reader.merge(entry)
        }
        var intent: LaunchIntent?
        if var fields = reader.map("launch_intent") {
            let id = fields.string("launch_id")
            let count = fields.wholeNumber("count", in: 1...100_000)
            let created = fields.time("created_at")
            if let id, let count, let created {
                intent = LaunchIntent(launchID: id, count: count, createdAt: created)
            } else if fields.problems.isEmpty {
                let _: Void? = fields.report(id == nil ? "launch_id" : count == nil ? "count" : "created_at", "is missing")
            }
            reader.merge(fields)
        }
        let state = StoredState(
            scaler: ScalerState(lastScaleUpAt: reader.time("last_scale_up_at"), lastScaleDownAt: reader.time("last_scale_down_at"),
                                unavailableOfferings: unavailable),
            launchIntent: intent)
        guard reader.problems.isEmpty else { throw StateItemError(problems: reader.problems) }
        return state
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

/// The state item holds values kscaler did not write (edited by hand, or by something else):
/// nothing is acted on until it is repaired.
public struct StateItemError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]

    public var description: String {
        "the state item cannot be trusted: " + problems.joined(separator: "; ")
            + ". Nothing was changed. `kscaler lease break --yes` clears a broken lease and resets an unreadable fencing token; "
            + "other attributes can be removed with `aws dynamodb update-item … --update-expression 'REMOVE <attribute>'`"
    }
}
