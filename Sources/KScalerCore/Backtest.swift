#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// `kscaler backtest`: `decide` replayed over recorded demand on a simulated fleet. Pure: the
// command fetches the history from Prometheus; everything here is arithmetic on it.
//
// The recorded signals (unschedulable pods, utilisation) were produced by the fleet the
// cluster really had, so replaying them would answer "what would the policy have done on that
// fleet", not "what fleet would it have had". The replay takes the *demand* instead (the pods
// that wanted a worker, with their requests) and recomputes every signal on the simulated
// fleet. Where this differs from reality (README, "Backtest"):
// - placement is a first fit by requests (no affinity, taints, ports, volumes, pod limits);
//   a placed pod stays on its node until the node goes; allocatable is the configured size;
// - a launched machine is Ready exactly `bootTime` later; boots never fail;
// - a victim leaves at once (no drain, no PodDisruptionBudget); its pods are placed again at
//   the next step;
// - utilisation is requested utilisation, also for `utilization: usage` (usage was measured
//   on the real fleet and cannot be recomputed for another one).

/// One pod that wanted a worker at a step (Pending or Running, not a DaemonSet's, not on a
/// node that is not a managed worker), with its summed container requests.
package struct PodDemand: Sendable, Equatable {
    /// `namespace/name`.
    package var id: String
    package var cpuCores: Double
    package var memoryBytes: Double

    package init(id: String, cpuCores: Double, memoryBytes: Double) {
        self.id = id
        self.cpuCores = cpuCores
        self.memoryBytes = memoryBytes
    }
}

/// The recorded history at one step of the replay.
package struct BacktestStep: Sendable, Equatable {
    package var time: Date
    /// kube-state-metrics answered at this step; without it there is no demand to replay and
    /// the step counts as no data (a run would have halted).
    package var reporting: Bool
    package var pods: [PodDemand]
    /// The real cluster's worker nodes at this step, by name: Ready or not.
    package var realNodes: [String: Bool]
    /// The real cluster's unschedulable pods (nil: no data).
    package var realUnschedulablePods: Int?

    package init(time: Date, reporting: Bool, pods: [PodDemand], realNodes: [String: Bool], realUnschedulablePods: Int?) {
        self.time = time
        self.reporting = reporting
        self.pods = pods
        self.realNodes = realNodes
        self.realUnschedulablePods = realUnschedulablePods
    }
}

package struct BacktestSettings: Sendable, Equatable {
    /// Time between two replayed runs (and between the history's samples).
    package var step: TimeInterval
    /// A launched machine's node is Ready this long after the launch.
    package var bootTime: TimeInterval
    /// The replay's first step (`--from`). Steps before it (one stabilization window, fetched
    /// by the command) only fill the simulated utilisation history on the starting fleet, so
    /// the window maxima have data from the first step, as they do in a cluster running for long.
    package var start: Date

    package init(step: TimeInterval, bootTime: TimeInterval, start: Date) {
        self.step = step
        self.bootTime = bootTime
        self.start = start
    }

    /// Without `--boot-time`: 2m, or `boot_grace` when the configuration says its nodes boot faster.
    package static func defaultBootTime(for config: KScalerConfig) -> TimeInterval {
        min(120, config.bootGrace)
    }

    /// Why `config` cannot be replayed with these settings (each with its fix), or empty.
    package func problems(for config: KScalerConfig) -> [String] {
        var problems: [String] = []
        if config.pools != nil {
            problems.append("pools: backtest does not replay pools yet; give it a configuration with workers: (one pool)")
        }
        if config.pools == nil && sizingUnit(capacity: config.policy.capacity, candidates: []) == nil {
            problems.append("workers.sizes: backtest places pods on nodes of the configured size, and none is given; "
                + "add workers.sizes.<instance type>: {cpu: …, memory: …}")
        }
        if bootTime >= config.provisionTimeout {
            problems.append("--boot-time \(formatDuration(bootTime)) is not shorter than provision_timeout \(formatDuration(config.provisionTimeout)): "
                + "every launch would be a failed boot; give a shorter --boot-time")
        }
        return problems
    }
}

