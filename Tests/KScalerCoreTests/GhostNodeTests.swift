#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

@Suite("ghost nodes: the health gate and the counts")
struct GhostGateTests {
    @Test("NotReady nodes whose instance is gone never trip the health gate, with or without the Kubernetes API")
    func ghostsDoNotTripTheGate() {
        // Two live workers and five ghosts: 5 of 7 nodes NotReady would halt (71 % > 45 %, 5 > 3).
        var cluster = Cluster(workers: 2)
        let ghosts = (0..<5).map { _ in cluster.addGhost() }
        cluster.set(.unschedulablePods, .value(2))
        cluster.set(.pendingCPURequestCores, .value(1))
        cluster.set(.pendingMemoryRequestBytes, .value(1e9))
        let decision = cluster.decide()
        #expect(decision.halt == nil)
        #expect(decision.scaleUpCount == 1)
        #expect(decision.counts.clusterNodes == 3)       // control plane + two workers
        #expect(decision.counts.clusterNotReady == 0)
        #expect(decision.counts.ghostNodes == 5)
        let reason = decision.reasons(.ghostNodes).first ?? ""
        #expect(reason.hasPrefix("5 ghost nodes (machine gone) not counted"), "\(reason)")
        #expect(ghosts.allSatisfy(reason.contains))

        // The same nodes with their machines not known ended are real NotReady nodes: the gate holds.
        cluster.endedMachines = []
        #expect(cluster.decide().halt == .clusterUnhealthy)
    }
}

@Suite("ghost nodes: which Node objects are deleted")
struct NodeCleanupTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let grace: TimeInterval = 120

    static func node(_ name: String, machine: String?, ready: Bool = false) -> ClusterNode {
        ClusterNode(name: name, uid: "uid-\(name)", providerID: machine.map { "aws:///us-east-1a/\($0)" }, ready: ready, machineID: machine)
    }

    @Test("a ghost kscaler did not make waits out the grace from when it was first seen, then is deleted")
    func ghostWaitsOutItsGrace() {
        let nodes = [Self.node("i-dead", machine: "i-dead")]
        let first = planNodeCleanup(nodes: nodes, live: [], ended: ["i-dead"], recorded: [], grace: Self.grace, now: Self.t0)
        #expect(first.due.isEmpty)
        #expect(first.ghosts.map(\.deleteAt) == [Self.t0.addingTimeInterval(Self.grace)])
        #expect(first.records == [GhostNode(node: "i-dead", machine: "i-dead", since: Self.t0)])

        let early = planNodeCleanup(nodes: nodes, live: [], ended: ["i-dead"], recorded: first.records, grace: Self.grace,
                                    now: Self.t0.addingTimeInterval(Self.grace - 1))
        #expect(early.due.isEmpty)
        let late = planNodeCleanup(nodes: nodes, live: [], ended: ["i-dead"], recorded: first.records, grace: Self.grace,
                                   now: Self.t0.addingTimeInterval(Self.grace))
        #expect(late.due.map(\.node.name) == ["i-dead"])
        #expect(late.due.first?.node.uid == "uid-i-dead")
    }

    @Test("kscaler's own termination: its Node goes at once, and after EC2 forgets the instance too")
    func ownTerminationGoesAtOnce() {
        let record = GhostNode(node: "worker-a", machine: "i-a", since: Self.t0, terminatedByKscaler: true)
        let nodes = [Self.node("worker-a", machine: "i-a", ready: true)]  // still Ready: the kubelet has not noticed yet
        let cleanup = planNodeCleanup(nodes: nodes, live: [], ended: [], recorded: [record], grace: Self.grace, now: Self.t0)
        #expect(cleanup.due.map(\.node.name) == ["worker-a"])
        #expect(cleanup.due.first?.terminatedByKscaler == true)
    }

    @Test("never touched: foreign nodes, nodes of live machines, machines the fleet does not list, Ready ghosts")
    func neverTouched() {
        let nodes = [
            Self.node("control-plane", machine: nil),                 // not one of the fleet's
            Self.node("i-live", machine: "i-live"),                   // NotReady, but its machine runs
            Self.node("i-unknown", machine: "i-unknown"),             // not in EC2's answer: not provably ours
            Self.node("i-readyghost", machine: "i-readyghost", ready: true),
        ]
        let cleanup = planNodeCleanup(nodes: nodes, live: ["i-live"], ended: ["i-readyghost"], recorded: [],
                                      grace: 0, now: Self.t0)
        #expect(cleanup.ghosts.isEmpty)
        #expect(cleanup.records.isEmpty)
        #expect(cleanup.keptNodes == ["i-readyghost reports Ready although its machine i-readyghost is gone: left alone"])
    }

    @Test("records are dropped once their node is gone, or when their machine turns out live (the terminate never happened)")
    func recordsSettle() {
        let records = [GhostNode(node: "i-gone", machine: "i-gone", since: Self.t0),
                       GhostNode(node: "i-back", machine: "i-back", since: Self.t0, terminatedByKscaler: true)]
        let nodes = [Self.node("i-back", machine: "i-back", ready: true)]
        let cleanup = planNodeCleanup(nodes: nodes, live: ["i-back"], ended: [], recorded: records, grace: Self.grace, now: Self.t0)
        #expect(cleanup.records.isEmpty)
        #expect(cleanup.ghosts.isEmpty)
    }
}
