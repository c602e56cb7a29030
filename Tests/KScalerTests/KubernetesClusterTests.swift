// KubernetesCluster maps the API's nodes and pods to the core's: labels and taints of nodes,
// placement constraints and unschedulability of pods. The mapping alone, and through the
// client against the stand-in API server (infra/local/ksandbox/kubeapi.py).
import Foundation
import HTTP
import KScaler
import KScalerCore
import Kubernetes
import Testing
import TestSupport

@Suite struct PlacementMappingTests {
    @Test func operatorsAndEffectsBecomeTheCoresAndMatchFieldsIsKept() {
        let pod = KubePod(namespace: "ml", name: "trainer", uid: "u", nodeSelector: ["kscaler.io/pool": "gpu"],
                          requiredNodeAffinity: [
                              .init(matchExpressions: [.init(key: "zone", operator: "In", values: ["a", "b"]), .init(key: "cores", operator: "Gt", values: ["3"]),
                                                       .init(key: "old", operator: "DoesNotExist")]),
                              .init(matchExpressions: [.init(key: "spot", operator: "Exists")], hasMatchFields: true),
                          ],
                          tolerations: [.init(key: "gpu", operator: "Exists", effect: "NoSchedule"),
                                        .init(key: "dedicated", operator: "Equal", value: "batch", effect: "NoExecute"),
                                        .init(key: "team", value: "ml"),
                                        .init(operator: "Exists")])
        #expect(KubernetesCluster.placement(of: pod) == PlacementConstraints(
            nodeSelector: ["kscaler.io/pool": "gpu"],
            requiredNodeAffinity: [
                NodeSelectorTerm(matchExpressions: [NodeSelectorRequirement(key: "zone", operator: .in, values: ["a", "b"]),
                                                    NodeSelectorRequirement(key: "cores", operator: .gt, values: ["3"]),
                                                    NodeSelectorRequirement(key: "old", operator: .doesNotExist)]),
                NodeSelectorTerm(matchExpressions: [NodeSelectorRequirement(key: "spot", operator: .exists)], hasFieldSelectors: true),
            ],
            tolerations: [Toleration(key: "gpu", operator: .exists, effect: .noSchedule),
                          Toleration(key: "dedicated", operator: .equal, value: "batch", effect: .noExecute),
                          Toleration(key: "team", operator: .equal, value: "ml", effect: nil),
                          Toleration(key: "", operator: .exists, effect: nil)]))
        #expect(KubernetesCluster.placement(of: KubePod(namespace: "a", name: "b", uid: "c")) == .none)
    }

    /// What this version cannot read matches nothing, so no pool is grown for it.
    @Test func whatCannotBeReadMatchesNothing() {
        let gpu = Taint(key: "gpu", value: "true", effect: .noSchedule)
        func placement(affinity: [KubePod.NodeSelectorTerm]? = nil, tolerations: [KubePod.Toleration] = []) -> PlacementConstraints {
            KubernetesCluster.placement(of: KubePod(namespace: "a", name: "b", uid: "c", requiredNodeAffinity: affinity, tolerations: tolerations))
        }
        let unknown = placement(affinity: [.init(matchExpressions: [.init(key: "gpu", operator: "Sometimes", values: ["true"])])])
        #expect(unknown.requiredNodeAffinity == [NodeSelectorTerm(matchExpressions: [NodeSelectorRequirement(key: "gpu", operator: nil, values: ["true"])])])
        #expect(unknown.mismatch(labels: ["gpu": "true"], taints: []) != nil)

        // A required affinity without terms: the scheduler places the pod nowhere.
        let noTerms = placement(affinity: [])
        #expect(noTerms.requiredNodeAffinity == [NodeSelectorTerm(matchExpressions: [])])
        #expect(noTerms.mismatch(labels: ["gpu": "true"], taints: []) != nil)

        // A toleration with an unknown operator (Lt and Gt are alpha in 1.35) or effect tolerates nothing.
        for odd in [KubePod.Toleration(key: "gpu", operator: "Lt", value: "2"), KubePod.Toleration(key: "gpu", operator: "Exists", effect: "NoFoo"),
                    KubePod.Toleration(operator: "Exists", effect: "Sometimes")] {
            let constraints = placement(tolerations: [odd])
            #expect(constraints.tolerations.isEmpty, "\(odd)")
            #expect(constraints.mismatch(labels: [:], taints: [gpu]) == "no toleration for taint gpu=true:NoSchedule", "\(odd)")
        }
        // An empty effect is every effect.
        #expect(placement(tolerations: [.init(key: "gpu", operator: "Exists", effect: "")]).mismatch(labels: [:], taints: [gpu]) == nil)
    }
}

