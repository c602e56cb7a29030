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

    @Test func estimatedSizesAreTheTypesHardwareLessTheKubeletReservation() async throws {
        let fixture = try MotoFixture()
        let sizes = try await fleet(fixture, cluster: Peers.uniqueName("sizes")).estimatedSizes(of: ["t3.large", "m5.xlarge"])
        // t3.large: 2 vCPU, 8192 MiB → 2000m - 70m, 8192 - (255 + 11 × 110) - 100 MiB.
        #expect(sizes == ["t3.large": WorkerSize(cpuCores: 1.93, memoryBytes: 6627 << 20),
                          "m5.xlarge": WorkerSize(cpuCores: 3.92, memoryBytes: (16384 - 1465 - 100) << 20)])
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

    // MARK: Spot (stand-in: moto launches any offering, so it cannot answer a capacity error,
    // and it cannot mark a Spot request for interruption)

    /// The offering a RunInstances request asks for, as EC2 would read it.
    static func offering(_ request: RecordedRequest) -> Offering {
        let form = request.form
        return Offering(machineType: form["InstanceType"], placement: form["SubnetId"],
                        market: form["InstanceMarketOptions.MarketType"] == "spot" ? .spot : .onDemand)
    }

    static func errorXML(_ code: String) -> String {
        "<Response><Errors><Error><Code>\(code)</Code><Message>\(code) for this offering</Message></Error></Errors><RequestID>r</RequestID></Response>"
    }

    struct StandInInstance {
        var id: String
        var state = "running"
        var spotRequest: String? = nil
        var pool: String? = nil
        var type = "m5.large"
        var subnet = "subnet-b"
    }

    static func instanceXML(_ instance: StandInInstance) -> String {
        let pool = instance.pool.map { "<item><key>kscaler:pool</key><value>\($0)</value></item>" } ?? ""
        let spot = instance.spotRequest.map { "<instanceLifecycle>spot</instanceLifecycle><spotInstanceRequestId>\($0)</spotInstanceRequestId>" } ?? ""
        return """
        <item><instanceId>\(instance.id)</instanceId><imageId>ami-1</imageId><instanceState><code>16</code><name>\(instance.state)</name></instanceState>
        <instanceType>\(instance.type)</instanceType><launchTime>2026-11-21T09:31:30.000Z</launchTime><placement><availabilityZone>us-east-1b</availabilityZone></placement>
        <subnetId>\(instance.subnet)</subnetId>\(spot)<tagSet><item><key>kscaler:cluster</key><value>c1</value></item>\(pool)</tagSet></item>
        """
    }

    static func describeXML(_ instances: [StandInInstance]) -> String {
        "<DescribeInstancesResponse><reservationSet><item><instancesSet>\(instances.map(instanceXML).joined())</instancesSet></item></reservationSet></DescribeInstancesResponse>"
    }

    /// Spot requests answering `codes` (request id → status code), each fulfilled by instance `i-<request id>`.
    static func spotRequestsXML(_ codes: [(String, String)]) -> String {
        let items = codes.map { "<item><spotInstanceRequestId>\($0.0)</spotInstanceRequestId><state>active</state><status><code>\($0.1)</code></status><instanceId>i-\($0.0)</instanceId></item>" }
        return "<DescribeSpotInstanceRequestsResponse><spotInstanceRequestSet>\(items.joined())</spotInstanceRequestSet></DescribeSpotInstanceRequestsResponse>"
    }

    @Test func spotOfferingsOutOfCapacityFallBackInOrderToOnDemandAndAreReportedWithTheirMarket() async throws {
        let offerings = [
            Offering(machineType: "t3.large", placement: "subnet-a", market: .spot),
            Offering(machineType: "m5.large", placement: "subnet-b", market: .spot),
            Offering(machineType: "m5.large", placement: "subnet-b"),
            Offering(machineType: "t3.large", placement: "subnet-a"),
        ]
        // What EC2 answers per offering; the last one launches.
        let refusals = [(offerings[0], "SpotMaxPriceTooLow"), (offerings[1], "MaxSpotInstanceCountExceeded"),
                        (offerings[2], "InsufficientInstanceCapacity")]
        let server = try StubHTTPServer { request in
            let offering = Self.offering(request)
            if let code = refusals.first(where: { $0.0 == offering })?.1 { return .text(Self.errorXML(code), status: code == "InsufficientInstanceCapacity" ? 500 : 400) }
            let instance = StandInInstance(id: "i-0ondemand", state: "pending", type: offering.machineType ?? "?", subnet: offering.placement ?? "?")
            return .text("<RunInstancesResponse><instancesSet>\(Self.instanceXML(instance))</instancesSet></RunInstancesResponse>")
        }
        defer { server.stop() }
        let result = try await standInFleet(server).launch(LaunchPlan(launchID: "ks-spot", count: 1, candidates: offerings), dryRun: false)
        // Spot t3.large was refused, on-demand t3.large still launched: the market is part of the offering.
        #expect(result.offering == offerings[3])
        #expect(result.unavailable == Array(offerings.prefix(3)))
        #expect(result.unavailable.map(\.market) == [.spot, .spot, .onDemand])
        #expect(result.instances.map(\.id) == ["i-0ondemand"] && result.instances.map(\.market) == [.onDemand])
        // One request per offering, in order, each with its own token; only the spot ones carry market options.
        #expect(server.requests.map(Self.offering) == offerings)
        #expect(server.requests.map { $0.form["ClientToken"] } == ["ks-spot", "ks-spot-1", "ks-spot-2", "ks-spot-3"])
        #expect(server.requests.map { $0.form["InstanceMarketOptions.SpotOptions.SpotInstanceType"] } == ["one-time", "one-time", nil, nil])
        #expect(server.requests.map { $0.form["InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"] } == ["terminate", "terminate", nil, nil])
        #expect(server.requests.allSatisfy { $0.form["InstanceMarketOptions.SpotOptions.MaxPrice"] == nil })
    }

    @Test func spotOnlyOfferingsAllRefusedAreALaunchFailureNamingThemWithTheirMarket() async throws {
        let server = try StubHTTPServer { _ in .text(Self.errorXML("MaxSpotInstanceCountExceeded"), status: 400) }
        defer { server.stop() }
        let offerings = [Offering(machineType: "t3.large", placement: "subnet-a", market: .spot),
                         Offering(machineType: "t3.large", placement: "subnet-b", market: .spot)]
        let fleet = standInFleet(server)
        await #expect {
            _ = try await fleet.launch(LaunchPlan(launchID: "ks-spot-2", count: 1, candidates: offerings), dryRun: false)
        } throws: { error in
            guard let failure = error as? LaunchFailure else { return false }
            return failure.unavailable == offerings && failure.unavailable.allSatisfy { $0.market == .spot }
                && failure.description.contains("MaxSpotInstanceCountExceeded") && fleet.outcome(of: error) == .nothingHappened
        }
    }

    @Test func aSpotInstanceMarkedForTerminationIsListedInterrupted() async throws {
        let instances = [
            StandInInstance(id: "i-0ondemand", pool: "general"),
            StandInInstance(id: "i-sir-a", spotRequest: "sir-a", pool: "spot-pool"),
            StandInInstance(id: "i-sir-b", state: "pending", spotRequest: "sir-b", pool: "spot-pool"),
            StandInInstance(id: "i-sir-c", spotRequest: "sir-c"),
            // Ended: its request is not asked about.
            StandInInstance(id: "i-sir-d", state: "terminated", spotRequest: "sir-d"),
        ]
        let server = try StubHTTPServer { request in
            switch request.form["Action"] {
            case "DescribeInstances": .text(Self.describeXML(instances))
            case "DescribeSpotInstanceRequests":
                .text(Self.spotRequestsXML([("sir-a", "marked-for-termination"), ("sir-b", "fulfilled"), ("sir-c", "marked-for-stop")]))
            default: .text(Self.errorXML("InvalidAction"), status: 400)
            }
        }
        defer { server.stop() }
        let listing = try await standInFleet(server).listMachines()
        #expect(listing.live.map(\.id) == ["i-0ondemand", "i-sir-a", "i-sir-b", "i-sir-c"])
        #expect(listing.live.map(\.interrupted) == [false, true, false, true])
        #expect(listing.live.map(\.market) == [.onDemand, .spot, .spot, .spot])
        #expect(listing.live.map(\.pool) == ["general", "spot-pool", "spot-pool", nil])
        #expect(listing.ended == ["i-sir-d"])
        let forms = server.requests.map(\.form)
        #expect(forms.map { $0["Action"] } == ["DescribeInstances", "DescribeSpotInstanceRequests"])
        #expect(forms[1]["Filter.1.Name"] == "spot-instance-request-id")
        #expect(Set(forms[1].filter { $0.key.hasPrefix("Filter.1.Value.") }.values) == ["sir-a", "sir-b", "sir-c"])
    }

    @Test func anOnDemandListingMakesNoSpotRequestCall() async throws {
        let instances = [StandInInstance(id: "i-0a"), StandInInstance(id: "i-0b", state: "pending"),
                         // A Spot instance that has ended does not count: nothing live can be interrupted.
                         StandInInstance(id: "i-sir-x", state: "shutting-down", spotRequest: "sir-x")]
        let server = try StubHTTPServer { _ in .text(Self.describeXML(instances)) }
        defer { server.stop() }
        let listing = try await standInFleet(server).listMachines()
        #expect(listing.live.map(\.id) == ["i-0a", "i-0b"] && listing.live.allSatisfy { !$0.interrupted && $0.market == .onDemand })
        #expect(server.requests.map { $0.form["Action"] } == ["DescribeInstances"])
    }

    @Test func aFailedSpotRequestLookupFailsTheListing() async throws {
        let server = try StubHTTPServer { request in
            request.form["Action"] == "DescribeInstances"
                ? .text(Self.describeXML([StandInInstance(id: "i-sir-a", spotRequest: "sir-a")]))
                : .text(Self.errorXML("UnauthorizedOperation"), status: 403)
        }
        defer { server.stop() }
        await #expect {
            _ = try await standInFleet(server).listMachines()
        } throws: { error in
            (error as? AWSError)?.code == "UnauthorizedOperation" && (error as? AWSError)?.operation == "DescribeSpotInstanceRequests"
        }
    }

    @Test func aSpotLaunchOnMotoIsListedAsSpotInItsPool() async throws {
        let fixture = try MotoFixture()
        let cluster = Peers.uniqueName("fleet-spot")
        let fleet = fleet(fixture, cluster: cluster)
        let subnet = try await EndToEndHarness.defaultSubnet(fixture)
        let spot = Offering(machineType: "t3.large", placement: subnet, market: .spot)
        let result = try await fleet.launch(LaunchPlan(launchID: "ks-spot-moto", count: 1, candidates: [spot]), dryRun: false)
        #expect(result.offering == spot)
        #expect(result.instances.map(\.market) == [.spot] && result.instances.map(\.pool) == [Self.workers.pool])
        // moto gives Spot instances launched by RunInstances no spotInstanceRequestId, so there is no
        // request to look up: the listing cannot see an interruption here (the stand-in tests above can).
        let listing = try await fleet.listMachines()
        #expect(listing.live.map(\.id) == result.instances.map(\.id))
        #expect(listing.live.allSatisfy { $0.market == .spot && $0.pool == Self.workers.pool && !$0.interrupted })
        try await fleet.terminate(listing.live.map(\.id), dryRun: false)
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
