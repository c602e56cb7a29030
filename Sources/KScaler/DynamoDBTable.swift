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

extension KScalerTable {
    /// Takes the lease if it is free or expired strictly before `now` (a lease is valid through
    /// its expiry second), incrementing the fencing token; returns the state item as left by
    /// the same write, so reading the state costs no extra round trip.
    public func acquire(owner: String, ttl: Duration, now: Date) async throws -> LeaseAcquisition {
        let nowSeconds = Int(now.timeIntervalSince1970.rounded(.down))
        let expires = nowSeconds + Int(ttl.components.seconds)
        let update = DynamoDBExpression(
            "SET #owner = :me, #expires = :expires, #acquired = :now, #token = if_not_exists(#token, :zero) + :one",
            names: ["#owner": "lease_owner", "#expires": "lease_expires_at", "#acquired": "lease_acquired_at", "#token": "lease_token"],
            values: [":me": .s(owner), ":expires": .number(expires), ":now": .number(nowSeconds), ":zero": .number(0), ":one": .number(1)])
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

    public func holder() async throws -> LeaseHolder {
        let item = try await dynamoDB.getItem(table: tableName, key: stateKey) ?? [:]
        return LeaseHolder(
            owner: item["lease_owner"]?.string,
            token: item["lease_token"]?.int ?? 0,
            acquiredAt: item["lease_acquired_at"]?.double.map(Date.init(timeIntervalSince1970:)),
            expiresAt: item["lease_expires_at"]?.double.map(Date.init(timeIntervalSince1970:)))
    }

    /// Operator override: clears the lease whoever holds it and returns what was cleared.
    /// Conditional on the owner just read, so a lease taken in between survives.
    public func breakLease() async throws -> LeaseHolder {
        let before = try await holder()
        guard let owner = before.owner else { return before }
        try await dynamoDB.updateItem(
            table: tableName, key: stateKey,
            update: DynamoDBExpression("REMOVE " + Self.leaseFields.keys.sorted().joined(separator: ", "), names: Self.leaseFields),
            condition: DynamoDBExpression("#owner = :seen", names: ["#owner": "lease_owner"], values: [":seen": .s(owner)]))
        return before
    }

    /// The attributes that make a lease held (placeholder → name); removing them releases it.
    /// The fencing token stays: it must keep growing across acquisitions.
    static let leaseFields = ["#owner": "lease_owner", "#expires": "lease_expires_at", "#acquired": "lease_acquired_at"]
}
