// Decoding real Kubernetes JSON into the client's types, and label-selector semantics.
import Foundation
import Kubernetes
import Testing

/// A pending pod with every placement constraint, as the API serves it. The spec is what
/// kubectl 1.32 wrote for
///     kubectl run trainer -n ml --image=registry.k8s.io/pause:3.9 --restart=Never --dry-run=client -o json \
///       --overrides='{"apiVersion":"v1","spec":{"nodeSelector":…,"affinity":…,"tolerations":…}}'
/// (the overrides are the nodeSelector, affinity and first four tolerations below), verbatim;
/// what the server adds is written from the API reference: the uid, resourceVersion and
/// creation time, spec defaults (schedulerName, priority, enableServiceLinks,
/// preemptionPolicy), the two NoExecute tolerations the DefaultTolerationSeconds admission
/// plugin gives every pod, and the status the scheduler writes when no node fits
/// (PodScheduled False, reason Unschedulable).
let pendingPodJSON = """
    {"kind":"Pod","apiVersion":"v1",
     "metadata":{"name":"trainer","namespace":"ml","uid":"0b6f3a52-0000-4000-8000-00000000000a","resourceVersion":"5120",
                 "creationTimestamp":"2024-05-01T12:00:00Z","labels":{"run":"trainer"}},
     "spec":{"containers":[{"name":"trainer","image":"registry.k8s.io/pause:3.9","resources":{}}],"restartPolicy":"Never",
       "dnsPolicy":"ClusterFirst","nodeSelector":{"kscaler.io/pool":"gpu","kubernetes.io/arch":"amd64"},
       "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
         {"matchExpressions":[{"key":"topology.kubernetes.io/zone","operator":"In","values":["us-east-1a","us-east-1b"]},
                              {"key":"node.kubernetes.io/instance-type","operator":"NotIn","values":["t3.micro"]},
                              {"key":"example.com/cores","operator":"Gt","values":["3"]},
                              {"key":"example.com/legacy","operator":"DoesNotExist"}]},
         {"matchExpressions":[{"key":"kscaler.io/spot","operator":"Exists"}],
          "matchFields":[{"key":"metadata.name","operator":"In","values":["ip-10-0-1-5.ec2.internal"]}]},
         {"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["ip-10-0-1-6.ec2.internal"]}]}]},
         "preferredDuringSchedulingIgnoredDuringExecution":[{"weight":10,"preference":{"matchExpressions":[{"key":"example.com/fast","operator":"Exists"}]}}]}},
       "tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"},
                      {"key":"dedicated","operator":"Equal","value":"batch","effect":"NoExecute","tolerationSeconds":600},
                      {"key":"team","value":"ml"},
                      {"operator":"Exists"},
                      {"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},
                      {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],
       "schedulerName":"default-scheduler","priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},
     "status":{"phase":"Pending","qosClass":"BestEffort","conditions":[
       {"type":"PodScheduled","status":"False","lastProbeTime":null,"lastTransitionTime":"2024-05-01T12:00:01Z","reason":"Unschedulable",
        "message":"0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."}]}}
    """

