import Foundation
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// `schedules[].time_zone` as a run reads it: the zone file from the system's tz database
/// (`$TZDIR`, else /usr/share/zoneinfo) through `ConfigLoader`, parsed by the core's TZif reader,
/// whose offsets GNU `date` (glibc reading the same files) confirms.
@Suite struct ScheduleZoneTests {
    static let yaml = """
    cluster_id: demo
    table: kscaler
    prometheus: {url: "http://prometheus:9090"}
    workers:
      image_id: ami-0123456789abcdef0
      instance_types: [t3.large]
      subnets: [subnet-a]
      sizes: {t3.large: {cpu: 2, memory: 8Gi}}
    schedules:
      - {name: business-hours, cron: "0 8 * * MON-FRI", duration: 10h, time_zone: ZONE, min: 4}
    """

    func load(zone: String, environment: [String: String] = [:]) -> Result<ConfigLoader.Loaded, ConfigErrors> {
        let config = Self.yaml.replacingOccurrences(of: "ZONE", with: zone)
        return ConfigLoader.load(explicitPath: "/etc/kscaler/test.yaml", environment: environment, fileExists: { _ in false },
                                 readFile: { $0 == "/etc/kscaler/test.yaml" ? Data(config.utf8) : FileManager.default.contents(atPath: $0) })
    }

    @Test func aZoneIsReadFromTheSystemDatabaseOrTZDIR() throws {
        let loaded = try load(zone: "Europe/Berlin").get()
        #expect(loaded.config.schedules.first?.timeZone.name == "Europe/Berlin")
        #expect(loaded.source(of: "schedules.business-hours.cron") == .file("/etc/kscaler/test.yaml"))

        // TZDIR moves the database, as it does for libc: a zone only there is found, the system's are not.
        let directory = try ChildProcess.temporaryDirectory("kscaler-tzdir")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("Office"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/usr/share/zoneinfo/America/New_York", toPath: directory.appendingPathComponent("Office/East").path)
        let moved = try load(zone: "Office/East", environment: ["TZDIR": directory.path]).get()
        #expect(moved.config.schedules.first?.timeZone.offset(at: 1_800_000_000) == -5 * 3600)
        guard case .failure(let errors) = load(zone: "Europe/Berlin", environment: ["TZDIR": directory.path]) else {
            Issue.record("Europe/Berlin found outside TZDIR")
            return
        }
        #expect(errors.problems.map(\.path) == ["schedules[0].time_zone"])
        #expect(errors.problems.first?.message == "unknown time zone \"Europe/Berlin\": no file \(directory.path)/Europe/Berlin")
        #expect(errors.problems.first?.fix.contains("see \(directory.path)") == true)
    }

    /// Instants from 1900 to 2100 (the 64-bit transitions, and the POSIX footer past them) and
    /// the seconds around 2026's changes, in zones with DST both sides of the equator, half-hour
    /// and 45-minute offsets, and none.
    @Test(arguments: ["Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham",
                      "Europe/London", "UTC"])
    func offsetsAgreeWithGNUDate(zone: String) async throws {
        let file = try #require(FileManager.default.contents(atPath: "/usr/share/zoneinfo/\(zone)"), "tzdata is not installed")
        let rules = try #require(TimeZoneRules.parse(tzif: Array(file), name: zone).success)
        var instants: [Int64] = (0..<400).map { index in -2_200_000_000 + Int64(index) * 15_778_463 + Int64(index * 7919 % 86400) }
        for change in [1_774_746_000, 1_792_890_000, 1_772_953_200, 1_793_512_800] as [Int64] { instants += [change - 1, change, change + 1] }
        let input = try ChildProcess.temporaryDirectory("kscaler-date").appendingPathComponent("instants")
        defer { try? FileManager.default.removeItem(at: input.deletingLastPathComponent()) }
        try instants.map { "@\($0)" }.joined(separator: "\n").write(to: input, atomically: true, encoding: .utf8)
        let stdout = Pipe(), stderr = Pipe()
        let date = try ChildProcess.launch("/usr/bin/date", ["-f", input.path, "+%s %::z"], environment: ["TZ": zone, "LC_ALL": "C"],
                                           stdout: stdout, stderr: stderr)
        let output = await ChildProcess.collect(date, stdout: stdout, stderr: stderr, timeout: .seconds(120))
        #expect(output.status == 0, "\(String(decoding: output.stderr, as: UTF8.self))")
        let lines = String(decoding: output.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == instants.count)
        var disagreements: [String] = []
        for line in lines {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let instant = Int64(parts[0]) else { continue }
            let sign = parts[1].hasPrefix("-") ? -1 : 1
            let fields = parts[1].dropFirst().split(separator: ":").compactMap { Int($0) }
            guard fields.count == 3 else { continue }
            let expected = sign * (fields[0] * 3600 + fields[1] * 60 + fields[2])
            if rules.offset(at: instant) != expected { disagreements.append("@\(instant): date \(parts[1]), kscaler \(rules.offset(at: instant))s") }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }
}

extension Result {
    fileprivate var success: Success? { if case .success(let value) = self { value } else { nil } }
}

/// What a run with `schedules:` reports beyond its decision: the bounds in force as gauges,
/// and in history the windows that raised them.
@Suite struct ScheduleReportingTests {
    static func report(raised: Bool) throws -> RunReport {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)  // Friday 08:00 UTC
        var report = RunReport(runID: "r1", mode: .run, clusterID: "demo", startedAt: t0)
        report.outcome = .acted
        var policy = Policy(nodes: NodeBounds(min: 1, max: 10), capacity: WorkerCapacity(machineTypes: [], placements: [], sizes: [:]))
        policy.schedules = [ScheduleWindow(name: "business-hours", cron: try #require(CronExpression("0 8 * * MON-FRI")),
                                           duration: 36000, min: 6, max: 12)]
        let observation = Observation(readings: [.unschedulablePods: .value(0), .nodeReady: .value(1)], nodes: [], instances: [])
        report.decision = KScalerCore.decide(observation, policy: policy, now: raised ? t0 : t0.addingTimeInterval(-3600))
        return report
    }

    @Test func theBoundsInForceArePushed() throws {
        let lines = Pushgateway.exposition(try Self.report(raised: true)).split(separator: "\n")
        #expect(lines.contains("kscaler_min_nodes 6"))
        #expect(lines.contains("kscaler_max_nodes 12"))
        #expect(lines.contains("kscaler_schedules_active 1"))
        let quiet = Pushgateway.exposition(try Self.report(raised: false)).split(separator: "\n")
        #expect(quiet.contains("kscaler_min_nodes 1") && quiet.contains("kscaler_max_nodes 10") && quiet.contains("kscaler_schedules_active 0"))
    }

    @Test func historyNamesTheWindowThatRaisedTheBounds() throws {
        let event = try #require(try Self.report(raised: true).historyEvent)
        #expect(event.action == "scale_up")
        #expect(event.scheduledWindows == ["business-hours"])
        let json = String(decoding: try KScalerTable.encoder.encode(event), as: UTF8.self)
        #expect(json.contains("\"scheduled_windows\":[\"business-hours\"]"))
        #expect(event.reasons.first == "scheduled min 1 → 6, max 10 → 12 by business-hours (0 8 * * MON-FRI, UTC) until 2027-01-15T18:00:00Z")
        let decoded = try KScalerTable.decoder.decode(RunEvent.self, from: Data(json.utf8))
        #expect(decoded == event)
    }
}
