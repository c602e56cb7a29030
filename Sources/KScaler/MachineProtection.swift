import AWS
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KScalerCore
import Kubernetes
import Logging

/// `kscaler protect` / `unprotect`: marks one machine of this cluster as never a victim, or
/// clears the mark. The fleet's tag is the authority (EC2: `kscaler:protected=true`, and
/// `kscaler:protected-until` when it ends; a termination re-checks it); with the Kubernetes API
/// on, the node also gets (or loses) the annotation `kscaler.io/protected`, so `kubectl` shows it.
/// Both writes are idempotent: protecting twice changes nothing the second time.
package struct MachineProtector: Sendable {
    let fleet: EC2Fleet
    /// The Kubernetes client, made once on first use; nil when the API is off.
    let kubernetes: Lazy<KubernetesClient>?

    package init(fleet: EC2Fleet, kubernetes: (@Sendable () async throws -> KubernetesClient)?) {
        self.fleet = fleet
        self.kubernetes = kubernetes.map { Lazy($0) }
    }

    /// The machine a target names, and its node (when the API is on and it has one).
    package struct Target: Sendable, Equatable {
        package var instanceID: String
        package var nodeName: String?
    }

    /// What `protect` or `unprotect` did (`--output json`).
    package struct Result: Sendable, Equatable, Codable {
        package var instanceID: String
        package var nodeName: String?
        /// Protected after the command (false after `unprotect`).
        package var protected: Bool
        /// The protection's end; nil: for ever (or not protected).
        package var until: Date?
        /// The tags as they were before: whether this call changed them.
        package var tagChanged: Bool
        /// The node annotation: "set", "removed", "unchanged", or why it was not written.
        package var annotation: String

        private enum CodingKeys: String, CodingKey {
            case instanceID = "instance_id", nodeName = "node_name", protected, until, tagChanged = "tag_changed", annotation
        }
    }

    /// Finds the machine: an instance id as it is, a node name through the Kubernetes API (its
    /// provider id, as `MachineIdentity` reads it). Refuses anything that is not a live instance
    /// tagged with this cluster: nothing is written for it.
    package func resolve(_ target: String) async throws -> (Target, EC2Instance) {
        var client: KubernetesClient?
        if let kubernetes { client = try await kubernetes.value() }
        var nodeName: String?
        let instanceID: String
        if let id = EC2Fleet.instanceID(nodeName: target, providerID: nil), id == target {
            instanceID = id
            // Its node, if one has registered (EC2 workers are named after the instance id).
            if let client {
                nodeName = try await client.listNodes().first { EC2Fleet.instanceID(nodeName: $0.name, providerID: $0.providerID) == id }?.name
            }
        } else {
            guard let client else {
                throw ProtectionRefused(target: target, reason: "it is not an instance id (i-…), and without the Kubernetes API a node name "
                    + "cannot be resolved to its instance; give the instance id")
            }
            guard let node = try await Self.node(named: target, client: client) else {
                throw ProtectionRefused(target: target, reason: "no instance id (i-…) and no node of that name")
            }
            guard let id = EC2Fleet.instanceID(nodeName: node.name, providerID: node.providerID) else {
                throw ProtectionRefused(target: target, reason: "node \(node.name) is not an EC2 instance (provider id \(node.providerID ?? "none"))")
            }
            instanceID = id
            nodeName = node.name
        }
        let instances: [EC2Instance]
        do {
            instances = try await fleet.ec2.describeInstances(filters: [], instanceIDs: [instanceID])
        } catch let error as AWSError where error.code.hasPrefix("InvalidInstanceID") {
            throw ProtectionRefused(target: target, reason: "EC2 knows no instance \(instanceID)")
        }
        guard let instance = instances.first(where: { $0.id == instanceID }) else {
            throw ProtectionRefused(target: target, reason: "EC2 knows no instance \(instanceID)")
        }
        guard instance.tags[EC2Fleet.clusterTag] == fleet.clusterID else {
            throw ProtectionRefused(target: target, reason: "\(instanceID) is not tagged \(EC2Fleet.clusterTag)=\(fleet.clusterID): "
                + "kscaler protects only its own cluster's machines")
        }
        guard instance.state == .pending || instance.state == .running else {
            throw ProtectionRefused(target: target, reason: "\(instanceID) is \(instance.state.rawValue), not pending or running")
        }
        return (Target(instanceID: instanceID, nodeName: nodeName), instance)
    }

    /// The node, or nil when the API says there is none (404); other failures are thrown.
    private static func node(named name: String, client: KubernetesClient) async throws -> KubeNode? {
        let result: Swift.Result<KubeNode, KubernetesError>
        do {
            result = .success(try await client.getNode(name: name))
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let node): return node
        case .failure(.notFound): return nil
        case .failure(let error): throw error
        }
    }

    /// Protects (for ever when `until` is nil) or unprotects the resolved machine. The tag is
    /// written first: it is what a run and a termination check.
    package func apply(_ target: Target, instance: EC2Instance, protect: Bool, until: Date?) async throws -> Result {
        let before = (instance.tags[EC2Fleet.protectedTag], instance.tags[EC2Fleet.protectedUntilTag])
        let untilText = until.map { formatDate($0) }
        var tagChanged = false
        if protect {
            if before.0 != "true" || before.1 != untilText {
                try await fleet.ec2.createTags(resourceIDs: [target.instanceID],
                                               tags: [EC2Fleet.protectedTag: "true"].merging(untilText.map { [EC2Fleet.protectedUntilTag: $0] } ?? [:]) { a, _ in a })
                if untilText == nil && before.1 != nil {
                    try await fleet.ec2.deleteTags(resourceIDs: [target.instanceID], keys: [EC2Fleet.protectedUntilTag])
                }
                tagChanged = true
            }
        } else if before.0 != nil || before.1 != nil {
            try await fleet.ec2.deleteTags(resourceIDs: [target.instanceID], keys: [EC2Fleet.protectedTag, EC2Fleet.protectedUntilTag])
            tagChanged = true
        }
        let annotation: String
        if let kubernetes {
            if let node = target.nodeName {
                let client = try await kubernetes.value()
                let wanted: String? = protect ? (untilText ?? "true") : nil
                let current = try await client.getNode(name: node).annotations[Protection.annotation]
                if current == wanted {
                    annotation = "unchanged"
                } else {
                    _ = try await client.patchNode(name: node, mergePatch: .object(["metadata": .object(["annotations": .object(
                        [Protection.annotation: wanted.map(JSONValue.string) ?? .null])])]))
                    annotation = protect ? "set" : "removed"
                }
            } else {
                annotation = "no node registered yet"
            }
        } else {
            annotation = "Kubernetes API off"
        }
        return Result(instanceID: target.instanceID, nodeName: target.nodeName, protected: protect, until: protect ? until : nil,
                      tagChanged: tagChanged, annotation: annotation)
    }
}

/// A protect/unprotect target kscaler may not mark: not an instance of this cluster, or not
/// live, or a node name it cannot resolve. Nothing was written.
package struct ProtectionRefused: Error, Sendable, CustomStringConvertible {
    package var target: String
    package var reason: String
    package var description: String { "refused \(target): \(reason)" }
}

extension Runtime {
    /// The protect/unprotect operation over this runtime's fleet and Kubernetes API; nil when
    /// the backend is not EC2 (protection is then the backend's own `protected` flag, or
    /// `victims.protected_instances`).
    package func protector(logger: Logger) -> MachineProtector? {
        guard let fleet = fleet as? EC2Fleet else { return nil }
        guard kubernetes.isOn else { return MachineProtector(fleet: fleet, kubernetes: nil) }
        let (access, ssm, timeout) = (kubernetes, aws.ssm, Duration.seconds(config.kubernetes.timeout))
        return MachineProtector(fleet: fleet, kubernetes: {
            guard let client = try await access.client(ssm: ssm, timeout: timeout, logger: logger) else {
                throw KubernetesError.credentials("the Kubernetes API is off")
            }
            return client
        })
    }
}
