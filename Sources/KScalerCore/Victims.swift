#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Up to `count` instances to terminate. Only managed instances can be chosen (victims come
/// from `fleet.instances`, never from nodes), and never a protected one (tag not expired, or list), one
/// that is not running, or a failed boot (terminated separately).
/// Order: fewest non-DaemonSet pods (unknown counts last), then newest or oldest first per
/// policy, then instance id so the choice is deterministic.
func selectVictims(count: Int, fleet: FleetView, policy: VictimPolicy) -> [Victim] {
    guard count > 0 else { return [] }
    let candidates = fleet.instances.filter { instance in
        instance.state == .running && !fleet.protectedIDs.contains(instance.id) && !instance.interrupted && !policy.protectedInstances.contains(instance.id)
            && fleet.status(of: instance) != .failedBoot
    }
    let victims = candidates.map { instance in
        let node = fleet.nodeByInstanceID[instance.id]
        return Victim(instanceID: instance.id, machineType: instance.machineType, launchTime: instance.launchTime,
                      nodeName: node?.name, nonDaemonSetPods: node?.nonDaemonSetPods)
    }
    return victims.sorted { a, b in
        let podsA = a.nonDaemonSetPods ?? .max, podsB = b.nonDaemonSetPods ?? .max
        if podsA != podsB { return podsA < podsB }
        if a.launchTime != b.launchTime {
            return policy.order == .newestFirst ? a.launchTime > b.launchTime : a.launchTime < b.launchTime
        }
        return a.instanceID < b.instanceID
    }
    .prefix(count)
    .map { $0 }
}
