#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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

    /// One term of `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`,
    /// as the API has it (operators as strings: what they mean is the core's business).
    package struct NodeSelectorTerm: Sendable, Hashable {
        package var matchExpressions: [NodeSelectorRequirement]
        /// `matchFields` is present and not empty (it selects nodes by `metadata.name`).
        package var hasMatchFields: Bool

        package init(matchExpressions: [NodeSelectorRequirement] = [], hasMatchFields: Bool = false) {
            self.matchExpressions = matchExpressions
            self.hasMatchFields = hasMatchFields
        }
    }

    package struct NodeSelectorRequirement: Sendable, Hashable, Decodable {
        package var key: String
        /// `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt` or `Lt`; as written.
        package var `operator`: String
        package var values: [String]

        package init(key: String, operator: String, values: [String] = []) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }

        private enum CodingKeys: String, CodingKey { case key, `operator`, values }

        package init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            key = try container.decodeIfPresent(String.self, forKey: .key) ?? ""
            self.operator = try container.decodeIfPresent(String.self, forKey: .operator) ?? ""
            values = try container.decodeIfPresent([String].self, forKey: .values) ?? []
        }
    }

    /// One of `spec.tolerations`, as the API has it. `tolerationSeconds` is not read: it only
    /// bounds how long a NoExecute taint is tolerated on a node the pod already runs on.
    package struct Toleration: Sendable, Hashable, Decodable {
        /// Empty: every key (with `Exists`).
        package var key: String
        /// `Equal` or `Exists` (or `Lt`, `Gt`, alpha since 1.35); empty when absent, which means `Equal`.
        package var `operator`: String
        package var value: String
        /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; empty when absent: every effect.
        package var effect: String

        package init(key: String = "", operator: String = "", value: String = "", effect: String = "") {
            self.key = key
            self.operator = `operator`
            self.value = value
            self.effect = effect
        }

        private enum CodingKeys: String, CodingKey { case key, `operator`, value, effect }

        package init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            key = try container.decodeIfPresent(String.self, forKey: .key) ?? ""
            self.operator = try container.decodeIfPresent(String.self, forKey: .operator) ?? ""
            value = try container.decodeIfPresent(String.self, forKey: .value) ?? ""
            effect = try container.decodeIfPresent(String.self, forKey: .effect) ?? ""
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
    /// What the scheduler reserves for the pod on a node, to tell whether it fits elsewhere.
    package var requests: ResourceRequests
    /// Volumes whose data lives on the node and is lost with it: `hostPath`, and `emptyDir`
    /// not backed by memory (what cluster-autoscaler's skip-nodes-with-local-storage counts;
    /// its `cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes` annotation, which
    /// names volumes that may go, is in `annotations`).
    package var localStorageVolumes: [String]
    /// `spec.nodeSelector`.
    package var nodeSelector: [String: String]
    /// The terms of `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`;
    /// nil without one. Present with no terms, it matches no node (the scheduler's reading; the
    /// API's validation refuses it). Preferred affinities are not read.
    package var requiredNodeAffinity: [NodeSelectorTerm]?
    /// `spec.tolerations`.
    package var tolerations: [Toleration]
    /// The scheduler found no node for it: `status.conditions` has PodScheduled False with
    /// reason Unschedulable.
    package var unschedulable: Bool

    package init(namespace: String, name: String, uid: String, nodeName: String? = nil, phase: String? = nil,
                 labels: [String: String] = [:], annotations: [String: String] = [:], ownerReferences: [OwnerReference] = [],
                 deletionTimestamp: Date? = nil, requests: ResourceRequests = .zero, localStorageVolumes: [String] = [],
                 nodeSelector: [String: String] = [:], requiredNodeAffinity: [NodeSelectorTerm]? = nil,
                 tolerations: [Toleration] = [], unschedulable: Bool = false) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.nodeName = nodeName
        self.phase = phase
        self.labels = labels
        self.annotations = annotations
        self.ownerReferences = ownerReferences
        self.deletionTimestamp = deletionTimestamp
        self.requests = requests
        self.localStorageVolumes = localStorageVolumes
        self.nodeSelector = nodeSelector
        self.requiredNodeAffinity = requiredNodeAffinity
        self.tolerations = tolerations
        self.unschedulable = unschedulable
    }

    /// The owner reference marked as controller, if any.
    package var controller: OwnerReference? { ownerReferences.first { $0.controller == true } }

    /// A static pod's mirror: the kubelet runs it from a file, so evicting it does nothing.
    package var isMirror: Bool { annotations["kubernetes.io/config.mirror"] != nil }

    /// Run by a DaemonSet: it would come straight back on the node (and tolerates
    /// `unschedulable`), so drains leave it, as `kubectl drain --ignore-daemonsets` does.
    package var isDaemonSetPod: Bool { controller?.kind == "DaemonSet" }
}

