import Testing
@testable import AWS

/// EC2 answers and requests without a network: decoding (at fleet scale), timestamps, the
/// RunInstances form parameters and their validation, and the error classification.
@Suite struct EC2ParsingTests {
    /// A DescribeInstances answer in AWS's shape (LOCAL-PEERS 1b), with the nested fields
    /// (network interfaces, volumes, groups) that carry same-named elements deeper down.
    static func describeInstancesXML(_ reservations: [[EC2Instance]], nextToken: String?, tokenFirst: Bool) -> String {
        let token = nextToken.map { "<nextToken>\($0)</nextToken>" } ?? ""
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
            + #"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId>"#
        if tokenFirst { xml += token }
        xml += "<reservationSet>"
        for (number, instances) in reservations.enumerated() {
            xml += "<item><reservationId>r-\(number)</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>"
            for instance in instances { xml += instanceXML(instance) }
            xml += "</instancesSet></item>"
        }
        xml += "</reservationSet>"
        if !tokenFirst { xml += token }
        return xml + "</DescribeInstancesResponse>"
    }

    static func instanceXML(_ instance: EC2Instance) -> String {
        // EC2 launch times are whole seconds, written with milliseconds: `2026-11-21T09:31:30.000Z`.
        let launch = instance.launchTime.formatted(Date.ISO8601FormatStyle()).dropLast() + ".000Z"
        let tags = instance.tags.sorted { $0.key < $1.key }
            .map { "<item><key>\(XML.escape($0.key))</key><value>\(XML.escape($0.value))</value></item>" }.joined()
        return """
        <item>
          <instanceId>\(instance.id)</instanceId><imageId>\(instance.imageID)</imageId>
          <instanceState><code>16</code><name>\(instance.state.rawValue)</name></instanceState>
          <privateDnsName>ip-10-0-0-1.ec2.internal</privateDnsName><amiLaunchIndex>0</amiLaunchIndex><productCodes/>
          <instanceType>\(instance.instanceType)</instanceType><launchTime>\(launch)</launchTime>
          <placement><availabilityZone>\(instance.availabilityZone)</availabilityZone><groupName/><tenancy>default</tenancy></placement>
          <monitoring><state>disabled</state></monitoring>
          \(instance.lifecycle.map { "<instanceLifecycle>\($0)</instanceLifecycle>" } ?? "")
          \(instance.spotInstanceRequestID.map { "<spotInstanceRequestId>\($0)</spotInstanceRequestId>" } ?? "")
          \(instance.subnetID.map { "<subnetId>\($0)</subnetId><vpcId>vpc-1</vpcId>" } ?? "")
          \(instance.privateIPAddress.map { "<privateIpAddress>\($0)</privateIpAddress>" } ?? "")
          <groupSet><item><groupId>sg-1</groupId><groupName>workers</groupName></item></groupSet>
          <blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-1</volumeId><status>attached</status></ebs></item></blockDeviceMapping>
          <networkInterfaceSet><item><subnetId>subnet-nested</subnetId><privateIpAddress>192.0.2.1</privateIpAddress>
            <privateIpAddressesSet><item><privateIpAddress>192.0.2.1</privateIpAddress><primary>true</primary></item></privateIpAddressesSet>
            <tagSet><item><key>nested</key><value>not an instance tag</value></item></tagSet></item></networkInterfaceSet>
          <tagSet>\(tags)</tagSet>
          <metadataOptions><state>applied</state><httpTokens>required</httpTokens><httpEndpoint>enabled</httpEndpoint></metadataOptions>
        </item>
        """
    }

