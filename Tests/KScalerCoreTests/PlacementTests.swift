// Which nodes a pod may run on: PlacementConstraints.mismatch against the rules of the
// Kubernetes API reference (core/v1 NodeSelectorRequirement, NodeSelectorTerm, Toleration) and
// of the scheduler's NodeAffinity and TaintToleration filters (component-helpers nodeaffinity,
// apimachinery labels.Requirement, core/v1 Toleration.ToleratesTaint).
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import PropertyBased
import Testing
@testable import KScalerCore

private typealias Requirement = NodeSelectorRequirement

/// A pod with only this required node affinity.
private func affinity(_ terms: NodeSelectorTerm...) -> PlacementConstraints {
    PlacementConstraints(requiredNodeAffinity: terms)
}

private func term(_ requirements: Requirement...) -> NodeSelectorTerm {
    NodeSelectorTerm(matchExpressions: requirements)
}

private func fits(_ constraints: PlacementConstraints, labels: [String: String] = [:], taints: [Taint] = []) -> Bool {
    constraints.mismatch(labels: labels, taints: taints) == nil
}

@Suite("placement: node selectors and required node affinity")
struct NodeAffinityRules {
    let node = ["kscaler.io/pool": "gpu", "topology.kubernetes.io/zone": "us-east-1a", "example.com/cores": "8"]

    @Test func aNodeSelectorNeedsEveryPairAsALabel() {
        #expect(fits(PlacementConstraints(nodeSelector: ["kscaler.io/pool": "gpu"]), labels: node))
        #expect(fits(PlacementConstraints(nodeSelector: ["kscaler.io/pool": "gpu", "topology.kubernetes.io/zone": "us-east-1a"]), labels: node))
        #expect(fits(.none, labels: node))
        #expect(fits(.none))

        let other = PlacementConstraints(nodeSelector: ["kscaler.io/pool": "general"])
        #expect(other.mismatch(labels: node, taints: []) == "nodeSelector kscaler.io/pool=general (the nodes have kscaler.io/pool=gpu)")
        let missing = PlacementConstraints(nodeSelector: ["kscaler.io/pool": "gpu", "kubernetes.io/arch": "arm64"])
        #expect(missing.mismatch(labels: node, taints: []) == "nodeSelector kubernetes.io/arch=arm64 (the nodes lack kubernetes.io/arch)")
        // An empty value asks for the label with an empty value, not for its absence.
        let empty = PlacementConstraints(nodeSelector: ["example.com/flag": ""])
        #expect(!fits(empty, labels: node))
        #expect(fits(empty, labels: ["example.com/flag": ""]))
    }

    @Test func inAndNotIn() {
        let zone = "topology.kubernetes.io/zone"
        #expect(fits(affinity(term(Requirement(key: zone, operator: .in, values: ["us-east-1a", "us-east-1b"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: zone, operator: .in, values: ["us-east-1b"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "missing", operator: .in, values: ["x"]))), labels: node))

        #expect(fits(affinity(term(Requirement(key: zone, operator: .notIn, values: ["us-east-1b"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: zone, operator: .notIn, values: ["us-east-1b", "us-east-1a"]))), labels: node))
        // NotIn holds on a node without the label.
        #expect(fits(affinity(term(Requirement(key: "missing", operator: .notIn, values: ["x"]))), labels: node))
    }

    @Test func existsAndDoesNotExist() {
        #expect(fits(affinity(term(Requirement(key: "kscaler.io/pool", operator: .exists))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "missing", operator: .exists))), labels: node))
        // DoesNotExist holds on a node without the label, only there.
        #expect(fits(affinity(term(Requirement(key: "missing", operator: .doesNotExist))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "kscaler.io/pool", operator: .doesNotExist))), labels: node))
        // An empty label value still exists.
        #expect(fits(affinity(term(Requirement(key: "flag", operator: .exists))), labels: ["flag": ""]))
    }

