#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The scaling decision for one run: pure and deterministic (same input, same output; the
/// order of `observation`'s lists does not matter). Rules, in this order:
///
/// 1. Safety: a required signal that is missing, stale, NaN or negative → no action at all.
///    Required: unschedulable pods, node readiness; CPU and memory utilisation and their
///    window maxima while any managed worker is Ready; the pending CPU/memory requests only
///    when pods are unschedulable.
///    `pods_per_node` only orders victims: without it scale-down is blocked, scale-up is not.
/// 2. Health gate (see `Fleet`): too many nodes not Ready → no action at all.
/// 3. Failed boots are terminated (`Decision.failedBoots`) and stop counting as capacity.
/// 4. Bounds: below `nodes.min` → scale up to it; above `nodes.max` → scale down toward it,
///    whatever the metrics say. Cooldowns do not hold bounds back (a fleet outside its bounds
///    is a misconfiguration or an outside change to repair, not a flap to damp); the per-run
///    `max_step` limits still apply, as the rate limit every action obeys.
/// 5. Scale up for unschedulable pods (enough worker-sized nodes for their summed requests,
///    at least 1) or for utilisation above an up-threshold (+1 node: utilisation says "too
///    full", not by how much); minus booting capacity; held by the scale-up cooldown; capped
///    by `scale_up.max_step` and `nodes.max`.
/// 6. Scale down when nothing asked for a scale-up and both CPU and memory window maxima are
///    below their down-thresholds: at most `scale_down.max_step`, never below `nodes.min`;
///    held by the delay after a scale-up, the scale-down cooldown, booting capacity and
///    failed boots being replaced.
///
/// Every period (cooldown, grace, timeout) is over exactly at its end: `now >= start + length`.
package func decide(_ observation: Observation, policy: Policy, now: Date) -> Decision {
    var planner = Planner(observation: observation, policy: policy, now: now)
    return planner.decide()
}

private struct Planner {
    let observation: Observation
    let policy: Policy
    let now: Date
    let fleet: FleetView
    /// The cooldown stamps, each source checked by `trusted(_:_:)`.
    let lastScaleUp: Date?
    let lastScaleDown: Date?
    var reasons: [Reason] = []

    init(observation: Observation, policy: Policy, now: Date) {
        self.observation = observation
        self.policy = policy
        self.now = now
        fleet = FleetView(observation: observation, policy: policy, now: now)
        var warnings: [Reason] = []
        let trust = { (stamp: Date?, name: String) in
            Self.trusted(stamp, name, now: now, maxClockSkew: policy.maxClockSkew, warnings: &warnings)
        }
        // The recorded stamp or the newest launch, whichever is later (see `Observation.lastScaleUpAt`).
        lastScaleUp = [trust(observation.state.lastScaleUpAt, "last_scale_up_at"),
                       trust(observation.instances.map(\.launchTime).max(), "the newest launch time")].compactMap { $0 }.max()
        lastScaleDown = trust(observation.state.lastScaleDownAt, "last_scale_down_at")
        reasons = warnings
        let ghosts = observation.ghostNodes.map(\.name).sorted()
        if !ghosts.isEmpty {
            reasons.append(Reason(.ghostNodes, "\(ghosts.count) ghost node\(ghosts.count == 1 ? "" : "s") (machine gone) not counted: "
                + ghosts.joined(separator: ", ")))
        }
    }

    /// A cooldown stamp in the future was written by a clock running ahead of ours (or by
    /// hand). Within `lease.max_clock_skew` it is used with a warning; beyond, it is not used
    /// at all — else it would hold its cooldown for as long as it claims, silently.
    private static func trusted(_ stamp: Date?, _ name: String, now: Date, maxClockSkew: TimeInterval,
                                warnings: inout [Reason]) -> Date? {
        guard let stamp, stamp > now else { return stamp }
        let ahead = stamp.timeIntervalSince(now)
        let skew = "lease.max_clock_skew \(formatDuration(maxClockSkew))"
        if ahead <= maxClockSkew {
            warnings.append(Reason(.futureTimestamp, "\(name) \(formatDate(stamp)) is \(formatDuration(ahead)) in the future, "
                + "within \(skew): used as it is; check the hosts' clocks"))
            return stamp
        }
        warnings.append(Reason(.futureTimestamp, "\(name) \(formatDate(stamp)) is \(formatDuration(ahead)) in the future, beyond \(skew): "
            + "not used as a cooldown (a clock ran ahead, or the state item was edited)"))
        return nil
    }

