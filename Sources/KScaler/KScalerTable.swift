import AWS
import KScalerCore

/// kscaler's table layout (docs/architecture.md "The state document"): partition key `cluster_id`, sort key
/// `record`; `record = "state"` holds the lease and the scaler's memory, `event#…` items the
/// history. Names are always written through placeholders: several are reserved words.
package struct KScalerTable: Sendable {
    package let dynamoDB: DynamoDBClient
    package let tableName: String
    package let clusterID: String
    /// The pool a state of version 0 (one set of cooldowns for the cluster) is migrated into.
    package let pool: String

    package init(dynamoDB: DynamoDBClient, tableName: String, clusterID: String, pool: String = "default") {
        self.dynamoDB = dynamoDB
        self.tableName = tableName
        self.clusterID = clusterID
        self.pool = pool
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

    /// The state item as it stands; an empty item when there is none yet.
    func stateItem() async throws -> DynamoDBItem {
        try await dynamoDB.getItem(table: tableName, key: stateKey) ?? [:]
    }
}

extension KScalerTable {
    /// Takes the lease if it is free or expired strictly before `now` (a lease is valid through
    /// its expiry second), incrementing the fencing token; returns the state item as left by
    /// the same write, so reading the state costs no extra round trip.
    ///
    /// Idempotent: when the answer to an acquisition is lost and the retry finds the lease held,
    /// the holder is read; if it is `owner` (unique per process), the first attempt took it.
    /// A lease or state item that cannot be trusted (`LeaseHolder.doubts`, `StateItemError`)
    /// is reported, never acted on; a lease taken on the way is given back at once.
    ///
    /// When the write is refused but the read then finds the lease free, its holder released
    /// it in between (racing processes on a busy machine do this): the write is tried once
    /// more rather than skipping the run as "held" by nobody.
    package func acquire(owner: String, ttl: Duration, now: Date,
                        clockSkew: TimeInterval = LeaseSettings().maxClockSkew) async throws -> LeaseAcquisition {
        let nowSeconds = Int(now.timeIntervalSince1970.rounded(.down))
        let ttlSeconds = Int(ttl.components.seconds)
        let update = DynamoDBExpression(
            "SET #owner = :me, #expires = :expires, #acquired = :now, #token = if_not_exists(#token, :zero) + :one",
            names: ["#owner": "lease_owner", "#expires": "lease_expires_at", "#acquired": "lease_acquired_at", "#token": "lease_token"],
            values: [":me": .s(owner), ":expires": .number(nowSeconds + ttlSeconds), ":now": .number(nowSeconds),
                     ":zero": .number(0), ":one": .number(1)])
        let condition = DynamoDBExpression("attribute_not_exists(#owner) OR #expires < :now")
        var item: DynamoDBItem?
        var released = false
        while item == nil {
            do {
                item = try await dynamoDB.updateItem(table: tableName, key: stateKey, update: update, condition: condition)
            } catch is DynamoDBClient.ConditionalCheckFailed {
                let current = try await stateItem()
                let holder = Self.holder(from: current)
                if holder.owner == owner {
                    item = current
                } else if holder.owner == nil && holder.problems.isEmpty && !released {
                    released = true  // released between the refused write and the read: once more
                } else {
                    let doubts = holder.doubts(at: now, ttl: TimeInterval(ttlSeconds), clockSkew: clockSkew)
                    return doubts.isEmpty ? .heldByOther(holder) : .untrustworthy(holder, problems: doubts)
                }
            } catch let error as AWSError where error.code == "ValidationException" {
                // An attribute of the wrong type (a lease_token stored as a string) fails the
                // update expression itself, before any condition.
                let holder = Self.holder(from: try await stateItem())
                guard !holder.problems.isEmpty else { throw error }
                return .untrustworthy(holder, problems: holder.problems)
            }
        }
        guard let item else { preconditionFailure("the loop above ends only with an item") }

        let holder = Self.holder(from: item)
        let state = Result { () throws(StateItemError) in try Self.document(from: item, pool: pool) }
        guard holder.owner == owner, let token = holder.token, let expiresAt = holder.expiresAt, holder.problems.isEmpty,
              case .success(let stored) = state else {
            var problems = holder.problems
            if case .failure(let error) = state { problems += error.problems }
            // An unreadable fencing token cannot guard writes: give the lease back rather than
            // leave it blocking runs until it expires.
            try? await giveBack(owner: owner)
            return .untrustworthy(holder, problems: problems)
        }
        return .acquired(Lease(clusterID: clusterID, owner: owner, token: token,
                               acquiredAt: holder.acquiredAt ?? Date(timeIntervalSince1970: Double(nowSeconds)), expiresAt: expiresAt),
                         stored)
    }

    package func holder() async throws -> LeaseHolder {
        Self.holder(from: try await stateItem())
    }

    static func holder(from item: DynamoDBItem) -> LeaseHolder {
        var reader = ItemReader(item)
        let owner = reader.string("lease_owner")
        let token = reader.has("lease_token") ? reader.wholeNumber("lease_token", in: 0...Int.max) : 0
        let acquiredAt = reader.time("lease_acquired_at")
        let expiresAt = reader.time("lease_expires_at")
        if reader.has("lease_owner") && !reader.has("lease_expires_at") {
            let _: Void? = reader.report("lease_expires_at", "is missing although lease_owner is set: the lease would never expire")
        }
        return LeaseHolder(owner: owner, token: token, acquiredAt: acquiredAt, expiresAt: expiresAt, problems: reader.problems)
    }

    /// Releases a lease this process just took but cannot use.
    package func giveBack(owner: String) async throws {
        try await dynamoDB.updateItem(
            table: tableName, key: stateKey,
            update: DynamoDBExpression("REMOVE " + Self.leaseFields.keys.sorted().joined(separator: ", "), names: Self.leaseFields),
            condition: DynamoDBExpression("#owner = :me", values: [":me": .s(owner)]))
    }

    /// What `breakLease` found and did.
    package struct BrokenLease: Sendable, Equatable {
        /// The lease as it stood before.
        package var holder: LeaseHolder
        /// Whether any lease attribute was there to clear.
        package var cleared: Bool
        /// The fencing token was unreadable (wrong type, fractional, out of range) and was
        /// removed, so the next acquisition starts again at 1. Fencing still holds: every
        /// write under a lease also names its owner, which is unique to each run.
        package var tokenReset: Bool
    }

    /// Operator override: clears the lease whoever holds it, whatever shape its attributes are
    /// in, and resets an unreadable fencing token. Conditional on the attributes just read, so
    /// a lease taken in between survives.
    package func breakLease() async throws -> BrokenLease {
        let item = try await stateItem()
        let holder = Self.holder(from: item)
        let tokenReset = item["lease_token"] != nil && holder.token == nil
        let cleared = Self.leaseFields.values.contains { item[$0] != nil }
        guard cleared || tokenReset else { return BrokenLease(holder: holder, cleared: false, tokenReset: false) }
        var names = Self.leaseFields
        var remove = Self.leaseFields.keys.sorted()
        var conditions: [String] = []
        var values: DynamoDBItem = [:]
        if let seen = item["lease_owner"] {
            conditions.append("#owner = :seen")
            values[":seen"] = seen
        } else {
            conditions.append("attribute_not_exists(#owner)")
        }
        if tokenReset, let seen = item["lease_token"] {
            names["#token"] = "lease_token"
            remove.append("#token")
            conditions.append("#token = :token")
            values[":token"] = seen
        }
        try await dynamoDB.updateItem(
            table: tableName, key: stateKey,
            update: DynamoDBExpression("REMOVE " + remove.joined(separator: ", "), names: names),
            condition: DynamoDBExpression(conditions.joined(separator: " AND "), values: values))
        return BrokenLease(holder: holder, cleared: cleared, tokenReset: tokenReset)
    }

    /// The attributes that make a lease held (placeholder → name); removing them releases it.
    /// The fencing token stays: it must keep growing across acquisitions.
    static let leaseFields = ["#owner": "lease_owner", "#expires": "lease_expires_at", "#acquired": "lease_acquired_at"]
}