    /// 1,000 varied instances: every state, type, zone; terminated ones without subnet and IP;
    /// tag values that need escaping; a launch template tag on every third; every fifth a Spot
    /// instance with its request.
    static func fleet(count: Int) -> [EC2Instance] {
        let states: [EC2InstanceState] = [.pending, .running, .running, .shuttingDown, .terminated, .stopped]
        let types = ["m7i.large", "m7i.xlarge", "c7i.2xlarge", "r7g.medium"]
        return (0..<count).map { number in
            let state = states[number % states.count]
            let hex = String(number, radix: 16)
            var tags = ["kscaler:cluster": "prod-\(number % 3)", "Name": "worker <\(number)> & \"friends\"", "kscaler:launch-id": "launch-\(number / 7)"]
            if number % 3 == 0 { tags["aws:ec2launchtemplate:id"] = "lt-\(hex)" }
            let gone = state == .terminated
            return EC2Instance(
                id: "i-" + String(repeating: "0", count: 17 - hex.count) + hex,
                instanceType: types[number % types.count], state: state,
                subnetID: gone ? nil : "subnet-\(number % 5)",
                availabilityZone: "eu-west-1" + ["a", "b", "c"][number % 3],
                launchTime: Date(timeIntervalSince1970: Double(1_790_000_000 + number * 3_137)),
                imageID: "ami-\(number % 11)",
                privateIPAddress: gone ? nil : "10.0.\(number / 250).\(number % 250)",
                tags: tags, lifecycle: number % 5 == 2 ? "spot" : nil,
                spotInstanceRequestID: number % 5 == 2 ? "sir-\(hex)" : nil)
        }
    }

    @Test func decodesEveryInstanceOfAThousandInstanceAnswer() throws {
        let expected = Self.fleet(count: 1000)
        // Reservations of 1 to 4 instances, as RunInstances calls of different counts make them.
        var reservations: [[EC2Instance]] = []
        var start = 0
        while start < expected.count {
            let end = min(expected.count, start + 1 + reservations.count % 4)
            reservations.append(Array(expected[start..<end]))
            start = end
        }
        let xml = Self.describeInstancesXML(reservations, nextToken: "token-2", tokenFirst: false)
        let page = try EC2Parsing.describeInstancesPage(try XML.parse(xml))
        #expect(page.nextToken == "token-2")
        #expect(page.instances.count == 1000)
        for (decoded, wanted) in zip(page.instances, expected) where decoded != wanted {
            Issue.record("\(wanted.id) decoded as \(decoded), expected \(wanted)")
        }
        #expect(page.instances[0].launchTemplateID == "lt-0")
        #expect(page.instances[1].launchTemplateID == nil)
        #expect(page.instances[4].subnetID == nil && page.instances[4].state == .terminated)
        #expect(page.instances[2].market == .spot && page.instances[2].spotInstanceRequestID == "sir-2")
        #expect(page.instances[3].market == .onDemand && page.instances[3].lifecycle == nil && page.instances[3].spotInstanceRequestID == nil)
    }

    @Test func onlyTheSpotLifecycleIsTheSpotMarket() {
        var instance = Self.fleet(count: 1)[0]
        for (lifecycle, market) in [("spot", EC2Market.spot), ("scheduled", .onDemand), ("capacity-block", .onDemand)] as [(String?, EC2Market)] + [(nil, .onDemand)] {
            instance.lifecycle = lifecycle
            #expect(instance.market == market, "lifecycle \(lifecycle ?? "none")")
        }
    }

    /// A DescribeSpotInstanceRequests answer in AWS's shape: the launch specification and the
    /// tags hold `item`s of their own, and a fault has a `code` of its own; none is the request's.
    static let spotRequestsXML = """
    <?xml version="1.0" encoding="UTF-8"?>
    <DescribeSpotInstanceRequestsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-1</requestId>
    <spotInstanceRequestSet>
      <item><spotInstanceRequestId>sir-1</spotInstanceRequestId><spotPrice>0.096000</spotPrice><type>one-time</type>
        <state>active</state><status><code>marked-for-termination</code><updateTime>2026-11-21T09:31:30.000Z</updateTime>
        <message>Your Spot Instance has been marked for termination because of no Spot capacity available.</message></status>
        <launchSpecification><imageId>ami-1</imageId><instanceType>m7i.large</instanceType>
          <groupSet><item><groupId>sg-1</groupId><groupName>workers</groupName></item></groupSet>
          <monitoring><enabled>false</enabled></monitoring></launchSpecification>
        <instanceId>i-0aaa</instanceId><createTime>2026-11-21T09:01:30.000Z</createTime><productDescription>Linux/UNIX</productDescription>
        <tagSet><item><key>state</key><value>not the request's</value></item></tagSet>
        <launchedAvailabilityZone>us-east-1a</launchedAvailabilityZone><instanceInterruptionBehavior>terminate</instanceInterruptionBehavior></item>
      <item><spotInstanceRequestId>sir-2</spotInstanceRequestId><type>one-time</type><state>active</state>
        <status><code>fulfilled</code><message>Your spot request is fulfilled.</message></status><instanceId>i-0bbb</instanceId></item>
      <item><spotInstanceRequestId>sir-3</spotInstanceRequestId><state>open</state>
        <fault><code>capacity-not-available</code><message>There is no Spot capacity available.</message></fault>
        <status><code>pending-evaluation</code></status></item>
      <item><spotInstanceRequestId>sir-4</spotInstanceRequestId><state>active</state><instanceId>i-0ddd</instanceId>
        <status><code>marked-for-stop</code></status></item>
    </spotInstanceRequestSet><nextToken>page-2</nextToken></DescribeSpotInstanceRequestsResponse>
    """

