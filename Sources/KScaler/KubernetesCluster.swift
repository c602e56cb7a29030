import AWS
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP
import KScalerCore
import Kubernetes
import Logging

/// How kscaler reaches the Kubernetes API, decided once per process from the configuration
/// and the environment (`kubernetes.*`): what `config check` and `doctor` print, and what the
/// run's `ClusterAPI` is built from.
package enum KubernetesAccess: Sendable {
    /// No API: `kubernetes.enabled: false`, or `auto` and no credential source found.
    case off(reason: String)
    /// A kubeconfig or the pod's service account, resolved (exec plugins run on first use).
    case endpoint(KubernetesEndpoint)
    /// `kubernetes.server` with a bearer token read from an SSM SecureString at run time.
    case tokenInSSM(server: String, caData: String?, parameter: String)

    /// `enabled` true, or a kubeconfig or context named: resolution must succeed, else the
    /// configuration is wrong (exit 2). `auto` turns the API off only when there is no source at all.
    package static func resolve(_ settings: KubernetesSettings, environment: [String: String]) throws(KubernetesError) -> KubernetesAccess {
        if settings.enabled == false { return .off(reason: "kubernetes.enabled is false") }
        if let server = settings.server, let parameter = settings.tokenParameter {
            return .tokenInSSM(server: server, caData: settings.caData, parameter: parameter)
        }
        let resolver = KubernetesEndpointResolver(environment: environment)
        let explicit = settings.enabled == true || settings.kubeconfig != nil || settings.context != nil
        do {
            return .endpoint(try resolver.resolve(kubeconfig: settings.kubeconfig, context: settings.context))
        } catch {
            // Nothing to find is the one failure `auto` forgives: a kubeconfig that exists but
            // cannot be used is an error whatever the switch says.
            if !explicit, Self.nothingFound(environment: environment, resolver: resolver) {
                return .off(reason: "kubernetes.enabled is auto and no credential source was found (no kubeconfig, KUBECONFIG, "
                    + "~/.kube/config, in-cluster service account, or kubernetes.server + token_parameter)")
            }
            throw error
        }
    }

    private static func nothingFound(environment: [String: String], resolver: KubernetesEndpointResolver) -> Bool {
        let kubeconfigs = (environment["KUBECONFIG"] ?? "").split(separator: ":").map(String.init) + ["\(resolver.homeDirectory)/.kube/config"]
        return !kubeconfigs.contains { FileManager.default.fileExists(atPath: $0) }
            && (environment["KUBERNETES_SERVICE_HOST"] ?? "").isEmpty
    }

    package var isOn: Bool { if case .off = self { false } else { true } }

    /// One line for `config check`, `doctor` and logs; never a credential.
    package var description: String {
        switch self {
        case .off(let reason): "off: \(reason)"
        case .endpoint(let endpoint): endpoint.description
        case .tokenInSSM(let server, let caData, let parameter):
            "server \(server), bearer token from SSM \(parameter), CA \(caData == nil ? "from the system" : "from kubernetes.ca_data")"
        }
    }

    /// Warnings to log once (verification turned off, kubeconfig files ignored).
    package var warnings: [String] { if case .endpoint(let endpoint) = self { endpoint.warnings } else { [] } }

    /// The client for this access; for the SSM path, after reading the token (decrypted).
    func client(ssm: SSMClient, timeout: Duration, logger: Logger) async throws -> KubernetesClient? {
        switch self {
        case .off:
            return nil
        case .endpoint(let endpoint):
            return try KubernetesClient(endpoint: endpoint, timeout: timeout, logger: logger)
        case .tokenInSSM(let server, let caData, let parameter):
            let token = try await ssm.getParameter(name: parameter, withDecryption: true).value
            let trimmed = token.trimmingWhitespace()
            guard !trimmed.isEmpty else {
                throw KubernetesError.credentials("SSM parameter \(parameter) is empty: put the service account's token in it (infra/README.md, Kubernetes access)")
            }
            var tls = TLSOptions()
            if let caData {
                guard let pem = Data(base64Encoded: caData) else {
                    throw KubernetesError.credentials("kubernetes.ca_data is not base64: copy certificate-authority-data from a kubeconfig")
                }
                tls.trustedCA = .pem(pem)
            }
            return try KubernetesClient(endpoint: KubernetesEndpoint(server: server, tls: tls, auth: .bearerToken(trimmed), description: description),
                                        timeout: timeout, logger: logger)
        }
    }
}

