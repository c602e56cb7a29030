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
///
/// With `pools:` (`policy.pools`), the same rules hold for each pool on its own machines, its
/// own bounds, cooldowns and utilisation, and the unschedulable pods routed to it; see
/// `decidePooled` for how the parts are put together.
///
/// An operator's hold (`observation.hold`, `kscaler scale --hold`) comes before all of this:
/// while it is in force the fleet is only kept at its target (`Decision.holding`).
///
/// With `schedules:` (`policy.schedules`), the bounds are those in force at `now`: the base
/// raised by the active windows (`ScheduleStatus`). A raised min is a bound like any other
/// (rule 4); when a window ends, a fleet above the restored min shrinks by rule 6 alone.
///
/// Sizes: each instance type's allocatable is the configured one (`workers.sizes`), else what
/// its Ready nodes report, else the estimate from EC2 (`observation.learnedSizes`). A type no
/// source knows is skipped; when a pool (or `workers`) is left with none, nothing happens.
package func decide(_ observation: Observation, policy configured: Policy, now: Date) -> Decision {
    let (policy, sizes) = configured.sized(by: observation.learnedSizes)
    var decision: Decision
    if !sizes.unusable.isEmpty {
        decision = Decision.unsized(sizes, observation: observation, policy: policy, now: now)
    } else if let hold = observation.hold, hold.isActive(at: now) {
        decision = Decision.holding(hold, observation: observation, policy: policy, now: now)
    } else {
        let (effective, status) = policy.inForce(at: now)
        decision = decideWithinBounds(observation.releasing(), policy: effective, now: now)
        if let status {
            decision.reasons = status.reasons + decision.reasons
            decision.schedule = status
        }
        if let hold = observation.hold {
            decision.reasons.insert(Reason(.holdEnded, "the hold (\(hold.summary)) ended \(formatDuration(now.timeIntervalSince(hold.until))) ago: "
                + "deciding as usual"), at: 0)
        }
    }
    decision.protectedMachines = protectedMachines(observation, policy: policy, now: now)
    decision.sizes = sizes.sizes
    if sizes.unusable.isEmpty, !sizes.unknownTypes.isEmpty {
        decision.reasons.append(Reason(.unknownSize, "\(sizes.unknownTypes.joined(separator: ", ")) skipped: "
            + Decision.unknownSizeCause(observation.learnedSizes)))
    }
    return decision
}

extension Decision {
    /// Why a type has no size, and what gives it one.
    static func unknownSizeCause(_ learned: LearnedSizes) -> String {
        "no size known (not configured, no Ready node of the type, not from EC2"
            + (learned.problems.isEmpty ? "" : ": " + learned.problems.joined(separator: "; "))
            + "), never launched on doubt; add it under workers.sizes (or the pool's sizes) to launch it anyway"
    }

    /// No action at all: a pool (or `workers`) has no instance type of known size.
    static func unsized(_ sizes: SizeResolution, observation: Observation, policy: Policy, now: Date) -> Decision {
        let fleet = FleetView(observation: observation, policy: policy, now: now)
        let reason = Reason(.unknownSize, "no action: \(sizes.unusable.joined(separator: ", ")) "
            + "\(sizes.unusable.count == 1 ? "has" : "have") no instance type of known size (\(sizes.unknownTypes.joined(separator: ", "))): "
            + unknownSizeCause(observation.learnedSizes))
        return Decision(action: .none, failedBoots: [], halt: .unknownSizes, counts: fleet.counts(after: .none, halted: true), sizing: nil,
                        launchCandidates: [], reasons: [reason], signals: [], cooldowns: [])
    }
}

extension Policy {
    /// This policy with the bounds in force at `now` (the base raised by the active
    /// `schedules:` windows), and the schedule's status; the policy itself when it has none.
    package func inForce(at now: Date) -> (policy: Policy, schedule: ScheduleStatus?) {
        guard !schedules.isEmpty else { return (self, nil) }
        let base: [(pool: String?, bounds: NodeBounds)] = pools.map { $0.map { ($0.name, $0.nodes) } } ?? [(nil, nodes)]
        let status = ScheduleStatus(windows: schedules, base: base, now: now)
        var effective = self
        if let bounds = status.bounds(of: nil) { effective.nodes = NodeBounds(min: bounds.min, max: bounds.max) }
        effective.pools = pools?.map { pool in
            var pool = pool
            if let bounds = status.bounds(of: pool.name) { pool.nodes = NodeBounds(min: bounds.min, max: bounds.max) }
            return pool
        }
        return (effective, status)
    }
}

