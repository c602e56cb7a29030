#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Decision {
    /// The decision for an operator's request (`kscaler scale`), whatever the metrics say. It
    /// goes through the rules that are about safety rather than demand: nothing happens while
    /// the cluster is unhealthy; the target must lie within `nodes.min`…`nodes.max` (the
    /// pool's, and the cluster's across pools) unless `force`, and every override is said;
    /// each run moves at most `max_step`; failed boots are terminated and replaced away from
    /// their offering; launches go to the same candidates in the same order; victims are
    /// chosen the same way, a protected machine never (`--force` does not lift protection:
    /// `kscaler unprotect` does); open drains go on. Cooldowns do not hold it: an operator
    /// asked. A request that cannot be carried out is refused whole (`Halt.refused`).
    /// With `schedules:`, the bounds are those in force now: a request below a window's raised
    /// min would be undone by the next run.
    package static func manual(_ request: ManualRequest, observation: Observation, policy: Policy, now: Date) -> Decision {
        let (policy, schedule) = policy.inForce(at: now)
        var decision = manualWithinBounds(request, observation: observation, policy: policy, now: now)
        decision.protectedMachines = KScalerCore.protectedMachines(observation, policy: policy, now: now)
        if let schedule {
            decision.reasons = schedule.reasons + decision.reasons
            decision.schedule = schedule
        }
        return decision
    }

    private static func manualWithinBounds(_ request: ManualRequest, observation: Observation, policy: Policy, now: Date) -> Decision {
        guard let (partPolicy, part) = scoped(observation, policy: policy, pool: request.pool) else { return refused(poolProblem(request.pool, policy: policy), observation: observation, policy: policy, now: now) }
        var planner = Planner(observation: part, policy: partPolicy, now: now)
        let decision = planner.decideManually(request, clusterMax: policy.nodes.max, clusterCurrent: observation.instances.count)
        return pooled(decision, pool: request.pool, policy: partPolicy)
    }

    /// What a run decides while an operator's hold is in force: the fleet kept at the hold's
    /// target (as a forced `--to`: the target was checked, or forced, when it was set) and no
    /// decision of its own, however many pods are pending.
    package static func holding(_ hold: Hold, observation: Observation, policy: Policy, now: Date) -> Decision {
        let request = ManualRequest(change: .to(hold.target), pool: hold.pool, force: true, by: hold.by)
        guard let (partPolicy, part) = scoped(observation, policy: policy, pool: hold.pool) else {
            // The configuration changed under the hold: still nothing automatic, and said.
            var decision = refused(poolProblem(hold.pool, policy: policy), observation: observation, policy: policy, now: now)
            decision.halt = nil
            decision.reasons = [Reason(.held, "\(hold.summary): no automatic decision until then, but its pool cannot be kept: "
                + poolProblem(hold.pool, policy: policy))]
            return decision
        }
        var planner = Planner(observation: part, policy: partPolicy, now: now)
        planner.reasons.insert(Reason(.held, "\(hold.summary): no automatic decision until then, the fleet is kept at the target"), at: 0)
        // Forced: the target was checked (or forced) when the hold was set, so it is never refused here.
        let decision = planner.decideManually(request, clusterMax: Int.max, clusterCurrent: observation.instances.count, saying: "held")
        return pooled(decision, pool: hold.pool, policy: partPolicy)
    }

    /// The policy and observation of one pool's part (as `decidePooled` makes them), or the
    /// whole for a `workers:` configuration; nil when the pool is missing or unknown.
    private static func scoped(_ observation: Observation, policy: Policy, pool: String?) -> (Policy, Observation)? {
        guard let pools = policy.pools else { return pool == nil ? (policy, observation) : nil }
        guard let name = pool, let chosen = pools.first(where: { $0.name == name }) else { return nil }
        var part = observation
        part.state = observation.poolStates[name] ?? ScalerState()
        part.drains = observation.drains.filter { drain in observation.instances.first { $0.id == drain.machine }?.pool == name }
        return (policy.part(for: chosen), part)
    }

    private static func poolProblem(_ pool: String?, policy: Policy) -> String {
        guard let pools = policy.pools else { return "--pool \(pool ?? "") given, but this configuration has no pools: leave --pool out" }
        let names = pools.map(\.name).joined(separator: ", ")
        return pool.map { "no pool named \($0) (pools: \(names))" } ?? "this configuration has pools: say which with --pool (\(names))"
    }

    private static func refused(_ message: String, observation: Observation, policy: Policy, now: Date) -> Decision {
        let fleet = FleetView(observation: observation, policy: policy, now: now)
        return Decision(action: .none, failedBoots: [], halt: .refused, counts: fleet.counts(after: .none, halted: true), sizing: nil,
                        launchCandidates: [], reasons: [Reason(.manualRefused, "refused, nothing changed: " + message)], signals: [], cooldowns: [])
    }

    /// A pool's manual decision as a pooled one, so the run launches in that pool and names it.
    private static func pooled(_ decision: Decision, pool: String?, policy: Policy) -> Decision {
        guard let pool, decision.halt == nil else { return decision }
        var decision = decision
        if case .scaleDown(let victims) = decision.action {
            decision.action = .scaleDown(victims: victims.map { victim in
                var victim = victim
                victim.pool = pool
                return victim
            })
        }
        let isScaleUp = if case .scaleUp = decision.action { true } else { false }
        decision.pools = [PoolOutcome(name: pool, action: decision.action, counts: decision.counts, min: policy.nodes.min, max: policy.nodes.max,
                                      capacityType: .onDemand, sizing: decision.sizing, launchCandidates: isScaleUp ? decision.launchCandidates : [],
                                      cooldowns: [], pendingPods: 0, pendingRequests: Resources(cpu: 0, memory: 0))]
        return decision
    }
}