/// CPU in cores and memory in bytes, as a pod requests them.
package struct ResourceRequests: Sendable, Hashable {
    package var cpu: Double
    package var memory: Double

    package init(cpu: Double = 0, memory: Double = 0) {
        self.cpu = cpu
        self.memory = memory
    }

    package static let zero = ResourceRequests()

    package static func + (left: ResourceRequests, right: ResourceRequests) -> ResourceRequests {
        ResourceRequests(cpu: left.cpu + right.cpu, memory: left.memory + right.memory)
    }

    /// The larger of each resource (a pod needs the most any phase of it needs).
    package static func max(_ left: ResourceRequests, _ right: ResourceRequests) -> ResourceRequests {
        ResourceRequests(cpu: Swift.max(left.cpu, right.cpu), memory: Swift.max(left.memory, right.memory))
    }
}

extension KubePod: Decodable {
    private struct Spec: Decodable {
        var nodeName: String?
        var containers: [Container]?
        var initContainers: [Container]?
        var overhead: [String: String]?
        var volumes: [Volume]?
        var nodeSelector: [String: String]?
        var affinity: Affinity?
        var tolerations: [Toleration]?
    }
    private struct Affinity: Decodable {
        struct NodeAffinity: Decodable {
            struct NodeSelector: Decodable { var nodeSelectorTerms: [Term]? }
            var requiredDuringSchedulingIgnoredDuringExecution: NodeSelector?
        }
        var nodeAffinity: NodeAffinity?
    }
    private struct Term: Decodable {
        var matchExpressions: [NodeSelectorRequirement]?
        /// Only whether there are any is read, so any shape of it is accepted (one that is no
        /// list counts as some).
        var matchFields: JSONValue?

        var term: NodeSelectorTerm {
            let hasFields = switch matchFields {
            case nil, .null?: false
            case .array(let fields)?: !fields.isEmpty
            default: true
            }
            return NodeSelectorTerm(matchExpressions: matchExpressions ?? [], hasMatchFields: hasFields)
        }
    }
    private struct Container: Decodable {
        struct Resources: Decodable { var requests: [String: String]? }
        var resources: Resources?
        /// `Always` on an init container makes it a sidecar, which runs as long as the pod.
        var restartPolicy: String?
    }
    private struct Volume: Decodable {
        struct EmptyDir: Decodable { var medium: String? }
        var name: String
        var emptyDir: EmptyDir?
        var hostPath: JSONValue?

        var isLocalStorage: Bool { hostPath != nil || (emptyDir != nil && emptyDir?.medium != "Memory") }
    }
    private struct Status: Decodable {
        var phase: String?
        var conditions: [Condition]?
    }
    /// Only PodScheduled is looked for: a condition of another shape is no reason to fail the pod.
    private struct Condition: Decodable {
        var type: String?
        var status: String?
        var reason: String?

        private enum CodingKeys: String, CodingKey { case type, status, reason }

