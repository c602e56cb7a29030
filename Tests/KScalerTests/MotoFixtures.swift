import AWS
import HTTP
import SigV4
import TestSupport
@testable import KScaler

/// AWS clients pointed at the test moto (signature checking on), and kscaler's table in it.
struct MotoFixture {
    let moto: Peers.Moto
    let context: AWSContext

    /// `endpoint` reaches moto another way (a `FaultyProxy` in front of it); `retry` is off
    /// by default so a test sees each answer as moto gave it.
    init(readOnly: Bool = false, endpoint: String? = nil, retry: RetryPolicy = RetryPolicy(maxAttempts: 1)) throws {
        moto = try Peers.moto()
        let credentials = Credentials(accessKeyID: readOnly ? moto.readOnlyAccessKeyID : moto.accessKeyID,
                                      secretAccessKey: readOnly ? moto.readOnlySecretAccessKey : moto.secretAccessKey)
        let variables = moto.environment(extra: endpoint.map { ["AWS_ENDPOINT_URL": $0] } ?? [:])
        context = AWSContext(environment: AWSEnvironment(variables: variables), region: "us-east-1", regionSource: "test",
                             credentials: CredentialChain(fixed: credentials), transport: moto.transport, retry: retry)
    }

    var dynamoDB: DynamoDBClient { DynamoDBClient(client: context.client(for: .dynamoDB, displayName: "DynamoDB")) }

    /// Creates a fresh table with kscaler's key schema (as infra/ does) and returns its name.
    func createTable() async throws -> String {
        let name = Peers.uniqueName("kscaler")
        let body = """
        {"TableName":"\(name)","BillingMode":"PAY_PER_REQUEST",
         "AttributeDefinitions":[{"AttributeName":"cluster_id","AttributeType":"S"},{"AttributeName":"record","AttributeType":"S"}],
         "KeySchema":[{"AttributeName":"cluster_id","KeyType":"HASH"},{"AttributeName":"record","KeyType":"RANGE"}]}
        """
        _ = try await context.client(for: .dynamoDB, displayName: "DynamoDB")
            .json(operation: "CreateTable", targetPrefix: "DynamoDB_20120810", jsonVersion: "1.0", body: Data(body.utf8))
        return name
    }

    func table(_ name: String, cluster: String = Peers.uniqueName("cluster")) -> KScalerTable {
        KScalerTable(dynamoDB: dynamoDB, tableName: name, clusterID: cluster)
    }
}