/// A simulated action: what the replayed `decide` did at a step, and why.
package struct BacktestAction: Sendable, Equatable, Codable {
    package enum Kind: String, Sendable, Codable { case scaleUp = "scale_up", scaleDown = "scale_down" }

    package var time: Date
    package var kind: Kind
    package var machines: [String]
    /// The decision's reasons, most important first.
    package var reasons: [String]

    package init(time: Date, kind: Kind, machines: [String], reasons: [String]) {
        self.time = time
        self.kind = kind
        self.machines = machines
        self.reasons = reasons
    }
}

/// Nodes over time, one point a step.
package struct BacktestPoint: Sendable, Equatable, Codable {
    package var time: Date
    /// Machines that exist after the step's action (booting ones too: they are paid for); for
    /// the real cluster, its worker Node objects. Nil: no data.
    package var nodes: Int?
    /// Of which Ready.
    package var ready: Int?
    /// Pods left unschedulable (simulated: before the step's action); nil: no data.
    package var unschedulablePods: Int?

    package init(time: Date, nodes: Int?, ready: Int?, unschedulablePods: Int?) {
        self.time = time
        self.nodes = nodes
        self.ready = ready
        self.unschedulablePods = unschedulablePods
    }

    private enum CodingKeys: String, CodingKey { case time, nodes, ready, unschedulablePods = "unschedulable_pods" }
}

package struct BacktestSummary: Sendable, Equatable, Codable {
    package var launches: Int
    package var terminations: Int
    package var peakNodes: Int
    package var meanNodes: Double
    /// Minutes (steps × step) with pods left unschedulable.
    package var unschedulableMinutes: Double
    package var nodeHours: Double
    /// Steps without data: a real run would have done nothing (simulated: the runs that halted,
    /// e.g. a stabilization window not yet covered by history).
    package var stepsWithoutData: Int

    package init(launches: Int, terminations: Int, peakNodes: Int, meanNodes: Double, unschedulableMinutes: Double, nodeHours: Double,
                 stepsWithoutData: Int) {
        self.launches = launches
        self.terminations = terminations
        self.peakNodes = peakNodes
        self.meanNodes = meanNodes
        self.unschedulableMinutes = unschedulableMinutes
        self.nodeHours = nodeHours
        self.stepsWithoutData = stepsWithoutData
    }

    /// Peak, mean, node-hours and unschedulable minutes of a timeline; launches and
    /// terminations are counted by the caller.
    init(timeline: [BacktestPoint], step: TimeInterval, launches: Int, terminations: Int, stepsWithoutData: Int) {
        let counts = timeline.compactMap(\.nodes)
        self.init(launches: launches, terminations: terminations, peakNodes: counts.max() ?? 0,
                  meanNodes: counts.isEmpty ? 0 : Double(counts.reduce(0, +)) / Double(counts.count),
                  unschedulableMinutes: Double(timeline.count { ($0.unschedulablePods ?? 0) > 0 }) * step / 60,
                  nodeHours: Double(counts.reduce(0, +)) * step / 3600,
                  stepsWithoutData: stepsWithoutData)
    }

    private enum CodingKeys: String, CodingKey {
        case launches, terminations, peakNodes = "peak_nodes", meanNodes = "mean_nodes"
        case unschedulableMinutes = "unschedulable_minutes", nodeHours = "node_hours", stepsWithoutData = "steps_without_data"
    }
}

/// One configuration's replay.
package struct BacktestRun: Sendable, Equatable, Codable {
    package var summary: BacktestSummary
    package var actions: [BacktestAction]
    package var timeline: [BacktestPoint]
}

