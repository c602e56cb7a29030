// Which nodes a pod may be scheduled on, as the scheduler's NodeAffinity and TaintToleration
// filters decide it for a node that does not exist yet: only what a pool's configuration says
// about its future nodes (labels, taints) can be checked. Field and operator meanings follow
// the Kubernetes API reference (core/v1 NodeSelectorRequirement, Toleration).

/// A pod's constraints on the node it runs on.
package struct PlacementConstraints: Sendable, Equatable {
    /// `spec.nodeSelector`: every pair must be a label of the node.
    package var nodeSelector: [String: String]
    /// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`:
    /// at least one term must match (terms are ORed, a term's requirements ANDed). Empty: no affinity.
    package var requiredNodeAffinity: [NodeSelectorTerm]
    /// `spec.tolerations`.
    package var tolerations: [Toleration]

    package init(nodeSelector: [String: String] = [:], requiredNodeAffinity: [NodeSelectorTerm] = [], tolerations: [Toleration] = []) {
        self.nodeSelector = nodeSelector
        self.requiredNodeAffinity = requiredNodeAffinity
        self.tolerations = tolerations
    }

    package static let none = PlacementConstraints()

    /// Why a node with these labels and taints cannot take the pod, or nil when it can.
    /// PreferNoSchedule taints and preferred affinities never block.
    package func mismatch(labels: [String: String], taints: [Taint]) -> String? {
        for key in nodeSelector.keys.sorted() where labels[key] != nodeSelector[key] {
            return "nodeSelector \(key)=\(nodeSelector[key] ?? "") (" + (labels[key].map { "the nodes have \(key)=\($0)" } ?? "the nodes lack \(key)") + ")"
        }
        if !requiredNodeAffinity.isEmpty, !requiredNodeAffinity.contains(where: { $0.matches(labels) }) {
            return "required node affinity " + requiredNodeAffinity.map(\.description).joined(separator: " or ") + " does not match the nodes' labels"
        }
        for taint in taints where taint.effect != .preferNoSchedule && !tolerations.contains(where: { $0.tolerates(taint) }) {
            return "no toleration for taint \(taint)"
        }
        return nil
    }
}

/// One term of a required node affinity: all its requirements must hold.
package struct NodeSelectorTerm: Sendable, Equatable, CustomStringConvertible {
    package var matchExpressions: [NodeSelectorRequirement]
    /// The term also has `matchFields` (on `metadata.name`): a node that does not exist yet has
    /// no name to match, so such a term never matches a new node.
    package var hasFieldSelectors: Bool

    package init(matchExpressions: [NodeSelectorRequirement], hasFieldSelectors: Bool = false) {
        self.matchExpressions = matchExpressions
        self.hasFieldSelectors = hasFieldSelectors
    }

    /// An empty term matches no objects (the API reference: "null or empty term matches no objects").
    package func matches(_ labels: [String: String]) -> Bool {
        !hasFieldSelectors && !matchExpressions.isEmpty && matchExpressions.allSatisfy { $0.matches(labels) }
    }

    package var description: String {
        "(" + matchExpressions.map(\.description).joined(separator: ", ") + (hasFieldSelectors ? ", matchFields" : "") + ")"
    }
}

package struct NodeSelectorRequirement: Sendable, Equatable, CustomStringConvertible {
    package enum Operator: String, Sendable, Equatable, CaseIterable {
        case `in` = "In", notIn = "NotIn", exists = "Exists", doesNotExist = "DoesNotExist", gt = "Gt", lt = "Lt"
    }

    package var key: String
    /// nil when the pod names an operator this version does not know: it then matches nothing,
    /// so no pool is launched for a constraint kscaler cannot read.
    package var `operator`: Operator?
    package var values: [String]

    package init(key: String, operator: Operator?, values: [String] = []) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    /// A requirement of a shape the API refuses (In or NotIn without values, Exists or
    /// DoesNotExist with values, Gt or Lt without exactly one integer) matches nothing, as the
    /// scheduler's selector, which cannot be built from it, matches nothing.
    package func matches(_ labels: [String: String]) -> Bool {
        let value = labels[key]
        switch `operator` {
        case .in?: return !values.isEmpty && (value.map(values.contains) ?? false)
        // NotIn and DoesNotExist hold for a node without the label.
        case .notIn?: return !values.isEmpty && (value.map { !values.contains($0) } ?? true)
        case .exists?: return values.isEmpty && value != nil
        case .doesNotExist?: return values.isEmpty && value == nil
        case .gt?, .lt?:
            // One integer value, compared with the label read as an integer.
            guard values.count == 1, let bound = Int64(values[0]), let label = value.flatMap({ Int64($0) }) else { return false }
            return `operator` == .gt ? label > bound : label < bound
        case nil: return false
        }
    }

    package var description: String {
        let op = `operator`?.rawValue ?? "?"
        return values.isEmpty ? "\(key) \(op)" : "\(key) \(op) [\(values.joined(separator: ","))]"
    }
}

/// A pod's toleration of node taints.
package struct Toleration: Sendable, Equatable {
    package enum Operator: String, Sendable, Equatable { case equal = "Equal", exists = "Exists" }

    /// Empty with `Exists`: tolerates every taint.
    package var key: String
    package var `operator`: Operator
    package var value: String
    /// nil: every effect.
    package var effect: Taint.Effect?

    package init(key: String, operator: Operator = .equal, value: String = "", effect: Taint.Effect? = nil) {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
    }

    package func tolerates(_ taint: Taint) -> Bool {
        if let effect, effect != taint.effect { return false }
        if key.isEmpty { return `operator` == .exists }
        guard key == taint.key else { return false }
        return `operator` == .exists || value == (taint.value ?? "")
    }
}
