#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Decision {
    /// The decision that takes the managed fleet toward `target` nodes now, whatever the
    /// metrics say: an operator's override (`kscaler scale`). It goes through the same rules as
    /// `decide` wherever they are about safety rather than demand: the target is kept within
    /// `nodes.min`…`nodes.max`, each run moves at most `max_step`, failed boots are terminated
    /// and replaced away from their offering, launches go to the same candidates in the same
    /// order, victims are chosen the same way (protected instances never), and nothing happens
    /// while the cluster is unhealthy. Cooldowns do not hold it: an operator asked.
    package static func manual(target: Int, observation: Observation, policy: Policy, now: Date) -> Decision {
        let fleet = FleetView(observation: observation, policy: policy, now: now)
        let failedBoots = fleet.failedBootsToTerminate(policy: policy, now: now)
        let candidates = fleet.launchOfferings(policy: policy, state: observation.state, replacing: failedBoots, now: now)
        var reasons: [Reason] = []

        func decision(_ action: Action, failedBoots: [FailedBoot] = [], halt: Halt? = nil) -> Decision {
            let isScaleUp = if case .scaleUp = action { true } else { false }
            return Decision(action: action, failedBoots: failedBoots, halt: halt, counts: fleet.counts(after: action, halted: halt != nil),
                            sizing: sizingUnit(capacity: policy.capacity, candidates: candidates),
                            launchCandidates: isScaleUp ? candidates : [], reasons: reasons, signals: [], cooldowns: [],
                            // An operator's scale-down drains too while the API is on; a node that cannot be drained aborts at the timeout.
                            drain: DrainDecision(drainVictims: observation.cluster != nil))
        }

        if let unhealthy = fleet.healthProblem(policy.health) {
            reasons.append(unhealthy)
            return decision(.none, halt: .clusterUnhealthy)
        }
        reasons += fleet.failedBootReasons(failedBoots, policy: policy, now: now)
        let bounded = min(max(target, policy.nodes.min), policy.nodes.max)
        let current = fleet.current
        var said = "manual target \(target) nodes"
        if bounded != target { said += " (kept within nodes.min \(policy.nodes.min) … nodes.max \(policy.nodes.max): \(bounded))" }

        if bounded > current {
            let count = min(bounded - current, policy.scaleUp.maxStep)
            guard !candidates.isEmpty else {
                reasons.append(Reason(.noLaunchCandidates, "\(said): no instance type and subnet is available to launch in"))
                return decision(.none, failedBoots: failedBoots)
            }
            reasons.append(Reason(.manualTarget, "\(said), \(current) now: launch \(count)"
                + (count < bounded - current ? " (scale_up.max_step \(policy.scaleUp.maxStep) per run)" : "")))
            return decision(.scaleUp(count: count), failedBoots: failedBoots)
        }
        if bounded < current {
            let wanted = min(current - bounded, policy.scaleDown.maxStep)
            let victims = selectVictims(count: wanted, fleet: fleet, policy: policy.victims)
            guard !victims.isEmpty else {
                reasons.append(Reason(.noVictims, "\(said), \(current) now: no running, unprotected managed instance to remove"))
                return decision(.none, failedBoots: failedBoots)
            }
            reasons.append(Reason(.manualTarget, "\(said), \(current) now: terminate \(victims.map(\.instanceID).joined(separator: ", "))"
                + (victims.count < current - bounded ? " (scale_down.max_step \(policy.scaleDown.maxStep) per run)" : "")))
            return decision(.scaleDown(victims: victims), failedBoots: failedBoots)
        }
        reasons.append(Reason(.manualTarget, "\(said): \(current) now, nothing to do"))
        return decision(.none, failedBoots: failedBoots)
    }
}