/// What the cluster really had over the replayed steps (those from `start` on): a node seen
/// first after the first step with data is a launch, one last seen before the last such step
/// a termination.
package func realFleet(_ history: [BacktestStep], settings: BacktestSettings) -> (summary: BacktestSummary, timeline: [BacktestPoint]) {
    let replayed = history.filter { $0.time >= settings.start }
    var seen: Set<String> = []
    var launches = 0
    var lastSeen: [String: Int] = [:]
    var timeline: [BacktestPoint] = []
    for (index, entry) in replayed.enumerated() {
        guard entry.reporting else {
            timeline.append(BacktestPoint(time: entry.time, nodes: nil, ready: nil, unschedulablePods: nil))
            continue
        }
        for name in entry.realNodes.keys {
            // The nodes at the first step with data were there before it: no launch in the range.
            if !seen.contains(name) && !lastSeen.isEmpty { launches += 1 }
            seen.insert(name)
        }
        for name in entry.realNodes.keys { lastSeen[name] = index }
        timeline.append(BacktestPoint(time: entry.time, nodes: entry.realNodes.count, ready: entry.realNodes.values.count(where: { $0 }),
                                      unschedulablePods: entry.realUnschedulablePods))
    }
    let lastReporting = replayed.lastIndex(where: \.reporting) ?? 0
    let terminations = lastSeen.values.count { $0 < lastReporting }
    let withoutData = timeline.count { $0.nodes == nil || $0.unschedulablePods == nil }
    return (BacktestSummary(timeline: timeline, step: settings.step, launches: launches, terminations: terminations, stepsWithoutData: withoutData),
            timeline)
}

/// Replays `decide` with `policy` over `history` on a simulated fleet (see the top of this
/// file for how it differs from reality). The fleet starts with as many Ready machines as the
/// cluster had Ready workers at the first replayed step with data (launched a day before, so
/// no cooldown holds them), and `decide` runs once a step from `settings.start`, as a run
/// would, with the cooldown stamps a run records.
package func backtest(_ history: [BacktestStep], policy: Policy, settings: BacktestSettings) -> BacktestRun {
    var simulation = FleetSimulation(policy: policy, settings: settings)
    let first = history.first?.time ?? settings.start
    let initial = (history.first { $0.reporting && $0.time >= settings.start } ?? history.first(where: \.reporting))
        .map { $0.realNodes.values.count(where: { $0 }) } ?? policy.nodes.min
    simulation.addMachines(initial, launchedAt: first.addingTimeInterval(-86_400), readyAt: first)
    for entry in history { simulation.step(entry) }
    let launches = simulation.actions.filter { $0.kind == .scaleUp }.map(\.machines.count).reduce(0, +)
    let terminations = simulation.actions.filter { $0.kind == .scaleDown }.map(\.machines.count).reduce(0, +)
    return BacktestRun(summary: BacktestSummary(timeline: simulation.timeline, step: settings.step, launches: launches, terminations: terminations,
                                                stepsWithoutData: simulation.halts),
                       actions: simulation.actions, timeline: simulation.timeline)
}

/// The simulated fleet and what a run would have recorded.
struct FleetSimulation {
    struct UtilisationSample {
        var time: Date
        var cpu: Double?
        var memory: Double?
    }

    struct Machine {
        var id: String
        var launchTime: Date
        var readyAt: Date
    }

    let policy: Policy
    let settings: BacktestSettings
    let size: SizingUnit?
    var machines: [Machine] = []
    var nextMachine = 1
    /// Pod → machine, kept from step to step: a scheduled pod does not move.
    var placement: [String: String] = [:]
    /// When each pod was first seen: new pods are placed oldest first.
    var firstSeen: [String: Int] = [:]
    var stepIndex = 0
    var state = ScalerState()
    /// Requested utilisation after each step's placement (nil: no Ready machine, or no data).
    var utilisation: [UtilisationSample] = []
    /// Replayed steps where the run would have halted (no data, a signal missing).
    var halts = 0
    var actions: [BacktestAction] = []
    var timeline: [BacktestPoint] = []

