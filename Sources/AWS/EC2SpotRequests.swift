/// A Spot instance request as DescribeSpotInstanceRequests reports it: the few fields that
/// tell whether EC2 is about to take its instance back. (DescribeInstances does not show a
/// pending interruption; the request's status does, about two minutes before.)
package struct EC2SpotInstanceRequest: Sendable, Equatable {
    package var id: String
    /// The instance that fulfilled it; nil while it is open.
    package var instanceID: String?
    /// `open`, `active`, `closed`, `cancelled`, `failed`.
    package var state: String
    /// The most recent evaluation (`fulfilled`, `marked-for-termination`, …); nil if EC2 gave none.
    package var statusCode: String?

    package init(id: String, instanceID: String?, state: String, statusCode: String?) {
        self.id = id
        self.instanceID = instanceID
        self.state = state
        self.statusCode = statusCode
    }

    /// The status codes of an interruption notice: EC2 will terminate (stop, hibernate) the
    /// instance shortly, whatever kscaler does.
    package static let interruptionStatusCodes: Set<String> = [
        "marked-for-termination", "marked-for-stop", "marked-for-hibernation",
    ]

    /// EC2 has given notice that it takes the instance back.
    package var interruptionPending: Bool { statusCode.map(Self.interruptionStatusCodes.contains) ?? false }
}

extension EC2Parsing {
    struct DescribeSpotInstanceRequestsPage {
        var requests: [EC2SpotInstanceRequest]
        var nextToken: String?
    }

    /// `<spotInstanceRequestSet><item>…`; each item's own fields only (its launch
    /// specification and tags hold same-named elements deeper down).
    static func describeSpotInstanceRequestsPage(_ root: XMLElement) throws -> DescribeSpotInstanceRequestsPage {
        var requests: [EC2SpotInstanceRequest] = []
        var nextToken: String?
        for child in root.children {
            switch child.name {
            case "nextToken":
                nextToken = child.text.isEmpty ? nil : child.text
            case "spotInstanceRequestSet":
                for item in child.children where item.name == "item" {
                    requests.append(try spotInstanceRequest(item))
                }
            default:
                continue
            }
        }
        return DescribeSpotInstanceRequestsPage(requests: requests, nextToken: nextToken)
    }

    static func spotInstanceRequest(_ item: XMLElement) throws -> EC2SpotInstanceRequest {
        var id: String?
        var instanceID: String?
        var state: String?
        var statusCode: String?
        for field in item.children {
            switch field.name {
            case "spotInstanceRequestId": id = field.text
            case "instanceId": instanceID = field.text.isEmpty ? nil : field.text
            case "state": state = field.text
            case "status": statusCode = field.string("code").flatMap { $0.isEmpty ? nil : $0 }
            default: continue
            }
        }
        guard let id, !id.isEmpty, let state, !state.isEmpty else {
            throw AWSResponseError(service: "EC2", operation: "DescribeSpotInstanceRequests", httpStatus: 200,
                                   detail: "a Spot request\(id.map { " (\($0))" } ?? "") has no spotInstanceRequestId or state")
        }
        return EC2SpotInstanceRequest(id: id, instanceID: instanceID, state: state, statusCode: statusCode)
    }
}

extension EC2Client {
    /// At most this many request ids go into one call's filter.
    static let spotRequestIDsPerCall = 200

    /// The Spot requests with these ids, following `NextToken` to the last page. The ids go in
    /// a `spot-instance-request-id` filter rather than as `SpotInstanceRequestId.N`: an id EC2
    /// no longer lists (it deletes requests four hours after they closed) is then simply
    /// absent instead of failing the call with `InvalidSpotInstanceRequestID.NotFound`, and
    /// the answer can be paged. No ids, no call.
    package func describeSpotInstanceRequests(ids: [String], maxResults: Int = 1000) async throws -> [EC2SpotInstanceRequest] {
        var unique: [String] = []
        var seen: Set<String> = []
        for id in ids where seen.insert(id).inserted { unique.append(id) }
        var requests: [EC2SpotInstanceRequest] = []
        var start = 0
        while start < unique.count {
            let chunk = unique[start..<min(start + Self.spotRequestIDsPerCall, unique.count)]
            start += chunk.count
            var parameters: [(String, String)] = [("Filter.1.Name", "spot-instance-request-id")]
            for (index, id) in chunk.enumerated() { parameters.append(("Filter.1.Value.\(index + 1)", id)) }
            parameters.append(("MaxResults", String(maxResults)))
            requests += try await paged("DescribeSpotInstanceRequests", parameters) { root in
                let page = try EC2Parsing.describeSpotInstanceRequestsPage(root)
                return (page.requests, page.nextToken)
            }
        }
        return requests
    }
}
