import HTTP
import SigV4
import Synchronization
import Testing
import TestSupport
@testable import AWS

/// EC2 answers moto cannot give, from a local stand-in: capacity errors (moto launches any
/// type anywhere, without limits), throttling, and broken answers (an HTML gateway page,
/// malformed or truncated XML, a connection cut mid-body, a token loop).
@Suite struct EC2StandInTests {
    /// Counts the requests a stub has answered, for handlers that answer by turn.
    final class Turns: Sendable {
        private let count = Mutex(0)
        func next() -> Int { count.withLock { $0 += 1; return $0 } }
    }

    func ec2(_ server: StubHTTPServer, maxAttempts: Int = 3) -> EC2Client {
        EC2Client(client: AWSClient(
            service: .ec2, displayName: "EC2", region: "us-east-1", endpoint: server.baseURL,
            credentials: CredentialChain(fixed: Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "stand-in-secret")),
            transport: CurlTransport(), retry: RetryPolicy(maxAttempts: maxAttempts, sleep: { _ in })))
    }

    static func errorXML(_ code: String, _ message: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <Response><Errors><Error><Code>\(code)</Code><Message>\(message)</Message></Error></Errors><RequestID>req-\(code)</RequestID></Response>
        """
    }

    static let launchRequest = RunInstancesRequest(imageID: "ami-1", instanceType: "m7i.large", subnetID: "subnet-1")

    static func runInstancesXML(_ instance: EC2Instance) -> String {
        """
        <RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationId>r-1</reservationId>
        <ownerId>1</ownerId><groupSet/><instancesSet>\(EC2ParsingTests.instanceXML(instance))</instancesSet></RunInstancesResponse>
        """
    }

    /// The form fields of a recorded Query-protocol request.
    static func form(_ request: RecordedRequest) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: request.body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            fields[parts[0]] = parts.count > 1 ? parts[1].replacing("+", with: " ").removingPercentEncoding : ""
        }
        return fields
    }

    @Test(arguments: [
        ("InsufficientInstanceCapacity", 500, "We currently do not have sufficient m7i.large capacity in the Availability Zone you requested (us-east-1a)."),
        ("Unsupported", 400, "Your requested instance type (m7i.large) is not supported in your requested Availability Zone (us-east-1e)."),
        ("VcpuLimitExceeded", 400, "You have requested more vCPU capacity than your current vCPU limit of 32 allows."),
        ("InstanceLimitExceeded", 400, "You have requested more instances (21) than your current instance limit of 20 allows."),
        ("InsufficientFreeAddressesInSubnet", 400, "There are not enough free addresses in subnet 'subnet-1' to satisfy the requested number of instances."),
    ])
    func capacityErrorIsRecognisedAtOnceWithoutRetries(code: String, status: Int, message: String) async throws {
        let server = try StubHTTPServer { _ in .text(Self.errorXML(code, message), status: status) }
        defer { server.stop() }
        await #expect {
            _ = try await ec2(server).runInstances(Self.launchRequest)
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.isCapacityError && error.code == code && error.httpStatus == status && error.message == message
                && error.requestID == "req-\(code)"
        }
        #expect(server.requests.count == 1, "a capacity error must reach the fleet at once, not after retries")
    }

    @Test func requestLimitExceededIsRetriedWithTheSameClientTokenUntilItSucceeds() async throws {
        let launched = EC2ParsingTests.fleet(count: 1)[0]
        let turns = Turns()
        let server = try StubHTTPServer { _ in
            turns.next() <= 2
                ? .text(Self.errorXML("RequestLimitExceeded", "Request limit exceeded."), status: 503)
                : .text(Self.runInstancesXML(launched))
        }
        defer { server.stop() }
        let instances = try await ec2(server).runInstances(Self.launchRequest)
        #expect(instances == [launched])
        let tokens = server.requests.map { Self.form($0)["ClientToken"] }
        #expect(tokens.count == 3)
        #expect(Set(tokens).count == 1 && tokens[0]?.hasPrefix("kscaler-") == true,
                "retries must carry the one client token made for the call, so EC2 launches once")
    }

    @Test func throttlingThatOutlastsTheAttemptsSurfacesAsThrottling() async throws {
        let server = try StubHTTPServer { _ in .text(Self.errorXML("RequestLimitExceeded", "Request limit exceeded."), status: 503) }
        defer { server.stop() }
        await #expect {
            _ = try await ec2(server, maxAttempts: 2).describeInstances(filters: [])
        } throws: { ($0 as? AWSError)?.isThrottling == true }
        #expect(server.requests.count == 2)
    }

    @Test(arguments: [
        (StubResponse.text("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", status: 502),
         502, "502 Bad Gateway"),
        (StubResponse.text("<DescribeInstancesResponse><reservationSet><item><instancesSet><item><instanceId>i-1"),
         200, "malformed XML"),
        (StubResponse.text("{\"not\": \"xml\"}"), 200, "expected a root element"),
        (StubResponse.text(""), 200, "(empty body)"),
    ])
    func brokenAnswersAreUnexpectedAnswersWithASnippet(response: StubResponse, status: Int, expected: String) async throws {
        let server = try StubHTTPServer { _ in response }
        defer { server.stop() }
        await #expect {
            _ = try await ec2(server).describeInstances(filters: [])
        } throws: { error in
            guard let error = error as? AWSResponseError else { return false }
            return error.httpStatus == status && error.operation == "DescribeInstances" && error.description.contains(expected)
        }
    }

    @Test func aConnectionCutMidBodyIsATransportErrorRetriedAndReported() async throws {
        let server = try StubHTTPServer { _ in
            .raw("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5000\r\n\r\n<DescribeInstancesResponse><reservationSet>")
        }
        defer { server.stop() }
        await #expect {
            _ = try await ec2(server).describeInstances(filters: [])
        } throws: { ($0 as? HTTPError)?.kind == .receiveFailed }
        #expect(server.requests.count == 3, "a cut connection is transient: retried up to the attempt limit")
    }

    @Test func aRepeatedNextTokenStopsThePagination() async throws {
        let server = try StubHTTPServer { _ in
            .text("<DescribeInstancesResponse><nextToken>same</nextToken><reservationSet/></DescribeInstancesResponse>")
        }
        defer { server.stop() }
        await #expect {
            _ = try await ec2(server).describeInstances(filters: [])
        } throws: { "\($0)".contains("the same NextToken came back twice") }
        #expect(server.requests.count == 2)
    }

    @Test func describeSendsFiltersPageSizeAndTokensAndOmitsPageSizeWithIDs() async throws {
        let fleet = EC2ParsingTests.fleet(count: 3)
        let turns = Turns()
        let server = try StubHTTPServer { _ in
            turns.next() == 1
                ? .text(EC2ParsingTests.describeInstancesXML([[fleet[0], fleet[1]]], nextToken: "page-2", tokenFirst: true))
                : .text(EC2ParsingTests.describeInstancesXML([[fleet[2]]], nextToken: nil, tokenFirst: true))
        }
        defer { server.stop() }
        let client = ec2(server)
        let instances = try await client.describeInstances(
            filters: [(name: "tag:kscaler:cluster", values: ["prod"]), (name: "instance-state-name", values: ["pending", "running"])],
            maxResults: 5)
        #expect(instances == fleet)
        let first = Self.form(server.requests[0]), second = Self.form(server.requests[1])
        #expect(first["Action"] == "DescribeInstances" && first["Version"] == "2016-11-15")
        #expect(first["Filter.1.Name"] == "tag:kscaler:cluster" && first["Filter.1.Value.1"] == "prod")
        #expect(first["Filter.2.Name"] == "instance-state-name" && first["Filter.2.Value.1"] == "pending" && first["Filter.2.Value.2"] == "running")
        #expect(first["MaxResults"] == "5" && first["NextToken"] == nil)
        #expect(second["NextToken"] == "page-2" && second["Filter.1.Value.1"] == "prod")

        _ = try await client.describeInstances(filters: [], instanceIDs: ["i-1", "i-2"])
        let byID = Self.form(server.requests[2])
        #expect(byID["InstanceId.1"] == "i-1" && byID["InstanceId.2"] == "i-2" && byID["MaxResults"] == nil)
    }

    @Test func aDryRunAnsweredWithSuccessIsNotTakenForPermission() async throws {
        let server = try StubHTTPServer { _ in .text(Self.runInstancesXML(EC2ParsingTests.fleet(count: 1)[0])) }
        defer { server.stop() }
        await #expect {
            try await ec2(server).runInstancesDryRun(Self.launchRequest)
        } throws: { "\($0)".contains("the endpoint ignored DryRun") }
        #expect(Self.form(server.requests[0])["DryRun"] == "true")
    }
}