extension Planner {
    /// The one body of `Decision.manual` and `Decision.holding`.
    /// - Parameters:
    ///   - clusterMax: `nodes.max` across pools (checked besides the pool's own).
    ///   - clusterCurrent: every managed machine, of every pool.
    mutating func decideManually(_ request: ManualRequest, clusterMax: Int, clusterCurrent: Int, saying said: String = "manual") -> Decision {
        let failedBoots = fleet.failedBootsToTerminate(policy: policy, now: now)
        let candidates = fleet.launchOfferings(policy: policy, state: observation.state, replacing: failedBoots, now: now)

        var decidedTarget: Int?
        func decision(_ action: Decision.Action, failedBoots: [FailedBoot] = [], halt: Decision.Halt? = nil) -> Decision {
            let isScaleUp = if case .scaleUp = action { true } else { false }
            var decision = Decision(action: action, failedBoots: failedBoots, halt: halt, counts: fleet.counts(after: action, halted: halt != nil),
                            sizing: sizingUnit(capacity: policy.capacity, candidates: candidates),
                            launchCandidates: isScaleUp ? candidates : [], reasons: reasons, signals: [], cooldowns: [],
                            // An operator's scale-down drains too while the API is on.
                            drain: DrainDecision(steps: halt == nil ? drainSteps : [], drainVictims: observation.cluster != nil))
            decision.manualTarget = halt == nil ? decidedTarget : nil
            return decision
        }
        func refuse(_ message: String) -> Decision {
            reasons.append(Reason(.manualRefused, "refused, nothing changed: " + message))
            return decision(.none, halt: .refused)
        }

        if let unhealthy = fleet.healthProblem(policy.health) {
            reasons.append(unhealthy)
            return decision(.none, halt: .clusterUnhealthy)
        }
        planDrains()
        // Machines whose drain goes on are leaving already: a target counts without them.
        let leaving = drainSteps.count(where: \.removesMachine)
        let current = fleet.current - leaving
        let (min, max) = (policy.nodes.min, policy.nodes.max)
        let others = clusterCurrent - fleet.instances.count
        let nowSaid = leaving > 0 ? "\(current) now (\(leaving) draining not counted)" : "\(current) now"

        let wanted: Int
        var victims: [Victim] = []
        switch request.change {
        case .to(let count): wanted = count
        case .add(let count): wanted = current + count
        case .keep: wanted = current
        case .remove(let ids):
            let byID = Dictionary(fleet.instances.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            var problems: [String] = []
            for id in ids {
                guard let instance = byID[id] else {
                    problems.append("\(id) is not a live machine of this \(policy.fleetPool.map { "pool (\($0))" } ?? "cluster")")
                    continue
                }
                if fleet.protectedIDs.contains(id) {
                    let why = KScalerCore.protectedMachines(observation, policy: policy, now: now).first { $0.instanceID == id }?.marks
                        .filter { !$0.expired }.map { "\($0.source == .protectedInstances ? "" : "\($0.source.rawValue) ")\($0.detail)" }
                        .joined(separator: ", ") ?? "protected"
                    problems.append("\(id) is protected (\(why)): `kscaler unprotect \(id)` first")
                } else if observation.drains.contains(where: { $0.machine == id }) {
                    problems.append("\(id) is being drained already")
                } else {
                    let node = fleet.nodeByInstanceID[id]
                    victims.append(Victim(instanceID: id, machineType: instance.machineType, launchTime: instance.launchTime,
                                          nodeName: node?.name, nonDaemonSetPods: node?.nonDaemonSetPods))
                }
            }
            if !problems.isEmpty { return refuse(problems.joined(separator: "; ")) }
            if victims.count > policy.scaleDown.maxStep {
                return refuse("\(victims.count) machines named, more than scale_down.max_step \(policy.scaleDown.maxStep) in one run: "
                    + "remove at most \(policy.scaleDown.maxStep) at a time")
            }
            wanted = current - victims.count
        }
        decidedTarget = wanted
        let target = wanted

        // Bounds: refused unless forced, and every override said.
        var overrides: [String] = []
        if target > max { overrides.append("nodes.max \(max)") }
        if target < min { overrides.append("nodes.min \(min)") }
        if others + target > clusterMax, policy.fleetPool != nil { overrides.append("the cluster's nodes.max \(clusterMax) across pools") }
        if target < 0 { return refuse("the target \(target) is below zero") }
        if !overrides.isEmpty {
            guard request.force else {
                return refuse("\(said) target \(target) nodes is outside \(overrides.joined(separator: " and ")) (\(nowSaid)): "
                    + "ask for \(Swift.min(Swift.max(target, min), max)), or add --force to go past the bounds")
            }
            reasons.append(Reason(.manualForce, "--force overrides \(overrides.joined(separator: " and ")): target \(target) nodes"))
        }
        reasons += fleet.failedBootReasons(failedBoots, policy: policy, now: now)
        let head = "\(said) target \(target) node\(target == 1 ? "" : "s"), \(nowSaid)"

        if target > current {
            let count = Swift.min(target - current, policy.scaleUp.maxStep)
            guard !candidates.isEmpty else {
                reasons.append(Reason(.noLaunchCandidates, "\(head): no instance type and subnet is available to launch in"))
                return decision(.none, failedBoots: failedBoots)
            }
            reasons.append(Reason(.manualTarget, "\(head): launch \(count)"
                + (count < target - current ? " (scale_up.max_step \(policy.scaleUp.maxStep) per run; the rest follows next run with --hold, "
                    + "or ask again)" : "")))
            return decision(.scaleUp(count: count), failedBoots: failedBoots)
        }
        if target < current {
            if victims.isEmpty {
                let wanted = Swift.min(current - target, Swift.max(0, policy.scaleDown.maxStep - drainSteps.count(where: \.staysOpen)))
                victims = selectVictims(count: wanted, fleet: fleet, policy: policy.victims)
                    .filter { victim in !observation.drains.contains { $0.machine == victim.instanceID } }
            }
            guard !victims.isEmpty else {
                reasons.append(Reason(.noVictims, "\(head): no running, unprotected managed machine to remove this run"
                    + (drainSteps.contains(where: \.staysOpen) ? " (drains open: scale_down.max_step \(policy.scaleDown.maxStep))" : "")))
                return decision(.none, failedBoots: failedBoots)
            }
            let drained = observation.cluster != nil ? "drain and terminate" : "terminate (no Kubernetes API: not drained)"
            reasons.append(Reason(.manualTarget, "\(head): \(drained) \(victims.map(\.instanceID).joined(separator: ", "))"
                + (victims.count < current - target ? " (scale_down.max_step \(policy.scaleDown.maxStep) per run)" : "")))
            return decision(.scaleDown(victims: victims), failedBoots: failedBoots)
        }
        reasons.append(Reason(.manualTarget, "\(head): nothing to change"))
        return decision(.none, failedBoots: failedBoots)
    }
}

extension Policy {
    /// The policy one pool is decided by: its bounds, steps, capacity and fleet; the cluster's
    /// stabilization window (the queries') and `without_drain`.
    func part(for pool: PoolPolicy) -> Policy {
        var part = self
        part.pools = nil
        part.fleetPool = pool.name
        part.nodes = pool.nodes
        part.scaleUp = pool.scaleUp
        part.scaleDown = pool.scaleDown
        // Not a pool's to override: the window is the queries', without_drain the cluster's.
        part.scaleDown.withoutDrain = scaleDown.withoutDrain
        part.scaleDown.stabilizationWindow = scaleDown.stabilizationWindow
        part.capacity = pool.capacity
        part.headroom = pool.headroom
        return part
    }
}
