/// A DynamoDB attribute value in the wire's JSON shape (`{"S": "x"}`, `{"N": "1"}`, …).
/// Numbers stay strings, as DynamoDB sends them, so no precision is lost in transit.
package indirect enum AttributeValue: Sendable, Equatable, Codable {
    case s(String)
    case n(String)
    case b(Data)
    case bool(Bool)
    case null
    case m([String: AttributeValue])
    case l([AttributeValue])
    case ss([String])
    case ns([String])

    package static func number(_ value: Int) -> AttributeValue { .n(String(value)) }

    package var string: String? { if case .s(let value) = self { value } else { nil } }
    /// The decimal text of a number, exactly as DynamoDB sent it (up to 38 digits): callers
    /// parse and range-check it themselves, since no Swift number type holds every value.
    package var numberText: String? { if case .n(let value) = self { value } else { nil } }
    package var map: [String: AttributeValue]? { if case .m(let value) = self { value } else { nil } }
    package var list: [AttributeValue]? { if case .l(let value) = self { value } else { nil } }
    package var stringSet: [String]? { if case .ss(let value) = self { value } else { nil } }

    /// The value's wire type in words, for messages about a value of the wrong type.
    package var typeDescription: String {
        switch self {
        case .s: "a string (S)"
        case .n: "a number (N)"
        case .b: "binary (B)"
        case .bool: "a boolean (BOOL)"
        case .null: "null (NULL)"
        case .m: "a map (M)"
        case .l: "a list (L)"
        case .ss: "a string set (SS)"
        case .ns: "a number set (NS)"
        }
    }

    private enum Key: String, CodingKey { case S, N, B, BOOL, NULL, M, L, SS, NS }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        guard let key = container.allKeys.first, container.allKeys.count == 1 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "an attribute value has exactly one type key (S, N, B, BOOL, NULL, M, L, SS, NS)"))
        }
        switch key {
        case .S: self = .s(try container.decode(String.self, forKey: key))
        case .N: self = .n(try container.decode(String.self, forKey: key))
        case .B:
            let text = try container.decode(String.self, forKey: key)
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "B is not base64")
            }
            self = .b(data)
        case .BOOL: self = .bool(try container.decode(Bool.self, forKey: key))
        case .NULL: self = .null
        case .M: self = .m(try container.decode([String: AttributeValue].self, forKey: key))
        case .L: self = .l(try container.decode([AttributeValue].self, forKey: key))
        case .SS: self = .ss(try container.decode([String].self, forKey: key))
        case .NS: self = .ns(try container.decode([String].self, forKey: key))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .s(let value): try container.encode(value, forKey: .S)
        case .n(let value): try container.encode(value, forKey: .N)
        case .b(let value): try container.encode(value.base64EncodedString(), forKey: .B)
        case .bool(let value): try container.encode(value, forKey: .BOOL)
        case .null: try container.encode(true, forKey: .NULL)
        case .m(let value): try container.encode(value, forKey: .M)
        case .l(let value): try container.encode(value, forKey: .L)
        case .ss(let value): try container.encode(value, forKey: .SS)
        case .ns(let value): try container.encode(value, forKey: .NS)
        }
    }
}

package typealias DynamoDBItem = [String: AttributeValue]

/// A condition or update expression with its placeholders. Several of kscaler's attribute
/// names are DynamoDB reserved words, so names always go through `#placeholders`.
package struct DynamoDBExpression: Sendable, Equatable {
    package var expression: String
    package var names: [String: String]
    package var values: [String: AttributeValue]

    package init(_ expression: String, names: [String: String] = [:], values: [String: AttributeValue] = [:]) {
        self.expression = expression
        self.names = names
        self.values = values
    }
}