    @Test func gtAndLtCompareTheLabelAsAnIntegerWithOneIntegerValue() {
        let cores = "example.com/cores"  // 8 on the node
        #expect(fits(affinity(term(Requirement(key: cores, operator: .gt, values: ["4"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: cores, operator: .gt, values: ["8"]))), labels: node))  // strictly greater
        #expect(fits(affinity(term(Requirement(key: cores, operator: .lt, values: ["16"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: cores, operator: .lt, values: ["8"]))), labels: node))  // strictly less
        #expect(fits(affinity(term(Requirement(key: cores, operator: .gt, values: ["-1"]))), labels: node))
        #expect(fits(affinity(term(Requirement(key: "t", operator: .lt, values: ["0"]))), labels: ["t": "-5"]))
        // Numbers, not strings: "10" > "9".
        #expect(fits(affinity(term(Requirement(key: "n", operator: .gt, values: ["9"]))), labels: ["n": "10"]))

        // No label, a label that is no integer, no value, two values, a value that is no integer: no match.
        #expect(!fits(affinity(term(Requirement(key: "missing", operator: .gt, values: ["1"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "kscaler.io/pool", operator: .gt, values: ["1"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: cores, operator: .gt))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: cores, operator: .gt, values: ["1", "2"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: cores, operator: .lt, values: ["1e3"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: cores, operator: .lt, values: ["16.5"]))), labels: node))
    }

    /// Shapes the API refuses: the scheduler cannot build a selector from them, so their term
    /// matches nothing, NotIn and DoesNotExist included.
    @Test func aRequirementOfARefusedShapeMatchesNothing() {
        #expect(!fits(affinity(term(Requirement(key: "kscaler.io/pool", operator: .in))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "missing", operator: .notIn))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "kscaler.io/pool", operator: .exists, values: ["gpu"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "missing", operator: .doesNotExist, values: ["x"]))), labels: node))
    }

    @Test func termsAreOredAndTheirExpressionsAnded() {
        let pool = Requirement(key: "kscaler.io/pool", operator: .in, values: ["gpu"])
        let wrongZone = Requirement(key: "topology.kubernetes.io/zone", operator: .in, values: ["us-east-1c"])
        let bigEnough = Requirement(key: "example.com/cores", operator: .gt, values: ["4"])
        #expect(fits(affinity(term(pool, bigEnough)), labels: node))
        #expect(!fits(affinity(term(pool, wrongZone)), labels: node))  // one expression fails: the term fails
        #expect(fits(affinity(term(pool, wrongZone), term(bigEnough)), labels: node))  // another term matches
        #expect(fits(affinity(term(bigEnough), term(pool, wrongZone)), labels: node))
        #expect(!fits(affinity(term(wrongZone), term(pool, wrongZone)), labels: node))

        let mismatch = affinity(term(wrongZone), term(pool, Requirement(key: "x", operator: .exists))).mismatch(labels: node, taints: [])
        #expect(mismatch == "required node affinity (topology.kubernetes.io/zone In [us-east-1c]) or (kscaler.io/pool In [gpu], x Exists) "
                    + "does not match the nodes' labels")
    }

    @Test func anEmptyTermAndATermWithMatchFieldsNeverMatch() {
        #expect(!fits(affinity(NodeSelectorTerm(matchExpressions: [])), labels: node))
        #expect(!fits(affinity(NodeSelectorTerm(matchExpressions: [])), labels: [:]))
        // matchFields selects by the node's name, which a node not yet launched does not have.
        let named = NodeSelectorTerm(matchExpressions: [Requirement(key: "kscaler.io/pool", operator: .exists)], hasFieldSelectors: true)
        #expect(!fits(affinity(named), labels: node))
        #expect(!fits(affinity(NodeSelectorTerm(matchExpressions: [], hasFieldSelectors: true)), labels: node))
        // Terms are still ORed with them.
        #expect(fits(affinity(NodeSelectorTerm(matchExpressions: []), named, term(Requirement(key: "kscaler.io/pool", operator: .exists))), labels: node))
    }

    @Test func anUnknownOperatorMatchesNothing() {
        #expect(!fits(affinity(term(Requirement(key: "kscaler.io/pool", operator: nil, values: ["gpu"]))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "missing", operator: nil))), labels: node))
        #expect(!fits(affinity(term(Requirement(key: "kscaler.io/pool", operator: .exists), Requirement(key: "missing", operator: nil))), labels: node))
        #expect(fits(affinity(term(Requirement(key: "missing", operator: nil)), term(Requirement(key: "kscaler.io/pool", operator: .exists))), labels: node))
        #expect(Requirement(key: "a", operator: nil, values: ["b"]).description == "a ? [b]")
    }

    @Test func theNodeSelectorAndTheAffinityMustBothHold() {
        let both = PlacementConstraints(nodeSelector: ["kscaler.io/pool": "gpu"],
                                        requiredNodeAffinity: [term(Requirement(key: "example.com/cores", operator: .gt, values: ["16"]))])
        #expect(!fits(both, labels: node))
        #expect(fits(both, labels: node.merging(["example.com/cores": "32"]) { $1 }))
        #expect(!fits(both, labels: ["example.com/cores": "32"]))
    }
}

