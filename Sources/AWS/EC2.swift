/// EC2 over the Query protocol (form-encoded POST, XML answers) — only the operations
/// kscaler uses: list the managed instances, launch, terminate, tag.
package struct EC2Client: Sendable {
    package let client: AWSClient
    static let version = "2016-11-15"
    /// A safety stop for pagination: 1,000 pages of up to 1,000 instances is far beyond any
    /// fleet; an endpoint that keeps sending tokens past it is broken.
    static let maxPages = 1000

    package init(client: AWSClient) { self.client = client }

    /// All instances matching the filters (and ids), following `NextToken` to the last page.
    /// `maxResults` is the page size (AWS: 5…1000; moto counts reservations, not instances).
    /// With explicit ids no page size is sent: EC2 rejects MaxResults together with InstanceId.
    package func describeInstances(filters: [(name: String, values: [String])], instanceIDs: [String] = [],
                                  maxResults: Int = 1000) async throws -> [EC2Instance] {
        var parameters: [(String, String)] = []
        for (index, filter) in filters.enumerated() {
            parameters.append(("Filter.\(index + 1).Name", filter.name))
            for (valueIndex, value) in filter.values.enumerated() {
                parameters.append(("Filter.\(index + 1).Value.\(valueIndex + 1)", value))
            }
        }
        for (index, id) in instanceIDs.enumerated() { parameters.append(("InstanceId.\(index + 1)", id)) }
        if instanceIDs.isEmpty { parameters.append(("MaxResults", String(maxResults))) }

        return try await paged("DescribeInstances", parameters) { root in
            let page = try EC2Parsing.describeInstancesPage(root)
            return (page.instances, page.nextToken)
        }
    }

    /// Every item of a paged Describe call, following `NextToken` to the last page; an endpoint
    /// that repeats a token, or sends one past `maxPages`, is broken and fails the call.
    func paged<Item>(_ operation: String, _ parameters: [(String, String)],
                     page parse: (XMLElement) throws -> (items: [Item], nextToken: String?)) async throws -> [Item] {
        var items: [Item] = []
        var nextToken: String?
        var pages = 0
        repeat {
            pages += 1
            guard pages <= Self.maxPages else {
                throw AWSResponseError(service: client.displayName, operation: operation, httpStatus: 200,
                                       detail: "still sending a NextToken after \(Self.maxPages) pages")
            }
            let page = try parse(try await client.query(operation: operation, version: Self.version,
                                                        parameters: parameters + (nextToken.map { [("NextToken", $0)] } ?? [])))
            if let token = page.nextToken, token == nextToken {
                throw AWSResponseError(service: client.displayName, operation: operation, httpStatus: 200,
                                       detail: "the same NextToken came back twice")
            }
            items += page.items
            nextToken = page.nextToken
        } while nextToken != nil
        return items
    }

    /// Launches `request.count` instances and returns them as EC2 first reports them
    /// (usually `pending`). A capacity error (`isCapacityError`) means: try the next
    /// instance type or subnet.
    package func runInstances(_ request: RunInstancesRequest) async throws -> [EC2Instance] {
        let parameters = try request.queryParameters(clientToken: request.clientToken ?? Self.newClientToken(), dryRun: false)
        let root = try await client.query(operation: "RunInstances", version: Self.version, parameters: parameters)
        let instances = try EC2Parsing.runInstances(root)
        guard instances.count == request.count else {
            throw AWSResponseError(service: client.displayName, operation: "RunInstances", httpStatus: 200,
                                   detail: "asked for \(request.count) instances, the answer lists \(instances.count)")
        }
        return instances
    }

    /// Asks EC2 whether `request` would be allowed and valid, launching nothing. Returns when
    /// EC2 answers `DryRunOperation` ("would have succeeded"); throws the `AWSError` otherwise —
    /// `UnauthorizedOperation` (AWS) or `AccessDenied` (moto) when the permission is missing.
    package func runInstancesDryRun(_ request: RunInstancesRequest) async throws {
        try await dryRun("RunInstances", try request.queryParameters(clientToken: request.clientToken ?? Self.newClientToken(), dryRun: true))
    }

    /// Terminates the instances. Terminating an already terminated instance succeeds (its
    /// previous state is `terminated`); an id EC2 does not know fails with
    /// `InvalidInstanceID.NotFound`.
    package func terminateInstances(ids: [String]) async throws -> [EC2InstanceStateChange] {
        guard !ids.isEmpty else { return [] }
        let parameters = ids.enumerated().map { ("InstanceId.\($0.offset + 1)", $0.element) }
        let root = try await client.query(operation: "TerminateInstances", version: Self.version, parameters: parameters)
        return try EC2Parsing.stateChanges(root)
    }

    /// Asks EC2 whether terminating `ids` would be allowed, terminating nothing (the plan's
    /// permission check). Returns on `DryRunOperation`; throws the refusal otherwise.
    package func terminateInstancesDryRun(ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        try await dryRun("TerminateInstances", ids.enumerated().map { ("InstanceId.\($0.offset + 1)", $0.element) } + [("DryRun", "true")])
    }

    /// Sends a `DryRun=true` request: EC2's "would have succeeded" is the `DryRunOperation`
    /// error; a plain success means the endpoint ignored DryRun, which must not pass for a check.
    private func dryRun(_ operation: String, _ parameters: [(String, String)]) async throws {
        do {
            _ = try await client.query(operation: operation, version: Self.version, parameters: parameters)
        } catch let error as AWSError where error.code == "DryRunOperation" {
            return
        }
        throw AWSResponseError(service: client.displayName, operation: operation, httpStatus: 200,
                               detail: "a dry run was answered with success instead of DryRunOperation: the endpoint ignored DryRun")
    }

    /// Adds or overwrites tags on instances (or any EC2 resource ids).
    package func createTags(resourceIDs: [String], tags: [String: String]) async throws {
        guard !resourceIDs.isEmpty, !tags.isEmpty else { return }
        var parameters = resourceIDs.enumerated().map { ("ResourceId.\($0.offset + 1)", $0.element) }
        for (index, key) in tags.keys.sorted().enumerated() {
            parameters.append(("Tag.\(index + 1).Key", key))
            parameters.append(("Tag.\(index + 1).Value", tags[key]!))
        }
        // A 2xx is the answer; AWS adds <return>true</return>, moto does not.
        _ = try await client.query(operation: "CreateTags", version: Self.version, parameters: parameters)
    }

    /// Removes tags (by key, whatever their value) from instances (or any EC2 resource ids).
    /// Removing a tag that is not there succeeds: the call is idempotent.
    package func deleteTags(resourceIDs: [String], keys: [String]) async throws {
        guard !resourceIDs.isEmpty, !keys.isEmpty else { return }
        var parameters = resourceIDs.enumerated().map { ("ResourceId.\($0.offset + 1)", $0.element) }
        for (index, key) in keys.sorted().enumerated() { parameters.append(("Tag.\(index + 1).Key", key)) }
        _ = try await client.query(operation: "DeleteTags", version: Self.version, parameters: parameters)
    }

    /// An instance's user data as launched (decoded from base64); nil when it has none.
    package func userData(instanceID: String) async throws -> Data? {
        let root = try await client.query(operation: "DescribeInstanceAttribute", version: Self.version,
                                          parameters: [("InstanceId", instanceID), ("Attribute", "userData")])
        guard let encoded = root.path("userData", "value")?.text, !encoded.isEmpty else { return nil }
        guard let data = Data(base64Encoded: encoded) else {
            throw AWSResponseError(service: client.displayName, operation: "DescribeInstanceAttribute", httpStatus: 200,
                                   detail: "userData of \(instanceID) is not base64")
        }
        return data
    }

    /// vCPUs and memory of the named instance types, in one call (paged). A name EC2 does not
    /// know fails the call (`InvalidInstanceType`). A type answered without both figures is left out.
    package func describeInstanceTypes(_ names: [String]) async throws -> [EC2InstanceTypeInfo] {
        guard !names.isEmpty else { return [] }
        let parameters = names.enumerated().map { ("InstanceType.\($0.offset + 1)", $0.element) }
        return try await paged("DescribeInstanceTypes", parameters) { root in
            let items = root.items("instanceTypeSet").compactMap { item -> EC2InstanceTypeInfo? in
                guard let name = item.string("instanceType"),
                      let vcpus = item.path("vCpuInfo", "defaultVCpus").flatMap({ Int($0.text) }),
                      let memory = item.path("memoryInfo", "sizeInMiB").flatMap({ Int64($0.text) }) else { return nil }
                return EC2InstanceTypeInfo(name: name, vcpus: vcpus, memoryMiB: memory)
            }
            let token = root.string("nextToken")
            return (items, token?.isEmpty == false ? token : nil)
        }
    }

    static func newClientToken() -> String { "kscaler-\(UUID().uuidString.lowercased())" }
}

