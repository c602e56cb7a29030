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

    func fleet(_ fixture: MotoFixture, cluster: String, protected: Set<String> = []) -> EC2Fleet {
        EC2Fleet(ec2: fixture.context.ec2, clusterID: cluster, workers: Self.workers, protectedInstances: protected)
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
        #expect(managed.first?.instanceType == "t3.large")
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
                (error as? TerminationRefused)?.instances.first?.hasPrefix(refused) == true
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
                                                      candidates: [Offering(instanceType: "t3.large", subnetID: subnet)],
                                                      userData: "#cloud-config\n"), dryRun: false)
        #expect(result.instances.count == 2)
        #expect(result.offering == Offering(instanceType: "t3.large", subnetID: subnet))
        #expect(Set(try await fleet.instances(launchID: "ks-test-1").map(\.id)) == Set(result.instances.map(\.id)))
        #expect(try await fleet.instances(launchID: "ks-other").isEmpty)
        // A dry run launches nothing.
        _ = try await fleet.launch(LaunchPlan(launchID: "ks-test-2", count: 1,
                                              candidates: [Offering(instanceType: "t3.large", subnetID: subnet)], userData: nil), dryRun: true)
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

    func standInFleet(_ server: StubHTTPServer) -> EC2Fleet {
        EC2Fleet(ec2: EC2Client(client: AWSClient(
            service: .ec2, displayName: "EC2", region: "us-east-1", endpoint: server.baseURL,
            credentials: CredentialChain(fixed: Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "stand-in")),
            transport: CurlTransport(), retry: RetryPolicy(sleep: { _ in }))), clusterID: "c1", workers: Self.workers, protectedInstances: [])
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
        let offerings = [Offering(instanceType: "t3.large", subnetID: "subnet-a"), Offering(instanceType: "m5.large", subnetID: "subnet-b")]
        let result = try await standInFleet(server).launch(LaunchPlan(launchID: "ks-1", count: 1, candidates: offerings, userData: nil), dryRun: false)
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
        let offerings = [Offering(instanceType: "t3.large", subnetID: "subnet-a"), Offering(instanceType: "m5.large", subnetID: "subnet-b")]
        await #expect {
            _ = try await standInFleet(server).launch(LaunchPlan(launchID: "ks-2", count: 1, candidates: offerings, userData: nil), dryRun: false)
        } throws: { error in
            guard let failure = error as? LaunchFailure else { return false }
            return failure.unavailable == offerings && failure.description.contains("InsufficientInstanceCapacity")
        }
    }
}
