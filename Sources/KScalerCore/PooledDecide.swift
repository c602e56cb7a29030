#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The decision for a cluster with `pools:`. Each pool is decided by the one-pool rules
/// (`Planner`) on its own part of the observation: its machines, its state, its utilisation,
/// and the unschedulable pods routed to it (`routePendingPods`; without the Kubernetes API
/// every pending pod is assumed to fit the default pool, as their constraints cannot be read).
/// The parts are then put together:
///
/// - nothing at all happens when any pool's part halts (a missing signal, an unhealthy cluster);
/// - scale-ups are capped by `nodes.max` across pools, higher priority first;
/// - one direction per run: while any pool scales up, no pool scales down (scale-up wins, the
///   scale-down is decided again next run); and one pool at most starts drains in a run, the
///   lowest priority first, so that its fit check is the only one using the room that stays;
/// - failed boots and open drains go on in every pool;
/// - machines tagged for a pool no longer configured count against `nodes.max` and are
///   otherwise left alone.
func decidePooled(_ observation: Observation, policy: Policy, pools: [PoolPolicy], now: Date) -> Decision {
    let poolNames = Set(pools.map(\.name))
    let poolOfMachine = Dictionary(observation.instances.compactMap { instance in instance.pool.map { (instance.id, $0) } },
                                   uniquingKeysWith: { first, _ in first })
    let orphans = observation.instances.filter { !($0.pool.map(poolNames.contains) ?? false) }
    var notes: [Reason] = []

    // Which pool each unschedulable pod goes to.
    let full = Set(pools.filter { pool in observation.instances.count(where: { $0.pool == pool.name }) >= pool.nodes.max }.map(\.name))
    let routing: PodRouting?
    if let cluster = observation.cluster {
        let routed = routePendingPods(cluster.pods, pools: pools, expander: policy.expander, full: full)
        routing = routed
        notes += routed.choices.map { Reason(.pools, $0) }
        for pod in routed.unservable {
            notes.append(Reason(.unservablePods, "pod \(pod.pod) fits no pool, nothing is launched for it: " + pod.reasons.joined(separator: "; ")))
        }
    } else {
        routing = nil
        if let pending = observation.reading(.unschedulablePods).usableValue, pending.rounded() > 0, let fallback = policy.defaultPool {
            notes.append(Reason(.pools, "no Kubernetes API to read pod constraints: the \(Int(pending.rounded())) unschedulable pods are "
                + "assumed to fit pool \(fallback)"))
        }
    }
    if !orphans.isEmpty {
        notes.append(Reason(.pools, "\(orphans.count) machine\(orphans.count == 1 ? "" : "s") of no configured pool ("
            + orphans.map { "\($0.id) pool \($0.pool ?? "none")" }.joined(separator: ", ")
            + "): counted against nodes.max, never launched for or removed"))
    }

    // Each pool on its own.
    let parts = pools.map { pool -> (PoolPolicy, Decision, PoolDemand) in
        var part = observation
        part.state = observation.poolStates[pool.name] ?? ScalerState()
        part.drains = observation.drains.filter { poolOfMachine[$0.machine] == pool.name }
        let demand: PoolDemand
        if let routing {
            demand = routing.demand[pool.name] ?? PoolDemand()
            // The pods' count comes from the API now; Prometheus's still has to be readable
            // (no action on doubt), so an unusable reading is left for the part to halt on.
            if observation.reading(.unschedulablePods).usableValue != nil {
                part.readings[.unschedulablePods] = .value(Double(demand.pods))
                part.readings[.pendingCPURequestCores] = .value(demand.requests.cpu)
                part.readings[.pendingMemoryRequestBytes] = .value(demand.requests.memory)
            }
        } else if pool.name == policy.defaultPool {
            demand = PoolDemand(pods: Int(min(observation.reading(.unschedulablePods).usableValue ?? 0, 1e9).rounded()),
                                requests: Resources(cpu: observation.reading(.pendingCPURequestCores).usableValue ?? 0,
                                                    memory: observation.reading(.pendingMemoryRequestBytes).usableValue ?? 0))
        } else {
            demand = PoolDemand()
            if observation.reading(.unschedulablePods).usableValue != nil { part.readings[.unschedulablePods] = .value(0) }
        }
        for signal in Signal.utilization { part.readings[signal] = observation.poolReadings[pool.name]?[signal] ?? .noData }
        let partPolicy = policy.part(for: pool)
        var planner = Planner(observation: part, policy: partPolicy, now: now)
        return (pool, planner.decide(), demand)
    }

    // The cluster's own signals (pending pods, readiness); utilisation is each pool's.
    let global = Planner(observation: observation, policy: policy, now: now)
    let signals = global.signalVerdicts(required: global.requiredSignals().subtracting(Signal.utilization))
        .filter { !Signal.utilization.contains($0.signal) }
    let untaint = observation.cluster.map { cluster in
        orphanTaints(cluster: cluster, drains: observation.drains, grace: policy.drain.orphanTaintGrace, now: now).map(\.name)
    } ?? []

    if let halted = parts.first(where: { $0.1.halt != nil })?.1 {
        let reasons = merged(parts.filter { $0.1.halt != nil }.map { ($0.0.name, $0.1.reasons) })
        let counts = NodeCounts(current: observation.instances.count, ready: parts.map(\.1.counts.ready).reduce(0, +),
                                booting: parts.map(\.1.counts.booting).reduce(0, +), desired: observation.instances.count,
                                clusterNodes: halted.counts.clusterNodes, clusterNotReady: halted.counts.clusterNotReady,
                                ghostNodes: halted.counts.ghostNodes)
        return Decision(action: .none, failedBoots: [], halt: halted.halt, counts: counts, sizing: nil, launchCandidates: [],
                        reasons: reasons, signals: signals, cooldowns: [],
                        pools: parts.map { outcome($0.0, $0.1, action: .none, demand: $0.2) },
                        unservablePods: routing?.unservable ?? [])
    }

    // The cluster cap, higher priority first (`pools` is in priority order).
    var actions = parts.map(\.1.action)
    var poolNotes: [(String, Reason)] = []
    let current = parts.map(\.1.counts.current).reduce(0, +) + orphans.count
    var room = max(0, policy.nodes.max - current)
    for index in actions.indices {
        guard case .scaleUp(let wanted) = actions[index] else { continue }
        let allowed = min(wanted, room)
        room -= allowed
        if allowed < wanted {
            poolNotes.append((pools[index].name, Reason(.capped, "\(wanted) nodes wanted, capped to \(allowed) by nodes.max \(policy.nodes.max) "
                + "across pools (\(current) now)")))
        }
        actions[index] = allowed > 0 ? .scaleUp(count: allowed) : .none
    }
    // One direction per run, and one pool's drains at a time.
    let scalingUp = actions.contains { if case .scaleUp = $0 { true } else { false } }
    var scaleDownPool: String?
    for index in actions.indices.reversed() {
        guard case .scaleDown = actions[index] else { continue }
        if scalingUp {
            poolNotes.append((pools[index].name, Reason(.pools, "its scale-down waits: another pool scales up this run (scale-up wins)")))
            actions[index] = .none
        } else if let chosen = scaleDownPool {
            poolNotes.append((pools[index].name, Reason(.pools, "its scale-down waits: pool \(chosen) scales down this run (one pool at a time)")))
            actions[index] = .none
        } else {
            scaleDownPool = pools[index].name
        }
    }

    let action: Decision.Action
    if scalingUp {
        action = .scaleUp(count: actions.map { if case .scaleUp(let count) = $0 { count } else { 0 } }.reduce(0, +))
    } else if let index = actions.firstIndex(where: { if case .scaleDown = $0 { true } else { false } }), case .scaleDown(let victims) = actions[index] {
        action = .scaleDown(victims: victims.map { victim in
            var victim = victim
            victim.pool = pools[index].name
            return victim
        })
    } else {
        action = .none
    }
    let outcomes = parts.indices.map { outcome(parts[$0].0, parts[$0].1, action: actions[$0], demand: parts[$0].2) }
    let firstUp = outcomes.first { if case .scaleUp = $0.action { true } else { false } }
    let desired = outcomes.map(\.counts.desired).reduce(0, +) + orphans.count
    let first = parts[0].1.counts
    let counts = NodeCounts(current: current, ready: outcomes.map(\.counts.ready).reduce(0, +), booting: outcomes.map(\.counts.booting).reduce(0, +),
                            desired: desired, clusterNodes: first.clusterNodes, clusterNotReady: first.clusterNotReady, ghostNodes: first.ghostNodes)
    var reasons = notes + merged(parts.map { ($0.0.name, $0.1.reasons) }) + untaint.map(untaintReason)
    reasons += poolNotes.map { Reason($0.1.code, "pool \($0.0): " + $0.1.message) }
    var drain = DrainDecision(steps: parts.flatMap(\.1.drain.steps), untaint: untaint, drainVictims: observation.cluster != nil,
                              interrupted: parts.flatMap(\.1.drain.interrupted))
    drain.steps.sort { ($0.drain.startedAt, $0.drain.node) < ($1.drain.startedAt, $1.drain.node) }
    return Decision(action: action, failedBoots: parts.flatMap(\.1.failedBoots), halt: nil, counts: counts, sizing: firstUp?.sizing,
                    launchCandidates: firstUp?.launchCandidates ?? [], reasons: reasons, signals: signals, cooldowns: [], drain: drain,
                    pools: outcomes, unservablePods: routing?.unservable ?? [])
}