    init(policy: Policy, settings: BacktestSettings) {
        var policy = policy
        // Victims leave at once: the replay has no Kubernetes API and simulates no drain.
        policy.scaleDown.withoutDrain = true
        self.policy = policy
        self.settings = settings
        size = sizingUnit(capacity: policy.capacity, candidates: [])
    }

    mutating func addMachines(_ count: Int, launchedAt: Date, readyAt: Date) {
        for _ in 0..<max(0, count) {
            let number = String(nextMachine)
            machines.append(Machine(id: "sim-" + String(repeating: "0", count: max(0, 4 - number.count)) + number, launchTime: launchedAt,
                                    readyAt: readyAt))
            nextMachine += 1
        }
    }

    mutating func step(_ entry: BacktestStep) {
        defer { stepIndex += 1 }
        let now = entry.time
        let replayed = now >= settings.start
        guard entry.reporting, let size else {
            utilisation.append(UtilisationSample(time: now, cpu: nil, memory: nil))
            if replayed {
                halts += 1
                timeline.append(BacktestPoint(time: now, nodes: machines.count, ready: machines.count { $0.readyAt <= now }, unschedulablePods: nil))
            }
            return
        }
        let ready = machines.filter { $0.readyAt <= now }
        let (unplaced, podsPerMachine, used) = place(entry.pods, on: ready, size: size.size)
        let capacity = (cpu: Double(ready.count) * size.size.cpuCores, memory: Double(ready.count) * Double(size.size.memoryBytes))
        let cpu = ready.isEmpty ? nil : used.cpu / capacity.cpu
        let memory = ready.isEmpty ? nil : used.memory / capacity.memory
        utilisation.append(UtilisationSample(time: now, cpu: cpu, memory: memory))
        guard replayed else { return }

        func reading(_ value: Double?) -> Reading { value.map(Reading.value) ?? .noData }
        let readings: [Signal: Reading] = [
            .unschedulablePods: .value(Double(unplaced.count)),
            .pendingCPURequestCores: .value(unplaced.map(\.cpuCores).reduce(0, +)),
            .pendingMemoryRequestBytes: .value(unplaced.map(\.memoryBytes).reduce(0, +)),
            .cpuUtilization: reading(cpu),
            .memoryUtilization: reading(memory),
            .cpuUtilizationWindowMax: reading(windowMax(at: now, \.cpu)),
            .memoryUtilizationWindowMax: reading(windowMax(at: now, \.memory)),
            .nodeReady: .value(Double(ready.count)),
            .podsPerNode: .value(Double(ready.count)),
        ]
        let observation = Observation(
            readings: readings,
            nodes: ready.map { NodeObservation(name: $0.id, instanceID: $0.id, ready: true, nonDaemonSetPods: podsPerMachine[$0.id] ?? 0) },
            instances: machines.map { machine in
                ManagedInstance(id: machine.id, machineType: size.machineType, placement: nil, zone: nil, launchTime: machine.launchTime,
                                state: machine.readyAt <= now ? .running : .pending)
            },
            state: state)
        let decision = decide(observation, policy: policy, now: now)
        if decision.halt != nil { halts += 1 }
        apply(decision, now: now)
        timeline.append(BacktestPoint(time: now, nodes: machines.count, ready: ready.count, unschedulablePods: unplaced.count))
    }