/// One stand-in at a time (each mints certificates with openssl on a loaded machine).
@Suite(.serialized, .timeLimit(.minutes(3))) struct KubernetesClusterStandInTests {
    private static func cluster(_ api: KubeAPIProcess) -> KubernetesCluster {
        KubernetesCluster {
            let endpoint = try KubernetesEndpointResolver(environment: [:], homeDirectory: "/nonexistent").fromKubeconfig(path: api.kubeconfigToken)
            return try KubernetesClient(endpoint: endpoint, timeout: .seconds(30), makeTransport: { CurlTransport(connectTimeout: .seconds(20), tls: $0) })
        }
    }

    @Test func nodesCarryTheirLabelsAndTaintsAndPendingPodsTheirConstraints() async throws {
        let api = try await KubeAPIProcess.start()
        do {
            try await api.seed(json: #"""
                {"nodes": [{"name": "i-0gpu", "provider_id": "aws:///us-east-1a/i-0gpu", "labels": {"kscaler.io/pool": "gpu"},
                            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
                                       {"key": "spot", "effect": "PreferNoSchedule"},
                                       {"key": "kscaler.io/to-be-deleted", "value": "1714564800", "effect": "NoSchedule"}]},
                           {"name": "i-0plain", "provider_id": "aws:///us-east-1b/i-0plain"}],
                 "pods": [{"namespace": "web", "name": "web-0", "node": "i-0plain", "owner_kind": "ReplicaSet"},
                          {"namespace": "ml", "name": "trainer", "node": null, "phase": "Pending", "owner_kind": "Job",
                           "node_selector": {"kscaler.io/pool": "gpu"},
                           "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                               {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["us-east-1c"]}]}]}}},
                           "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}]}
                """#)
            let cluster = Self.cluster(api)
            let nodes = try await cluster.nodes()
            let gpu = try #require(nodes.first { $0.name == "i-0gpu" })
            #expect(gpu.labels["kscaler.io/pool"] == "gpu")
            #expect(gpu.labels["kubernetes.io/hostname"] == "i-0gpu")
            #expect(gpu.taints == [Taint(key: "nvidia.com/gpu", value: "true", effect: .noSchedule), Taint(key: "spot", effect: .preferNoSchedule),
                                   Taint(key: ClusterNode.drainTaintKey, value: "1714564800", effect: .noSchedule)])
            #expect(gpu.hasDrainTaint && gpu.hasOtherNoScheduleTaint)
            let plain = try #require(nodes.first { $0.name == "i-0plain" })
            #expect(plain.taints.isEmpty && plain.labels["kubernetes.io/arch"] == "amd64")

            let pods = try await cluster.pods()
            let trainer = try #require(pods.first { $0.name == "trainer" })
            #expect(trainer.unschedulable && trainer.node == nil)
            #expect(trainer.placement == PlacementConstraints(
                nodeSelector: ["kscaler.io/pool": "gpu"],
                requiredNodeAffinity: [NodeSelectorTerm(matchExpressions: [NodeSelectorRequirement(key: "topology.kubernetes.io/zone", operator: .notIn,
                                                                                                   values: ["us-east-1c"])])],
                tolerations: [Toleration(key: "nvidia.com/gpu", operator: .exists)]))
            let web = try #require(pods.first { $0.name == "web-0" })
            #expect(!web.unschedulable && web.placement == .none)

            // The pieces fit together: the GPU node (its drain taint aside) takes the trainer, the plain one does not.
            let gpuTaints = gpu.taints.filter { $0.key != ClusterNode.drainTaintKey }
            #expect(trainer.placement.mismatch(labels: gpu.labels, taints: gpuTaints) == nil)
            #expect(trainer.placement.mismatch(labels: plain.labels, taints: plain.taints) != nil)
            #expect(trainer.placement.mismatch(labels: gpu.labels, taints: gpu.taints) == "no toleration for taint kscaler.io/to-be-deleted=1714564800:NoSchedule")
        } catch {
            await api.stop()
            throw error
        }
        await api.stop()
    }
}