@Suite("placement: taints and tolerations")
struct TolerationRules {
    let dedicated = Taint(key: "dedicated", value: "batch", effect: .noSchedule)

    private func tolerating(_ tolerations: Toleration...) -> PlacementConstraints { PlacementConstraints(tolerations: tolerations) }

    @Test func anUntoleratedTaintBlocks() {
        #expect(PlacementConstraints.none.mismatch(labels: [:], taints: [dedicated]) == "no toleration for taint dedicated=batch:NoSchedule")
        #expect(!fits(.none, taints: [Taint(key: "gpu", effect: .noExecute)]))
        #expect(!fits(tolerating(Toleration(key: "other", operator: .exists)), taints: [dedicated]))
    }

    @Test func equalNeedsTheSameValueAndExistsAnyValue() {
        #expect(fits(tolerating(Toleration(key: "dedicated", operator: .equal, value: "batch")), taints: [dedicated]))
        #expect(!fits(tolerating(Toleration(key: "dedicated", operator: .equal, value: "web")), taints: [dedicated]))
        #expect(!fits(tolerating(Toleration(key: "dedicated", operator: .equal)), taints: [dedicated]))
        #expect(fits(tolerating(Toleration(key: "dedicated", operator: .exists)), taints: [dedicated]))
        // A taint without a value has the empty value.
        let bare = Taint(key: "gpu", effect: .noSchedule)
        #expect(fits(tolerating(Toleration(key: "gpu")), taints: [bare]))
        #expect(!fits(tolerating(Toleration(key: "gpu", value: "true")), taints: [bare]))
        #expect(fits(tolerating(Toleration(key: "gpu", operator: .exists)), taints: [bare]))
    }

    @Test func anEmptyKeyWithExistsToleratesEveryTaint() {
        let everything = tolerating(Toleration(key: "", operator: .exists))
        let taints = [dedicated, Taint(key: "gpu", effect: .noExecute), Taint(key: ClusterNode.drainTaintKey, value: "1700000000", effect: .noSchedule)]
        #expect(fits(everything, taints: taints))
        // With an effect, every taint of that effect only.
        let noSchedule = tolerating(Toleration(key: "", operator: .exists, effect: .noSchedule))
        #expect(fits(noSchedule, taints: [dedicated]))
        #expect(!fits(noSchedule, taints: taints))
        // The API refuses an empty key with Equal; kscaler lets it tolerate nothing.
        #expect(!fits(tolerating(Toleration(key: "", operator: .equal, value: "batch")), taints: [dedicated]))
    }

    @Test func anEffectMustBeTheTaintsAndNoneMeansEvery() {
        let noExecute = Taint(key: "dedicated", value: "batch", effect: .noExecute)
        #expect(fits(tolerating(Toleration(key: "dedicated", value: "batch")), taints: [dedicated, noExecute]))
        #expect(fits(tolerating(Toleration(key: "dedicated", value: "batch", effect: .noSchedule)), taints: [dedicated]))
        // A toleration of NoSchedule does not tolerate NoExecute, nor the other way round.
        #expect(!fits(tolerating(Toleration(key: "dedicated", value: "batch", effect: .noSchedule)), taints: [noExecute]))
        #expect(!fits(tolerating(Toleration(key: "dedicated", value: "batch", effect: .noExecute)), taints: [dedicated]))
        #expect(fits(tolerating(Toleration(key: "dedicated", value: "batch", effect: .noSchedule),
                                Toleration(key: "dedicated", operator: .exists, effect: .noExecute)), taints: [dedicated, noExecute]))
        // A toleration of PreferNoSchedule tolerates no NoSchedule taint.
        #expect(!fits(tolerating(Toleration(key: "dedicated", operator: .exists, effect: .preferNoSchedule)), taints: [dedicated]))
    }

    @Test func preferNoScheduleNeverBlocks() {
        let prefer = Taint(key: "spot", value: "true", effect: .preferNoSchedule)
        #expect(fits(.none, taints: [prefer]))
        #expect(fits(.none, taints: [prefer, Taint(key: "other", effect: .preferNoSchedule)]))
        #expect(!fits(.none, taints: [prefer, dedicated]))
    }

    @Test func everyBlockingTaintNeedsAToleration() {
        let gpu = Taint(key: "nvidia.com/gpu", effect: .noSchedule)
        let one = tolerating(Toleration(key: "dedicated", value: "batch"))
        #expect(one.mismatch(labels: [:], taints: [dedicated, gpu]) == "no toleration for taint nvidia.com/gpu:NoSchedule")
        #expect(fits(tolerating(Toleration(key: "dedicated", value: "batch"), Toleration(key: "nvidia.com/gpu", operator: .exists)),
                     taints: [dedicated, gpu]))
    }
}