/// `ClusterAPI` over the Kubernetes client. The client is made on first use, so the SSM read
/// of a token overlaps the run's other first requests instead of preceding them.
package struct KubernetesCluster: ClusterAPI {
    private let client: Lazy<KubernetesClient>

    package init(makeClient: @escaping @Sendable () async throws -> KubernetesClient) {
        client = Lazy(makeClient)
    }

    package func nodes() async throws -> [ClusterNode] {
        try await client.value().listNodes().map { node in
            let drainTaint = node.taints.first { $0.key == ClusterNode.drainTaintKey }
            let allocatable = node.allocatableCPU.flatMap { cpu in node.allocatableMemory.map { Resources(cpu: cpu, memory: $0) } }
            return ClusterNode(
                name: node.name, uid: node.uid, providerID: node.providerID, ready: node.ready == true, machineID: nil,
                unschedulable: node.unschedulable, hasDrainTaint: drainTaint != nil,
                drainTaintedAt: drainTaint?.value.flatMap(TimeInterval.init).map(Date.init(timeIntervalSince1970:)),
                hasOtherNoScheduleTaint: node.taints.contains { $0.key != ClusterNode.drainTaintKey && $0.effect != "PreferNoSchedule" },
                scaleDownDisabled: Self.scaleDownDisabledAnnotations.contains { node.annotations[$0]?.lowercased() == "true" },
                allocatable: allocatable, labels: node.labels,
                // An effect the API would not have accepted is left out: the scheduler's filter
                // reads only NoSchedule and NoExecute taints.
                taints: node.taints.compactMap { taint in Taint.Effect(rawValue: taint.effect).map { Taint(key: taint.key, value: taint.value, effect: $0) } },
                protectedAnnotation: node.annotations[Protection.annotation])
        }
    }

    /// A pod's nodeSelector, required node affinity and tolerations in the core's terms. What
    /// this version cannot read matches nothing, so no pool is grown for it: an unknown
    /// node-selector operator becomes nil; a toleration with an unknown operator (the alpha `Lt`
    /// and `Gt` among them) or effect is left out, which is the same as one that tolerates no
    /// taint (tolerations are ORed).
    package static func placement(of pod: KubePod) -> PlacementConstraints {
        PlacementConstraints(
            nodeSelector: pod.nodeSelector,
            // A required affinity with no terms matches no node; an empty term stands for that.
            requiredNodeAffinity: pod.requiredNodeAffinity.map { terms in
                terms.isEmpty ? [NodeSelectorTerm(matchExpressions: [])] : terms.map { term in
                    NodeSelectorTerm(matchExpressions: term.matchExpressions.map {
                        NodeSelectorRequirement(key: $0.key, operator: NodeSelectorRequirement.Operator(rawValue: $0.operator), values: $0.values)
                    }, hasFieldSelectors: term.hasMatchFields)
                }
            } ?? [],
            tolerations: pod.tolerations.compactMap { toleration in
                // An absent operator is Equal; an absent or empty effect, every effect.
                guard let op = toleration.operator.isEmpty ? .equal : Toleration.Operator(rawValue: toleration.operator) else { return nil }
                let effect: Taint.Effect?
                if toleration.effect.isEmpty {
                    effect = nil
                } else {
                    guard let known = Taint.Effect(rawValue: toleration.effect) else { return nil }
                    effect = known
                }
                return Toleration(key: toleration.key, operator: op, value: toleration.value, effect: effect)
            })
    }

    /// kscaler's own, and cluster-autoscaler's, so a node already opted out stays out.
    static let scaleDownDisabledAnnotations = ["kscaler.io/scale-down-disabled", "cluster-autoscaler.kubernetes.io/scale-down-disabled"]
    static let safeToEvictAnnotations = ["kscaler.io/safe-to-evict", "cluster-autoscaler.kubernetes.io/safe-to-evict"]

    /// Pods and budgets are listed concurrently; each pod carries the budgets selecting it.
    package func pods() async throws -> [ClusterPod] {
        let client = try await client.value()
        async let podList = client.listPods()
        async let budgetList = client.listPodDisruptionBudgets()
        let (pods, budgets) = try await (podList, budgetList)
        let budgetsByNamespace = Dictionary(grouping: budgets, by: \.namespace)
        return pods.map { pod in
            let owner: ClusterPod.Owner = if pod.isMirror { .mirror } else if pod.isDaemonSetPod { .daemonSet }
                else if let controller = pod.controller { .controller(kind: controller.kind) } else { .none }
            let safe = Self.safeToEvictAnnotations.compactMap { pod.annotations[$0]?.lowercased() }
            return ClusterPod(
                namespace: pod.namespace, name: pod.name, uid: pod.uid, node: pod.nodeName, owner: owner,
                finished: pod.phase == "Succeeded" || pod.phase == "Failed", terminating: pod.deletionTimestamp != nil,
                localStorage: pod.localStorageVolumes, safeToEvict: safe.contains("false") ? false : safe.contains("true") ? true : nil,
                requests: Resources(cpu: pod.requests.cpu, memory: pod.requests.memory),
                budgets: (budgetsByNamespace[pod.namespace] ?? []).filter { $0.selects(pod) }
                    .map { PodBudget(name: $0.name, disruptionsAllowed: $0.disruptionsAllowed) },
                unschedulable: pod.unschedulable, placement: Self.placement(of: pod))
        }
    }

    package func cordonForDrain(node: String, at: Date) async throws {
        let client = try await client.value()
        let value = String(Int(at.timeIntervalSince1970))
        let tainted = try await client.setTaint(node: node, taint: KubeNode.Taint(key: ClusterNode.drainTaintKey, value: value, effect: "NoSchedule"))
        if !tainted.unschedulable { _ = try await client.cordon(name: node) }
    }

    package func releaseDrain(node: String) async throws {
        let client = try await client.value()
        do {
            let untainted = try await client.removeTaint(node: node, key: ClusterNode.drainTaintKey)
            if untainted.unschedulable { _ = try await client.uncordon(name: node) }
        } catch .notFound {
            return
        }
    }

    package func evict(_ pod: ClusterPod) async throws -> Eviction {
        let client = try await client.value()
        do {
            try await client.evict(namespace: pod.namespace, pod: pod.name, uid: pod.uid)
            return .evicted
        } catch .notFound {
            return .gone
        } catch .conflict {
            return .gone  // the uid precondition: the pod of that name now is another one
        } catch .tooManyRequests(let failure, _) {
            return .blocked(failure.message)
        }
    }

    package func deletePod(_ pod: ClusterPod) async throws {
        let client = try await client.value()
        do {
            try await client.deletePod(namespace: pod.namespace, name: pod.name, uid: pod.uid)
        } catch .notFound {
            return
        } catch .conflict {
            return
        }
    }

    package func deleteNode(name: String, uid: String, dryRun: Bool) async throws -> NodeDeletion {
        let client = try await client.value()
        do {
            try await client.deleteNode(name: name, uid: uid, dryRun: dryRun)
            return .deleted
        } catch .notFound {
            return .alreadyGone
        } catch .conflict {
            return .replaced
        }
    }

    /// The involved object's uid is the node's name, as the kubelet writes node events: that is
    /// what `kubectl describe node` searches for.
    package func recordEvent(_ event: NodeEvent) async throws {
        try await client.value().createEvent(.node(event.node, uid: event.node, reason: event.reason.rawValue, message: event.message,
                                                   type: event.warning ? .warning : .normal))
    }

    package func outcome(of error: any Error) -> FailedCallOutcome {
        (error as? KubernetesError)?.requestMayHaveTakenEffect == true ? .unknown : .nothingHappened
    }
}

/// A value made once, on first use, shared by concurrent callers; a failure is kept too (one
/// run, one answer). The making task inherits the caller's request deadline.
actor Lazy<Value: Sendable> {
    private var task: Task<Value, any Error>?
    private let make: @Sendable () async throws -> Value

    init(_ make: @escaping @Sendable () async throws -> Value) {
        self.make = make
    }

    func value() async throws -> Value {
        if let task { return try await task.value }
        let made = Task { [make] in try await make() }
        task = made
        return try await made.value
    }
}
