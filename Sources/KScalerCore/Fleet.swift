#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where one managed instance stands, from its age and its node's readiness.
enum InstanceStatus: Equatable {
    /// Its node is Ready.
    case ready
    /// Launched less than `boot_grace` ago and not Ready yet: capacity on its way.
    case booting
    /// Past boot grace, node registered but not Ready: counts against the health gate.
    case notReady
    /// Past boot grace, no node registered yet, `provision_timeout` not reached. Still counts
    /// as capacity on its way (cluster-autoscaler's "upcoming" node): otherwise a boot slower
    /// than `boot_grace` would be launched again for the same need.
    case unregistered
    /// No node registered after `provision_timeout`.
    case failedBoot
}

/// The managed fleet and the cluster's nodes, joined by instance id and classified once.
///
/// Failed boots follow cluster-autoscaler's "long unregistered" rule: only an instance whose
/// node never registered is terminated after `provision_timeout`. A registered node that is
/// not Ready may be a kubelet restart or a control-plane hiccup; it is left alone and counts
/// against the health gate instead, so a cluster-wide outage never turns into mass termination.
///
/// Health gate: managed nodes still within boot grace are not counted as not Ready (a burst of
/// launches must not trip the gate); every other node, control plane and foreign nodes
/// included, is.
struct Fleet {
    let instances: [ManagedInstance]
    let statusByID: [String: InstanceStatus]
    let nodeByInstanceID: [String: NodeObservation]
    /// Failed boots to terminate (not protected), by instance id.
    let failedBoots: [ManagedInstance]
    /// Failed boots left alone because they are protected.
    let protectedFailedBoots: [ManagedInstance]
    let ready: Int
    let booting: Int
    let clusterNodes: Int
    let clusterNotReady: Int

    init(observation: Observation, policy: Policy, now: Date) {
        instances = observation.instances
        var nodes: [String: NodeObservation] = [:]
        for node in observation.nodes {
            guard let id = node.instanceID else { continue }
            // Two nodes claiming one instance: the Ready one is the live one.
            if let existing = nodes[id], existing.ready || !node.ready { continue }
            nodes[id] = node
        }
        nodeByInstanceID = nodes

        var statuses: [String: InstanceStatus] = [:]
        for instance in instances {
            let node = nodes[instance.id]
            let age = now.timeIntervalSince(instance.launchTime)
            statuses[instance.id] =
                if node?.ready == true { .ready }
                else if node == nil && age >= policy.provisionTimeout { .failedBoot }
                else if age < policy.bootGrace { .booting }
                else if node == nil { .unregistered }
                else { .notReady }
        }
        statusByID = statuses

        let failed = instances.filter { statuses[$0.id] == .failedBoot }.sorted { $0.id < $1.id }
        let isProtected = { (instance: ManagedInstance) in
            instance.protected || policy.victims.protectedInstances.contains(instance.id)
        }
        failedBoots = failed.filter { !isProtected($0) }
        protectedFailedBoots = failed.filter(isProtected)
        ready = statuses.values.count(where: { $0 == .ready })
        booting = statuses.values.count(where: { $0 == .booting || $0 == .unregistered })

        clusterNodes = observation.nodes.count
        clusterNotReady = observation.nodes.count(where: { node in
            !node.ready && node.instanceID.flatMap { statuses[$0] } != .booting
        })
    }

    /// Managed instances that count as capacity: failed boots about to be terminated do not.
    var current: Int { instances.count - failedBoots.count }

    func status(of instance: ManagedInstance) -> InstanceStatus { statusByID[instance.id] ?? .unregistered }

    /// More than the allowed share AND more than the allowed number of nodes not Ready.
    func isUnhealthy(_ gate: HealthGate) -> Bool {
        guard clusterNodes > 0 else { return false }
        return clusterNotReady > gate.maxNotReadyNodes
            && Double(clusterNotReady) / Double(clusterNodes) > gate.maxNotReadyFraction
    }
}
