import Foundation
import KScaler
import KScalerCore
import Testing
import TestSupport

/// `schedules:` through the release binary against moto (signature checking on) and a real
/// Prometheus: `plan` shows the window in force and the next change, `config check` lists it.
@Suite struct ScheduleEndToEndTests {
    /// A weekday-agnostic window that started at the top of the current Berlin hour and lasts
    /// 3h, so it is active whenever the test runs (the zone read from the system's tz database).
    static func windowActiveNow() throws -> (yaml: String, endsAt: Date) {
        let file = try #require(FileManager.default.contents(atPath: "/usr/share/zoneinfo/Europe/Berlin"), "tzdata is not installed")
        let berlin = try #require(try? TimeZoneRules.parse(tzif: Array(file), name: "Europe/Berlin").get())
        let now = Int64(Date().timeIntervalSince1970)
        let hour = ((berlin.local(now) % 86400) + 86400) % 86400 / 3600
        let started = berlin.instant(local: berlin.local(now) - berlin.local(now) % 3600)
        let yaml = """
        schedules:
          - {name: business-hours, cron: "0 \(hour) * * *", duration: 3h, time_zone: Europe/Berlin, min: 3}
        """
        return (yaml, Date(timeIntervalSince1970: TimeInterval(started + 3 * 3600)))
    }

    @Test func planShowsTheActiveWindowAndRaisesTheFleetToItsMin() async throws {
        let (schedule, endsAt) = try Self.windowActiveNow()
        try await EndToEndHarness.with(extraConfig: schedule, minNodes: 1) { harness in
            _ = try await harness.launchWorkers(1)
            try await harness.waitForMetrics()

            let (result, report) = try await harness.report("plan")
            #expect(result.status == 0, "\(result.combined)")
            let decision = try #require(report?.decision)
            #expect(decision.action == .scaleUp(count: 2), "\(decision.reasons)")
            #expect(decision.schedule?.active.map(\.name) == ["business-hours"])
            #expect(decision.schedule?.active.first?.endsAt == endsAt)
            #expect(decision.schedule?.bounds.first.map { [$0.baseMin, $0.min] } == [1, 3])
            #expect(decision.schedule?.nextChange?.at == endsAt)
            #expect(decision.reasons.first?.message.hasPrefix("scheduled min 1 → 3 by business-hours (0 ") == true)

            let human = try await harness.kscaler(["plan"])
            #expect(human.status == 0, "\(human.combined)")
            #expect(human.stdout.contains("bounds 3…6 (scheduled; base 1…6)"), "\(human.stdout)")
            #expect(human.stdout.contains("schedule    business-hours  0 "), "\(human.stdout)")
            #expect(human.stdout.contains("(Europe/Berlin) · active "), "\(human.stdout)")
            #expect(human.stdout.contains("schedule    next change \(endsAt.formatted(.iso8601))"), "\(human.stdout)")
            #expect(human.stdout.contains("bounds 3…6 → 1…6 (business-hours ends)"), "\(human.stdout)")

            let check = try await harness.kscaler(["config", "check"])
            #expect(check.status == 0, "\(check.combined)")
            for line in ["schedules.business-hours.duration", "schedules.business-hours.time_zone", "schedules.business-hours.min"] {
                #expect(check.stdout.contains(line), "\(check.stdout)")
            }
            let zoneLine = check.stdout.split(separator: "\n").first { $0.hasPrefix("schedules.business-hours.time_zone") }
            #expect(zoneLine?.contains("Europe/Berlin") == true && zoneLine?.contains("file \(harness.configPath)") == true, "\(check.stdout)")
        }
    }

    @Test func anUnknownZoneStopsConfigCheckAndRunWithWhereItLooked() async throws {
        try await EndToEndHarness.with(extraConfig: """
            schedules:
              - {cron: "0 8 * * MON-FRI", duration: 10h, time_zone: Europe/Berln, min: 3}
            """) { harness in
            for command in [["config", "check"], ["run"]] {
                let result = try await harness.kscaler(command)
                #expect(result.status == 2, "\(command): \(result.combined)")
                #expect(result.combined.contains("schedules[0].time_zone: unknown time zone \"Europe/Berln\": no file /usr/share/zoneinfo/Europe/Berln"),
                        "\(result.combined)")
            }
            #expect(try await harness.instances().isEmpty)
        }
    }
}
