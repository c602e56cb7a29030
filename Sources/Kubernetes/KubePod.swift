import Foundation

/// What kscaler reads of a Pod to decide whether, and how, a node can be drained.
package struct KubePod: Sendable, Equatable {
    package struct OwnerReference: Sendable, Hashable, Decodable {
        package var apiVersion: String?
        package var kind: String
        package var name: String
        package var uid: String?
        /// The managing controller (a ReplicaSet, a DaemonSet, …); other owners only hold the pod.
        package var controller: Bool?

        package init(apiVersion: String? = nil, kind: String, name: String, uid: String? = nil, controller: Bool? = nil) {
            self.apiVersion = apiVersion
            self.kind = kind
            self.name = name
            self.uid = uid
            self.controller = controller
        }
    }

    package var namespace: String
    package var name: String
    package var uid: String
    package var nodeName: String?
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    package var phase: String?
    package var labels: [String: String]
    package var annotations: [String: String]
    package var ownerReferences: [OwnerReference]
    /// Set while the pod terminates.
    package var deletionTimestamp: Date?

    package init(namespace: String, name: String, uid: String, nodeName: String? = nil, phase: String? = nil,
                 labels: [String: String] = [:], annotations: [String: String] = [:], ownerReferences: [OwnerReference] = [],
                 deletionTimestamp: Date? = nil) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.nodeName = nodeName
        self.phase = phase
        self.labels = labels
        self.annotations = annotations
        self.ownerReferences = ownerReferences
        self.deletionTimestamp = deletionTimestamp
    }

    /// The owner reference marked as controller, if any.
    package var controller: OwnerReference? { ownerReferences.first { $0.controller == true } }

    /// A static pod's mirror: the kubelet runs it from a file, so evicting it does nothing.
    package var isMirror: Bool { annotations["kubernetes.io/config.mirror"] != nil }

    /// Run by a DaemonSet: it would come straight back on the node (and tolerates
    /// `unschedulable`), so drains leave it, as `kubectl drain --ignore-daemonsets` does.
    package var isDaemonSetPod: Bool { controller?.kind == "DaemonSet" }
}

extension KubePod: Decodable {
    private struct Spec: Decodable { var nodeName: String? }
    private struct Status: Decodable { var phase: String? }
    private enum CodingKeys: String, CodingKey { case metadata, spec, status }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        let spec = try container.decodeIfPresent(Spec.self, forKey: .spec)
        let status = try container.decodeIfPresent(Status.self, forKey: .status)
        self.init(
            namespace: try metadata.required(\.namespace, "namespace", in: decoder),
            name: try metadata.required(\.name, "name", in: decoder),
            uid: try metadata.required(\.uid, "uid", in: decoder),
            nodeName: spec?.nodeName.flatMap { $0.isEmpty ? nil : $0 },
            phase: status?.phase,
            labels: metadata.labels ?? [:],
            annotations: metadata.annotations ?? [:],
            ownerReferences: metadata.ownerReferences ?? [],
            deletionTimestamp: metadata.deletionTimestamp?.date
        )
    }
}
