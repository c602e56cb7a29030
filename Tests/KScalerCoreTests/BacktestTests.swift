#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

// `kscaler backtest`'s replay on hand-built histories: the demand is placed on the simulated
// fleet, every signal recomputed from it, and `decide` run a step at a time.

private let minute: TimeInterval = 60

private func pod(_ name: String, cpu: Double, memoryGiB: Double = 1) -> PodDemand {
    PodDemand(id: "default/\(name)", cpuCores: cpu, memoryBytes: memoryGiB * Double(gib))
}

/// Steps every minute from `first` (inclusive) to `last` (inclusive), minutes relative to t0,
/// with the pods `demand(minute)` gives and one real Ready worker unless told otherwise.
private func history(_ first: Int, _ last: Int, reporting: (Int) -> Bool = { _ in true },
                     real: (Int) -> [String: Bool] = { _ in ["i-0a": true] }, demand: (Int) -> [PodDemand]) -> [BacktestStep] {
    (first...last).map { m in
        BacktestStep(time: t0.addingTimeInterval(Double(m) * minute), reporting: reporting(m), pods: reporting(m) ? demand(m) : [],
                     realNodes: real(m), realUnschedulablePods: reporting(m) ? 0 : nil)
    }
}

private func at(_ minutes: Int) -> Date { t0.addingTimeInterval(Double(minutes) * minute) }

private let quiet = [pod("quiet-1", cpu: 0.5), pod("quiet-2", cpu: 0.5)]