    mutating func decide() -> Decision {
        let required = requiredSignals()
        let signals = signalVerdicts(required: required)
        let cooldowns = cooldownStatuses()
        let failedBoots = fleet.failedBootsToTerminate(policy: policy, now: now)
        let candidates = fleet.launchOfferings(policy: policy, state: observation.state, replacing: failedBoots, now: now)
        let sizing = sizingUnit(capacity: policy.capacity, candidates: candidates)

        func decision(_ action: Decision.Action, failedBoots: [FailedBoot] = [], halt: Decision.Halt? = nil) -> Decision {
            let isScaleUp = if case .scaleUp = action { true } else { false }
            return Decision(
                action: action, failedBoots: failedBoots, halt: halt, counts: fleet.counts(after: action, halted: halt != nil),
                sizing: sizing, launchCandidates: isScaleUp ? candidates : [], reasons: reasons,
                signals: signals, cooldowns: cooldowns
            )
        }

        let missing = Signal.allCases.filter { required.contains($0) && observation.reading($0).usableValue == nil }
        if !missing.isEmpty {
            for signal in missing {
                reasons.append(Reason(.missingSignal, "no action: required signal \(signal.rawValue) \(observation.reading(signal).problem ?? "is unusable")"))
            }
            return decision(.none, halt: .missingSignals)
        }
        if let unhealthy = fleet.healthProblem(policy.health) {
            reasons.append(unhealthy)
            return decision(.none, halt: .clusterUnhealthy)
        }

        reasons += fleet.failedBootReasons(failedBoots, policy: policy, now: now)
        let action: Decision.Action
        if fleet.current > policy.nodes.max {
            action = boundsScaleDown()
        } else {
            let scaleUp = planScaleUp(sizing: sizing, candidates: candidates)
            if scaleUp.count > 0 {
                action = .scaleUp(count: scaleUp.count)
            } else if scaleUp.wanted {
                action = .none
            } else {
                action = planScaleDown()
            }
        }
        return decision(action, failedBoots: failedBoots)
    }

    // MARK: - Signals

    private func value(_ signal: Signal) -> Double { observation.reading(signal).usableValue ?? 0 }

    private var unschedulablePods: Int { podCount(value(.unschedulablePods)) }

    /// A pod count from a float sample, clamped so an absurd value cannot trap the conversion.
    private func podCount(_ value: Double) -> Int { Int(min(value, 1e9).rounded()) }

    /// Utilisation is required only while at least one managed worker is Ready: with none
    /// there is nothing to measure (the default queries rightly answer no data), and demanding
    /// it would leave a fresh or emptied cluster stuck below `nodes.min` with pods pending.
    /// Scale-down still needs the window maxima; without them it is blocked (`planScaleDown`).
    private func requiredSignals() -> Set<Signal> {
        var required: Set<Signal> = [.unschedulablePods, .nodeReady]
        if fleet.ready > 0 {
            required.formUnion([.cpuUtilization, .memoryUtilization, .cpuUtilizationWindowMax, .memoryUtilizationWindowMax])
        }
        if let pods = observation.reading(.unschedulablePods).usableValue, pods.rounded() > 0 {
            required.formUnion([.pendingCPURequestCores, .pendingMemoryRequestBytes])
        }
        return required
    }

