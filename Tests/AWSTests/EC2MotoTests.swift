import HTTP
import SigV4
import Testing
import TestSupport
@testable import AWS

/// EC2Client against moto with signature checking on. Tests run in parallel on one moto, so
/// each tags its instances with its own cluster name and only ever looks at those.
/// moto quirks met here (LOCAL-PEERS 1b): instances are `running` on the first describe;
/// terminated ones stay listed forever; MaxResults counts reservations; a launch template's
/// MetadataOptions are ignored; the read-only user's dry run is `AccessDenied`, not
/// `UnauthorizedOperation` as in AWS; unknown instance profiles are `NoSuchEntity` (404).
@Suite struct EC2MotoTests {
    static let image = "ami-760aaa0f"

    func context(_ moto: Peers.Moto, readOnly: Bool = false, transport: (any HTTPTransport)? = nil) -> AWSContext {
        let credentials = readOnly
            ? Credentials(accessKeyID: moto.readOnlyAccessKeyID, secretAccessKey: moto.readOnlySecretAccessKey)
            : Credentials(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        return AWSContext(environment: AWSEnvironment(variables: moto.environment()), region: "us-east-1", regionSource: "test",
                          credentials: CredentialChain(fixed: credentials), transport: transport ?? moto.transport, retry: RetryPolicy(maxAttempts: 1))
    }

    static func clusterFilter(_ cluster: String, live: Bool = true) -> [(name: String, values: [String])] {
        [(name: "tag:kscaler:cluster", values: [cluster])] + (live ? [(name: "instance-state-name", values: ["pending", "running"])] : [])
    }

    /// A raw signed EC2 call for what the client deliberately lacks (subnets, volumes, templates).
    func rawEC2(_ context: AWSContext, _ operation: String, _ parameters: [(String, String)]) async throws -> XMLElement {
        try await context.client(for: .ec2, displayName: "EC2").query(operation: operation, version: "2016-11-15", parameters: parameters)
    }

    @Test func launchWithTagsAndUserDataThenDescribeByClusterTag() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-launch")
        // moto checks that the instance profile exists (NoSuchEntity otherwise), so make one.
        let profile = Peers.uniqueName("worker-profile")
        let iam = AWSService(signingName: "iam", endpointVariableSuffix: "IAM", hostPrefix: "iam")
        _ = try await context.client(for: iam, displayName: "IAM").query(
            operation: "CreateInstanceProfile", version: "2010-05-08", parameters: [("InstanceProfileName", profile)])
        let subnets = try await rawEC2(context, "DescribeSubnets", [("Filter.1.Name", "availability-zone"), ("Filter.1.Value.1", "us-east-1b")])
        let subnetID = try #require(subnets.items("subnetSet").first?.string("subnetId"))
        let groups = try await rawEC2(context, "DescribeSecurityGroups", [("GroupName.1", "default")])
        let group = try #require(groups.items("securityGroupInfo").first?.string("groupId"))
        // Base64 of this has '+', '/' and '=': the form encoding must escape them.
        let userData = Data("#!/bin/sh\necho \(cluster) ü ?>~ \u{1}\u{ff}\n".utf8) + Data([0xfb, 0xff, 0xfe])

        let launched = try await context.ec2.runInstances(RunInstancesRequest(
            imageID: Self.image, instanceType: "t3.micro", count: 2, subnetID: subnetID, securityGroupIDs: [group],
            instanceProfile: .name(profile),
            instanceTags: ["kscaler:cluster": cluster, "Name": "\(cluster) worker & co"], volumeTags: ["kscaler:cluster": cluster],
            userData: userData))
        #expect(launched.count == 2)
        for instance in launched {
            #expect(instance.state == .pending)
            #expect(instance.imageID == Self.image && instance.instanceType == "t3.micro")
            #expect(instance.subnetID == subnetID && instance.availabilityZone == "us-east-1b")
            #expect(instance.tags == ["kscaler:cluster": cluster, "Name": "\(cluster) worker & co"])
            #expect(abs(instance.launchTime.timeIntervalSinceNow) < 120)
            #expect(instance.privateIPAddress != nil)
        }

        let described = try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster))
        #expect(Set(described.map(\.id)) == Set(launched.map(\.id)) && described.count == 2)
        #expect(described.allSatisfy { $0.state == .running && $0.tags["kscaler:cluster"] == cluster })
        #expect(described.map(\.launchTime).sorted() == launched.map(\.launchTime).sorted())

        for instance in launched {
            #expect(try await context.ec2.userData(instanceID: instance.id) == userData)
        }
        let raw = try await rawEC2(context, "DescribeInstances", [("InstanceId.1", launched[0].id)])
        let item = try #require(raw.items("reservationSet").first?.items("instancesSet").first)
        #expect(item.path("metadataOptions", "httpTokens")?.text == "required")
        #expect(item.path("metadataOptions", "httpEndpoint")?.text == "enabled")
        #expect(item.path("iamInstanceProfile", "arn")?.text.hasSuffix(":instance-profile/\(profile)") == true)
        #expect(item.items("groupSet").compactMap { $0.string("groupId") } == [group])

        let volumes = try await rawEC2(context, "DescribeVolumes", [("Filter.1.Name", "tag:kscaler:cluster"), ("Filter.1.Value.1", cluster)])
        #expect(Set(volumes.items("volumeSet").compactMap { $0.items("attachmentSet").first?.string("instanceId") }) == Set(launched.map(\.id)),
                "the volume tag specification tags each instance's root volume")
        _ = try await context.ec2.terminateInstances(ids: launched.map(\.id))
    }

    @Test func paginationReturnsEveryInstanceExactlyOnce() async throws {
        let moto = try Peers.moto()
        let recording = RecordingTransport(wrapping: moto.transport)
        let context = context(moto, transport: recording)
        let cluster = Peers.uniqueName("ec2-pages")
        var launchedIDs: [String] = []
        // Seven reservations of 1–3 instances: more than one page of 5, however moto counts.
        for count in [1, 2, 3, 1, 2, 1, 2] {
            launchedIDs += try await context.ec2.runInstances(RunInstancesRequest(
                imageID: Self.image, instanceType: "t3.nano", count: count, instanceTags: ["kscaler:cluster": cluster])).map(\.id)
        }
        let before = recording.counts.requests
        let described = try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster), maxResults: 5)
        #expect(recording.counts.requests - before >= 2, "the answer must have come in more than one page")
        #expect(described.map(\.id).sorted() == launchedIDs.sorted())
        #expect(Set(described.map(\.id)).count == 12)
        _ = try await context.ec2.terminateInstances(ids: launchedIDs)
    }

    @Test func terminatedInstancesLeaveThePendingRunningFilter() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-terminate")
        let launched = try await context.ec2.runInstances(RunInstancesRequest(
            imageID: Self.image, instanceType: "t3.micro", count: 2, instanceTags: ["kscaler:cluster": cluster]))
        let (victim, survivor) = (launched[0].id, launched[1].id)

        let changes = try await context.ec2.terminateInstances(ids: [victim])
        #expect(changes == [EC2InstanceStateChange(instanceID: victim, previousState: .running, currentState: .shuttingDown)])
        #expect(try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster)).map(\.id) == [survivor])
        // moto keeps terminated instances listed (so does AWS, for about an hour).
        let all = try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster, live: false))
        #expect(all.first { $0.id == victim }?.state == .terminated && all.count == 2)
        // Terminating again is harmless: EC2 reports it was already terminated.
        #expect(try await context.ec2.terminateInstances(ids: [victim]).first?.previousState == .terminated)
        _ = try await context.ec2.terminateInstances(ids: [survivor])
    }

    @Test func createTagsAddsAndOverwritesTags() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-tags")
        let launched = try await context.ec2.runInstances(RunInstancesRequest(
            imageID: Self.image, instanceType: "t3.micro", instanceTags: ["kscaler:cluster": cluster, "role": "booting"]))
        let id = try #require(launched.first?.id)
        try await context.ec2.createTags(resourceIDs: [id], tags: ["role": "worker", "kscaler:launch-id": "\(cluster)-1"])
        let described = try await context.ec2.describeInstances(filters: [], instanceIDs: [id])
        #expect(described.map(\.tags) == [["kscaler:cluster": cluster, "role": "worker", "kscaler:launch-id": "\(cluster)-1"]])
        _ = try await context.ec2.terminateInstances(ids: [id])
    }

    @Test func deleteTagsRemovesTagsByKeyAndIsIdempotent() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-untag")
        let launched = try await context.ec2.runInstances(RunInstancesRequest(
            imageID: Self.image, instanceType: "t3.micro",
            instanceTags: ["kscaler:cluster": cluster, "kscaler:protected": "true", "kscaler:protected-until": "2030-01-01T00:00:00Z"]))
        let id = try #require(launched.first?.id)
        try await context.ec2.deleteTags(resourceIDs: [id], keys: ["kscaler:protected", "kscaler:protected-until"])
        #expect(try await context.ec2.describeInstances(filters: [], instanceIDs: [id]).map(\.tags) == [["kscaler:cluster": cluster]])
        // A tag that is not there: still a success.
        try await context.ec2.deleteTags(resourceIDs: [id], keys: ["kscaler:protected"])
        // The read-only user may not untag.
        await #expect(throws: AWSError.self) {
            try await self.context(moto, readOnly: true).ec2.deleteTags(resourceIDs: [id], keys: ["kscaler:cluster"])
        }
        #expect(try await context.ec2.describeInstances(filters: [], instanceIDs: [id]).map(\.tags) == [["kscaler:cluster": cluster]])
        _ = try await context.ec2.terminateInstances(ids: [id])
    }

    @Test func dryRunSucceedsAndLaunchesNothing() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-dryrun")
        let request = RunInstancesRequest(imageID: Self.image, instanceType: "t3.micro", count: 3, instanceTags: ["kscaler:cluster": cluster])
        #expect(try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster, live: false)).isEmpty)
        try await context.ec2.runInstancesDryRun(request)
        #expect(try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster, live: false)).isEmpty,
                "a dry run must not launch anything")
    }

    @Test func dryRunWithoutPermissionIsTheAccessError() async throws {
        let moto = try Peers.moto()
        let readOnly = context(moto, readOnly: true)
        // The read-only user can describe, so the failure below is about RunInstances alone.
        _ = try await readOnly.ec2.describeInstances(filters: Self.clusterFilter(Peers.uniqueName("ec2-readonly")))
        await #expect {
            try await readOnly.ec2.runInstancesDryRun(RunInstancesRequest(imageID: Self.image, instanceType: "t3.micro"))
        } throws: { error in
            // moto answers 403 AccessDenied; AWS would answer 403 UnauthorizedOperation. Both carry the same hint.
            guard let error = error as? AWSError else { return false }
            return error.code == "AccessDenied" && error.httpStatus == 403
                && error.message == "User: arn:aws:iam::123456789012:user/kscaler-readonly is not authorized to perform: ec2:RunInstances"
                && error.description.contains("lacks an IAM permission") && !error.isCapacityError
        }
    }

    @Test func launchTemplateGivesItsImageAndIMDSv2IsStillRequired() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-template")
        let templateImage = "ami-04681a1dbd79675a5"
        let created = try await rawEC2(context, "CreateLaunchTemplate", [
            ("LaunchTemplateName", cluster), ("LaunchTemplateData.ImageId", templateImage),
            ("LaunchTemplateData.InstanceType", "t3.nano"),
        ])
        let templateID = try #require(created.path("launchTemplate", "launchTemplateId")?.text)

        let byName = try await context.ec2.runInstances(RunInstancesRequest(
            launchTemplate: LaunchTemplateReference(idOrName: cluster, version: "$Latest"), instanceTags: ["kscaler:cluster": cluster]))
        let byIDWithOverride = try await context.ec2.runInstances(RunInstancesRequest(
            launchTemplate: LaunchTemplateReference(idOrName: templateID, version: "1"), instanceType: "t3.small",
            instanceTags: ["kscaler:cluster": cluster]))
        let described = try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster))
        #expect(described.count == 2)
        #expect(described.allSatisfy { $0.imageID == templateImage && $0.launchTemplateID == templateID })
        #expect(described.first { $0.id == byName[0].id }?.instanceType == "t3.nano")
        #expect(described.first { $0.id == byIDWithOverride[0].id }?.instanceType == "t3.small")

        let raw = try await rawEC2(context, "DescribeInstances", [("InstanceId.1", byName[0].id)])
        #expect(raw.items("reservationSet").first?.items("instancesSet").first?.path("metadataOptions", "httpTokens")?.text == "required")
        _ = try await context.ec2.terminateInstances(ids: described.map(\.id))
    }

    /// moto accepts the spot market options and reports the instance's lifecycle as `spot`, in
    /// the RunInstances answer and in DescribeInstances. What moto does not do: check the
    /// SpotOptions (only MarketType is read), make a Spot request for a RunInstances launch, or
    /// give the instance a `spotInstanceRequestId` (EC2ParsingTests asserts the exact wire form).
    @Test func aSpotLaunchIsAcceptedAndTheInstanceIsSpot() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-spot")
        let spot = try await context.ec2.runInstances(RunInstancesRequest(
            imageID: Self.image, instanceType: "t3.micro", instanceTags: ["kscaler:cluster": cluster], market: .spot))
        let onDemand = try await context.ec2.runInstances(RunInstancesRequest(
            imageID: Self.image, instanceType: "t3.micro", instanceTags: ["kscaler:cluster": cluster]))
        #expect(spot.map(\.lifecycle) == ["spot"] && spot.map(\.market) == [.spot])
        #expect(onDemand.map(\.lifecycle) == [nil] && onDemand.map(\.market) == [.onDemand])

        let described = try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster))
        #expect(described.count == 2)
        #expect(described.first { $0.id == spot[0].id }?.market == .spot)
        #expect(described.first { $0.id == onDemand[0].id }?.market == .onDemand)
        _ = try await context.ec2.terminateInstances(ids: described.map(\.id))
    }

    /// moto makes a Spot request only through RequestSpotInstances (fulfilled at once, status
    /// `fulfilled`), and cannot mark one for interruption: EC2FleetTests shows that with a stand-in.
    @Test func spotRequestsAreDescribedByID() async throws {
        let moto = try Peers.moto()
        let context = context(moto)
        let cluster = Peers.uniqueName("ec2-spot-requests")
        let made = try await rawEC2(context, "RequestSpotInstances", [
            ("InstanceCount", "2"), ("Type", "one-time"),
            ("LaunchSpecification.ImageId", Self.image), ("LaunchSpecification.InstanceType", "t3.micro"),
            ("TagSpecification.1.ResourceType", "instance"), ("TagSpecification.1.Tag.1.Key", "kscaler:cluster"),
            ("TagSpecification.1.Tag.1.Value", cluster),
        ])
        let ids = made.items("spotInstanceRequestSet").compactMap { $0.string("spotInstanceRequestId") }
        try #require(ids.count == 2)
        // One of the two, and one EC2 does not know: the unknown one is simply absent.
        let described = try await context.ec2.describeSpotInstanceRequests(ids: [ids[0], "sir-00000000000000000"])
        #expect(described.count == 1)
        let request = try #require(described.first)
        #expect(request.id == ids[0] && request.state == "active" && request.statusCode == "fulfilled" && !request.interruptionPending)
        let instances = try await context.ec2.describeInstances(filters: Self.clusterFilter(cluster))
        #expect(instances.count == 2 && instances.allSatisfy { $0.market == .spot })
        #expect(instances.contains { $0.id == request.instanceID })
        // The read-only user may describe Spot requests too (ec2:Describe*).
        #expect(try await self.context(moto, readOnly: true).ec2.describeSpotInstanceRequests(ids: ids).count == 2)
        _ = try await context.ec2.terminateInstances(ids: instances.map(\.id))
    }

    @Test func terminatingAnUnknownInstanceIsInvalidInstanceIDNotFound() async throws {
        let moto = try Peers.moto()
        await #expect {
            _ = try await context(moto).ec2.terminateInstances(ids: ["i-0000000000000dead"])
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.code == "InvalidInstanceID.NotFound" && error.httpStatus == 400
                && error.message.contains("i-0000000000000dead") && !error.isCapacityError && !RetryPolicy.isRetryable(error)
        }
    }
}