@Suite("backtest: the replay on a simulated fleet")
struct BacktestTests {
    @Test("a burst is served in one launch sized by its requests; the grown fleet's own utilisation then adds nodes one by one")
    func burst() {
        // t3.large: 2 cores, 8 GiB. One Ready node holds the quiet pods (1 core); at minute 3,
        // seven 1-core pods arrive: one fits, six wait → 3 nodes. Ready 2 minutes later they
        // hold the six, and the fleet's requested CPU is 8/8 = 100 % > 70 %: +1, then 8/10 =
        // 80 % > 70 %: +1 more once the first is Ready (booting capacity covers it meanwhile);
        // 8/12 ≈ 67 % stops it.
        let steps = history(-10, 12) { m in quiet + (m >= 3 ? (1...7).map { pod("burst-\($0)", cpu: 1) } : []) }
        let run = backtest(steps, policy: .test(), settings: BacktestSettings(step: minute, bootTime: 2 * minute, start: t0))

        #expect(run.actions.map(\.time) == [at(3), at(5), at(7)])
        #expect(run.actions.map(\.kind) == [.scaleUp, .scaleUp, .scaleUp])
        #expect(run.actions.map(\.machines) == [["sim-0002", "sim-0003", "sim-0004"], ["sim-0005"], ["sim-0006"]])
        #expect(run.actions[0].reasons.contains { $0.contains("unschedulable") })
        #expect(run.actions[1].reasons.first?.contains("cpu utilisation 100 %") == true)
        #expect(run.timeline.map(\.unschedulablePods) == [0, 0, 0, 6, 6, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(run.timeline.map(\.nodes) == [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6, 6, 6])
        #expect(run.summary == BacktestSummary(launches: 5, terminations: 0, peakNodes: 6, meanNodes: 57.0 / 13, unschedulableMinutes: 2,
                                               nodeHours: 0.95, stepsWithoutData: 0))
    }

    @Test("scale-down waits for a whole low window, then one node per scale-down cooldown, never below the minimum")
    func scaleDown() {
        // Three Ready nodes, one 0.5-core pod: 8 % requested. The warm-up (the window before
        // --from) is low already, so minute 0 scales down; the 5m cooldown holds the next one
        // until minute 5; then the minimum (1) holds.
        let steps = history(-10, 9, real: { _ in ["i-0a": true, "i-0b": true, "i-0c": true] }) { _ in [pod("quiet-1", cpu: 0.5)] }
        let run = backtest(steps, policy: .test(), settings: BacktestSettings(step: minute, bootTime: 2 * minute, start: t0))

        #expect(run.actions.map(\.time) == [at(0), at(5)])
        #expect(run.actions.map(\.kind) == [.scaleDown, .scaleDown])
        // The pod is on the oldest node: the empty ones go, same launch time → by id.
        #expect(run.actions.map(\.machines) == [["sim-0002"], ["sim-0003"]])
        #expect(run.timeline.map(\.nodes) == [2, 2, 2, 2, 2, 1, 1, 1, 1, 1])
        #expect(run.summary.meanNodes == 1.5)
        #expect(run.summary.nodeHours == 0.25)
    }

    @Test("without history before --from, the window maximum has no data until the window is covered: the runs halt, as in a cluster")
    func windowNeedsHistory() {
        let steps = history(0, 12, real: { _ in ["i-0a": true, "i-0b": true] }) { _ in [pod("quiet-1", cpu: 0.5)] }
        let run = backtest(steps, policy: .test(), settings: BacktestSettings(step: minute, bootTime: 2 * minute, start: t0))

        // [t - 10m, t] aligned to 1m holds 10 simulated points from minute 9 on.
        #expect(run.summary.stepsWithoutData == 9)
        #expect(run.actions.map(\.time) == [at(9)])
        #expect(run.actions.first?.kind == .scaleDown)
    }

    @Test("a step without kube-state-metrics is no data: no action, counted, and the fleet stays")
    func noData() {
        let steps = history(-10, 5, reporting: { $0 != 2 }) { _ in quiet + (1...4).map { pod("burst-\($0)", cpu: 1) } }
        let run = backtest(steps, policy: .test(), settings: BacktestSettings(step: minute, bootTime: 2 * minute, start: t0))

        #expect(run.timeline[2].unschedulablePods == nil)
        #expect(run.summary.stepsWithoutData == 1)
        // The four 1-core pods never fit beside the quiet ones on one node: 3 wait from the warm-up on.
        #expect(run.actions.first?.time == at(0))
        #expect(run.actions.allSatisfy { $0.time != at(2) })
    }

    @Test("a placed pod stays on its node; a victim's pods are placed again on the nodes that stay")
    func placementIsSticky() {
        var simulation = FleetSimulation(policy: .test(), settings: BacktestSettings(step: minute, bootTime: minute, start: t0))
        simulation.addMachines(2, launchedAt: t0.addingTimeInterval(-3600), readyAt: t0)
        let ready = simulation.machines
        let size = WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)
        // First fit: both on the oldest node.
        _ = simulation.place([pod("a", cpu: 1), pod("b", cpu: 1)], on: ready, size: size)
        #expect(simulation.placement == ["default/a": "sim-0001", "default/b": "sim-0001"])
        // a leaves, c arrives: b stays where it is, c fills a's room.
        _ = simulation.place([pod("b", cpu: 1), pod("c", cpu: 1)], on: ready, size: size)
        #expect(simulation.placement == ["default/b": "sim-0001", "default/c": "sim-0001"])
        // sim-0001 goes: both move to sim-0002.
        let (unplaced, perMachine, used) = simulation.place([pod("b", cpu: 1), pod("c", cpu: 1), pod("d", cpu: 1)], on: [ready[1]], size: size)
        #expect(unplaced.map(\.id) == ["default/d"])
        #expect(perMachine == ["sim-0002": 2])
        #expect(used.cpu == 2)
    }

    @Test("the real fleet: nodes seen after the first step are launches, nodes gone before the last are terminations")
    func real() {
        let nodes: [[String: Bool]] = [["i-a": true], ["i-a": true, "i-b": false], ["i-a": true, "i-b": true], ["i-b": true]]
        let steps = history(-2, 3, real: { m in m < 0 ? ["i-z": true] : nodes[m] }) { _ in [] }
        let (summary, timeline) = realFleet(steps, settings: BacktestSettings(step: minute, bootTime: minute, start: t0))

        #expect(timeline.map(\.nodes) == [1, 2, 2, 1])
        #expect(timeline.map(\.ready) == [1, 1, 2, 1])
        #expect(summary == BacktestSummary(launches: 1, terminations: 1, peakNodes: 2, meanNodes: 1.5, unschedulableMinutes: 0,
                                           nodeHours: 0.1, stepsWithoutData: 0))
    }

    @Test("pools, a configuration without sizes, and a boot time past the provision timeout are refused with their fix")
    func refused() throws {
        let config = try #require(parse(minimalConfig))
        let settings = BacktestSettings(step: minute, bootTime: 2 * minute, start: t0)
        #expect(settings.problems(for: config).isEmpty)
        #expect(BacktestSettings.defaultBootTime(for: config) == 120)
        let fastBoot = try #require(parse(minimalConfig.with("boot_grace", "45s")))
        #expect(BacktestSettings.defaultBootTime(for: fastBoot) == 45)

        let slow = BacktestSettings(step: minute, bootTime: 15 * minute, start: t0)
        #expect(slow.problems(for: config) == ["--boot-time 15m is not shorter than provision_timeout 15m: every launch would be a failed boot; "
            + "give a shorter --boot-time"])

        var pooled = config
        pooled.pools = ["general": PoolSettings(workers: config.workers, nodes: NodeBounds(min: 1, max: 4), scaleUp: config.scaleUp,
                                                 scaleDown: config.scaleDown)]
        #expect(settings.problems(for: pooled).first?.hasPrefix("pools: backtest does not replay pools yet") == true)

        var unsized = config
        unsized.workers.sizes = [:]
        #expect(settings.problems(for: unsized).first?.hasPrefix("workers.sizes:") == true)
    }
}
