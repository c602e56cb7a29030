import Foundation
import KScaler
import KScalerCore
import Testing
@testable import kscaler

/// What `plan` and `run` print about `schedules:`: the bounds in force beside the base, each
/// active window until when, and the next change.
@Suite struct ScheduleReportPrinterTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)  // Friday 2027-01-15 08:00 UTC

    static func lines(at now: Date) throws -> [String] {
        var policy = Policy(nodes: NodeBounds(min: 2, max: 10), capacity: WorkerCapacity(machineTypes: [], placements: [], sizes: [:]))
        policy.schedules = [ScheduleWindow(name: "business-hours", cron: try #require(CronExpression("0 8 * * MON-FRI")), duration: 36000, min: 4)]
        var report = RunReport(runID: "run-1", mode: .plan, clusterID: "demo", startedAt: now)
        report.decision = decide(Observation(readings: [.unschedulablePods: .value(0), .nodeReady: .value(1)], nodes: [], instances: []),
                                 policy: policy, now: now)
        return ReportPrinter.human(report, bounds: policy.nodes, now: now).split(separator: "\n").map(String.init)
    }

    @Test func planShowsTheActiveWindowAndTheNextChange() throws {
        let lines = try Self.lines(at: Self.now.addingTimeInterval(3600))
        #expect(lines.contains { $0.hasPrefix("nodes ") && $0.contains("bounds 4…10 (scheduled; base 2…10)") }, "\(lines)")
        #expect(lines.contains("schedule    business-hours  0 8 * * MON-FRI (UTC) · active 2027-01-15T08:00:00Z until 2027-01-15T18:00:00Z (in 9h) · min 4"),
                "\(lines)")
        #expect(lines.contains("schedule    next change 2027-01-15T18:00:00Z (in 9h): bounds 4…10 → 2…10 (business-hours ends)"), "\(lines)")
    }

    @Test func planOutsideAWindowShowsWhenTheNextOneStarts() throws {
        let lines = try Self.lines(at: Self.now.addingTimeInterval(11 * 3600))  // Friday 19:00: the next start is Monday
        #expect(lines.contains { $0.hasPrefix("nodes ") && $0.contains("bounds 2…10") && !$0.contains("scheduled") })
        #expect(lines.contains("schedule    no window active"))
        #expect(lines.contains("schedule    next change 2027-01-18T08:00:00Z (in 2d13h): bounds 2…10 → 4…10 (business-hours starts)"), "\(lines)")
    }
}
