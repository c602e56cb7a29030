#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A core/v1 Event, as `kubectl describe node` and `kubectl get events` show it: what kscaler
/// did to a node (cordoned, drained, deleted) or why it would not.
package struct KubeEvent: Sendable, Equatable {
    package enum EventType: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    /// The object the event is about.
    package struct InvolvedObject: Sendable, Equatable {
        package var kind: String
        package var name: String
        package var uid: String
        package var apiVersion: String
        /// nil for cluster-scoped objects such as nodes.
        package var namespace: String?

        package init(kind: String, name: String, uid: String, apiVersion: String = "v1", namespace: String? = nil) {
            self.kind = kind
            self.name = name
            self.uid = uid
            self.apiVersion = apiVersion
            self.namespace = namespace
        }
    }

    /// Where the event object lives: node events go to `default`, as the kubelet's and
    /// cluster-autoscaler's do.
    package var namespace: String
    /// `<object>.<hex nanoseconds>`, the name client-go's recorder gives events.
    package var name: String
    package var involvedObject: InvolvedObject
    /// One CamelCase word (`ScaleDown`, `DrainBlocked`).
    package var reason: String
    package var message: String
    package var type: EventType
    /// `source.component`.
    package var component: String
    package var time: Date

    package init(namespace: String = "default", name: String? = nil, involvedObject: InvolvedObject, reason: String,
                 message: String, type: EventType = .normal, component: String = "kscaler", time: Date = Date()) {
        self.namespace = namespace
        self.name = name ?? Self.name(for: involvedObject.name, at: time)
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.type = type
        self.component = component
        self.time = time
    }

    /// An event about a node, in `default`.
    package static func node(_ name: String, uid: String, reason: String, message: String, type: EventType = .normal,
                             time: Date = Date()) -> KubeEvent {
        KubeEvent(involvedObject: InvolvedObject(kind: "Node", name: name, uid: uid), reason: reason, message: message, type: type, time: time)
    }

    static func name(for object: String, at time: Date) -> String {
        let nanoseconds = UInt64(max(0, time.timeIntervalSince1970 * 1e9))
        return "\(object).\(String(nanoseconds, radix: 16))"
    }

    /// The body of `POST /api/v1/namespaces/<ns>/events`.
    var body: JSONValue {
        var involved: [String: JSONValue] = [
            "kind": .string(involvedObject.kind), "name": .string(involvedObject.name),
            "uid": .string(involvedObject.uid), "apiVersion": .string(involvedObject.apiVersion),
        ]
        if let namespace = involvedObject.namespace { involved["namespace"] = .string(namespace) }
        let stamp = JSONValue.string(KubeTime.format(time))
        return [
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "involvedObject": .object(involved),
            "reason": .string(reason),
            "message": .string(message),
            "type": .string(type.rawValue),
            "source": ["component": .string(component)],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        ]
    }
}

/// The answer to a SelfSubjectAccessReview: may the client's own identity do this?
package struct AccessReviewResult: Sendable, Equatable {
    package var allowed: Bool
    /// An authorizer explicitly denied it (rather than none allowing it).
    package var denied: Bool
    /// The authorizer's words, e.g. `RBAC: allowed by ClusterRoleBinding "kscaler" …`.
    package var reason: String?
    /// Set when an authorizer failed to evaluate; `allowed` may then be wrong.
    package var evaluationError: String?

    package init(allowed: Bool, denied: Bool = false, reason: String? = nil, evaluationError: String? = nil) {
        self.allowed = allowed
        self.denied = denied
        self.reason = reason
        self.evaluationError = evaluationError
    }
}