/// DynamoDB over JSON 1.0 — only the operations kscaler uses. Table names are per call so one
/// client serves the lease, the state item and the history.
package struct DynamoDBClient: Sendable {
    package let client: AWSClient

    package init(client: AWSClient) { self.client = client }

    /// The conditional write lost: someone else holds the lease, or our fencing token is stale.
    ///
    /// When `earlierAttemptMayHaveSucceeded`, the call was retried after an attempt whose answer
    /// was lost (or was a 5xx): the condition may fail *because* that attempt applied the write.
    /// Such a failure is not a plain "lost"; the caller reads the item to tell which it was.
    package struct ConditionalCheckFailed: Error, Sendable, CustomStringConvertible {
        package var operation: String
        package var earlierAttemptMayHaveSucceeded = false
        package var description: String {
            "DynamoDB \(operation): the condition did not hold (ConditionalCheckFailedException)"
                + (earlierAttemptMayHaveSucceeded ? " on a retry, after an attempt that may have been applied" : "")
        }
    }

    package func getItem(table: String, key: DynamoDBItem, consistentRead: Bool = true) async throws -> DynamoDBItem? {
        struct Request: Encodable { var TableName: String; var Key: DynamoDBItem; var ConsistentRead: Bool }
        struct Response: Decodable { var Item: DynamoDBItem? }
        let response: Response = try await call("GetItem", Request(TableName: table, Key: key, ConsistentRead: consistentRead))
        return response.Item
    }

    /// Writes an item, optionally only if `condition` holds; returns the replaced item.
    @discardableResult
    package func putItem(table: String, item: DynamoDBItem, condition: DynamoDBExpression? = nil) async throws -> DynamoDBItem? {
        struct Request: Encodable {
            var TableName: String
            var Item: DynamoDBItem
            var ConditionExpression: String?
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem?
            var ReturnValues = "ALL_OLD"
        }
        struct Response: Decodable { var Attributes: DynamoDBItem? }
        let response: Response = try await call("PutItem", Request(
            TableName: table, Item: item, ConditionExpression: condition?.expression,
            ExpressionAttributeNames: condition?.names.nilIfEmpty, ExpressionAttributeValues: condition?.values.nilIfEmpty))
        return response.Attributes
    }

    /// Applies `update` (whose names/values are merged with the condition's) and returns the
    /// item as it is afterwards.
    @discardableResult
    package func updateItem(table: String, key: DynamoDBItem, update: DynamoDBExpression,
                           condition: DynamoDBExpression? = nil) async throws -> DynamoDBItem {
        struct Request: Encodable {
            var TableName: String
            var Key: DynamoDBItem
            var UpdateExpression: String
            var ConditionExpression: String?
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem?
            var ReturnValues = "ALL_NEW"
        }
        struct Response: Decodable { var Attributes: DynamoDBItem? }
        let names = update.names.merging(condition?.names ?? [:]) { first, _ in first }
        let values = update.values.merging(condition?.values ?? [:]) { first, _ in first }
        let response: Response = try await call("UpdateItem", Request(
            TableName: table, Key: key, UpdateExpression: update.expression, ConditionExpression: condition?.expression,
            ExpressionAttributeNames: names.nilIfEmpty, ExpressionAttributeValues: values.nilIfEmpty))
        return response.Attributes ?? [:]
    }

    package struct QueryPage: Sendable {
        package var items: [DynamoDBItem]
        package var lastEvaluatedKey: DynamoDBItem?
    }

    /// One page of a key-condition query; `newestFirst` reads the sort key descending.
    package func query(table: String, keyCondition: DynamoDBExpression, newestFirst: Bool, limit: Int? = nil,
                      startKey: DynamoDBItem? = nil) async throws -> QueryPage {
        struct Request: Encodable {
            var TableName: String
            var KeyConditionExpression: String
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem?
            var ScanIndexForward: Bool
            var Limit: Int?
            var ExclusiveStartKey: DynamoDBItem?
            var ConsistentRead = true
        }
        struct Response: Decodable { var Items: [DynamoDBItem]?; var LastEvaluatedKey: DynamoDBItem? }
        let response: Response = try await call("Query", Request(
            TableName: table, KeyConditionExpression: keyCondition.expression,
            ExpressionAttributeNames: keyCondition.names.nilIfEmpty, ExpressionAttributeValues: keyCondition.values.nilIfEmpty,
            ScanIndexForward: !newestFirst, Limit: limit, ExclusiveStartKey: startKey))
        return QueryPage(items: response.Items ?? [], lastEvaluatedKey: response.LastEvaluatedKey)
    }

    /// One part of an all-or-nothing `transactWrite`.
    package enum TransactItem: Sendable {
        case put(table: String, item: DynamoDBItem, condition: DynamoDBExpression?)
        case update(table: String, key: DynamoDBItem, update: DynamoDBExpression, condition: DynamoDBExpression?)
    }

    /// TransactWriteItems: every item or none. A failed condition on any part surfaces as
    /// `ConditionalCheckFailed`, like the single-item writes. This is how a write to one item
    /// (a history event) is fenced by a condition on another (the lease).
    ///
    /// `clientRequestToken` makes retries idempotent: DynamoDB answers a repeat of a token it
    /// applied within ten minutes with success instead of re-evaluating the conditions.
    package func transactWrite(_ items: [TransactItem], clientRequestToken: String? = nil) async throws {
        struct Part: Encodable {
            var TableName: String
            var Key: DynamoDBItem?
            var Item: DynamoDBItem?
            var UpdateExpression: String?
            var ConditionExpression: String?
            var ExpressionAttributeNames: [String: String]?
            var ExpressionAttributeValues: DynamoDBItem?
        }
        struct Wrapped: Encodable { var Put: Part?; var Update: Part? }
        struct Request: Encodable { var TransactItems: [Wrapped]; var ClientRequestToken: String? }
        struct Response: Decodable {}
        let wrapped = items.map { item -> Wrapped in
            switch item {
            case let .put(table, value, condition):
                Wrapped(Put: Part(TableName: table, Item: value, ConditionExpression: condition?.expression,
                                  ExpressionAttributeNames: condition?.names.nilIfEmpty, ExpressionAttributeValues: condition?.values.nilIfEmpty))
            case let .update(table, key, update, condition):
                Wrapped(Update: Part(
                    TableName: table, Key: key, UpdateExpression: update.expression, ConditionExpression: condition?.expression,
                    ExpressionAttributeNames: update.names.merging(condition?.names ?? [:]) { first, _ in first }.nilIfEmpty,
                    ExpressionAttributeValues: update.values.merging(condition?.values ?? [:]) { first, _ in first }.nilIfEmpty))
            }
        }
        do {
            let _: Response = try await call("TransactWriteItems", Request(TransactItems: wrapped, ClientRequestToken: clientRequestToken))
        } catch let error as AWSError where error.code == "TransactionCanceledException" && error.message.contains("ConditionalCheckFailed") {
            throw ConditionalCheckFailed(operation: "TransactWriteItems", earlierAttemptMayHaveSucceeded: error.earlierAttemptMayHaveSucceeded)
        }
    }

    package struct TableDescription: Sendable, Equatable {
        package var name: String
        package var status: String
        /// attribute name → key type (HASH or RANGE)
        package var keySchema: [String: String]
        /// attribute name → type (S, N, B)
        package var attributeTypes: [String: String]
    }

    package func describeTable(_ table: String) async throws -> TableDescription {
        struct Request: Encodable { var TableName: String }
        struct Response: Decodable {
            struct Table: Decodable {
                struct Key: Decodable { var AttributeName: String; var KeyType: String }
                struct Attribute: Decodable { var AttributeName: String; var AttributeType: String }
                var TableName: String
                var TableStatus: String
                var KeySchema: [Key]
                var AttributeDefinitions: [Attribute]
            }
            var Table: Table
        }
        let response: Response = try await call("DescribeTable", Request(TableName: table))
        let table = response.Table
        return TableDescription(
            name: table.TableName, status: table.TableStatus,
            keySchema: Dictionary(table.KeySchema.map { ($0.AttributeName, $0.KeyType) }, uniquingKeysWith: { first, _ in first }),
            attributeTypes: Dictionary(table.AttributeDefinitions.map { ($0.AttributeName, $0.AttributeType) }, uniquingKeysWith: { first, _ in first }))
    }

    private func call<Request: Encodable, Response: Decodable>(_ operation: String, _ request: Request) async throws -> Response {
        let body = try JSONEncoder().encode(request)
        let data: Data
        do {
            data = try await client.json(operation: operation, targetPrefix: "DynamoDB_20120810", jsonVersion: "1.0", body: body)
        } catch let error as AWSError where error.code == "ConditionalCheckFailedException" {
            throw ConditionalCheckFailed(operation: operation, earlierAttemptMayHaveSucceeded: error.earlierAttemptMayHaveSucceeded)
        }
        do {
            return try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw AWSResponseError(service: "DynamoDB", operation: operation, httpStatus: 200,
                                   detail: "the answer does not decode (\(error)); body starts \(snippet(data))")
        }
    }
}

extension Dictionary {
    /// Omitted from the request when empty: DynamoDB rejects empty expression maps.
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}