    private func signalVerdicts(required: Set<Signal>) -> [SignalVerdict] {
        Signal.allCases.map { signal in
            let reading = observation.reading(signal).normalized
            let isRequired = required.contains(signal)
            let threshold: Double? = switch signal {
            case .unschedulablePods: 0
            case .cpuUtilization: policy.scaleUp.cpuThreshold
            case .memoryUtilization: policy.scaleUp.memoryThreshold
            case .cpuUtilizationWindowMax: policy.scaleDown.cpuThreshold
            case .memoryUtilizationWindowMax: policy.scaleDown.memoryThreshold
            case .pendingCPURequestCores, .pendingMemoryRequestBytes, .nodeReady, .podsPerNode: nil
            }
            func verdict(_ verdict: SignalVerdict.Verdict, _ detail: String) -> SignalVerdict {
                SignalVerdict(signal: signal, reading: reading, required: isRequired, threshold: threshold, verdict: verdict, detail: detail)
            }
            guard let value = reading.usableValue else {
                let problem = reading.problem ?? "is unusable"
                if isRequired { return verdict(.missing, "\(problem): no action") }
                return verdict(.unavailable, signal == .podsPerNode ? "\(problem): scale-down blocked" : problem)
            }
            switch signal {
            case .unschedulablePods:
                let pods = podCount(value)
                return pods > 0 ? verdict(.triggersScaleUp, "\(pods) > 0") : verdict(.allowsScaleDown, "none pending")
            case .pendingCPURequestCores:
                return verdict(.informational, "\(formatNumber(value, decimals: 3)) cores requested by unschedulable pods")
            case .pendingMemoryRequestBytes:
                return verdict(.informational, "\(formatBytes(value)) requested by unschedulable pods")
            case .cpuUtilization, .memoryUtilization:
                let limit = threshold ?? 1
                return value > limit
                    ? verdict(.triggersScaleUp, "\(formatPercent(value)) > \(formatPercent(limit))")
                    : verdict(.withinRange, "\(formatPercent(value)) ≤ \(formatPercent(limit))")
            case .cpuUtilizationWindowMax, .memoryUtilizationWindowMax:
                let limit = threshold ?? 0
                return value < limit
                    ? verdict(.allowsScaleDown, "\(formatPercent(value)) < \(formatPercent(limit))")
                    : verdict(.preventsScaleDown, "\(formatPercent(value)) ≥ \(formatPercent(limit))")
            case .nodeReady:
                let ready = observation.nodes.count(where: \.ready)
                return verdict(.informational, "\(ready) of \(observation.nodes.count) nodes Ready")
            case .podsPerNode:
                let pods = observation.nodes.compactMap(\.nonDaemonSetPods).reduce(0, +)
                return verdict(.informational, "\(pods) non-DaemonSet pods on \(observation.nodes.count) nodes")
            }
        }
    }

    // MARK: - Cooldowns

    private func end(of length: TimeInterval, since start: Date?) -> Date? {
        start.map { $0.addingTimeInterval(length) }
    }

    /// The end of a period still running at `now`, or nil when over (or never started).
    private func activeEnd(of length: TimeInterval, since start: Date?) -> Date? {
        end(of: length, since: start).flatMap { $0 > now ? $0 : nil }
    }

    private func cooldownStatuses() -> [CooldownStatus] {
        [
            (CooldownStatus.Name.scaleUpCooldown, lastScaleUp, policy.scaleUp.cooldown),
            (.scaleDownDelayAfterScaleUp, lastScaleUp, policy.scaleDown.delayAfterScaleUp),
            (.scaleDownCooldown, lastScaleDown, policy.scaleDown.cooldown),
        ].map { name, since, length in
            let endsAt = end(of: length, since: since)
            return CooldownStatus(name: name, since: since, endsAt: endsAt, active: endsAt.map { $0 > now } ?? false)
        }
    }

    // MARK: - Failed boots

    // MARK: - Scale up

