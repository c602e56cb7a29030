/// An EC2 instance as kscaler sees it: the few fields the fleet, the decision and the doctor
/// read from DescribeInstances / RunInstances answers.
package struct EC2Instance: Sendable, Equatable {
    package var id: String
    package var instanceType: String
    package var state: EC2InstanceState
    /// nil for instances outside a VPC subnet (and for terminated ones, which lose it).
    package var subnetID: String?
    package var availabilityZone: String
    package var launchTime: Date
    package var imageID: String
    /// nil once an instance is terminated.
    package var privateIPAddress: String?
    package var tags: [String: String]
    /// `instanceLifecycle`: `spot` for a Spot instance, `scheduled` or `capacity-block` for
    /// those; EC2 leaves it out for on-demand instances.
    package var lifecycle: String?
    /// The Spot request that launched it (RunInstances with spot market options makes a
    /// one-time request); nil for other instances. Its status tells a pending interruption.
    package var spotInstanceRequestID: String?

    package init(id: String, instanceType: String, state: EC2InstanceState, subnetID: String?, availabilityZone: String,
                launchTime: Date, imageID: String, privateIPAddress: String?, tags: [String: String],
                lifecycle: String? = nil, spotInstanceRequestID: String? = nil) {
        self.id = id
        self.instanceType = instanceType
        self.state = state
        self.subnetID = subnetID
        self.availabilityZone = availabilityZone
        self.launchTime = launchTime
        self.imageID = imageID
        self.privateIPAddress = privateIPAddress
        self.tags = tags
        self.lifecycle = lifecycle
        self.spotInstanceRequestID = spotInstanceRequestID
    }

    /// Spot when EC2 says its lifecycle is `spot`; every other instance is billed on demand
    /// (scheduled and capacity-block instances are not taken back at short notice).
    package var market: EC2Market { lifecycle == "spot" ? .spot : .onDemand }

    /// The launch template the instance was started from. EC2 records it only as the tag it
    /// adds itself (`aws:ec2launchtemplate:id`); DescribeInstances has no field for it.
    package var launchTemplateID: String? { tags["aws:ec2launchtemplate:id"] }
}

/// An instance state name (`pending`, `running`, …). A struct rather than an enum so a state
/// EC2 adds later is carried through instead of failing the whole answer.
package struct EC2InstanceState: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    package var rawValue: String
    package init(rawValue: String) { self.rawValue = rawValue }

    package static let pending = EC2InstanceState(rawValue: "pending")
    package static let running = EC2InstanceState(rawValue: "running")
    package static let shuttingDown = EC2InstanceState(rawValue: "shutting-down")
    package static let terminated = EC2InstanceState(rawValue: "terminated")
    package static let stopping = EC2InstanceState(rawValue: "stopping")
    package static let stopped = EC2InstanceState(rawValue: "stopped")

    package var description: String { rawValue }
}

/// One instance's transition in a TerminateInstances answer.
package struct EC2InstanceStateChange: Sendable, Equatable {
    package var instanceID: String
    package var previousState: EC2InstanceState
    package var currentState: EC2InstanceState
}

/// Decoding of EC2's XML answers. Each instance is read in one pass over its children, so a
/// 1,000-instance answer costs time linear in its size.
enum EC2Parsing {
    struct DescribeInstancesPage {
        var instances: [EC2Instance]
        var nextToken: String?
    }

    /// `<reservationSet><item><instancesSet><item>…`; `nextToken` may come before or after it.
    static func describeInstancesPage(_ root: XMLElement) throws -> DescribeInstancesPage {
        var instances: [EC2Instance] = []
        var nextToken: String?
        for child in root.children {
            switch child.name {
            case "nextToken":
                nextToken = child.text.isEmpty ? nil : child.text
            case "reservationSet":
                for reservation in child.children where reservation.name == "item" {
                    for set in reservation.children where set.name == "instancesSet" {
                        for item in set.children where item.name == "item" {
                            instances.append(try instance(item, operation: "DescribeInstances"))
                        }
                    }
                }
            default:
                continue
            }
        }
        return DescribeInstancesPage(instances: instances, nextToken: nextToken)
    }

    /// The instances of a RunInstances answer (`<instancesSet>` directly under the root).
    static func runInstances(_ root: XMLElement) throws -> [EC2Instance] {
        try root.items("instancesSet").map { try instance($0, operation: "RunInstances") }
    }

    static func instance(_ item: XMLElement, operation: String) throws -> EC2Instance {
        var id: String?
        var instanceType: String?
        var state: String?
        var subnetID: String?
        var availabilityZone: String?
        var launchTime: String?
        var imageID: String?
        var privateIPAddress: String?
        var tags: [String: String] = [:]
        var lifecycle: String?
        var spotInstanceRequestID: String?
        for field in item.children {
            switch field.name {
            case "instanceId": id = field.text
            case "instanceType": instanceType = field.text
            case "instanceState": state = field.string("name")
            case "subnetId": subnetID = field.text.isEmpty ? nil : field.text
            case "placement": availabilityZone = field.string("availabilityZone")
            case "launchTime": launchTime = field.text
            case "imageId": imageID = field.text
            case "privateIpAddress": privateIPAddress = field.text.isEmpty ? nil : field.text
            case "instanceLifecycle": lifecycle = field.text.isEmpty ? nil : field.text
            case "spotInstanceRequestId": spotInstanceRequestID = field.text.isEmpty ? nil : field.text
            case "tagSet":
                for tag in field.children where tag.name == "item" {
                    if let key = tag.string("key") { tags[key] = tag.string("value") ?? "" }
                }
            default: continue
            }
        }
        func missing(_ what: String) -> AWSResponseError {
            AWSResponseError(service: "EC2", operation: operation, httpStatus: 200,
                             detail: "an instance\(id.map { " (\($0))" } ?? "") has no \(what)")
        }
        guard let id, !id.isEmpty else { throw missing("instanceId") }
        guard let instanceType else { throw missing("instanceType") }
        guard let state else { throw missing("instanceState/name") }
        guard let availabilityZone else { throw missing("placement/availabilityZone") }
        guard let imageID else { throw missing("imageId") }
        guard let launchTimeText = launchTime, let launched = parseISO8601(launchTimeText) else {
            throw missing("valid launchTime")
        }
        return EC2Instance(id: id, instanceType: instanceType, state: EC2InstanceState(rawValue: state), subnetID: subnetID,
                           availabilityZone: availabilityZone, launchTime: launched, imageID: imageID,
                           privateIPAddress: privateIPAddress, tags: tags, lifecycle: lifecycle,
                           spotInstanceRequestID: spotInstanceRequestID)
    }

    static func stateChanges(_ root: XMLElement) throws -> [EC2InstanceStateChange] {
        try root.items("instancesSet").map { item in
            guard let id = item.string("instanceId"),
                  let previous = item.path("previousState", "name")?.text,
                  let current = item.path("currentState", "name")?.text else {
                throw AWSResponseError(service: "EC2", operation: "TerminateInstances", httpStatus: 200,
                                       detail: "an instancesSet item lacks instanceId, previousState or currentState")
            }
            return EC2InstanceStateChange(instanceID: id, previousState: EC2InstanceState(rawValue: previous),
                                          currentState: EC2InstanceState(rawValue: current))
        }
    }
}
