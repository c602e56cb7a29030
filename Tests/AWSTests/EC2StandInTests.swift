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

    @Test(arguments: [
        ("InsufficientInstanceCapacity", 500, "We currently do not have sufficient m7i.large capacity in the Availability Zone you requested (us-east-1a)."),
        ("Unsupported", 400, "Your requested instance type (m7i.large) is not supported in your requested Availability Zone (us-east-1e)."),
        ("VcpuLimitExceeded", 400, "You have requested more vCPU capacity than your current vCPU limit of 32 allows."),
        ("InstanceLimitExceeded", 400, "You have requested more instances (21) than your current instance limit of 20 allows."),
        ("InsufficientFreeAddressesInSubnet", 400, "There are not enough free addresses in subnet 'subnet-1' to satisfy the requested number of instances."),
        ("SpotMaxPriceTooLow", 400, "Your Spot request price of 0.01 is lower than the minimum required Spot request fulfillment price of 0.0321."),
        ("MaxSpotInstanceCountExceeded", 400, "Max spot instance count exceeded"),
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
        let tokens = server.requests.map { $0.form["ClientToken"] }
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
        let first = server.requests[0].form, second = server.requests[1].form
        #expect(first["Action"] == "DescribeInstances" && first["Version"] == "2016-11-15")
        #expect(first["Filter.1.Name"] == "tag:kscaler:cluster" && first["Filter.1.Value.1"] == "prod")
        #expect(first["Filter.2.Name"] == "instance-state-name" && first["Filter.2.Value.1"] == "pending" && first["Filter.2.Value.2"] == "running")
        #expect(first["MaxResults"] == "5" && first["NextToken"] == nil)
        #expect(second["NextToken"] == "page-2" && second["Filter.1.Value.1"] == "prod")

        _ = try await client.describeInstances(filters: [], instanceIDs: ["i-1", "i-2"])
        let byID = server.requests[2].form
        #expect(byID["InstanceId.1"] == "i-1" && byID["InstanceId.2"] == "i-2" && byID["MaxResults"] == nil)
    }

    static func spotRequestsXML(_ requests: [EC2SpotInstanceRequest], nextToken: String?) -> String {
        let items = requests.map { request in
            "<item><spotInstanceRequestId>\(request.id)</spotInstanceRequestId><state>\(request.state)</state>"
                + (request.statusCode.map { "<status><code>\($0)</code></status>" } ?? "")
                + (request.instanceID.map { "<instanceId>\($0)</instanceId>" } ?? "") + "</item>"
        }.joined()
        return "<DescribeSpotInstanceRequestsResponse><spotInstanceRequestSet>\(items)</spotInstanceRequestSet>"
            + (nextToken.map { "<nextToken>\($0)</nextToken>" } ?? "") + "</DescribeSpotInstanceRequestsResponse>"
    }

    @Test func spotRequestsAreAskedForByIDFilterInChunksAndPages() async throws {
        // 450 ids (one repeated): three calls of at most 200 ids; the first call's answer comes in two pages.
        let ids = (0..<450).map { "sir-\($0)" } + ["sir-7"]
        let turns = Turns()
        let server = try StubHTTPServer { request in
            let form = request.form
            var asked: [String] = []
            while let id = form["Filter.1.Value.\(asked.count + 1)"] { asked.append(id) }
            let answer = asked.map { EC2SpotInstanceRequest(id: $0, instanceID: "i-\($0.dropFirst(4))", state: "active", statusCode: "fulfilled") }
            if turns.next() == 1 {
                return .text(Self.spotRequestsXML(Array(answer.prefix(100)), nextToken: "page-2"))
            }
            if form["NextToken"] == "page-2" { return .text(Self.spotRequestsXML(Array(answer.dropFirst(100)), nextToken: nil)) }
            return .text(Self.spotRequestsXML(Array(answer), nextToken: nil))
        }
        defer { server.stop() }
        let requests = try await ec2(server).describeSpotInstanceRequests(ids: ids)
        #expect(requests.map(\.id) == (0..<450).map { "sir-\($0)" })
        #expect(requests.allSatisfy { $0.instanceID == "i-" + $0.id.dropFirst(4) && !$0.interruptionPending })

        let forms = server.requests.map(\.form)
        #expect(forms.count == 4)
        #expect(forms.allSatisfy { $0["Action"] == "DescribeSpotInstanceRequests" && $0["Filter.1.Name"] == "spot-instance-request-id"
            && $0["MaxResults"] == "1000" && $0["SpotInstanceRequestId.1"] == nil })
        #expect(forms.map { $0.keys.filter { $0.hasPrefix("Filter.1.Value.") }.count } == [200, 200, 200, 50])
        #expect(forms.map { $0["NextToken"] } == [nil, "page-2", nil, nil])
        #expect(forms[1]["Filter.1.Value.1"] == "sir-0" && forms[2]["Filter.1.Value.1"] == "sir-200" && forms[3]["Filter.1.Value.50"] == "sir-449")
    }

    @Test func noSpotRequestIDsMeansNoCall() async throws {
        let server = try StubHTTPServer { _ in .text(Self.spotRequestsXML([], nextToken: nil)) }
        defer { server.stop() }
        #expect(try await ec2(server).describeSpotInstanceRequests(ids: []).isEmpty)
        #expect(server.requests.isEmpty, "no ids must not become an unfiltered listing of every Spot request in the account")
    }

    @Test func aDryRunAnsweredWithSuccessIsNotTakenForPermission() async throws {
        let server = try StubHTTPServer { _ in .text(Self.runInstancesXML(EC2ParsingTests.fleet(count: 1)[0])) }
        defer { server.stop() }
        await #expect {
            try await ec2(server).runInstancesDryRun(Self.launchRequest)
        } throws: { "\($0)".contains("the endpoint ignored DryRun") }
        #expect(server.requests[0].form["DryRun"] == "true")
    }
}