    /// `count` to launch now; `wanted` when something asked for more nodes, even if booting
    /// capacity, a cooldown or the maximum left nothing to launch (then no scale-down either).
    private mutating func planScaleUp(sizing: SizingUnit?, candidates: [Offering]) -> (count: Int, wanted: Bool) {
        let current = fleet.current
        let boundsNeed = max(0, policy.nodes.min - current)
        if boundsNeed > 0 {
            reasons.append(Reason(.belowMinimum, "\(current) managed nodes < min \(policy.nodes.min): scale up to the minimum whatever the metrics say"))
        }
        let metricsNeed = metricsScaleUpNeed(sizing: sizing)
        var metricsCount = metricsNeed
        if metricsCount > 0 && fleet.booting > 0 {
            metricsCount = max(0, metricsNeed - fleet.booting)
            let outcome = metricsCount == 0 ? "they cover it" : "\(metricsCount) more to launch"
            reasons.append(Reason(.bootingCapacity, "\(metricsNeed) needed, \(fleet.booting) already booting "
                + "(not Ready yet, within provision timeout \(formatDuration(policy.provisionTimeout))): \(outcome)"))
        }
        if metricsCount > 0, let ends = activeEnd(of: policy.scaleUp.cooldown, since: lastScaleUp) {
            reasons.append(Reason(.scaleUpCooldown, "scale-up blocked: cooldown \(formatDuration(policy.scaleUp.cooldown)) "
                + "since the last scale-up ends \(formatDeadline(ends, now: now))"))
            metricsCount = 0
        }
        let wanted = max(boundsNeed, metricsCount)
        guard wanted > 0 else { return (0, boundsNeed > 0 || metricsNeed > 0) }

        let headroom = policy.nodes.max - current
        guard headroom > 0 else {
            reasons.append(Reason(.atMaximum, "scale-up needed but already at max \(policy.nodes.max) nodes"))
            return (0, true)
        }
        var count = wanted
        if count > policy.scaleUp.maxStep {
            count = policy.scaleUp.maxStep
            reasons.append(Reason(.capped, "\(wanted) nodes wanted, capped to \(count) by scale_up.max_step"))
        }
        if count > headroom {
            reasons.append(Reason(.capped, "\(count) nodes wanted, capped to \(headroom) by nodes.max \(policy.nodes.max) (\(current) now)"))
            count = headroom
        }
        guard !candidates.isEmpty else {
            let until = observation.state.unavailableOfferings.filter { $0.until > now }.map(\.until).min()
            reasons.append(Reason(.noLaunchCandidates, "scale-up blocked: every instance type and subnet is marked unavailable"
                + (until.map { " (the first comes back \(formatDeadline($0, now: now)))" } ?? "")))
            return (0, true)
        }
        return (count, true)
    }

    /// Nodes the metrics ask for, before booting capacity and cooldown.
    private mutating func metricsScaleUpNeed(sizing: SizingUnit?) -> Int {
        let pods = unschedulablePods
        if pods > 0 {
            let cpu = value(.pendingCPURequestCores), memory = value(.pendingMemoryRequestBytes)
            guard let sizing else {
                reasons.append(Reason(.unschedulablePods, "unschedulable pods \(pods) > 0: no worker size known, asking for 1 node"))
                return 1
            }
            let size = sizing.size
            let nodes = max(nodesNeeded(cpu, per: size.cpuCores), nodesNeeded(memory, per: Double(size.memoryBytes)), 1)
            reasons.append(Reason(.unschedulablePods, "unschedulable pods \(pods) > 0: need \(nodes) node\(nodes == 1 ? "" : "s") of "
                + "\(sizing.machineType) (\(formatNumber(size.cpuCores)) vCPU, \(formatBytes(Double(size.memoryBytes)))) "
                + "for \(formatNumber(cpu, decimals: 3)) cores / \(formatBytes(memory)) requested"))
            return nodes
        }
        let hot = [("cpu", value(.cpuUtilization), policy.scaleUp.cpuThreshold),
                   ("memory", value(.memoryUtilization), policy.scaleUp.memoryThreshold)]
            .filter { $0.1 > $0.2 }
        guard !hot.isEmpty else { return 0 }
        let comparisons = hot.map { "\($0.0) utilisation \(formatPercent($0.1)) > scale-up threshold \(formatPercent($0.2))" }
        reasons.append(Reason(.highUtilization, comparisons.joined(separator: " and ") + ": add 1 node"))
        return 1
    }

    /// Whole nodes for an amount; a hair of tolerance so 0.3 / 0.1 does not round up to 4.
    private func nodesNeeded(_ amount: Double, per unit: Double) -> Int {
        guard unit > 0, amount > 0 else { return 0 }
        return Int(min((amount / unit - 1e-9).rounded(.up), 1_000_000))
    }

    // MARK: - Scale down