    /// First fit by requests: pods keep the machine they were on while it is Ready and they
    /// still fit; the others go, oldest first, to the first Ready machine (oldest first) with room.
    mutating func place(_ pods: [PodDemand], on ready: [Machine], size: WorkerSize)
        -> (unplaced: [PodDemand], podsPerMachine: [String: Int], used: (cpu: Double, memory: Double)) {
        for pod in pods where firstSeen[pod.id] == nil { firstSeen[pod.id] = stepIndex }
        let order = ready.sorted { ($0.launchTime, $0.id) < ($1.launchTime, $1.id) }.map(\.id)
        var free = Dictionary(uniqueKeysWithValues: order.map { ($0, (cpu: size.cpuCores, memory: Double(size.memoryBytes))) })
        var placed: [String: String] = [:]
        var waiting: [PodDemand] = []
        let sorted = pods.sorted { (firstSeen[$0.id] ?? 0, $0.id) < (firstSeen[$1.id] ?? 0, $1.id) }
        func fits(_ pod: PodDemand, _ room: (cpu: Double, memory: Double)) -> Bool {
            pod.cpuCores <= room.cpu + 1e-9 && pod.memoryBytes <= room.memory + 0.5
        }
        for pod in sorted {
            if let machine = placement[pod.id], let room = free[machine], fits(pod, room) {
                free[machine] = (room.cpu - pod.cpuCores, room.memory - pod.memoryBytes)
                placed[pod.id] = machine
            } else {
                waiting.append(pod)
            }
        }
        var unplaced: [PodDemand] = []
        for pod in waiting {
            if let machine = order.first(where: { fits(pod, free[$0]!) }), let room = free[machine] {
                free[machine] = (room.cpu - pod.cpuCores, room.memory - pod.memoryBytes)
                placed[pod.id] = machine
            } else {
                unplaced.append(pod)
            }
        }
        placement = placed
        var perMachine: [String: Int] = [:]
        for machine in placed.values { perMachine[machine, default: 0] += 1 }
        let onNodes = pods.filter { placed[$0.id] != nil }
        return (unplaced, perMachine, (onNodes.map(\.cpuCores).reduce(0, +), onNodes.map(\.memoryBytes).reduce(0, +)))
    }

    /// The window maximum as `DefaultQueries.windowMax` samples it: the subquery's points (every
    /// window/10, aligned to the epoch as Prometheus aligns them) in [now - window, now], each
    /// the latest simulated value at or before it within Prometheus's 5-minute lookback; no
    /// data unless window/step points have one.
    func windowMax(at now: Date, _ value: KeyPath<UtilisationSample, Double?>) -> Double? {
        let window = max(1, Int(policy.scaleDown.stabilizationWindow.rounded()))
        let step = max(1, window / 10)
        let end = Int(now.timeIntervalSince1970.rounded(.down))
        var point = end - end % step
        let first = end - window
        var values: [Double] = []
        while point >= first {
            let at = Date(timeIntervalSince1970: TimeInterval(point))
            if let sample = utilisation.last(where: { $0.time <= at }), at.timeIntervalSince(sample.time) <= 300, let number = sample[keyPath: value] {
                values.append(number)
            }
            point -= step
        }
        return values.count >= window / step ? values.max() : nil
    }

    mutating func apply(_ decision: Decision, now: Date) {
        guard decision.halt == nil else { return }
        let reasons = decision.reasons.filter { $0.code != .futureTimestamp }.map(\.message)
        switch decision.action {
        case .none:
            return
        case .scaleUp(let count):
            let first = machines.count
            addMachines(count, launchedAt: now, readyAt: now.addingTimeInterval(settings.bootTime))
            state.lastScaleUpAt = now
            actions.append(BacktestAction(time: now, kind: .scaleUp, machines: machines[first...].map(\.id), reasons: reasons))
        case .scaleDown(let victims):
            let gone = Set(victims.map(\.instanceID))
            machines.removeAll { gone.contains($0.id) }
            placement = placement.filter { !gone.contains($0.value) }
            state.lastScaleDownAt = now
            actions.append(BacktestAction(time: now, kind: .scaleDown, machines: victims.map(\.instanceID), reasons: reasons))
        }
    }
}

/// A duration as configuration files write it (`90s`, `3m`, `1h30m`), for the command's flags.
package func parseFlagDuration(_ text: String) -> TimeInterval? { parseDuration(text) }
