#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A label selector (`metav1.LabelSelector`): every `matchLabels` pair and every expression
/// must hold.
package struct LabelSelector: Sendable, Hashable, Decodable {
    package struct Requirement: Sendable, Hashable, Decodable {
        package var key: String
        /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
        package var `operator`: String
        package var values: [String]?

        package init(key: String, operator: String, values: [String]? = nil) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }

        /// `In`: the label is one of the values. `NotIn`: the label is absent or none of them.
        /// An operator the API would not have accepted matches nothing.
        package func matches(_ labels: [String: String]) -> Bool {
            let value = labels[key]
            switch self.operator {
            case "In": return value.map { (values ?? []).contains($0) } ?? false
            case "NotIn": return value.map { !(values ?? []).contains($0) } ?? true
            case "Exists": return value != nil
            case "DoesNotExist": return value == nil
            default: return false
            }
        }
    }

    package var matchLabels: [String: String]
    package var matchExpressions: [Requirement]

    package init(matchLabels: [String: String] = [:], matchExpressions: [Requirement] = []) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    private enum CodingKeys: String, CodingKey { case matchLabels, matchExpressions }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        matchLabels = try container.decodeIfPresent([String: String].self, forKey: .matchLabels) ?? [:]
        matchExpressions = try container.decodeIfPresent([Requirement].self, forKey: .matchExpressions) ?? []
    }

    /// An empty selector matches every label set.
    package func matches(_ labels: [String: String]) -> Bool {
        matchLabels.allSatisfy { labels[$0.key] == $0.value } && matchExpressions.allSatisfy { $0.matches(labels) }
    }
}

/// A PodDisruptionBudget (policy/v1): which pods it guards and how many may go now.
package struct KubePDB: Sendable, Equatable {
    package var namespace: String
    package var name: String
    /// nil selects no pod; an empty selector selects every pod in the namespace (policy/v1;
    /// v1beta1 read it the other way).
    package var selector: LabelSelector?
    /// Evictions the budget allows right now; 0 means an eviction of a selected pod is refused (429).
    package var disruptionsAllowed: Int
    package var currentHealthy: Int
    package var desiredHealthy: Int
    package var expectedPods: Int

    package init(namespace: String, name: String, selector: LabelSelector?, disruptionsAllowed: Int = 0,
                 currentHealthy: Int = 0, desiredHealthy: Int = 0, expectedPods: Int = 0) {
        self.namespace = namespace
        self.name = name
        self.selector = selector
        self.disruptionsAllowed = disruptionsAllowed
        self.currentHealthy = currentHealthy
        self.desiredHealthy = desiredHealthy
        self.expectedPods = expectedPods
    }

    /// Whether a pod with these labels (in this budget's namespace) is guarded by it.
    package func selects(labels: [String: String]) -> Bool {
        selector?.matches(labels) ?? false
    }

    /// Whether the budget guards `pod`: same namespace, and the selector matches its labels.
    package func selects(_ pod: KubePod) -> Bool {
        pod.namespace == namespace && selects(labels: pod.labels)
    }
}

extension KubePDB: Decodable {
    private struct Spec: Decodable { var selector: LabelSelector? }
    private struct Status: Decodable {
        var disruptionsAllowed: Int?
        var currentHealthy: Int?
        var desiredHealthy: Int?
        var expectedPods: Int?
    }
    private enum CodingKeys: String, CodingKey { case metadata, spec, status }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        let spec = try container.decodeIfPresent(Spec.self, forKey: .spec)
        let status = try container.decodeIfPresent(Status.self, forKey: .status)
        self.init(
            namespace: try metadata.required(\.namespace, "namespace", in: decoder),
            name: try metadata.required(\.name, "name", in: decoder),
            selector: spec?.selector,
            disruptionsAllowed: status?.disruptionsAllowed ?? 0,
            currentHealthy: status?.currentHealthy ?? 0,
            desiredHealthy: status?.desiredHealthy ?? 0,
            expectedPods: status?.expectedPods ?? 0
        )
    }
}