    private mutating func boundsScaleDown() -> Decision.Action {
        let excess = fleet.current - policy.nodes.max
        let count = min(excess, policy.scaleDown.maxStep)
        reasons.append(Reason(.aboveMaximum, "\(fleet.current) managed nodes > max \(policy.nodes.max): scale down whatever the metrics say"
            + (count < excess ? " (\(count) this run, scale_down.max_step \(policy.scaleDown.maxStep))" : "")))
        return chooseVictims(count: count)
    }

    private mutating func planScaleDown() -> Decision.Action {
        guard let cpu = observation.reading(.cpuUtilizationWindowMax).usableValue,
              let memory = observation.reading(.memoryUtilizationWindowMax).usableValue else {
            reasons.append(Reason(.steady, "steady: no unschedulable pods; no scale-down without utilisation data for the window"))
            return .none
        }
        let cpuLimit = policy.scaleDown.cpuThreshold, memoryLimit = policy.scaleDown.memoryThreshold
        guard cpu < cpuLimit && memory < memoryLimit else {
            let held = [("cpu", cpu, cpuLimit), ("memory", memory, memoryLimit)].filter { $0.1 >= $0.2 }
                .map { "\($0.0) window max \(formatPercent($0.1)) ≥ \(formatPercent($0.2))" }
            reasons.append(Reason(.steady, "steady: no unschedulable pods, CPU \(formatPercent(value(.cpuUtilization))) and memory "
                + "\(formatPercent(value(.memoryUtilization))) within scale-up thresholds; no scale-down as \(held.joined(separator: " and "))"))
            return .none
        }
        reasons.append(Reason(.lowUtilization, "cpu window max \(formatPercent(cpu)) < \(formatPercent(cpuLimit)) and memory window max "
            + "\(formatPercent(memory)) < \(formatPercent(memoryLimit)) over \(formatDuration(policy.scaleDown.stabilizationWindow)), no unschedulable pods"))

        var blocked = false
        func block(_ code: Reason.Code, _ message: String) {
            reasons.append(Reason(code, "scale-down blocked: " + message))
            blocked = true
        }
        if fleet.current <= policy.nodes.min {
            block(.atMinimum, "already at min \(policy.nodes.min) node\(policy.nodes.min == 1 ? "" : "s")")
        }
        if fleet.booting > 0 {
            block(.scaleDownBooting, "\(fleet.booting) node\(fleet.booting == 1 ? " is" : "s are") still booting")
        }
        if !fleet.failedBoots.isEmpty {
            block(.scaleDownFailedBoots, "failed boots are being terminated this run")
        }
        if let ends = activeEnd(of: policy.scaleDown.delayAfterScaleUp, since: lastScaleUp) {
            block(.scaleDownDelay, "delay after scale-up ends \(formatDeadline(ends, now: now))")
        }
        if let ends = activeEnd(of: policy.scaleDown.cooldown, since: lastScaleDown) {
            block(.scaleDownCooldown, "cooldown since the last scale-down ends \(formatDeadline(ends, now: now))")
        }
        guard !blocked else { return .none }
        return chooseVictims(count: min(policy.scaleDown.maxStep, fleet.current - policy.nodes.min))
    }

    /// Victims need pod counts to be chosen well; without `pods_per_node` nothing is removed.
    private mutating func chooseVictims(count: Int) -> Decision.Action {
        if let problem = observation.reading(.podsPerNode).problem {
            reasons.append(Reason(.victimPodsUnknown, "scale-down blocked: pods_per_node \(problem), needed to pick victims"))
            return .none
        }
        let victims = selectVictims(count: count, fleet: fleet, policy: policy.victims)
        guard !victims.isEmpty else {
            reasons.append(Reason(.noVictims, "scale-down blocked: no running, unprotected managed instance to remove"))
            return .none
        }
        let described = victims.map { victim in
            "\(victim.instanceID) (\(victim.machineType), \(victim.nonDaemonSetPods.map { "\($0) non-DaemonSet pods" } ?? "pods unknown"), "
                + "launched \(formatDate(victim.launchTime)))"
        }
        reasons.append(Reason(.victimsChosen, "terminate \(described.joined(separator: ", "))"
            + (victims.count < count ? "; only \(victims.count) of \(count) wanted could be chosen" : "")))
        return .scaleDown(victims: victims)
    }
}
