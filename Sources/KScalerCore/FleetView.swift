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
/// launches must not trip the gate), nor are ghosts (nodes whose machine is gone); every other
/// node, control plane and foreign nodes included, is.
struct FleetView {
    let instances: [ManagedInstance]
    let statusByID: [String: InstanceStatus]
    let nodeByInstanceID: [String: NodeObservation]
    /// Failed boots to terminate (not protected), by instance id.
    let failedBoots: [ManagedInstance]
    /// Failed boots left alone because they are protected.
    let protectedFailedBoots: [ManagedInstance]
    /// Machines with no node after `provision_timeout` on a backend that cannot tell a failed
    /// boot from a node it cannot match: left alone, and still counted as capacity (were they
    /// not, each would be replaced by another machine kscaler could not match either).
    let unconfirmedFailedBoots: [ManagedInstance]
    /// Instances never chosen as victims now: tagged (not expired) or listed in `victims.protected_instances`.
    let protectedIDs: Set<String>
    let ready: Int
    let booting: Int
    let clusterNodes: Int
    let clusterNotReady: Int
    /// Nodes left out of both counts because their machine is gone.
    let ghosts: Int
    /// Machines the backend is taking back (a Spot interruption), not failed boots: no longer capacity.
    let interrupted: Int

    init(observation: Observation, policy: Policy, now: Date) {
        let all = observation.instances
        // One pool's part of a pooled decision: its machines are the fleet; every machine's
        // status still feeds the health gate.
        instances = policy.fleetPool.map { pool in all.filter { $0.pool == pool } } ?? all
        var nodes: [String: NodeObservation] = [:]
        for node in observation.nodes {
            guard let id = node.instanceID else { continue }
            // Two nodes claiming one instance: the Ready one is the live one.
            if let existing = nodes[id], existing.ready || !node.ready { continue }
            nodes[id] = node
        }
        nodeByInstanceID = nodes

        var statuses: [String: InstanceStatus] = [:]
        for instance in all {
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
            instance.isProtected(at: now) || policy.victims.protectedInstances.contains(instance.id)
        }
        protectedIDs = Set(all.filter(isProtected).map(\.id))
        let detectable = observation.failedBootsDetectable
        failedBoots = detectable ? failed.filter { !isProtected($0) } : []
        protectedFailedBoots = detectable ? failed.filter(isProtected) : []
        unconfirmedFailedBoots = detectable ? [] : failed
        ready = instances.count(where: { statuses[$0.id] == .ready })
        booting = instances.count(where: { statuses[$0.id] == .booting || statuses[$0.id] == .unregistered })
        interrupted = instances.count(where: { $0.interrupted && statuses[$0.id] != .failedBoot })

        // A ghost (its machine gone) is no node of the cluster: counting it would trip the gate
        // after a few scale-downs on a cluster whose Node objects nobody deletes.
        let counted = observation.nodes.filter { node in node.instanceID.map(observation.endedMachines.contains) != true }
        ghosts = observation.nodes.count - counted.count
        clusterNodes = counted.count
        clusterNotReady = counted.count(where: { node in
            !node.ready && node.instanceID.flatMap { statuses[$0] } != .booting
        })
    }

    /// Managed instances that count as capacity: failed boots about to be terminated do not.
    /// Interrupted machines (a Spot reclaim) do not either: they are gone in minutes.
    var current: Int { instances.count - failedBoots.count - interrupted }

    func status(of instance: ManagedInstance) -> InstanceStatus { statusByID[instance.id] ?? .unregistered }

    /// More than the allowed share AND more than the allowed number of nodes not Ready.
    func isUnhealthy(_ gate: HealthGate) -> Bool {
        guard clusterNodes > 0 else { return false }
        return clusterNotReady > gate.maxNotReadyNodes
            && Double(clusterNotReady) / Double(clusterNodes) > gate.maxNotReadyFraction
    }

    /// Why nothing may happen while the cluster is this unhealthy, or nil.
    func healthProblem(_ gate: HealthGate) -> Reason? {
        guard isUnhealthy(gate) else { return nil }
        let share = Double(clusterNotReady) / Double(clusterNodes)
        return Reason(.clusterUnhealthy, "no action: cluster unhealthy: \(clusterNotReady) of \(clusterNodes) nodes not Ready "
            + "(\(formatPercent(share)) > \(formatPercent(gate.maxNotReadyFraction)) and \(clusterNotReady) > \(gate.maxNotReadyNodes))")
    }

    /// The failed boots to terminate now, each with the offering to skip for `unavailable_for`.
    func failedBootsToTerminate(policy: Policy, now: Date) -> [FailedBoot] {
        failedBoots.map { instance in
            FailedBoot(instanceID: instance.id, launchTime: instance.launchTime,
                       unavailable: UnavailableOffering(machineType: instance.machineType, placement: instance.placement,
                                                        until: now.addingTimeInterval(policy.unavailableFor), market: instance.market))
        }
    }

    /// Where a launch this run may go, in order: a replacement for a failed boot already avoids
    /// the offering that just failed, as well as those recorded unavailable.
    func launchOfferings(policy: Policy, state: ScalerState, replacing failedBoots: [FailedBoot], now: Date) -> [Offering] {
        let failedIDs = Set(failedBoots.map(\.instanceID))
        return launchCandidates(capacity: policy.capacity, instances: instances.filter { !failedIDs.contains($0.id) },
                                unavailable: state.unavailableOfferings + failedBoots.map(\.unavailable), now: now)
    }

    /// Why each failed boot goes (and which protected ones stay).
    func failedBootReasons(_ failedBoots: [FailedBoot], policy: Policy, now: Date) -> [Reason] {
        let timeout = formatDuration(policy.provisionTimeout)
        let kept = protectedFailedBoots.map { instance in
            Reason(.protectedFailedBoot, "\(instance.id) has no node \(formatDuration(now.timeIntervalSince(instance.launchTime))) "
                + "after launch (provision timeout \(timeout)) but is protected: left alone")
        }
        let going = failedBoots.map { failed in
            let offering = failed.unavailable
            let place = offering.placement.map { "\(offering.machineType) in \($0)" } ?? offering.machineType
            return Reason(.failedBoot, "failed boot: \(failed.instanceID) (\(place)) launched \(formatDuration(now.timeIntervalSince(failed.launchTime))) "
                + "ago has no node after provision timeout \(timeout): terminate it; \(place) skipped until \(formatDate(offering.until))")
        }
        let unconfirmed = unconfirmedFailedBoots.map { instance in
            Reason(.unconfirmedFailedBoot, "\(instance.id) has no node \(formatDuration(now.timeIntervalSince(instance.launchTime))) "
                + "after launch (provision timeout \(timeout)), but the backend declares no provider id for its nodes, so a node "
                + "named otherwise may be this machine: left alone (give the backend's provider_id, or terminate it by hand)")
        }
        return kept + unconfirmed + going
    }

    /// The counts a decision reports: `current` excludes failed boots unless nothing may happen.
    func counts(after action: Decision.Action, halted: Bool) -> NodeCounts {
        let current = halted ? instances.count : self.current
        let desired = switch action {
        case .none: current
        case .scaleUp(let count): current + count
        case .scaleDown(let victims): current - victims.count
        }
        return NodeCounts(current: current, ready: ready, booting: booting, desired: desired,
                          clusterNodes: clusterNodes, clusterNotReady: clusterNotReady, ghostNodes: ghosts)
    }
}
