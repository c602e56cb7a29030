import AWS
import Foundation
import HTTP
import KScalerCore
import SigV4
import Synchronization
import Testing
import TestSupport
@testable import KScaler

/// The fleet adapter: which instances are kscaler's, what it refuses to terminate, and how a
/// launch falls back across offerings. Against moto (signature checking on), and a stand-in
/// where moto cannot answer (capacity errors: moto launches any type anywhere).
@Suite struct EC2FleetTests {
    static let workers = WorkerSettings(imageID: "ami-760aaa0f", instanceTypes: ["t3.large"], subnets: [],
                                        sizes: ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 << 30)],
                                        join: .defaults(clusterID: "x"))

    func fleet(_ fixture: MotoFixture, cluster: String, protected: Set<String> = [],
               userData: EC2Fleet.UserData = .rendered("#cloud-config\n")) -> EC2Fleet {
        EC2Fleet(ec2: fixture.context.ec2, clusterID: cluster, workers: Self.workers, protectedInstances: protected, userData: userData)
    }

    func launch(_ fixture: MotoFixture, tags: [String: String]) async throws -> String {
        try #require(try await fixture.context.ec2.runInstances(
            RunInstancesRequest(imageID: "ami-760aaa0f", instanceType: "t3.large", instanceTags: tags)).first?.id)
    }

    @Test func onlyLiveInstancesTaggedForTheClusterAreManaged() async throws {
        let fixture = try MotoFixture()
        let cluster = Peers.uniqueName("fleet")
        let ours = try await launch(fixture, tags: ["kscaler:cluster": cluster])
        let gone = try await launch(fixture, tags: ["kscaler:cluster": cluster])
        _ = try await launch(fixture, tags: ["kscaler:cluster": "someone-else"])
        _ = try await fixture.context.ec2.terminateInstances(ids: [gone])
        let managed = try await fleet(fixture, cluster: cluster).managedInstances()
        #expect(managed.map(\.id) == [ours])
        #expect(managed.first?.machineType == "t3.large")
    }

    @Test func foreignProtectedAndListedInstancesAreNeverTerminated() async throws {
        let fixture = try MotoFixture()
        let cluster = Peers.uniqueName("fleet")
        let foreign = try await launch(fixture, tags: ["kscaler:cluster": "another-cluster"])
        let tagged = try await launch(fixture, tags: ["kscaler:cluster": cluster, "kscaler:protected": "true"])
        let listed = try await launch(fixture, tags: ["kscaler:cluster": cluster])
        let victim = try await launch(fixture, tags: ["kscaler:cluster": cluster])
        let fleet = fleet(fixture, cluster: cluster, protected: [listed])

        for refused in [foreign, tagged, listed] {
            await #expect {
                try await fleet.terminate([victim, refused], dryRun: false)
            } throws: { error in
                // Refused before calling EC2: a definite "nothing happened", never "unknown".
                (error as? TerminationRefused)?.instances.first?.hasPrefix(refused) == true && fleet.outcome(of: error) == .nothingHappened
            }
        }
        // Nothing was terminated, not even the acceptable victim named alongside.
        let live = try await fixture.context.ec2.describeInstances(
            filters: [("instance-state-name", ["pending", "running"])], instanceIDs: [foreign, tagged, listed, victim])
        #expect(Set(live.map(\.id)) == [foreign, tagged, listed, victim])

        try await fleet.terminate([victim], dryRun: false)
        #expect(try await fleet.managedInstances().map(\.id).sorted() == [tagged, listed].sorted())
    }

    @Test func aLaunchIsTaggedAndFoundByItsLaunchID() async throws {
        let fixture = try MotoFixture()
        let cluster = Peers.uniqueName("fleet")
        let fleet = fleet(fixture, cluster: cluster)
        let subnet = try await EndToEndHarness.defaultSubnet(fixture)
        let result = try await fleet.launch(LaunchPlan(launchID: "ks-test-1", count: 2,
                                                      candidates: [Offering(machineType: "t3.large", placement: subnet)]),
                                          dryRun: false)
        #expect(result.instances.count == 2)
        #expect(result.offering == Offering(machineType: "t3.large", placement: subnet))
        #expect(Set(try await fleet.instances(launchID: "ks-test-1").map(\.id)) == Set(result.instances.map(\.id)))
        #expect(try await fleet.instances(launchID: "ks-other").isEmpty)
        // A dry run launches nothing.
        _ = try await fleet.launch(LaunchPlan(launchID: "ks-test-2", count: 1,
                                              candidates: [Offering(machineType: "t3.large", placement: subnet)]), dryRun: true)
        #expect(try await fleet.managedInstances().count == 2)
    }

    // MARK: capacity fallback (stand-in)

    static func capacityError(_ type: String) -> String {
        """
        <Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>We currently do not have sufficient \(type) capacity.</Message></Error></Errors><RequestID>r</RequestID></Response>
        """
    }

    static let launched = """
    <RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationId>r-1</reservationId><ownerId>1</ownerId>
    <instancesSet><item><instanceId>i-0fallback</instanceId><imageId>ami-1</imageId><instanceState><code>0</code><name>pending</name></instanceState>
    <instanceType>m5.large</instanceType><launchTime>2026-11-21T09:31:30.000Z</launchTime><placement><availabilityZone>us-east-1b</availabilityZone></placement>
    <subnetId>subnet-b</subnetId><tagSet><item><key>kscaler:cluster</key><value>c1</value></item></tagSet></item></instancesSet></RunInstancesResponse>
    """

    func standInFleet(_ server: StubHTTPServer, userData: EC2Fleet.UserData = .fromLaunchTemplate) -> EC2Fleet {
        EC2Fleet(ec2: EC2Client(client: AWSClient(
            service: .ec2, displayName: "EC2", region: "us-east-1", endpoint: server.baseURL,
            credentials: CredentialChain(fixed: Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "stand-in")),
            transport: CurlTransport(), retry: RetryPolicy(sleep: { _ in }))), clusterID: "c1", workers: Self.workers, protectedInstances: [],
           userData: userData)
    }

    static func instanceType(_ request: RecordedRequest) -> String? {
        String(decoding: request.body, as: UTF8.self).split(separator: "&")
            .first { $0.hasPrefix("InstanceType=") }.map { String($0.dropFirst("InstanceType=".count)) }
    }

    @Test func aCapacityErrorFallsBackToTheNextOfferingAndIsReported() async throws {
        let server = try StubHTTPServer { request in
            Self.instanceType(request) == "t3.large" ? .text(Self.capacityError("t3.large"), status: 500) : .text(Self.launched)
        }
        defer { server.stop() }
        let offerings = [Offering(machineType: "t3.large", placement: "subnet-a"), Offering(machineType: "m5.large", placement: "subnet-b")]
        let result = try await standInFleet(server).launch(LaunchPlan(launchID: "ks-1", count: 1, candidates: offerings), dryRun: false)
        #expect(result.offering == offerings[1])
        #expect(result.unavailable == [offerings[0]])
        #expect(result.instances.map(\.id) == ["i-0fallback"])
        // One request per offering: capacity errors are not retried, and each offering has its own ClientToken.
        #expect(server.requests.count == 2)
        let tokens = server.requests.map { String(decoding: $0.body, as: UTF8.self).split(separator: "&").first { $0.hasPrefix("ClientToken=") } }
        #expect(tokens == ["ClientToken=ks-1", "ClientToken=ks-1-1"])
    }

    @Test func everyOfferingOutOfCapacityIsALaunchFailureNamingThemAll() async throws {
        let server = try StubHTTPServer { request in .text(Self.capacityError(Self.instanceType(request) ?? "?"), status: 500) }
        defer { server.stop() }
        let offerings = [Offering(machineType: "t3.large", placement: "subnet-a"), Offering(machineType: "m5.large", placement: "subnet-b")]
        await #expect {
            _ = try await standInFleet(server).launch(LaunchPlan(launchID: "ks-2", count: 1, candidates: offerings), dryRun: false)
        } throws: { error in
            guard let failure = error as? LaunchFailure else { return false }
            return failure.unavailable == offerings && failure.description.contains("InsufficientInstanceCapacity")
        }
    }

    @Test("a node's instance: from the provider id aws:///<az>/<id>, else from an i-… node name", arguments: [
        ("ip-10-0-0-1.ec2.internal", "aws:///us-east-1a/i-0abc123", "i-0abc123"),
        ("i-0def456", nil, "i-0def456"),
        ("i-0def456", "aws:///us-east-1a/i-0aaa", "i-0aaa"),
        ("control-plane", nil, nil),
        ("worker-1", "gce://project/zone/worker-1", nil),
        ("i-XYZ", nil, nil),
    ] as [(String, String?, String?)])
    func machineIdentity(name: String, providerID: String?, expected: String?) {
        #expect(EC2Fleet.machines.machineID(name, providerID) == expected)
        // The default queries' worker selector matches exactly the names resolved without a provider id.
        let matchesSelector = name.wholeMatch(of: try! Regex(EC2Fleet.machines.workerNodeNames)) != nil
        #expect(matchesSelector == (EC2Fleet.machines.machineID(name, nil) != nil))
    }

    @Test func theFleetSendsItsOwnUserData() async throws {
        let server = try StubHTTPServer { _ in .text(Self.launched) }
        defer { server.stop() }
        let script = "#cloud-config\nruncmd: [echo hello]\n"
        _ = try await standInFleet(server, userData: .rendered(script))
            .launch(LaunchPlan(launchID: "ks-3", count: 1, candidates: [Offering(machineType: "m5.large", placement: "subnet-b")]), dryRun: false)
        let parameters = String(decoding: try #require(server.requests.first).body, as: UTF8.self).split(separator: "&")
        let encoded = try #require(parameters.first { $0.hasPrefix("UserData=") }).dropFirst("UserData=".count)
        let base64 = try #require(String(encoded).removingPercentEncoding)
        #expect(Data(base64Encoded: base64).map { String(decoding: $0, as: UTF8.self) } == script)
    }

    @Test func userDataThatCannotBeRenderedRefusesEveryLaunchWithoutCallingEC2() async throws {
        let server = try StubHTTPServer { _ in .text(Self.launched) }
        defer { server.stop() }
        let fleet = standInFleet(server, userData: .unrenderable("workers.labels: a value user data cannot hold"))
        await #expect {
            _ = try await fleet.launch(LaunchPlan(launchID: "ks-4", count: 1, candidates: []), dryRun: false)
        } throws: { error in
            error is LaunchFailure && fleet.outcome(of: error) == .nothingHappened && "\(error)".contains("workers.labels")
        }
        #expect(server.requests.isEmpty)
    }
}
