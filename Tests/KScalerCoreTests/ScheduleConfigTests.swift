import Foundation
import Testing
@testable import KScalerCore

/// The system's tz database, read the way `ConfigLoader` reads it.
var systemZones: ZoneDatabase { ZoneDatabase(directory: "/usr/share/zoneinfo", readFile: { FileManager.default.contents(atPath: $0).map(Array.init) }) }

private func parseWithZones(_ tree: ConfigValue) -> Result<KScalerConfig, ConfigErrors> { KScalerConfig.parse(tree, zones: systemZones) }

private func problemsWithZones(_ tree: ConfigValue) -> [ConfigProblem] {
    if case .failure(let errors) = parseWithZones(tree) { return errors.problems }
    return []
}

private let businessHours: ConfigValue = ["name": "business-hours", "cron": "0 8 * * MON-FRI", "duration": "10h",
                                          "time_zone": "Europe/Berlin", "min": 4]

@Suite("schedules: configuration")
struct ScheduleConfigTests {
    @Test("a window parses with its zone from the tz database; an unnamed one is UTC and listed by its place")
    func valid() throws {
        let tree = minimalConfig.with("schedules", [businessHours, ["cron": "*/30 0-5 * * *", "duration": "30m", "max": 20]])
        let config = try parseWithZones(tree).get()
        #expect(config.schedules.count == 2)
        let first = config.schedules[0]
        #expect(first.name == "business-hours" && first.label == "business-hours")
        #expect(first.cron.text == "0 8 * * MON-FRI")
        #expect(first.duration == 36000)
        #expect(first.timeZone.name == "Europe/Berlin")
        #expect(first.min == 4 && first.max == nil && first.pool == nil)
        #expect(config.schedules[1].label == "#2")
        #expect(config.schedules[1].timeZone == .utc)
        #expect(config.policy.schedules == config.schedules)

        let lines = config.effectiveSettings(machines: workerMachines).filter { $0.path.hasPrefix("schedules.") }.map { "\($0.path)=\($0.value)" }
        #expect(lines == ["schedules.business-hours.cron=0 8 * * MON-FRI", "schedules.business-hours.duration=10h",
                          "schedules.business-hours.time_zone=Europe/Berlin", "schedules.business-hours.min=4",
                          "schedules.#2.cron=*/30 0-5 * * *", "schedules.#2.duration=30m", "schedules.#2.time_zone=UTC", "schedules.#2.max=20"])
        // YAML only: no environment variable sets schedules, and the round trip leaves them out.
        #expect(!KScalerConfig.environmentVariables.values.contains { $0.first == "schedules" })
    }

    @Test("every kind of mistake is reported at once, with the window's place, the value and a fix")
    func everyProblem() throws {
        let tree = minimalConfig.with("nodes.max", 10).with("schedules", [
            ["cron": "0 8 * * MON-FRY", "duration": "10h", "min": 4],                 // 0: bad weekday
            ["cron": "0 8 * * *", "duration": "10h", "time_zone": "Europe/Berln", "min": 4],  // 1: unknown zone
            ["cron": "0 8 * * *", "duration": "0s", "min": 4],                        // 2: not positive
            ["cron": "0 8 * * *", "duration": "32d", "min": 4],                       // 3: past the bound
            ["cron": "0 8 * * *", "duration": "1h"],                                  // 4: neither min nor max
            ["cron": "0 8 * * *", "duration": "1h", "min": 20],                       // 5: above any max
            ["name": "peak", "cron": "0 8 * * *", "duration": "1h", "min": 3],
            ["name": "peak", "cron": "0 9 * * *", "duration": "1h", "min": 3],        // 7: name taken
            ["cron": "0 8 * * *", "duration": "1h", "min": 3, "time_zon": "UTC"],     // 8: unknown key
            ["cron": "0 8 * * *", "duration": "1h", "min": 3, "pool": "batch"],       // 9: pool without pools
            ["cron": "0 8 * * *", "duration": "1h", "min": 3, "time_zone": "../../etc/passwd"],  // 10
            ["cron": "0 8 * * *", "duration": "1h", "min": 5, "max": 4],              // 11: min above its own max
            ["duration": "1h", "min": 3],                                             // 12: no cron
        ])
        let found = Dictionary(problemsWithZones(tree).map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        func check(_ path: String, _ message: String, fix: String) {
            guard let problem = found[path] else {
                Issue.record("no problem at \(path); found \(found.keys.sorted())")
                return
            }
            #expect(problem.message.contains(message), "\(problem)")
            #expect(problem.fix.contains(fix), "\(problem)")
        }
        check("schedules[0].cron", "day-of-week field \"MON-FRY\": \"FRY\" is not a number or a name", fix: "0-7 (0 and 7 are Sunday) or SUN-SAT")
        check("schedules[1].time_zone", "unknown time zone \"Europe/Berln\": no file /usr/share/zoneinfo/Europe/Berln",
              fix: "such as Europe/Berlin (see /usr/share/zoneinfo)")
        check("schedules[2].duration", "must be longer than 0", fix: "positive duration")
        check("schedules[3].duration", "32d is longer than 31d", fix: "raise nodes.min instead")
        check("schedules[4].min", "a window needs min or max", fix: "min: 4")
        check("schedules[5].min", "min 20 is above the highest max it could ever have, 10", fix: "lower min to 10 or less, or raise nodes.max")
        check("schedules[7].name", "\"peak\" is also the name of schedules[6]", fix: "its own name")
        check("schedules[8].time_zon", "unknown key \"time_zon\"", fix: "did you mean \"time_zone\"?")
        check("schedules[9].pool", "is used only with pools:", fix: "remove it")
        check("schedules[10].time_zone", "\"../../etc/passwd\" is not an IANA time zone name", fix: "Europe/Berlin")
        check("schedules[11].min", "min 5 is above the window's max 4", fix: "make min at most max")
        check("schedules[12].cron", "is required", fix: "0 8 * * MON-FRI")
        #expect(found.count == 12, "\(found.keys.sorted())")
        // Nothing else was blamed: the good window 6 has no problem.
        #expect(!found.keys.contains { $0.hasPrefix("schedules[6]") })
    }

    @Test("schedules is a list of maps")
    func shapes() {
        let notAList = problemsWithZones(minimalConfig.with("schedules", "0 8 * * *"))
        #expect(notAList.map(\.path) == ["schedules"])
        #expect(notAList.first?.message == "expected a list, got a string")
        let notAMap = problemsWithZones(minimalConfig.with("schedules", ["0 8 * * *"]))
        #expect(notAMap.map(\.path) == ["schedules[0]"])
    }

    @Test("without a tz database only UTC is known, and the problem says so")
    func noDatabase() {
        let tree = minimalConfig.with("schedules", [businessHours])
        let problem = problems(tree).first { $0.path == "schedules[0].time_zone" }
        #expect(problem?.message == "unknown time zone \"Europe/Berlin\": no time zone database was given")
        #expect(parse(minimalConfig.with("schedules", [["cron": "0 8 * * *", "duration": "1h", "min": 2]]))?.schedules.count == 1)
    }

    @Test("a zone file that is not TZif is refused with the path it came from")
    func unreadableZone() {
        let garbage = ZoneDatabase(directory: "/zones", readFile: { $0 == "/zones/Europe/Berlin" ? Array("not a zone".utf8) : nil })
        guard case .failure(let errors) = KScalerConfig.parse(minimalConfig.with("schedules", [businessHours]), zones: garbage) else {
            Issue.record("parsed")
            return
        }
        #expect(errors.problems.map(\.message) == ["time zone \"Europe/Berlin\": /zones/Europe/Berlin cannot be used: it is not a TZif file (no TZif magic)"])
    }

    @Test("with pools a window names its pool: required, known (did you mean), and its min within what the pool can have")
    func pools() throws {
        let pooled: ConfigValue = [
            "cluster_id": "demo", "table": "kscaler", "prometheus": ["url": "http://127.0.0.1:9090"], "nodes": ["max": 8],
            "pools": [
                "general": ["image_id": "ami-0123456789abcdef0", "instance_types": ["t3.large"], "subnets": ["subnet-0a"],
                            "sizes": ["t3.large": ["cpu": 2, "memory": "8Gi"]], "min": 1, "max": 6],
                "batch": ["image_id": "ami-0123456789abcdef0", "instance_types": ["c5.xlarge"], "subnets": ["subnet-0b"],
                          "sizes": ["c5.xlarge": ["cpu": 4, "memory": "8Gi"]], "max": 6],
            ],
        ]
        let good = try parseWithZones(pooled.with("schedules", [["cron": "0 1 * * *", "duration": "4h", "min": 3, "pool": "batch"]])).get()
        #expect(good.schedules.first?.pool == "batch")
        let found = problemsWithZones(pooled.with("schedules", [
            ["cron": "0 1 * * *", "duration": "4h", "min": 3],
            ["cron": "0 1 * * *", "duration": "4h", "min": 3, "pool": "bach"],
            ["cron": "0 1 * * *", "duration": "4h", "min": 7, "pool": "batch"],
            ["cron": "0 1 * * *", "duration": "4h", "min": 9, "max": 9, "pool": "general"],
        ]))
        let byPath = Dictionary(found.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(byPath["schedules[0].pool"]?.message == "is required with pools:")
        #expect(byPath["schedules[0].pool"]?.fix == "name the pool the window raises, one of: batch, general")
        #expect(byPath["schedules[1].pool"]?.fix.hasPrefix("did you mean batch?") == true)
        #expect(byPath["schedules[2].min"]?.message == "min 7 is above the highest max it could ever have, 6 (pool batch's max or a window's max)")
        #expect(byPath["schedules[3].min"]?.message == "min 9 is above the cluster-wide max 8 across pools")
        #expect(found.count == 4, "\(found)")
    }
}

@Suite("schedules: the decision")
struct ScheduleDecideTests {
    /// Friday 2027-01-15 08:00 UTC is `t0`: a weekday window starting at 08:00 has just started.
    static let weekdays = ScheduleWindow(name: "business-hours", cron: try! CronExpression.parse("0 8 * * MON-FRI").get(), duration: 10 * 3600, min: 6)

    static func policy(min: Int = 1, max: Int = 10, maxStep: Int = 10, windows: [ScheduleWindow] = [weekdays]) -> Policy {
        var policy = Policy.test(min: min, max: max, scaleUp: ScaleUpPolicy(maxStep: maxStep))
        policy.schedules = windows
        return policy
    }

    @Test("a scheduled min raises the fleet in one run, whatever the cooldown, within max_step")
    func raisesInOneRun() throws {
        var cluster = Cluster(workers: 2)
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-10)  // the scale-up cooldown is running
        let decision = cluster.decide(Self.policy())
        #expect(decision.scaleUpCount == 4)
        #expect(decision.counts.desired == 6)
        #expect(decision.reasons(.belowMinimum) == ["2 managed nodes < min 6: scale up to the minimum whatever the metrics say"])
        #expect(decision.reasons(.scheduled) == ["scheduled min 1 → 6 by business-hours (0 8 * * MON-FRI, UTC) until 2027-01-15T18:00:00Z"])
        let status = try #require(decision.schedule)
        #expect(status.active.map(\.name) == ["business-hours"])
        #expect(status.bounds == [.init(pool: nil, baseMin: 1, baseMax: 10, min: 6, max: 10, raisedBy: ["business-hours"])])
        #expect(status.nextChange?.at == cluster.now.addingTimeInterval(10 * 3600))
        #expect(status.nextChange?.ending == ["business-hours"])

        let capped = cluster.decide(Self.policy(maxStep: 3))
        #expect(capped.scaleUpCount == 3)
        #expect(capped.reasons(.capped) == ["4 nodes wanted, capped to 3 by scale_up.max_step"])
    }

    @Test("outside the window the base bounds hold, and the decision says when the next window starts")
    func outside() throws {
        var cluster = Cluster(workers: 2)
        cluster.now = t0.addingTimeInterval(-60)  // 07:59
        let decision = cluster.decide(Self.policy())
        #expect(decision.isNone)
        #expect(!decision.has(.scheduled))
        #expect(decision.schedule?.active.isEmpty == true)
        #expect(decision.schedule?.nextChange?.at == t0)
        #expect(decision.schedule?.nextChange?.bounds.map(\.min) == [6])
        // Without schedules there is no status at all.
        #expect(cluster.decide(.test()).schedule == nil)
    }

    @Test("when a window ends, the fleet above the restored min shrinks by the normal rules, not as a bound")
    func windowEnd() throws {
        var cluster = Cluster(workers: 6)
        cluster.now = t0.addingTimeInterval(10 * 3600)  // 18:00: the window is over
        cluster.set(.cpuUtilizationWindowMax, .value(0.05))
        cluster.set(.memoryUtilizationWindowMax, .value(0.05))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-120)
        let delayed = cluster.decide(Self.policy())
        #expect(delayed.isNone)
        #expect(delayed.has(.scaleDownDelay))
        #expect(!delayed.has(.aboveMaximum))
        cluster.state.lastScaleUpAt = cluster.now.addingTimeInterval(-3600)
        let shrinking = cluster.decide(Self.policy())
        #expect(shrinking.victimIDs?.count == 1)  // scale_down.max_step 1, not straight to min 1
        #expect(shrinking.has(.lowUtilization))
        #expect(!shrinking.has(.aboveMaximum))
        cluster.set(.cpuUtilizationWindowMax, .value(0.5))
        #expect(cluster.decide(Self.policy()).isNone, "busy nodes stay after the window")
    }

    @Test("a window that raised max: after it, a fleet above nodes.max is a bounds scale-down")
    func raisedMaxEnds() throws {
        let burst = ScheduleWindow(name: "burst", cron: try CronExpression.parse("0 8 * * *").get(), duration: 3600, min: 6, max: 6)
        var cluster = Cluster(workers: 6)
        cluster.set(.cpuUtilizationWindowMax, .value(0.5))
        cluster.now = t0.addingTimeInterval(1800)
        #expect(cluster.decide(Self.policy(max: 4, windows: [burst])).isNone)
        cluster.now = t0.addingTimeInterval(3600)
        let after = cluster.decide(Self.policy(max: 4, windows: [burst]))
        #expect(after.has(.aboveMaximum))
        #expect(after.victimIDs?.count == 1)
    }

    @Test("with pools, a window raises its own pool's min only")
    func pooled() throws {
        var cluster = Cluster()
        cluster.addWorker()
        cluster.instances[0].pool = "general"
        let sizes = ["t3.large": WorkerSize(cpuCores: 2, memoryBytes: 8 * gib)]
        var policy = Policy.test(max: 12)
        policy.pools = ["general", "batch"].map { name in
            PoolPolicy(name: name, nodes: NodeBounds(min: name == "general" ? 1 : 0, max: 6),
                       capacity: WorkerCapacity(machineTypes: ["t3.large"], placements: ["subnet-\(name)"], sizes: sizes))
        }
        policy.defaultPool = "general"
        policy.schedules = [ScheduleWindow(name: "nightly", cron: try CronExpression.parse("0 8 * * *").get(), duration: 3600, min: 2, pool: "batch")]
        var observation = cluster.observation
        observation.poolReadings = ["general": [.cpuUtilization: .value(0.5), .memoryUtilization: .value(0.5),
                                                .cpuUtilizationWindowMax: .value(0.5), .memoryUtilizationWindowMax: .value(0.5)]]
        let decision = KScalerCore.decide(observation, policy: policy, now: t0)
        #expect(decision.pools.first { $0.name == "batch" }?.action == .scaleUp(count: 2))
        #expect(decision.pools.first { $0.name == "batch" }?.min == 2)
        #expect(decision.pools.first { $0.name == "general" }?.action == Decision.Action.none)
        #expect(decision.reasons(.scheduled) == ["pool batch: scheduled min 0 → 2 by nightly (0 8 * * *, UTC) until 2027-01-15T09:00:00Z"])
    }
}