/// The pools' reasons as one list: a reason every pool gave (a ghost node, a missing signal)
/// once, the others under their pool's name.
private func merged(_ lists: [(pool: String, reasons: [Reason])]) -> [Reason] {
    guard lists.count > 1 else { return lists.first?.reasons ?? [] }
    let shared = lists.dropFirst().reduce(Set(lists[0].reasons.map(\.description))) { common, list in
        common.intersection(list.reasons.map(\.description))
    }
    var result = lists[0].reasons.filter { shared.contains($0.description) }
    for list in lists {
        result += list.reasons.filter { !shared.contains($0.description) }.map { Reason($0.code, "pool \(list.pool): " + $0.message) }
    }
    return result
}

private func outcome(_ pool: PoolPolicy, _ part: Decision, action: Decision.Action, demand: PoolDemand) -> PoolOutcome {
    var counts = part.counts
    counts.desired = switch action {
    case .none: counts.current
    case .scaleUp(let count): counts.current + count
    case .scaleDown(let victims): counts.current - victims.count
    }
    let isScaleUp = if case .scaleUp = action { true } else { false }
    return PoolOutcome(name: pool.name, action: action, counts: counts, min: pool.nodes.min, max: pool.nodes.max, capacityType: pool.capacityType,
                       sizing: part.sizing, launchCandidates: isScaleUp ? part.launchCandidates : [], cooldowns: part.cooldowns,
                       pendingPods: demand.pods, pendingRequests: demand.requests,
                       signals: part.signals.filter { Signal.utilization.contains($0.signal) }, headroom: part.headroom)
}

extension Signal {
    /// The signals measured per pool (on the pool's own nodes) when there are pools.
    package static let utilization: Set<Signal> = [.cpuUtilization, .memoryUtilization, .cpuUtilizationWindowMax, .memoryUtilizationWindowMax]
}