private func decideWithinBounds(_ observation: Observation, policy: Policy, now: Date) -> Decision {
    if let pools = policy.pools { return decidePooled(observation, policy: policy, pools: pools, now: now) }
    var planner = Planner(observation: observation, policy: policy, now: now)
    return planner.decide()
}

extension Observation {
    /// This observation without its hold.
    func releasing() -> Observation {
        var observation = self
        observation.hold = nil
        return observation
    }
}

struct Planner {
    let observation: Observation
    let policy: Policy
    let now: Date
    let fleet: FleetView
    /// The cooldown stamps, each source checked by `trusted(_:_:)`.
    let lastScaleUp: Date?
    let lastScaleDown: Date?
    var reasons: [Reason] = []
    /// This run's step for each open drain (none while halted: nothing moves on doubt).
    var drainSteps: [DrainStep] = []
    /// Nodes whose orphaned kscaler taint is removed this run.
    var untaint: [String] = []
    /// Nodes of interrupted machines to start draining this run, and the open drains of such machines.
    var interruptionDrains: [Victim] = []
    var reclaimedDrains = 0
    /// `headroom:` as it stands this run (after the drains' steps: a node drained away is no room).
    var headroom: HeadroomStatus?

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
                       trust(fleet.instances.map(\.launchTime).max(), "the newest launch time")].compactMap { $0 }.max()
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
                signals: signals, cooldowns: cooldowns,
                drain: DrainDecision(steps: drainSteps, untaint: untaint, drainVictims: observation.cluster != nil, interrupted: interruptionDrains),
                headroom: headroom
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
        planDrains()
        measureHeadroom(sizing: sizing)
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
    func requiredSignals() -> Set<Signal> {
        var required: Set<Signal> = [.unschedulablePods, .nodeReady]
        if fleet.ready > 0 {
            required.formUnion([.cpuUtilization, .memoryUtilization, .cpuUtilizationWindowMax, .memoryUtilizationWindowMax])
            // A pool's window has no data until its nodes have been up for a whole window (a
            // pool grown from 0 is the common case): that only blocks its scale-down, as it
            // must; halting every pool for it would stop the cluster for a window. A window
            // query that failed still halts.
            if policy.fleetPool != nil {
                for signal in [Signal.cpuUtilizationWindowMax, .memoryUtilizationWindowMax] where observation.reading(signal) == .noData {
                    required.remove(signal)
                }
            }
        }
        if let pods = observation.reading(.unschedulablePods).usableValue, pods.rounded() > 0 {
            required.formUnion([.pendingCPURequestCores, .pendingMemoryRequestBytes])
        }
        return required
    }

    func signalVerdicts(required: Set<Signal>) -> [SignalVerdict] {
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
        let cancelled = drainSteps.filter { $0.action == .cancel }.count
        if metricsCount > 0 && cancelled > 0 {
            metricsCount = max(0, metricsCount - cancelled)
            reasons.append(Reason(.drainsCancelled, "\(metricsNeed) needed, \(cancelled) draining node\(cancelled == 1 ? "" : "s") kept instead "
                + "(uncordoned: a running node is cheaper and faster than a new one): "
                + (metricsCount == 0 ? "they cover it" : "\(metricsCount) more to launch")))
        }
        if metricsCount > 0 && fleet.booting > 0 {
            metricsCount = max(0, metricsCount - fleet.booting)
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

    /// `headroom:` against the free requested capacity, once the drains' steps are known.
    private mutating func measureHeadroom(sizing: SizingUnit?) {
        guard let wanted = policy.headroom else { return }
        // A cancelled drain's node counts against the launch as a whole node (`planScaleUp`): its
        // room is not counted a second time here.
        let leaving = Set(drainSteps.filter { $0.removesMachine || $0.action == .cancel }.map(\.drain.machine))
        headroom = fleet.headroomStatus(wanted, capacity: policy.capacity, unit: sizing, cpuUtilization: value(.cpuUtilization),
                                        memoryUtilization: value(.memoryUtilization), leaving: leaving)
        if headroom == nil {
            reasons.append(Reason(.headroom, "headroom in nodes not kept: no worker size known to count a node in"))
        }
    }

    /// What the headroom adds to the sizing: wanted minus free on the Ready workers.
    private var headroomMissing: Resources { headroom?.missing ?? .zero }

    /// Nodes the metrics ask for, before booting capacity and cooldown. A headroom shortfall is
    /// sized together with the pending pods' requests (the free room is what stays after them).
    private mutating func metricsScaleUpNeed(sizing: SizingUnit?) -> Int {
        let pods = unschedulablePods
        let missing = headroomMissing
        let short = missing.cpu > 0 || missing.memory > 0
        if pods > 0 {
            let cpu = value(.pendingCPURequestCores), memory = value(.pendingMemoryRequestBytes)
            guard let sizing else {
                reasons.append(Reason(.unschedulablePods, "unschedulable pods \(pods) > 0: no worker size known, asking for 1 node"))
                return 1
            }
            let size = sizing.size
            let nodes = max(nodesNeeded(cpu + missing.cpu, per: size.cpuCores), nodesNeeded(memory + missing.memory, per: Double(size.memoryBytes)), 1)
            reasons.append(Reason(.unschedulablePods, "unschedulable pods \(pods) > 0: need \(nodes) node\(nodes == 1 ? "" : "s") of "
                + "\(sizing.machineType) (\(formatNumber(size.cpuCores)) vCPU, \(formatBytes(Double(size.memoryBytes)))) "
                + "for \(formatNumber(cpu, decimals: 3)) cores / \(formatBytes(memory)) requested"
                + (short ? " + \(formatNumber(missing.cpu, decimals: 3)) cores / \(formatBytes(missing.memory)) headroom missing" : "")))
            if short, let headroom {
                reasons.append(Reason(.headroom, "headroom \(headroom.summary): counted in the sizing above"))
            }
            return nodes
        }
        var headroomNodes = 0
        if short, let headroom {
            if let sizing {
                let size = sizing.size
                headroomNodes = max(nodesNeeded(missing.cpu, per: size.cpuCores), nodesNeeded(missing.memory, per: Double(size.memoryBytes)), 1)
                reasons.append(Reason(.headroom, "headroom \(headroom.summary): +\(headroomNodes) node\(headroomNodes == 1 ? "" : "s") of "
                    + "\(sizing.machineType) (\(formatNumber(size.cpuCores)) vCPU, \(formatBytes(Double(size.memoryBytes))))"))
            } else {
                headroomNodes = 1
                reasons.append(Reason(.headroom, "headroom \(headroom.summary): no worker size known, asking for 1 node"))
            }
        }
        let hot = [("cpu", value(.cpuUtilization), policy.scaleUp.cpuThreshold),
                   ("memory", value(.memoryUtilization), policy.scaleUp.memoryThreshold)]
            .filter { $0.1 > $0.2 }
        guard !hot.isEmpty else { return headroomNodes }
        let comparisons = hot.map { "\($0.0) utilisation \(formatPercent($0.1)) > scale-up threshold \(formatPercent($0.2))" }
        reasons.append(Reason(.highUtilization, comparisons.joined(separator: " and ") + ": add 1 node"))
        return max(1, headroomNodes)
    }

    /// Whole nodes for an amount; a hair of tolerance so 0.3 / 0.1 does not round up to 4.
    private func nodesNeeded(_ amount: Double, per unit: Double) -> Int {
        guard unit > 0, amount > 0 else { return 0 }
        return Int(min((amount / unit - 1e-9).rounded(.up), 1_000_000))
    }

    // MARK: - Drains

    /// Steps for the open drains. Unschedulable pods cancel them all (scale-up wins); a fleet
    /// that would end below `nodes.min` keeps its newest drains' nodes.
    mutating func planDrains() {
        guard let cluster = observation.cluster else {
            if !observation.drains.isEmpty {
                reasons.append(Reason(.drainsOpen, "\(observation.drains.count) drain\(observation.drains.count == 1 ? "" : "s") open, but the "
                    + "Kubernetes API is off: \(observation.drains.count == 1 ? "it waits" : "they wait"), the nodes stay cordoned"))
            }
            return
        }
        let live = Set(observation.instances.map(\.id))
        let scaleUpWanted = unschedulablePods > 0
        // A machine the backend is taking back goes whatever happens: its drain is never cancelled.
        let reclaimed = Set(fleet.instances.filter(\.interrupted).map(\.id))
        drainSteps = observation.drains.sorted { ($0.startedAt, $0.node) < ($1.startedAt, $1.node) }.map { drain in
            planDrainStep(drain, cluster: cluster, machineLive: live.contains(drain.machine),
                          scaleUpWanted: scaleUpWanted && !reclaimed.contains(drain.machine), policy: policy.drain, now: now)
        }
        // Interrupted machines are no capacity already (`FleetView.current`): their drains do not
        // count toward the minimum, nor against `scale_down.max_step`.
        var short = policy.nodes.min - (fleet.current - drainSteps.count(where: { $0.removesMachine && !reclaimed.contains($0.drain.machine) }))
        for index in drainSteps.indices.reversed() where short > 0 && drainSteps[index].removesMachine && !reclaimed.contains(drainSteps[index].drain.machine) {
            drainSteps[index].action = .cancel
            short -= 1
            reasons.append(Reason(.drainsCancelled, "drain of node \(drainSteps[index].drain.node) cancelled: finishing it would leave "
                + "fewer than min \(policy.nodes.min) nodes (an instance went away since it started)"))
        }
        // A machine protected since its drain started (`kscaler protect`) stays: its drain is
        // cancelled rather than end in a termination the fleet would refuse run after run.
        let protectedNodes = Set(cluster.nodes.filter { $0.isProtected(at: now) }.map(\.name))
        for index in drainSteps.indices where drainSteps[index].removesMachine && !reclaimed.contains(drainSteps[index].drain.machine) {
            let drain = drainSteps[index].drain
            guard fleet.protectedIDs.contains(drain.machine) || protectedNodes.contains(drain.node) else { continue }
            drainSteps[index].action = .cancel
            reasons.append(Reason(.drainsCancelled, "drain of node \(drain.node) cancelled: its machine \(drain.machine) is protected "
                + "(kscaler protect, victims.protected_instances or the node annotation \(Protection.annotation))"))
        }
        reclaimedDrains = drainSteps.count { reclaimed.contains($0.drain.machine) && $0.staysOpen }
        // The node of a machine being taken back is drained at once, so its pods move before it goes.
        let draining = Set(observation.drains.map(\.machine))
        interruptionDrains = fleet.instances.filter { $0.interrupted && !draining.contains($0.id) }.compactMap { instance in
            guard let node = cluster.node(ofMachine: instance.id) else { return nil }
            reasons.append(Reason(.drainsOpen, "\(instance.id) is being taken back by the provider (a Spot interruption): "
                + "its node \(node.name) is drained now"))
            return Victim(instanceID: instance.id, machineType: instance.machineType, launchTime: instance.launchTime, nodeName: node.name,
                          nonDaemonSetPods: nil, pool: instance.pool)
        }
        // One pool's part sees only its own drains: the taints are the cluster's, judged once
        // against every drain by `decidePooled`.
        if policy.fleetPool == nil {
            untaint = orphanTaints(cluster: cluster, drains: observation.drains, grace: policy.drain.orphanTaintGrace, now: now).map(\.name)
        }
        for step in drainSteps { reasons.append(Reason(.drainsOpen, describe(step))) }
        reasons += untaint.map(untaintReason)
    }

    private func describe(_ step: DrainStep) -> String {
        let drain = step.drain
        let name = "drain of node \(drain.node) (\(drain.machine), started \(formatDate(drain.startedAt)))"
        let pods = "\(step.podsLeft) pod\(step.podsLeft == 1 ? "" : "s")"
        switch step.action {
        case .evict(let evictable):
            return "\(name): \(pods) to move, evicting \(evictable.count)" + (step.recordon ? " after cordoning it again" : "")
                + "; times out \(formatDeadline(drain.deadline, now: now))" + (drain.blockedBy.map { "; last blocked by \($0)" } ?? "")
        case .wait(let why):
            return "\(name): waiting, \(why); times out \(formatDeadline(drain.deadline, now: now))"
        case .terminate:
            return "\(name): no pod left to move: terminate the instance and delete the node"
        case .force(_, let blocker):
            return "\(name): timed out (drain.timeout \(formatDuration(policy.drain.timeout))) with \(pods) left, blocked by "
                + "\(blocker): drain.force_after_timeout deletes them and terminates"
        case .abort(let why):
            return "\(name): aborted, \(why): uncordoned, not chosen again for \(formatDuration(policy.drain.abortBackoff))"
        case .cancel:
            return "\(name): cancelled, uncordoned" + (unschedulablePods > 0 ? " (pods are unschedulable: scale-up wins)" : "")
        case .close(let why):
            return "\(name): closed, \(why)"
        }
    }

    /// Drains still open after this run's steps: they count against `scale_down.max_step`.
    private var drainsStayingOpen: Int { drainSteps.count(where: \.staysOpen) - reclaimedDrains }

    // MARK: - Scale down

    /// Why no scale-down may start this run because of drains, or nil.
    private var drainBlocker: (Reason.Code, String)? {
        if observation.cluster == nil && !policy.scaleDown.withoutDrain {
            return (.drainUnavailable, "no Kubernetes API to drain a node with (kubernetes.enabled, or no credentials found), and "
                + "scale_down.without_drain is not set: terminating a node without draining it is never done by default")
        }
        if drainSteps.contains(where: { step in if case .terminate = step.action { true } else if case .force = step.action { true } else { false } }) {
            return (.scaleDownCooldown, "a drain finishes this run; the scale-down cooldown starts now")
        }
        if drainsStayingOpen >= policy.scaleDown.maxStep {
            return (.drainsOpen, "\(drainsStayingOpen) drain\(drainsStayingOpen == 1 ? "" : "s") open, scale_down.max_step \(policy.scaleDown.maxStep)")
        }
        return nil
    }

    private mutating func boundsScaleDown() -> Decision.Action {
        let excess = fleet.current - drainsStayingOpen - policy.nodes.max
        guard excess > 0 else {
            reasons.append(Reason(.aboveMaximum, "\(fleet.current) managed nodes > max \(policy.nodes.max), \(drainsStayingOpen) being drained: "
                + "no new drain needed"))
            return .none
        }
        if let (code, message) = drainBlocker {
            reasons.append(Reason(code, "scale-down to max \(policy.nodes.max) blocked: " + message))
            return .none
        }
        let count = min(excess, policy.scaleDown.maxStep - drainsStayingOpen)
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
        let remaining = fleet.current - drainsStayingOpen
        if remaining <= policy.nodes.min {
            block(.atMinimum, "already at min \(policy.nodes.min) node\(policy.nodes.min == 1 ? "" : "s")"
                + (drainsStayingOpen > 0 ? " once the \(drainsStayingOpen) open drain\(drainsStayingOpen == 1 ? "" : "s") finish" : ""))
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
        if !blocked, let (code, message) = drainBlocker { block(code, message) }
        guard !blocked else { return .none }
        return chooseVictims(count: min(policy.scaleDown.maxStep - drainsStayingOpen, remaining - policy.nodes.min), keepingHeadroom: true)
    }

    /// Victims need pod counts to be chosen well; without `pods_per_node` nothing is removed.
    /// `keepingHeadroom`: victims are taken only while the free room left stays at the headroom
    /// (bounds above `nodes.max` go whatever the headroom).
    private mutating func chooseVictims(count: Int, keepingHeadroom: Bool = false) -> Decision.Action {
        if let problem = observation.reading(.podsPerNode).problem {
            reasons.append(Reason(.victimPodsUnknown, "scale-down blocked: pods_per_node \(problem), needed to pick victims"))
            return .none
        }
        let ranked = selectVictims(count: fleet.instances.count, fleet: fleet, policy: policy.victims)
        var victims = observation.cluster.map { drainable(ranked, count: count, cluster: $0) } ?? Array(ranked.prefix(count))
        if keepingHeadroom, !victims.isEmpty, let headroom {
            victims = keptHeadroom(victims, headroom: headroom)
            if victims.isEmpty { return .none }
        }
        guard !victims.isEmpty else {
            reasons.append(Reason(.noVictims, ranked.isEmpty ? "scale-down blocked: no running, unprotected managed instance to remove"
                : "scale-down blocked: no node can be drained"))
            return .none
        }
        let described = victims.map { victim in
            "\(victim.instanceID) (\(victim.machineType), \(victim.nonDaemonSetPods.map { "\($0) non-DaemonSet pods" } ?? "pods unknown"), "
                + "launched \(formatDate(victim.launchTime)))"
        }
        let verb = observation.cluster == nil ? "terminate" : "drain, then terminate,"
        reasons.append(Reason(.victimsChosen, "\(verb) \(described.joined(separator: ", "))"
            + (victims.count < count ? "; only \(victims.count) of \(count) wanted could be chosen" : "")))
        return .scaleDown(victims: victims)
    }

    /// The victims, in rank order, that can go with the free room left at least the headroom:
    /// each takes its allocatable with it, its pods' requests stay (they move).
    private mutating func keptHeadroom(_ victims: [Victim], headroom: HeadroomStatus) -> [Victim] {
        let byID = Dictionary(fleet.instances.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var free = headroom.free
        var kept: [Victim] = []
        for victim in victims {
            guard let instance = byID[victim.instanceID] else { continue }
            let size = fleet.allocatable(of: instance, capacity: policy.capacity, unit: nil)
            let left = free - size
            // A resource the headroom does not name still keeps a floor of 0: the requests of the
            // pods that move must fit on what stays.
            let below = [("cpu", headroom.wanted.cpu, left.cpu, false), ("memory", headroom.wanted.memory, left.memory, true)]
                .filter { $0.2 < $0.1 - 1e-9 }
            guard below.isEmpty else {
                let words = below.map { _, wanted, left, bytes in
                    if wanted <= 0 {
                        return bytes ? "memory requests over allocatable by \(formatBytes(-left))"
                            : "cpu requests over allocatable by \(formatNumber(-left, decimals: 3)) cores"
                    }
                    return bytes ? "memory \(formatBytes(max(0, left))) < \(formatBytes(wanted))" : "cpu \(formatNumber(max(0, left), decimals: 3)) < \(formatNumber(wanted, decimals: 3))"
                }
                reasons.append(Reason(.headroom, (kept.isEmpty ? "scale-down blocked: " : "scale-down stops at \(kept.count): ")
                    + "headroom \(headroom.summary); removing \(victim.instanceID) would leave " + words.joined(separator: " and ")))
                break
            }
            free = left
            kept.append(victim)
        }
        return kept
    }

    /// The first `count` victims, in rank order, whose node can be drained: none of its pods
    /// blocks an eviction, and they all fit on the nodes that stay (first fit, by requests,
    /// after the nodes chosen before it and those already draining are gone).
    private mutating func drainable(_ ranked: [Victim], count: Int, cluster: ClusterView) -> [Victim] {
        let draining = Set(observation.drains.map(\.machine))
        var room = Room(cluster: cluster, leaving: Set(observation.drains.map(\.node)))
        // Indexed once: the ranking may pass over many nodes before it finds drainable ones.
        let nodeOfMachine = Dictionary(cluster.nodes.compactMap { node in node.machineID.map { ($0, node) } }, uniquingKeysWith: { first, _ in first })
        let podsOnNode = Dictionary(grouping: cluster.pods.filter { $0.node != nil && $0.mustLeave }) { $0.node ?? "" }
        var chosen: [Victim] = []
        var skipped: [String] = []
        for victim in ranked where chosen.count < count && !draining.contains(victim.instanceID) {
            guard let node = nodeOfMachine[victim.instanceID] else {
                skipped.append("\(victim.instanceID) has no Node object to drain")
                continue
            }
            if let blocker = nodeBlocker(node, aborted: observation.abortedDrains, now: now) {
                skipped.append(blocker)
                continue
            }
            let leaving = podsOnNode[node.name] ?? []
            let drainPolicy = policy.drain
            if let blocker = leaving.lazy.compactMap({ evictionBlocker($0, policy: drainPolicy) }).first {
                skipped.append("node \(node.name): \(blocker)")
                continue
            }
            if let problem = room.place(leaving, leaving: node.name) {
                skipped.append("node \(node.name): \(problem)")
                continue
            }
            chosen.append(victim)
        }
        for why in skipped.prefix(5) { reasons.append(Reason(.notDrainable, "not drained: " + why)) }
        if skipped.count > 5 { reasons.append(Reason(.notDrainable, "not drained: \(skipped.count - 5) more nodes")) }
        return chosen
    }
}

/// Why an orphaned taint is removed.
func untaintReason(_ node: String) -> Reason {
    Reason(.drainsOpen, "node \(node) carries kscaler's taint with no open drain (a crash, or a hand edit): untainted and uncordoned")
}