    @Test func spotRequestsAnswerGivesIdInstanceStateAndStatusCode() throws {
        let page = try EC2Parsing.describeSpotInstanceRequestsPage(try XML.parse(Self.spotRequestsXML))
        #expect(page.nextToken == "page-2")
        #expect(page.requests == [
            EC2SpotInstanceRequest(id: "sir-1", instanceID: "i-0aaa", state: "active", statusCode: "marked-for-termination"),
            EC2SpotInstanceRequest(id: "sir-2", instanceID: "i-0bbb", state: "active", statusCode: "fulfilled"),
            EC2SpotInstanceRequest(id: "sir-3", instanceID: nil, state: "open", statusCode: "pending-evaluation"),
            EC2SpotInstanceRequest(id: "sir-4", instanceID: "i-0ddd", state: "active", statusCode: "marked-for-stop"),
        ])
        #expect(page.requests.map(\.interruptionPending) == [true, false, false, true])
        let last = try EC2Parsing.describeSpotInstanceRequestsPage(try XML.parse(
            "<DescribeSpotInstanceRequestsResponse><spotInstanceRequestSet/><nextToken/></DescribeSpotInstanceRequestsResponse>"))
        #expect(last.requests.isEmpty && last.nextToken == nil)
    }

    @Test(arguments: ["marked-for-termination", "marked-for-stop", "marked-for-hibernation"])
    func interruptionNoticesArePending(code: String) {
        #expect(EC2SpotInstanceRequest(id: "sir-1", instanceID: "i-1", state: "active", statusCode: code).interruptionPending)
    }

    @Test(arguments: ["fulfilled", "instance-terminated-by-price", "request-canceled-and-instance-running", "pending-fulfillment", ""])
    func otherStatusCodesAreNoNotice(code: String) {
        #expect(!EC2SpotInstanceRequest(id: "sir-1", instanceID: "i-1", state: "active", statusCode: code).interruptionPending)
    }

    @Test func aSpotRequestWithoutAStateIsAnUnexpectedAnswer() throws {
        #expect {
            _ = try EC2Parsing.describeSpotInstanceRequestsPage(try XML.parse(
                "<DescribeSpotInstanceRequestsResponse><spotInstanceRequestSet><item><spotInstanceRequestId>sir-9</spotInstanceRequestId></item></spotInstanceRequestSet></DescribeSpotInstanceRequestsResponse>"))
        } throws: { error in
            "\(error)" == "EC2 DescribeSpotInstanceRequests: unexpected answer (HTTP 200): a Spot request (sir-9) has no spotInstanceRequestId or state"
        }
    }

    @Test func nextTokenIsFoundBeforeOrAfterTheReservations() throws {
        let instances = Self.fleet(count: 3)
        for tokenFirst in [true, false] {
            let page = try EC2Parsing.describeInstancesPage(
                try XML.parse(Self.describeInstancesXML([instances], nextToken: "r-cc3604b4e4707b5be", tokenFirst: tokenFirst)))
            #expect(page.nextToken == "r-cc3604b4e4707b5be")
            #expect(page.instances == instances)
        }
        let last = try EC2Parsing.describeInstancesPage(try XML.parse(Self.describeInstancesXML([], nextToken: nil, tokenFirst: false)))
        #expect(last.nextToken == nil && last.instances.isEmpty)
        let empty = try EC2Parsing.describeInstancesPage(try XML.parse("<DescribeInstancesResponse><reservationSet/><nextToken/></DescribeInstancesResponse>"))
        #expect(empty.nextToken == nil, "an empty <nextToken/> ends the pagination")
    }

    @Test func anInstanceWithoutALaunchTimeIsAnUnexpectedAnswerNamingIt() throws {
        let xml = """
        <DescribeInstancesResponse><reservationSet><item><instancesSet><item>
          <instanceId>i-0abc</instanceId><instanceType>t3.micro</instanceType><imageId>ami-1</imageId>
          <instanceState><name>running</name></instanceState><placement><availabilityZone>us-east-1a</availabilityZone></placement>
        </item></instancesSet></item></reservationSet></DescribeInstancesResponse>
        """
        #expect {
            _ = try EC2Parsing.describeInstancesPage(try XML.parse(xml))
        } throws: { error in
            "\(error)" == "EC2 DescribeInstances: unexpected answer (HTTP 200): an instance (i-0abc) has no valid launchTime"
        }
    }

    @Test func terminateAnswerGivesEachTransition() throws {
        let root = try XML.parse("""
        <TerminateInstancesResponse><requestId>x</requestId><instancesSet>
          <item><instanceId>i-1</instanceId><currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState></item>
          <item><instanceId>i-2</instanceId><previousState><code>48</code><name>terminated</name></previousState><currentState><code>48</code><name>terminated</name></currentState></item>
        </instancesSet></TerminateInstancesResponse>
        """)
        #expect(try EC2Parsing.stateChanges(root) == [
            EC2InstanceStateChange(instanceID: "i-1", previousState: .running, currentState: .shuttingDown),
            EC2InstanceStateChange(instanceID: "i-2", previousState: .terminated, currentState: .terminated),
        ])
    }

    @Test func runInstancesFormParametersCarryEverythingInOrder() throws {
        let request = RunInstancesRequest(
            launchTemplate: LaunchTemplateReference(idOrName: "lt-0123", version: "$Latest"), instanceType: "m7i.large", count: 2,
            subnetID: "subnet-1", securityGroupIDs: ["sg-1", "sg-2"], instanceProfile: IAMInstanceProfile(nameOrARN: "kscaler-worker"),
            instanceTags: ["kscaler:cluster": "prod", "Name": "worker"], volumeTags: ["kscaler:cluster": "prod"],
            userData: Data("#cloud-config\n".utf8))
        let parameters = try request.queryParameters(clientToken: "launch-7", dryRun: true)
        #expect(parameters.map { "\($0.0)=\($0.1)" } == [
            "MinCount=2", "MaxCount=2",
            "LaunchTemplate.LaunchTemplateId=lt-0123", "LaunchTemplate.Version=$Latest",
            "InstanceType=m7i.large", "SubnetId=subnet-1", "SecurityGroupId.1=sg-1", "SecurityGroupId.2=sg-2",
            "IamInstanceProfile.Name=kscaler-worker",
            "TagSpecification.1.ResourceType=instance",
            "TagSpecification.1.Tag.1.Key=Name", "TagSpecification.1.Tag.1.Value=worker",
            "TagSpecification.1.Tag.2.Key=kscaler:cluster", "TagSpecification.1.Tag.2.Value=prod",
            "TagSpecification.2.ResourceType=volume",
            "TagSpecification.2.Tag.1.Key=kscaler:cluster", "TagSpecification.2.Tag.1.Value=prod",
            "UserData=I2Nsb3VkLWNvbmZpZwo=",
            "MetadataOptions.HttpTokens=required", "MetadataOptions.HttpEndpoint=enabled", "MetadataOptions.HttpPutResponseHopLimit=1",
            "ClientToken=launch-7", "DryRun=true",
        ])
    }

    @Test func aSpotRequestAsksForAOneTimeSpotInstanceTerminatedOnInterruptionWithoutAPriceCap() throws {
        var request = RunInstancesRequest(imageID: "ami-1", instanceType: "m7i.large", subnetID: "subnet-1",
                                          instanceProfile: .name("worker"), instanceTags: ["kscaler:cluster": "prod"])
        let onDemand = try request.queryParameters(clientToken: "t", dryRun: false)
        #expect(!onDemand.contains { $0.0.hasPrefix("InstanceMarketOptions") }, "on-demand sends no market options")
        request.market = .spot
        let spot = try request.queryParameters(clientToken: "t", dryRun: false)
        #expect(spot.map { "\($0.0)=\($0.1)" } == [
            "MinCount=1", "MaxCount=1", "ImageId=ami-1", "InstanceType=m7i.large", "SubnetId=subnet-1",
            "IamInstanceProfile.Name=worker",
            "InstanceMarketOptions.MarketType=spot",
            "InstanceMarketOptions.SpotOptions.SpotInstanceType=one-time",
            "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior=terminate",
            "TagSpecification.1.ResourceType=instance",
            "TagSpecification.1.Tag.1.Key=kscaler:cluster", "TagSpecification.1.Tag.1.Value=prod",
            "MetadataOptions.HttpTokens=required", "MetadataOptions.HttpEndpoint=enabled", "MetadataOptions.HttpPutResponseHopLimit=1", "ClientToken=t",
        ])
        #expect(spot.filter { !$0.0.hasPrefix("InstanceMarketOptions") }.map { "\($0.0)=\($0.1)" } == onDemand.map { "\($0.0)=\($0.1)" },
                "spot adds its market options and changes nothing else")
    }

    @Test func templateNameProfileARNAndNoTagsEncodeMinimally() throws {
        let request = RunInstancesRequest(launchTemplate: LaunchTemplateReference(idOrName: "workers"),
                                          instanceProfile: IAMInstanceProfile(nameOrARN: "arn:aws:iam::1:instance-profile/w"))
        #expect(try request.queryParameters(clientToken: "t", dryRun: false).map { "\($0.0)=\($0.1)" } == [
            "MinCount=1", "MaxCount=1", "LaunchTemplate.LaunchTemplateName=workers",
            "IamInstanceProfile.Arn=arn:aws:iam::1:instance-profile/w",
            "MetadataOptions.HttpTokens=required", "MetadataOptions.HttpEndpoint=enabled", "MetadataOptions.HttpPutResponseHopLimit=1", "ClientToken=t",
        ])
    }

    @Test(arguments: [
        (RunInstancesRequest(imageID: "ami-1"), "give a launch template, or both an image id and an instance type"),
        (RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro", count: 0), "count is 0"),
        (RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro", subnetID: ""), "the subnet id is empty"),
        (RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro", userData: Data(count: 16 * 1024 + 1)), "user data is 16385 bytes"),
        (RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro", instanceTags: ["aws:x": "1"]), "the aws: prefix is reserved"),
        (RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro", volumeTags: ["k": String(repeating: "v", count: 257)]), "longer than 256"),
        (RunInstancesRequest(imageID: "ami-1", instanceType: "t3.micro", clientToken: String(repeating: "t", count: 65)), "client token"),
    ])
    func invalidRequestsAreRefusedBeforeSending(request: RunInstancesRequest, reason: String) {
        #expect {
            _ = try request.queryParameters(clientToken: request.clientToken ?? "token", dryRun: false)
        } throws: { error in
            guard let error = error as? InvalidEC2Request else { return false }
            return error.description.hasPrefix("EC2 RunInstances not sent: ") && error.reason.contains(reason)
        }
    }

    @Test(arguments: ["InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded", "Unsupported",
                      "InsufficientFreeAddressesInSubnet", "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded"])
    func capacityErrorsAreRecognisedAndNotRetried(code: String) {
        let error = AWSError(service: "EC2", operation: "RunInstances", code: code, message: "", httpStatus: code == "InsufficientInstanceCapacity" ? 500 : 400)
        #expect(error.isCapacityError)
        #expect(!RetryPolicy.isRetryable(error))
    }

    @Test func requestLimitExceededIsThrottlingNotCapacity() {
        let error = AWSError(service: "EC2", operation: "RunInstances", code: "RequestLimitExceeded", message: "", httpStatus: 503)
        #expect(error.isThrottling && !error.isCapacityError && RetryPolicy.isRetryable(error))
        let other = AWSError(service: "EC2", operation: "RunInstances", code: "InvalidParameterValue", message: "", httpStatus: 400)
        #expect(!other.isCapacityError)
    }
}
