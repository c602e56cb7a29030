/// SSM Parameter Store over JSON 1.1 — the cluster join token lives there as a SecureString.
/// Parameter values never appear in any error or description this client produces.
package struct SSMClient: Sendable {
    package let client: AWSClient

    package init(client: AWSClient) { self.client = client }

    package enum ParameterType: String, Sendable, Equatable, Codable {
        case string = "String"
        case stringList = "StringList"
        case secureString = "SecureString"
    }

    /// A parameter as read. Its description and mirror show everything but the value.
    package struct Parameter: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        package var name: String
        package var value: String
        package var version: Int
        package var type: ParameterType

        package var description: String { "SSM parameter \(name) (\(type.rawValue), version \(version), value redacted)" }
        package var debugDescription: String { description }
        package var customMirror: Mirror {
            Mirror(self, children: ["name": name, "value": "<redacted>", "version": version, "type": type])
        }
    }

    /// The parameter does not exist (in this region, for this account). Says how to create it.
    package struct ParameterNotFound: Error, Sendable, Equatable, CustomStringConvertible {
        package var name: String
        package var region: String
        package var description: String {
            "SSM parameter \(name) does not exist in \(region). Create it on the server with: "
                + "aws ssm put-parameter --region \(region) --name '\(name)' --type SecureString --value \"$TOKEN\""
        }
    }

    package func getParameter(name: String, withDecryption: Bool = true) async throws -> Parameter {
        struct Request: Encodable { var Name: String; var WithDecryption: Bool }
        struct Response: Decodable {
            struct Parameter: Decodable { var Name: String; var Value: String; var Version: Int; var `Type`: ParameterType }
            var Parameter: Parameter
        }
        let data = try await call("GetParameter", Request(Name: name, WithDecryption: withDecryption), name: name)
        // The body holds the secret: a decoding failure must not quote it.
        guard let parameter = try? JSONDecoder().decode(Response.self, from: data).Parameter else {
            throw AWSResponseError(service: client.displayName, operation: "GetParameter", httpStatus: 200,
                                   detail: "the answer for \(name) lacks Parameter.Name, Value, Version or Type (body not shown: it may hold the secret)")
        }
        return Parameter(name: parameter.Name, value: parameter.Value, version: parameter.Version, type: parameter.Type)
    }

    /// Writes the parameter and returns its new version. Without `overwrite`, an existing
    /// parameter fails with `ParameterAlreadyExists`.
    @discardableResult
    package func putParameter(name: String, value: String, type: ParameterType = .secureString, overwrite: Bool = false) async throws -> Int {
        struct Request: Encodable { var Name: String; var Value: String; var `Type`: ParameterType; var Overwrite: Bool }
        struct Response: Decodable { var Version: Int }
        let data = try await call("PutParameter", Request(Name: name, Value: value, Type: type, Overwrite: overwrite),
                                  name: name, secret: value)
        guard let version = try? JSONDecoder().decode(Response.self, from: data).Version else {
            throw AWSResponseError(service: client.displayName, operation: "PutParameter", httpStatus: 200,
                                   detail: "the answer for \(name) has no Version: \(snippet(data))")
        }
        return version
    }

    /// Sends one call; maps ParameterNotFound to its own error and scrubs `secret` from any
    /// error message (a validation message may quote what was sent).
    private func call(_ operation: String, _ request: some Encodable, name: String, secret: String? = nil) async throws -> Data {
        let body = try JSONEncoder().encode(request)
        do {
            return try await client.json(operation: operation, targetPrefix: "AmazonSSM", jsonVersion: "1.1", body: body)
        } catch var error as AWSError {
            if error.code == "ParameterNotFound" { throw ParameterNotFound(name: name, region: client.region) }
            if let secret, !secret.isEmpty { error.message = error.message.replacing(secret, with: "<redacted>") }
            throw error
        } catch var error as AWSResponseError {
            if let secret, !secret.isEmpty { error.detail = error.detail.replacing(secret, with: "<redacted>") }
            throw error
        }
    }
}

extension AWSContext {
    package var ssm: SSMClient { SSMClient(client: client(for: .ssm, displayName: "SSM")) }
}