@Suite("placement: a node's labels and taints in the run report")
struct ClusterNodeCodingTests {
    @Test func labelsAndTaintsRoundTripAndOldJSONReads() throws {
        let node = ClusterNode(name: "i-0gpu", uid: "u", providerID: nil, ready: true, machineID: "i-0gpu", labels: ["kscaler.io/pool": "gpu"],
                               taints: [Taint(key: "nvidia.com/gpu", value: "true", effect: .noSchedule), Taint(key: "spot", effect: .preferNoSchedule)])
        let data = try JSONEncoder().encode(node)
        #expect(try JSONDecoder().decode(ClusterNode.self, from: data) == node)
        // Taints as the API writes them.
        struct Written: Decodable { var taints: [[String: String]]; var labels: [String: String] }
        let written = try JSONDecoder().decode(Written.self, from: data)
        #expect(written.taints == [["key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"], ["key": "spot", "effect": "PreferNoSchedule"]])
        #expect(written.labels == ["kscaler.io/pool": "gpu"])

        // Written before nodes had labels and taints.
        let old = try JSONDecoder().decode(ClusterNode.self, from: Data(#"{"name":"n","uid":"u","ready":false,"drain_taint":true}"#.utf8))
        #expect(old == ClusterNode(name: "n", uid: "u", providerID: nil, ready: false, machineID: nil, hasDrainTaint: true))
        // A taint whose effect this version does not know is left out.
        let odd = try JSONDecoder().decode(ClusterNode.self, from: Data(#"{"name":"n","uid":"u","ready":true,"taints":[{"key":"a","effect":"NoFoo"},{"key":"b","effect":"NoExecute"}]}"#.utf8))
        #expect(odd.taints == [Taint(key: "b", effect: .noExecute)])
    }
}

// MARK: properties

/// One random node and pod: labels, taints and constraints drawn from small pools, so that
/// they meet often.
private struct PlacementCase: Sendable, CustomStringConvertible {
    var labels: [String: String]
    var taints: [Taint]
    var constraints: PlacementConstraints
    var extraToleration: Toleration

    var description: String { "labels \(labels), taints \(taints), constraints \(constraints), extra \(extraToleration)" }
}

/// Adapts the checker's seeded generator to the standard library's `random(in:using:)`.
private struct Draw: RandomNumberGenerator {
    var base: any SeededRandomNumberGenerator
    mutating func next() -> UInt64 { base.next() }

    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
}

private let keys = ["pool", "zone", "cores", "gpu"]
private let values = ["a", "b", "1", "8", "-3", ""]

private func randomCase(_ draw: inout Draw) -> PlacementCase {
    func labels() -> [String: String] {
        Dictionary((0..<draw.int(0...4)).map { _ in (draw.pick(keys), draw.pick(values)) }) { first, _ in first }
    }
    func taint() -> Taint {
        Taint(key: draw.pick(keys), value: draw.chance(0.3) ? nil : draw.pick(values), effect: draw.pick(Taint.Effect.allCases))
    }
    func toleration() -> Toleration {
        Toleration(key: draw.chance(0.15) ? "" : draw.pick(keys), operator: draw.chance(0.5) ? .exists : .equal, value: draw.pick(values),
                   effect: draw.chance(0.4) ? nil : draw.pick(Taint.Effect.allCases))
    }
    func requirement() -> NodeSelectorRequirement {
        let op: NodeSelectorRequirement.Operator? = draw.chance(0.05) ? nil : draw.pick(NodeSelectorRequirement.Operator.allCases)
        let count = switch op {
        case .exists?, .doesNotExist?: draw.chance(0.9) ? 0 : 1
        case .gt?, .lt?: draw.chance(0.9) ? 1 : draw.pick([0, 2])
        default: draw.int(0...3)
        }
        return NodeSelectorRequirement(key: draw.pick(keys), operator: op, values: (0..<count).map { _ in draw.pick(values) })
    }
    let constraints = PlacementConstraints(
        nodeSelector: draw.chance(0.5) ? [:] : labels(),
        requiredNodeAffinity: draw.chance(0.4) ? [] : (0..<draw.int(1...3)).map { _ in
            NodeSelectorTerm(matchExpressions: (0..<draw.int(0...3)).map { _ in requirement() }, hasFieldSelectors: draw.chance(0.1))
        },
        tolerations: (0..<draw.int(0...3)).map { _ in toleration() })
    return PlacementCase(labels: labels(), taints: (0..<draw.int(0...3)).map { _ in taint() }, constraints: constraints,
                         extraToleration: toleration())
}

private let placementCases = Generator<PlacementCase, Shrink.None<PlacementCase>> { rng in
    var draw = Draw(base: rng)
    defer { rng = draw.base }
    return randomCase(&draw)
}

@Suite("placement: properties over random nodes and pods")
struct PlacementProperties {
    static let cases = 3000

    @Test("a pod without constraints fits any node without a NoSchedule or NoExecute taint")
    func unconstrained() async {
        await propertyCheck(count: Self.cases, input: placementCases) { sample in
            let soft = sample.taints.map { Taint(key: $0.key, value: $0.value, effect: .preferNoSchedule) }
            #expect(PlacementConstraints.none.mismatch(labels: sample.labels, taints: []) == nil, "\(sample)")
            #expect(PlacementConstraints.none.mismatch(labels: sample.labels, taints: soft) == nil, "\(sample)")
            let blocking = sample.taints.contains { $0.effect != .preferNoSchedule }
            #expect((PlacementConstraints.none.mismatch(labels: sample.labels, taints: sample.taints) == nil) == !blocking, "\(sample)")
        }
    }

    @Test("adding a toleration, or taking a taint away, never turns a fit into a mismatch")
    func monotone() async {
        await propertyCheck(count: Self.cases, input: placementCases) { sample in
            guard fits(sample.constraints, labels: sample.labels, taints: sample.taints) else { return }
            var more = sample.constraints
            more.tolerations.append(sample.extraToleration)
            #expect(fits(more, labels: sample.labels, taints: sample.taints), "\(sample)")
            for index in sample.taints.indices {
                var fewer = sample.taints
                fewer.remove(at: index)
                #expect(fits(sample.constraints, labels: sample.labels, taints: fewer), "\(sample)")
            }
        }
    }

    @Test("the order of terms, expressions, tolerations and taints does not matter; taints alone never break affinity")
    func orderAndSeparation() async {
        await propertyCheck(count: Self.cases, input: placementCases) { sample in
            var reordered = sample.constraints
            reordered.requiredNodeAffinity = reordered.requiredNodeAffinity.reversed().map {
                NodeSelectorTerm(matchExpressions: $0.matchExpressions.reversed(), hasFieldSelectors: $0.hasFieldSelectors)
            }
            reordered.tolerations.reverse()
            let fit = fits(sample.constraints, labels: sample.labels, taints: sample.taints)
            #expect(fits(reordered, labels: sample.labels, taints: sample.taints.reversed()) == fit, "\(sample)")

            // Fitting is: the labels fit the selector and affinity, and the taints the tolerations.
            var labelsOnly = sample.constraints
            labelsOnly.tolerations = []
            let taintsOnly = PlacementConstraints(tolerations: sample.constraints.tolerations)
            #expect(fit == (fits(labelsOnly, labels: sample.labels) && fits(taintsOnly, labels: [:], taints: sample.taints)), "\(sample)")
        }
    }

    @Test("a toleration of every taint (empty key, Exists, any effect) leaves only the labels to decide")
    func tolerateEverything() async {
        await propertyCheck(count: Self.cases, input: placementCases) { sample in
            var everything = sample.constraints
            everything.tolerations.append(Toleration(key: "", operator: .exists))
            var labelsOnly = sample.constraints
            labelsOnly.tolerations = []
            #expect(fits(everything, labels: sample.labels, taints: sample.taints) == fits(labelsOnly, labels: sample.labels), "\(sample)")
        }
    }
}