@Suite struct ObjectDecodingTests {
    @Test func aNodeDecodesWithEveryFieldKscalerReads() throws {
        let node = try JSONDecoder().decode(KubeNode.self, from: Data(nodeJSON(unschedulable: true).utf8))
        #expect(node.name == "ip-10-0-1-5.ec2.internal")
        #expect(node.uid == "6f1c2d3e-0000-4000-8000-000000000001")
        #expect(node.resourceVersion == "4711")
        #expect(node.creationTimestamp == Date(timeIntervalSince1970: 1_714_557_600))
        #expect(node.labels["node.kubernetes.io/instance-type"] == "m5.large")
        #expect(node.annotations["k3s.io/node-args"] == "[]")
        #expect(node.providerID == "aws:///us-east-1a/i-0123456789abcdef0")
        #expect(node.unschedulable)
        #expect(node.taints == [KubeNode.Taint(key: "node.kubernetes.io/unschedulable", effect: "NoSchedule"),
                                KubeNode.Taint(key: "dedicated", value: "batch", effect: "NoExecute")])
        #expect(node.ready == true)
        #expect(node.readyTransitionTime == Date(timeIntervalSince1970: 1_714_557_630))
        #expect(node.allocatable == ["cpu": "2", "memory": "7921112Ki", "pods": "110", "ephemeral-storage": "19316009748"])
        #expect(node.deletionTimestamp == nil)
    }

    @Test func readinessIsNilWhenUnknownOrAbsent() throws {
        let decode = { (text: String) in try JSONDecoder().decode(KubeNode.self, from: Data(text.utf8)) }
        #expect(try decode(nodeJSON(ready: "False")).ready == false)
        #expect(try decode(nodeJSON(ready: "Unknown")).ready == nil)
        let bare = try decode(#"{"metadata":{"name":"n","uid":"u"}}"#)
        #expect(bare.ready == nil)
        #expect(bare.unschedulable == false)
        #expect(bare.providerID == nil)
        #expect(bare.taints.isEmpty)
    }

    @Test func podsKnowMirrorAndDaemonSetPods() throws {
        let text = """
            {"kind":"PodList","items":[
             {"metadata":{"name":"kube-proxy-x","namespace":"kube-system","uid":"p1",
               "annotations":{"kubernetes.io/config.mirror":"abc","kubernetes.io/config.source":"file"},
               "ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"n1","uid":"n-uid","controller":true}]},
              "spec":{"nodeName":"n1","containers":[{"name":"c","image":"i"}]},"status":{"phase":"Running"}},
             {"metadata":{"name":"svclb-x","namespace":"kube-system","uid":"p2","labels":{"app":"svclb"},
               "ownerReferences":[{"apiVersion":"apps/v1","kind":"DaemonSet","name":"svclb","uid":"ds","controller":true,"blockOwnerDeletion":true}]},
              "spec":{"nodeName":"n1"},"status":{"phase":"Running"}},
             {"metadata":{"name":"web-0","namespace":"web","uid":"p3","deletionTimestamp":"2024-05-01T12:00:00Z",
               "ownerReferences":[{"apiVersion":"apps/v1","kind":"StatefulSet","name":"web","uid":"ss","controller":true}]},
              "spec":{"nodeName":"n1"},"status":{"phase":"Running"}},
             {"metadata":{"name":"bare","namespace":"default","uid":"p4"},"spec":{},"status":{"phase":"Pending"}}
            ]}
            """
        struct List: Decodable { var items: [KubePod] }
        let pods = try JSONDecoder().decode(List.self, from: Data(text.utf8)).items
        #expect(pods.map(\.isMirror) == [true, false, false, false])
        #expect(pods.map(\.isDaemonSetPod) == [false, true, false, false])
        #expect(pods[1].labels == ["app": "svclb"])
        #expect(pods[2].controller == KubePod.OwnerReference(apiVersion: "apps/v1", kind: "StatefulSet", name: "web", uid: "ss", controller: true))
        #expect(pods[2].deletionTimestamp == Date(timeIntervalSince1970: 1_714_564_800))
        #expect(pods[3].nodeName == nil)
        #expect(pods[3].phase == "Pending")
        #expect(pods[3].controller == nil)
    }

    @Test func aNodesAllocatableIsReadAsCoresAndBytes() throws {
        let node = try JSONDecoder().decode(KubeNode.self, from: Data(nodeJSON().utf8))
        #expect(node.allocatableCPU == 2)
        #expect(node.allocatableMemory == Double(7_921_112 * 1024))
        let odd = KubeNode(name: "n", uid: "u", resourceVersion: "1", allocatable: ["cpu": "1930m", "memory": "lots"])
        #expect(odd.allocatableCPU == 1.93)
        #expect(odd.allocatableMemory == nil)
        #expect(KubeNode(name: "n", uid: "u", resourceVersion: "1").allocatableCPU == nil)
    }

    /// A pod's spec with `spec` members inserted, decoded.
    private func pod(spec: String) throws -> KubePod {
        try JSONDecoder().decode(KubePod.self, from: Data(#"{"metadata":{"name":"web-0","namespace":"web","uid":"p"},"spec":{\#(spec)}}"#.utf8))
    }

    @Test func requestsAreTheLargerOfTheContainersSumAndTheLargestInitContainer() throws {
        let pod = try pod(spec: """
            "containers":[{"name":"app","resources":{"requests":{"cpu":"250m","memory":"128Mi"},"limits":{"cpu":"4"}}},
                          {"name":"proxy","resources":{"requests":{"cpu":"500m","memory":"256Mi","ephemeral-storage":"1Gi"}}},
                          {"name":"bare"}],
            "initContainers":[{"name":"migrate","resources":{"requests":{"cpu":"1","memory":"128Mi"}}},
                              {"name":"small","resources":{"requests":{"cpu":"100m"}}}]
            """)
        // cpu: the init container (1) beats the sum (0.75); memory: the sum (384Mi) beats it (128Mi).
        #expect(pod.requests == ResourceRequests(cpu: 1, memory: 384 * 1_048_576))
    }

    @Test func overheadIsAddedAndSidecarsRunAlongside() throws {
        let withOverhead = try pod(spec: """
            "containers":[{"name":"app","resources":{"requests":{"cpu":"500m","memory":"64Mi"}}}],
            "overhead":{"cpu":"250m","memory":"120Mi"}
            """)
        #expect(withOverhead.requests == ResourceRequests(cpu: 0.75, memory: 184 * 1_048_576))

        // A sidecar (restartPolicy Always) counts with the containers, and with every init
        // container started after it.
        let withSidecar = try pod(spec: """
            "containers":[{"name":"app","resources":{"requests":{"cpu":"1","memory":"1Gi"}}}],
            "initContainers":[{"name":"mesh","restartPolicy":"Always","resources":{"requests":{"cpu":"500m","memory":"64Mi"}}},
                              {"name":"warm","resources":{"requests":{"cpu":"2","memory":"64Mi"}}}]
            """)
        #expect(withSidecar.requests == ResourceRequests(cpu: 2.5, memory: 1024 * 1_048_576 + 64 * 1_048_576))
    }

    @Test func aPodWithoutResourcesRequestsNothing() throws {
        #expect(try pod(spec: #""containers":[{"name":"app","image":"i"}]"#).requests == .zero)
        #expect(try pod(spec: #""containers":[{"name":"app","resources":{}}],"initContainers":[]"#).requests == .zero)
        let noSpec = try JSONDecoder().decode(KubePod.self, from: Data(#"{"metadata":{"name":"a","namespace":"b","uid":"c"}}"#.utf8))
        #expect(noSpec.requests == .zero)
        #expect(noSpec.localStorageVolumes.isEmpty)
    }

    @Test func localStorageIsHostPathAndDiskBackedEmptyDir() throws {
        let pod = try pod(spec: """
            "containers":[{"name":"app"}],
            "volumes":[{"name":"scratch","emptyDir":{}},
                       {"name":"config","configMap":{"name":"web-config"}},
                       {"name":"logs","hostPath":{"path":"/var/log","type":"Directory"}},
                       {"name":"shm","emptyDir":{"medium":"Memory","sizeLimit":"64Mi"}},
                       {"name":"kube-api-access-x","projected":{"sources":[{"serviceAccountToken":{"path":"token"}}]}},
                       {"name":"cache","emptyDir":{"sizeLimit":"1Gi"}}]
            """)
        #expect(pod.localStorageVolumes == ["scratch", "logs", "cache"])
    }

    /// A pod that cannot be sized must not pass for an empty one: the whole answer is refused,
    /// naming the pod and the field.
    @Test func anUnreadableRequestFailsTheDecodingNamingPodAndField() async throws {
        let bad = """
            {"metadata":{"name":"web-0","namespace":"web","uid":"p1"},
             "spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"1"}}},
                                   {"name":"proxy","resources":{"requests":{"cpu":"lots"}}}]}}
            """
        let good = #"{"metadata":{"name":"ok","namespace":"web","uid":"p0"},"spec":{}}"#
        let kube = try client(ScriptedTransport(json: listJSON(kind: "PodList", items: [good, bad])))
        let error = await kubernetesError { _ = try await kube.listPods() }
        guard case .malformedResponse(_, _, let reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(reason.contains(#"pod web/web-0 requests cpu "lots""#), "\(reason)")
        #expect(reason.contains("items[1].spec.containers[1].resources.requests.cpu"), "\(reason)")

        for invalid in [#""overhead":{"memory":"5Xi"}"#, #""initContainers":[{"name":"i","resources":{"requests":{"memory":"-1Gi"}}}]"#] {
            #expect(throws: DecodingError.self) { try pod(spec: invalid) }
        }
        // Other resources are not read, so an odd one does not matter.
        #expect(try pod(spec: #""containers":[{"name":"a","resources":{"requests":{"example.com/gpu":"x"}}}]"#).requests == .zero)
    }

    @Test func aPendingPodDecodesItsPlacementConstraintsAndThatItIsUnschedulable() throws {
        let pod = try JSONDecoder().decode(KubePod.self, from: Data(pendingPodJSON.utf8))
        #expect(pod.unschedulable)
        #expect(pod.nodeName == nil)
        #expect(pod.nodeSelector == ["kscaler.io/pool": "gpu", "kubernetes.io/arch": "amd64"])
        #expect(pod.requiredNodeAffinity == [
            KubePod.NodeSelectorTerm(matchExpressions: [
                .init(key: "topology.kubernetes.io/zone", operator: "In", values: ["us-east-1a", "us-east-1b"]),
                .init(key: "node.kubernetes.io/instance-type", operator: "NotIn", values: ["t3.micro"]),
                .init(key: "example.com/cores", operator: "Gt", values: ["3"]),
                .init(key: "example.com/legacy", operator: "DoesNotExist"),
            ]),
            KubePod.NodeSelectorTerm(matchExpressions: [.init(key: "kscaler.io/spot", operator: "Exists")], hasMatchFields: true),
            KubePod.NodeSelectorTerm(matchExpressions: [], hasMatchFields: true),
        ])
        // Absent operator and effect stay empty (Equal, every effect); tolerationSeconds is not read.
        #expect(pod.tolerations == [
            KubePod.Toleration(key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule"),
            KubePod.Toleration(key: "dedicated", operator: "Equal", value: "batch", effect: "NoExecute"),
            KubePod.Toleration(key: "team", value: "ml"),
            KubePod.Toleration(operator: "Exists"),
            KubePod.Toleration(key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute"),
            KubePod.Toleration(key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute"),
        ])
    }

    @Test func onlyPodScheduledFalseWithReasonUnschedulableIsUnschedulable() throws {
        func unschedulable(_ status: String) throws -> Bool {
            try JSONDecoder().decode(KubePod.self, from: Data(#"{"metadata":{"name":"p","namespace":"n","uid":"u"},"status":\#(status)}"#.utf8)).unschedulable
        }
        #expect(try unschedulable(#"{"conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable"}]}"#))
        // Scheduled and running (the stand-in's and the kubelet's shape).
        #expect(try !unschedulable("""
            {"phase":"Running","conditions":[{"type":"Initialized","status":"True"},{"type":"Ready","status":"True"},
             {"type":"ContainersReady","status":"True"},{"type":"PodScheduled","status":"True","lastProbeTime":null}]}
            """))
        // Held back by scheduling gates: the scheduler has not tried it.
        #expect(try !unschedulable(#"{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"SchedulingGated"}]}"#))
        // Just created: no condition yet.
        #expect(try !unschedulable(#"{"phase":"Pending"}"#))
        #expect(try !unschedulable(#"{}"#))
        // Another condition with that reason, or a condition missing fields, is not it.
        #expect(try !unschedulable(#"{"conditions":[{"type":"Ready","status":"False","reason":"Unschedulable"},{"status":"False"},{}]}"#))
        // A condition of an odd shape fails nothing.
        #expect(try unschedulable(#"{"conditions":[{"type":1,"status":true},"odd",{"type":"PodScheduled","status":"False","reason":"Unschedulable"}]}"#))
    }

    @Test func aPodWithoutConstraintsHasNone() throws {
        let pod = try pod(spec: #""containers":[{"name":"app"}]"#)
        #expect(pod.nodeSelector.isEmpty)
        #expect(pod.requiredNodeAffinity == nil)
        #expect(pod.tolerations.isEmpty)
        #expect(!pod.unschedulable)
        // Affinity of other kinds, or only preferred, is no required node affinity.
        let preferred = try self.pod(spec: """
            "affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"topologyKey":"kubernetes.io/hostname",
                         "labelSelector":{"matchLabels":{"app":"web"}}}]},
                        "nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":1,"preference":{}}]}},
            "nodeSelector":{}, "tolerations":[]
            """)
        #expect(preferred.requiredNodeAffinity == nil)
        #expect(preferred.nodeSelector.isEmpty && preferred.tolerations.isEmpty)
    }

    /// Unknown operators and effects, empty parts and fields kscaler does not read never fail
    /// the pod: what they mean is decided in the core (an unknown operator matches nothing).
    @Test func oddConstraintsDecodeAsWritten() throws {
        let pod = try pod(spec: """
            "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
                {"matchExpressions":[{"key":"zone","operator":"Sometimes","values":["a"]},{"key":"gpu","operator":"Exists","values":null}],
                 "matchFields":[]},
                {},
                {"matchFields":{"unexpected":"shape"}}]}}},
            "tolerations":[{"key":"cores","operator":"Lt","value":"8","effect":"NoSchedule"},
                           {"key":"x","operator":"Exists","effect":"NoFoo","value":null},
                           {"key":"y","effect":""},
                           {}]
            """)
        #expect(pod.requiredNodeAffinity == [
            KubePod.NodeSelectorTerm(matchExpressions: [.init(key: "zone", operator: "Sometimes", values: ["a"]), .init(key: "gpu", operator: "Exists")]),
            KubePod.NodeSelectorTerm(),
            // Fields in a shape that cannot be read count as fields: such a term matches no new node.
            KubePod.NodeSelectorTerm(hasMatchFields: true),
        ])
        #expect(pod.tolerations == [
            KubePod.Toleration(key: "cores", operator: "Lt", value: "8", effect: "NoSchedule"),
            KubePod.Toleration(key: "x", operator: "Exists", effect: "NoFoo"),
            KubePod.Toleration(key: "y"),
            KubePod.Toleration(),
        ])
        // A required affinity with no terms is kept as one (it matches no node); none at all is nil.
        #expect(try self.pod(spec: #""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[]}}}"#)
            .requiredNodeAffinity == [])
        #expect(try self.pod(spec: #""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{}}}"#).requiredNodeAffinity == [])
        #expect(try self.pod(spec: #""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":null}}"#).requiredNodeAffinity == nil)
    }

    /// A constraint of the wrong type cannot be read, and a pod whose constraints cannot be read
    /// must not pass for one without: the decoding fails, as for an unreadable request.
    @Test func aConstraintOfTheWrongTypeFailsTheDecoding() {
        for invalid in [#""nodeSelector":{"zone":1}"#, #""tolerations":[{"key":["gpu"]}]"#, #""tolerations":{"key":"gpu"}"#,
                        #""affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"a","operator":"In","values":"b"}]}]}}}"#] {
            #expect(throws: DecodingError.self, "\(invalid)") { try pod(spec: invalid) }
        }
    }

    @Test func aPDBDecodesItsSelectorAndStatus() throws {
        let text = """
            {"apiVersion":"policy/v1","kind":"PodDisruptionBudget",
             "metadata":{"name":"web-pdb","namespace":"web","uid":"x"},
             "spec":{"minAvailable":2,"selector":{"matchLabels":{"app":"web"},
               "matchExpressions":[{"key":"tier","operator":"In","values":["front","edge"]}]}},
             "status":{"currentHealthy":3,"desiredHealthy":2,"disruptionsAllowed":1,"expectedPods":3,"observedGeneration":1}}
            """
        let pdb = try JSONDecoder().decode(KubePDB.self, from: Data(text.utf8))
        #expect(pdb == KubePDB(namespace: "web", name: "web-pdb",
                               selector: LabelSelector(matchLabels: ["app": "web"],
                                                       matchExpressions: [.init(key: "tier", operator: "In", values: ["front", "edge"])]),
                               disruptionsAllowed: 1, currentHealthy: 3, desiredHealthy: 2, expectedPods: 3))
        #expect(pdb.selects(labels: ["app": "web", "tier": "edge"]))
        #expect(!pdb.selects(labels: ["app": "web"]))
        #expect(pdb.selects(KubePod(namespace: "web", name: "w", uid: "u", labels: ["app": "web", "tier": "front"])))
        #expect(!pdb.selects(KubePod(namespace: "other", name: "w", uid: "u", labels: ["app": "web", "tier": "front"])))
    }

    @Test func labelSelectorOperators() {
        let labels = ["app": "web", "tier": "front"]
        func matches(_ requirement: LabelSelector.Requirement) -> Bool { LabelSelector(matchExpressions: [requirement]).matches(labels) }
        #expect(matches(.init(key: "tier", operator: "In", values: ["front"])))
        #expect(!matches(.init(key: "tier", operator: "In", values: ["back"])))
        #expect(!matches(.init(key: "zone", operator: "In", values: ["a"])))
        #expect(matches(.init(key: "tier", operator: "NotIn", values: ["back"])))
        #expect(!matches(.init(key: "tier", operator: "NotIn", values: ["front"])))
        #expect(matches(.init(key: "zone", operator: "NotIn", values: ["a"])))  // absent label: not in
        #expect(matches(.init(key: "app", operator: "Exists")))
        #expect(!matches(.init(key: "zone", operator: "Exists")))
        #expect(matches(.init(key: "zone", operator: "DoesNotExist")))
        #expect(!matches(.init(key: "app", operator: "DoesNotExist")))
        #expect(!matches(.init(key: "app", operator: "Gt", values: ["1"])))
        #expect(!LabelSelector(matchLabels: ["app": "web", "tier": "back"]).matches(labels))
    }

    @Test func anEmptySelectorSelectsEveryPodAndANullOneNone() throws {
        let empty = try JSONDecoder().decode(KubePDB.self, from: Data(#"{"metadata":{"name":"all","namespace":"web"},"spec":{"selector":{}}}"#.utf8))
        #expect(empty.selects(labels: [:]))
        #expect(empty.selects(labels: ["anything": "at all"]))
        let none = try JSONDecoder().decode(KubePDB.self, from: Data(#"{"metadata":{"name":"none","namespace":"web"},"spec":{}}"#.utf8))
        #expect(none.selector == nil)
        #expect(!none.selects(labels: ["app": "web"]))
        #expect(none.disruptionsAllowed == 0)
    }
}
