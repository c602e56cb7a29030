#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What kscaler reads of a Node. Decoded from the API's JSON; unknown fields are ignored.
package struct KubeNode: Sendable, Equatable {
    package struct Taint: Sendable, Hashable {
        package var key: String
        package var value: String?
        /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
        package var effect: String

        package init(key: String, value: String? = nil, effect: String) {
            self.key = key
            self.value = value
            self.effect = effect
        }
    }

    package var name: String
    package var uid: String
    /// Passed back in a patch (`cordon(name:resourceVersion:)`) so a stale view is refused with 409.
    package var resourceVersion: String
    package var creationTimestamp: Date?
    /// Set once a delete was accepted and finalizers still hold the object.
    package var deletionTimestamp: Date?
    package var labels: [String: String]
    package var annotations: [String: String]
    /// `aws:///us-east-1a/i-0123…` on EC2; nil until the cloud provider (or k3s) sets it.
    package var providerID: String?
    /// Cordoned.
    package var unschedulable: Bool
    package var taints: [Taint]
    /// The Ready condition: true or false; nil when the node has none yet or its status is
    /// Unknown (the node stopped reporting).
    package var ready: Bool?
    /// When the Ready condition last changed (how long a node has been (not) ready).
    package var readyTransitionTime: Date?
    /// Allocatable resources as the API writes quantities (`cpu: "1930m"`, `memory: "3Gi"`).
    package var allocatable: [String: String]

    package init(name: String, uid: String, resourceVersion: String, creationTimestamp: Date? = nil, deletionTimestamp: Date? = nil,
                 labels: [String: String] = [:], annotations: [String: String] = [:], providerID: String? = nil,
                 unschedulable: Bool = false, taints: [Taint] = [], ready: Bool? = nil, readyTransitionTime: Date? = nil,
                 allocatable: [String: String] = [:]) {
        self.name = name
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.creationTimestamp = creationTimestamp
        self.deletionTimestamp = deletionTimestamp
        self.labels = labels
        self.annotations = annotations
        self.providerID = providerID
        self.unschedulable = unschedulable
        self.taints = taints
        self.ready = ready
        self.readyTransitionTime = readyTransitionTime
        self.allocatable = allocatable
    }

    /// Allocatable CPU in cores; nil when the node reports none or an unreadable quantity (a
    /// node that cannot be sized must not look empty).
    package var allocatableCPU: Double? { allocatable["cpu"].flatMap(KubeQuantity.parse) }

    /// Allocatable memory in bytes; nil as for `allocatableCPU`.
    package var allocatableMemory: Double? { allocatable["memory"].flatMap(KubeQuantity.parse) }
}

extension KubeNode: Decodable {
    private struct Spec: Decodable {
        var providerID: String?
        var unschedulable: Bool?
        var taints: [RawTaint]?
    }
    private struct RawTaint: Decodable {
        var key: String
        var value: String?
        var effect: String
    }
    private struct Status: Decodable {
        var conditions: [Condition]?
        var allocatable: [String: String]?
    }
    private struct Condition: Decodable {
        var type: String
        var status: String
        var lastTransitionTime: TimeField?
    }
    private enum CodingKeys: String, CodingKey { case metadata, spec, status }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        let spec = try container.decodeIfPresent(Spec.self, forKey: .spec)
        let status = try container.decodeIfPresent(Status.self, forKey: .status)
        let readyCondition = status?.conditions?.first { $0.type == "Ready" }
        self.init(
            name: try metadata.required(\.name, "name", in: decoder),
            uid: try metadata.required(\.uid, "uid", in: decoder),
            resourceVersion: metadata.resourceVersion ?? "",
            creationTimestamp: metadata.creationTimestamp?.date,
            deletionTimestamp: metadata.deletionTimestamp?.date,
            labels: metadata.labels ?? [:],
            annotations: metadata.annotations ?? [:],
            providerID: spec?.providerID.flatMap { $0.isEmpty ? nil : $0 },
            unschedulable: spec?.unschedulable ?? false,
            taints: (spec?.taints ?? []).map { Taint(key: $0.key, value: $0.value, effect: $0.effect) },
            ready: readyCondition.flatMap { $0.status == "True" ? true : $0.status == "False" ? false : nil },
            readyTransitionTime: readyCondition?.lastTransitionTime?.date,
            allocatable: status?.allocatable ?? [:]
        )
    }
}

/// `metadata` as every object has it; which fields are required depends on the object.
struct ObjectMeta: Decodable {
    var name: String?
    var namespace: String?
    var uid: String?
    var resourceVersion: String?
    var creationTimestamp: TimeField?
    var deletionTimestamp: TimeField?
    var labels: [String: String]?
    var annotations: [String: String]?
    var ownerReferences: [KubePod.OwnerReference]?

    /// The field, or a decoding error that names its full path (`items[3].metadata`).
    func required(_ field: KeyPath<ObjectMeta, String?>, _ name: String, in decoder: any Decoder) throws -> String {
        guard let value = self[keyPath: field], !value.isEmpty else {
            throw DecodingError.keyNotFound(Key(name), .init(codingPath: decoder.codingPath + [Key("metadata")], debugDescription: "metadata.\(name) is missing"))
        }
        return value
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
