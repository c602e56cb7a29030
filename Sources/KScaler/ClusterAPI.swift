#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KScalerCore

/// The Kubernetes API as a run uses it: the Node objects, their deletion, and Events that
/// tell `kubectl describe node` what kscaler did. `KubernetesCluster` adapts the Kubernetes
/// client; a run without the API (`kubernetes.enabled: false`) has none.
package protocol ClusterAPI: Sendable {
    /// Every Node object (machine ids not resolved yet: the fleet's identity does that).
    func nodes() async throws -> [ClusterNode]
    /// Deletes the node if it is still the object `uid` names. `dryRun` asks the API server to
    /// check everything (authorisation included) and persist nothing.
    func deleteNode(name: String, uid: String, dryRun: Bool) async throws -> NodeDeletion
    /// Writes an Event on the node (best effort: a failure is a note, never a reason to stop).
    func recordEvent(_ event: NodeEvent) async throws
    /// Every pod, with the PodDisruptionBudgets selecting it and what each allows now.
    func pods() async throws -> [ClusterPod]
    /// Cordons the node and puts kscaler's drain taint on it (value: `at` in Unix seconds).
    func cordonForDrain(node: String, at: Date) async throws
    /// Takes kscaler's drain taint off the node and uncordons it.
    func releaseDrain(node: String) async throws
    /// Asks the API server to evict the pod (policy/v1 Eviction, disruption budgets honoured).
    func evict(_ pod: ClusterPod) async throws -> Eviction
    /// Deletes the pod (a forced drain), if it is still the pod `uid` names.
    func deletePod(_ pod: ClusterPod) async throws
    /// Whether a call that threw `error` may have taken effect.
    func outcome(of error: any Error) -> FailedCallOutcome
}

/// What became of an eviction that did not throw.
package enum Eviction: Sendable, Equatable {
    case evicted
    /// Already gone (404, or another pod of that name): nothing to evict.
    case gone
    /// Refused for now (429): a disruption budget allows no disruption; the API's message says which.
    case blocked(String)
}

/// What became of a node deletion that did not throw.
package enum NodeDeletion: Sendable, Equatable {
    case deleted
    /// Already gone (404): what was wanted.
    case alreadyGone
    /// A node of that name with another uid: re-registered since it was listed; left alone.
    case replaced
}

/// An Event on a Node, as cluster-autoscaler writes them (source `kscaler`).
package struct NodeEvent: Sendable, Equatable {
    package enum Reason: String, Sendable {
        case scaleUp = "ScaleUp"
        case scaleDown = "ScaleDown"
        case ghostNodeDeleted = "GhostNodeDeleted"
        case drainStarted = "ScaleDownDrainStarted"
        case drainCancelled = "ScaleDownDrainCancelled"
        case drainAborted = "ScaleDownDrainAborted"
    }

    package var node: String
    package var reason: Reason
    package var message: String
    package var warning: Bool

    package init(node: String, reason: Reason, message: String, warning: Bool = false) {
        self.node = node
        self.reason = reason
        self.message = message
        self.warning = warning
    }
}