/// An instance type's hardware as `DescribeInstanceTypes` gives it.
package struct EC2InstanceTypeInfo: Sendable, Equatable {
    package var name: String
    package var vcpus: Int
    package var memoryMiB: Int64

    package init(name: String, vcpus: Int, memoryMiB: Int64) {
        self.name = name
        self.vcpus = vcpus
        self.memoryMiB = memoryMiB
    }
}

extension AWSContext {
    package var ec2: EC2Client { EC2Client(client: client(for: .ec2, displayName: "EC2")) }
}

extension AWSError {
    /// EC2 could not place this launch right now, for this instance type, zone, subnet, market
    /// or account limit — the fleet should try the next offering rather than fail the run.
    /// (`RequestLimitExceeded` is throttling instead: retried with backoff.)
    package var isCapacityError: Bool { Self.capacityCodes.contains(code) }

    static let capacityCodes: Set<String> = [
        "InsufficientInstanceCapacity", "InstanceLimitExceeded", "VcpuLimitExceeded",
        // "Your requested instance type (…) is not supported in your requested Availability Zone"
        "Unsupported",
        "InsufficientFreeAddressesInSubnet",
        // Spot: the price cap (a launch template's MaxPrice) is below the current Spot price,
        // or the account's Spot instance limit is reached — on-demand may still launch.
        "SpotMaxPriceTooLow", "MaxSpotInstanceCountExceeded",
    ]
}
