import AWS
import KScalerCore

extension KScalerTable {
    /// The state as a plan (no lease) sees it; a missing item is the empty state.
    package func readState() async throws -> StateDocument {
        try Self.document(from: try await stateItem(), pool: pool)
    }

    /// Writes `document` while the lease is ours (the launch intent, before RunInstances);
    /// fails with `ConditionalCheckFailed` if the lease was lost.
    package func write(_ document: StateDocument, lease: Lease) async throws {
        try await dynamoDB.updateItem(table: tableName, key: stateKey, update: try Self.documentUpdate(document, releasing: false),
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
    /// `document` nil leaves the state as it is (a run that changed nothing).
    package func finish(lease: Lease, document: StateDocument?, event: RunEvent?, retention: TimeInterval) async throws -> Bool {
        let update = try document.map { try Self.documentUpdate($0, releasing: true) }
            ?? DynamoDBExpression("REMOVE " + Self.leaseFields.keys.sorted().joined(separator: ", "), names: Self.leaseFields)
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

    /// `SET state = <document>` (and, `releasing`, the lease removed), dropping the attributes
    /// the state was kept in before it was one document.
    static func documentUpdate(_ document: StateDocument, releasing: Bool) throws -> DynamoDBExpression {
        let json = String(decoding: try documentEncoder.encode(document), as: UTF8.self)
        var names = ["#state": "state"], remove: [String] = []
        for (index, legacy) in legacyAttributes.enumerated() {
            names["#legacy\(index)"] = legacy
            remove.append("#legacy\(index)")
        }
        if releasing {
            names.merge(leaseFields) { first, _ in first }
            remove += leaseFields.keys.sorted()
        }
        return DynamoDBExpression("SET #state = :state REMOVE " + remove.joined(separator: ", "), names: names, values: [":state": .s(json)])
    }

    /// Where the state lived before it was one document (version 0): read once, migrated on
    /// the next write.
    static let legacyAttributes = ["last_scale_up_at", "last_scale_down_at", "unavailable", "launch_intent"]

    /// The state from the item: its `state` document, else the attributes of version 0 (the
    /// cooldowns then belong to `pool`, the only pool there was). Read strictly: anything that
    /// cannot be read is an error naming it, never silently dropped — a cooldown stamp or a
    /// launch intent that vanished would let a run act twice.
    static func document(from item: DynamoDBItem, pool: String) throws(StateItemError) -> StateDocument {
        if let stored = item["state"] {
            guard let json = stored.string else {
                throw StateItemError(problems: ["state is \(stored.typeDescription), expected a string (S) holding a JSON document"])
            }
            do {
                return try documentDecoder.decode(StateDocument.self, from: Data(json.utf8))
            } catch {
                throw StateItemError(problems: ["state is not a state document kscaler can read: \(describeDecodingError(error))"])
            }
        }
        let legacy = try legacyState(from: item)
        return StateDocument(pools: legacy.scaler == ScalerState() ? [:] : [pool: legacy.scaler], launchIntent: legacy.intent)
    }

    /// Version 0: one attribute per field, read with `ItemReader`.
    private static func legacyState(from item: DynamoDBItem) throws(StateItemError) -> (scaler: ScalerState, intent: LaunchIntent?) {
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
                unavailable.append(UnavailableOffering(machineType: type, placement: subnet, until: until))
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
        let scaler = ScalerState(lastScaleUpAt: reader.time("last_scale_up_at"), lastScaleDownAt: reader.time("last_scale_down_at"),
                                 unavailableOfferings: unavailable)
        guard reader.problems.isEmpty else { throw StateItemError(problems: reader.problems) }
        return (scaler, intent)
    }

    /// Dates as ISO 8601 with milliseconds: readable in the console, precise enough for cooldowns.
    static let documentEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return encoder
    }()

    static let documentDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            for style in [Date.ISO8601FormatStyle(includingFractionalSeconds: true), Date.ISO8601FormatStyle()] {
                if let date = try? style.parse(text) { return date }
            }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text.prefix(40))\" is not an ISO 8601 time")
        }
        return decoder
    }()
}

/// "at pools.default.last_scale_up_at: …" — where in the document, and what.
func describeDecodingError(_ error: any Error) -> String {
    func at(_ context: DecodingError.Context) -> String {
        let parts = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
        let path = parts.joined()
        return path.isEmpty ? "" : "at \(path.dropFirst()): "
    }
    switch error as? DecodingError {
    case .dataCorrupted(let context): return at(context) + context.debugDescription
    case .keyNotFound(let key, let context): return at(context) + "\(key.stringValue) is missing"
    case .typeMismatch(_, let context), .valueNotFound(_, let context): return at(context) + context.debugDescription
    default: return "\(error)"
    }
}

/// The state item holds values kscaler did not write (edited by hand, or by something else):
/// nothing is acted on until it is repaired.
package struct StateItemError: Error, Sendable, CustomStringConvertible {
    package var problems: [String]

    package var description: String {
        "the state item cannot be trusted: " + problems.joined(separator: "; ")
            + ". Nothing was changed. `kscaler lease break --yes` clears a broken lease and resets an unreadable fencing token; "
            + "other attributes can be removed with `aws dynamodb update-item … --update-expression 'REMOVE <attribute>'`"
    }
}