/// DescribeInstanceTypes (sizes without typing) against moto's catalogue of real instance types.
@Suite struct EC2InstanceTypesMotoTests {
    @Test func vcpusAndMemoryOfTheNamedTypesInOneCall() async throws {
        let moto = try Peers.moto()
        // The read-only user: kscaler asks this with ec2:Describe* alone.
        let types = try await EC2MotoTests().context(moto, readOnly: true).ec2.describeInstanceTypes(["t3.large", "m5.xlarge", "c5.large"])
        #expect(Set(types.map(\.name)) == ["t3.large", "m5.xlarge", "c5.large"])
        #expect(types.first { $0.name == "t3.large" } == EC2InstanceTypeInfo(name: "t3.large", vcpus: 2, memoryMiB: 8192))
        #expect(types.first { $0.name == "m5.xlarge" } == EC2InstanceTypeInfo(name: "m5.xlarge", vcpus: 4, memoryMiB: 16384))
        #expect(types.first { $0.name == "c5.large" } == EC2InstanceTypeInfo(name: "c5.large", vcpus: 2, memoryMiB: 4096))
    }

    @Test func aTypeEC2DoesNotKnowFailsTheCall() async throws {
        let moto = try Peers.moto()
        await #expect {
            _ = try await EC2MotoTests().context(moto).ec2.describeInstanceTypes(["t3.large", "t3.largest"])
        } throws: { error in
            (error as? AWSError)?.code == "InvalidInstanceType"
        }
    }
}
