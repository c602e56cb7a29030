import AWS

/// kscaler's table layout (DESIGN.md "Table layout"): partition key `cluster_id`, sort key
/// `record`; `record = "state"` holds the lease and the scaler's memory, `event#…` items the
/// history. Names are always written through placeholders: several are reserved words.
public struct KScalerTable: Sendable {
    public let dynamoDB: DynamoDBClient
    public let tableName: String
    public let clusterID: String

    public init(dynamoDB: DynamoDBClient, tableName: String, clusterID: String) {
        self.dynamoDB = dynamoDB
        self.tableName = tableName
        self.clusterID = clusterID
    }

    static let stateRecord = "state"
    static let eventPrefix = "event#"

    var stateKey: DynamoDBItem { ["cluster_id": .s(clusterID), "record": .s(Self.stateRecord)] }

    /// The condition every write made under a lease carries: we still own it, same token.
    static func heldBy(_ lease: Lease) -> DynamoDBExpression {
        DynamoDBExpression("#owner = :me AND #token = :token",
                           names: ["#owner": "lease_owner", "#token": "lease_token"],
                           values: [":me": .s(lease.owner), ":token": .number(lease.token)])
    }
}

extension KScalerTable: LeaseStore {
    public func acquire(owner: String, ttl: Duration, note: String?, now: Date) async throws -> LeaseAcquisition {
        let nowSeconds = Int(now.timeIntervalSince1970.rounded(.down))
        let expires = nowSeconds + Int(ttl.components.seconds)
        var set = "#owner = :me, #expires = :expires, #acquired = :now, #token = if_not_exists(#token, :zero) + :one"
        var values: DynamoDBItem = [":me": .s(owner), ":expires": .number(expires), ":now": .number(nowSeconds),
                                    ":zero": .number(0), ":one": .number(1)]
        var remove = ""
        if let note {
            set += ", #note = :note"
            values[":note"] = .s(note)
        } else {
            remove = " REMOVE #note"
        }
        let update = DynamoDBExpression(
            "SET " + set + remove,
            names: ["#owner": "lease_owner", "#expires": "lease_expires_at", "#acquired": "lease_acquired_at",
                    "#token": "lease_token", "#note": "lease_note"],
            values: values)
        // Free, or expired strictly before now: a lease is valid through its expiry second.
        let condition = DynamoDBExpression("attribute_not_exists(#owner) OR #expires < :now")
        do {
            let item = try await dynamoDB.updateItem(table: tableName, key: stateKey, update: update, condition: condition)
            guard let token = item["lease_token"]?.int else {
                throw AWSResponseError(service: "DynamoDB", operation: "UpdateItem", httpStatus: 200, detail: "the state item came back without lease_token")
            }
            return .acquired(Lease(clusterID: clusterID, owner: owner, token: token,
                                   acquiredAt: Date(timeIntervalSince1970: Double(nowSeconds)),
                                   expiresAt: Date(timeIntervalSince1970: Double(expires))),
                             Self.state(from: item))
        } catch is DynamoDBClient.ConditionalCheckFailed {
            return .heldByOther(try await holder())
        }
    }

    public func release(_ lease: Lease) async throws -> Bool {
        let update = DynamoDBExpression("REMOVE #owner, #expires, #acquired, #note",
                                        names: ["#owner": "lease_owner", "#expires": "lease_expires_at",
                                                "#acquired": "lease_acquired_at", "#note": "lease_note"])
        do {
            try await dynamoDB.updateItem(table: tableName, key: stateKey, update: update, condition: Self.heldBy(lease))
            return true
        } catch is DynamoDBClient.ConditionalCheckFailed {
            return false
        }
    }

    public func holder() async throws -> LeaseHolder {
        let item = try await dynamoDB.getItem(table: tableName, key: stateKey) ?? [:]
        return LeaseHolder(
            owner: item["lease_owner"]?.string,
            token: item["lease_token"]?.int ?? 0,
            acquiredAt: item["lease_acquired_at"]?.double.map(Date.init(timeIntervalSince1970:)),
            expiresAt: item["lease_expires_at"]?.double.map(Date.init(timeIntervalSince1970:)),
            note: item["lease_note"]?.string)
    }

    public func breakLease() async throws -> LeaseHolder {
        let before = try await holder()
        guard let owner = before.owner else { return before }
        // Conditional on the owner we saw, so a lease taken between the read and this write survives.
        let update = DynamoDBExpression("REMOVE #owner, #expires, #acquired, #note",
                                        names: ["#owner": "lease_owner", "#expires": "lease_expires_at",
                                                "#acquired": "lease_acquired_at", "#note": "lease_note"])
        try await dynamoDB.updateItem(table: tableName, key: stateKey, update: update,
                                      condition: DynamoDBExpression("#owner = :seen", names: ["#owner": "lease_owner"], values: [":seen": .s(owner)]))
        return before
    }
}