        init(from decoder: any Decoder) throws {
            let container = try? decoder.container(keyedBy: CodingKeys.self)
            type = try? container?.decodeIfPresent(String.self, forKey: .type)
            status = try? container?.decodeIfPresent(String.self, forKey: .status)
            reason = try? container?.decodeIfPresent(String.self, forKey: .reason)
        }
    }
    private enum CodingKeys: String, CodingKey { case metadata, spec, status }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        let spec = try container.decodeIfPresent(Spec.self, forKey: .spec)
        let status = try container.decodeIfPresent(Status.self, forKey: .status)
        let namespace = try metadata.required(\.namespace, "namespace", in: decoder)
        let name = try metadata.required(\.name, "name", in: decoder)
        self.init(
            namespace: namespace,
            name: name,
            uid: try metadata.required(\.uid, "uid", in: decoder),
            nodeName: spec?.nodeName.flatMap { $0.isEmpty ? nil : $0 },
            phase: status?.phase,
            labels: metadata.labels ?? [:],
            annotations: metadata.annotations ?? [:],
            ownerReferences: metadata.ownerReferences ?? [],
            deletionTimestamp: metadata.deletionTimestamp?.date,
            requests: try spec.map { try Self.requests(of: $0, pod: "\(namespace)/\(name)", at: decoder.codingPath) } ?? .zero,
            localStorageVolumes: (spec?.volumes ?? []).filter(\.isLocalStorage).map(\.name),
            nodeSelector: spec?.nodeSelector ?? [:],
            requiredNodeAffinity: spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
                .map { ($0.nodeSelectorTerms ?? []).map(\.term) },
            tolerations: spec?.tolerations ?? [],
            unschedulable: (status?.conditions ?? []).contains {
                $0.type == "PodScheduled" && $0.status == "False" && $0.reason == "Unschedulable"
            }
        )
    }

    /// As the scheduler counts them (resourcehelper.PodRequests): the containers' sum, sidecars
    /// (restartable init containers) included, or the largest init container with the sidecars
    /// started before it, whichever is larger; plus the runtime class's overhead. In-place
    /// resizes and pod-level resources (alpha) are not read.
    private static func requests(of spec: Spec, pod: String, at path: [any CodingKey]) throws -> ResourceRequests {
        let specPath = path + [PathKey("spec")]
        func read(_ list: [String: String]?, _ at: [any CodingKey]) throws -> ResourceRequests {
            func quantity(_ resource: String) throws -> Double {
                guard let text = list?[resource] else { return 0 }
                guard let value = KubeQuantity.parse(text), value >= 0 else {
                    throw DecodingError.dataCorrupted(.init(codingPath: at + [PathKey(resource)],
                        debugDescription: "pod \(pod) requests \(resource) \"\(text.prefix(40))\", which is not a non-negative quantity"))
                }
                return value
            }
            return ResourceRequests(cpu: try quantity("cpu"), memory: try quantity("memory"))
        }
        func containerPath(_ list: String, _ index: Int) -> [any CodingKey] {
            specPath + [PathKey(list), PathKey(index), PathKey("resources"), PathKey("requests")]
        }

        var running = ResourceRequests.zero
        for (index, container) in (spec.containers ?? []).enumerated() {
            running = running + (try read(container.resources?.requests, containerPath("containers", index)))
        }
        var sidecars = ResourceRequests.zero
        var initPeak = ResourceRequests.zero
        for (index, container) in (spec.initContainers ?? []).enumerated() {
            let own = try read(container.resources?.requests, containerPath("initContainers", index))
            if container.restartPolicy == "Always" {
                running = running + own
                sidecars = sidecars + own
                initPeak = .max(initPeak, sidecars)
            } else {
                initPeak = .max(initPeak, own + sidecars)
            }
        }
        let overhead = try read(spec.overhead, specPath + [PathKey("overhead")])
        return .max(running, initPeak) + overhead
    }

    /// A step of a JSON path, for decoding errors that say where the bad value is.
    private struct PathKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(_ name: String) { stringValue = name }
        init(_ index: Int) {
            stringValue = "Index \(index)"
            intValue = index
        }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { self.init(intValue) }
    }
}
