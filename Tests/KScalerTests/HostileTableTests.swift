import AWS
import Foundation
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// State items edited by hand (the console, the AWS CLI) or written by a host whose clock runs
/// ahead, against moto's DynamoDB. Nothing read from the table is trusted by shape: a bad
/// value is named in a clear error, no run acts on it, and `lease break` always repairs the
/// lease.
@Suite struct HostileTableTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A fresh table whose state item is exactly `attributes` (plus its key).
    func table(withState attributes: DynamoDBItem) async throws -> KScalerTable {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        try await table.dynamoDB.putItem(table: table.tableName, item: table.stateKey.merging(attributes) { _, new in new })
        return table
    }

    func untrustworthy(_ acquisition: LeaseAcquisition) -> [String]? {
        if case .untrustworthy(_, let problems) = acquisition { problems } else { nil }
    }

    @Test func aFencingTokenBeyondIntMaxIsReportedNotACrashAndBreakResetsIt() async throws {
        let table = try await table(withState: ["lease_token": .n("9223372036854775808")])
        let holder = try await table.holder()
        #expect(holder.token == nil)
        #expect(holder.problems == ["lease_token is \"9223372036854775808\", outside 0…9223372036854775807"])

        let problems = try #require(untrustworthy(try await table.acquire(owner: "run", ttl: .seconds(60), now: t0)))
        #expect(problems.contains { $0.contains("lease_token") && $0.contains("9223372036854775809") }, "\(problems)")
        #expect(try await table.holder().owner == nil, "the lease taken on the way is given back")

        let broken = try await table.breakLease()
        #expect(broken.tokenReset)
        guard case .acquired(let lease, _) = try await table.acquire(owner: "after", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquirable after the break"); return
        }
        #expect(lease.token == 1)
    }

    @Test func aFractionalTokenIsNeverRoundedIntoAFencingCondition() async throws {
        let table = try await table(withState: ["lease_token": .n("2.5")])
        let problems = try #require(untrustworthy(try await table.acquire(owner: "run", ttl: .seconds(60), now: t0)))
        #expect(problems == ["lease_token is \"3.5\", not a whole number"])
        #expect(try await table.breakLease().tokenReset)
        #expect(try await table.holder() == LeaseHolder(owner: nil, token: 0, acquiredAt: nil, expiresAt: nil))
    }

    @Test func aTokenOfTheWrongTypeIsNamedAndBreakRemovesIt() async throws {
        let table = try await table(withState: ["lease_token": .s("seven")])
        let problems = try #require(untrustworthy(try await table.acquire(owner: "run", ttl: .seconds(60), now: t0)))
        #expect(problems == ["lease_token is a string (S), expected a number (N)"])
        #expect(try await table.breakLease().tokenReset)
        guard case .acquired(let lease, _) = try await table.acquire(owner: "after", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquirable after the break"); return
        }
        #expect(lease.token == 1)
    }

    /// kscaler always writes owner and expiry together; an owner of another type with no
    /// expiry would block every run for ever. Runs refuse with its description; `lease break`
    /// (which compares the owner with what it read, whatever its type) clears it.
    @Test func anOwnerOfTheWrongTypeWithoutExpiryBlocksNothingOnceBroken() async throws {
        let table = try await table(withState: ["lease_owner": .n("42"), "lease_token": .n("7")])
        let holder = try await table.holder()
        #expect(holder.owner == nil)
        #expect(holder.problems == ["lease_owner is a number (N), expected a string (S)",
                                    "lease_expires_at is missing although lease_owner is set: the lease would never expire"])
        let problems = try #require(untrustworthy(try await table.acquire(owner: "run", ttl: .seconds(60), now: t0)))
        #expect(problems == holder.problems)

        let broken = try await table.breakLease()
        #expect(broken.cleared && !broken.tokenReset)
        guard case .acquired(let lease, _) = try await table.acquire(owner: "after", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquirable after the break"); return
        }
        #expect(lease.token == 8, "a readable token keeps growing")
    }

    /// A host whose clock runs an hour ahead wrote a lease that, by our clock, lasts an hour
    /// and two minutes. Honouring it would stop scaling for an hour without a word.
    @Test func aLeaseExpiringBeyondTTLPlusSkewIsFlaggedNotHonouredSilently() async throws {
        let table = try await table(withState: [:])
        let fastClock = t0.addingTimeInterval(3600)
        guard case .acquired = try await table.acquire(owner: "fast-host/1/a", ttl: .seconds(120), now: fastClock) else {
            Issue.record("not acquired"); return
        }
        let problems = try #require(untrustworthy(try await table.acquire(owner: "run", ttl: .seconds(120), now: t0, clockSkew: 30)))
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.first?.hasPrefix("lease_expires_at 2027-01-15T09:02:00Z is 1h2m from now, more than lease.ttl (2m) + lease.max_clock_skew (30s)") == true,
                "\(problems)")
        #expect(try await table.holder().owner == "fast-host/1/a", "a flagged lease is reported, not taken over")

        // Within ttl + skew it is an ordinary live lease.
        let slightlyAhead = try await table.acquire(owner: "run", ttl: .seconds(120), now: fastClock.addingTimeInterval(-20), clockSkew: 30)
        guard case .heldByOther(let holder) = slightlyAhead else { Issue.record("\(slightlyAhead)"); return }
        #expect(holder.owner == "fast-host/1/a")
    }

    @Test func anUnreadableStateAttributeStopsTheRunAndGivesTheLeaseBack() async throws {
        let table = try await table(withState: ["last_scale_up_at": .s("yesterday"),
                                                "launch_intent": .m(["launch_id": .s("ks-1"), "count": .n("2.5"), "created_at": .n("1800000000")])])
        let problems = try #require(untrustworthy(try await table.acquire(owner: "run", ttl: .seconds(60), now: t0)))
        #expect(problems == ["launch_intent.count is \"2.5\", not a whole number",
                             "last_scale_up_at is a string (S), expected a number of epoch seconds (N)"])
        #expect(try await table.holder().owner == nil)
        await #expect(throws: StateItemError.self) { _ = try await table.readState() }
    }

    @Test func oneUnreadableHistoryItemIsSkippedAndNamed() async throws {
        let table = try await table(withState: [:])
        guard case .acquired(let lease, _) = try await table.acquire(owner: "run", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquired"); return
        }
        let event = RunEvent(runID: "r1", startedAt: t0, finishedAt: t0, outcome: .acted, action: "scale_up", counts: nil,
                             reasons: [], actions: [], errors: [], leaseToken: 1)
        #expect(try await table.finish(lease: lease, document: nil, event: event, retention: 600))
        try await table.dynamoDB.putItem(table: table.tableName, item: [
            "cluster_id": .s(table.clusterID), "record": .s("event#2027-01-15T08:00:00.000Z#edited"), "event": .s("{not json"),
        ])
        let (events, unreadable) = try await table.history(limit: 10)
        #expect(events.map(\.runID) == ["r1"])
        #expect(unreadable == ["history item event#2027-01-15T08:00:00.000Z#edited has no readable `event` attribute"])
    }
}

/// The decimal text DynamoDB sends, parsed without `Double` in between.
@Suite struct TableNumberTests {
    @Test func wholeNumbersAreParsedFromTheirDigitsAndRangeChecked() throws {
        #expect(try TableNumber.wholeNumber("9223372036854775807", in: 0...Int.max).get() == Int.max)
        #expect(try TableNumber.wholeNumber("-3", in: -5...5).get() == -3)
        for bad in ["9223372036854775808", "1e3", "2.5", "2.0", "", "-", " 1", "0x10", "NaN", "１"] {
            #expect(throws: TableNumber.Problem.self, "\(bad)") { try TableNumber.wholeNumber(bad, in: 0...Int.max).get() }
        }
        #expect(throws: TableNumber.Problem("is \"11\", outside 1…10")) { try TableNumber.wholeNumber("11", in: 1...10).get() }
    }

    @Test func timesAreEpochSecondsBetween1970And3000() throws {
        #expect(try TableNumber.time("1800000000.25").get() == Date(timeIntervalSince1970: 1_800_000_000.25))
        #expect(try TableNumber.time("0").get() == Date(timeIntervalSince1970: 0))
        for bad in ["-1", "32503680001", "1e9", "inf", "nan", "1.", ".5", "1,5", ""] {
            #expect(throws: TableNumber.Problem.self, "\(bad)") { try TableNumber.time(bad).get() }
        }
    }
}

/// The same, through the commands an operator types (the release binary against moto).
@Suite struct HostileTableCommandTests {
    /// Every command used to trap (SIGILL) on this token, `lease break` included.
    @Test func aTokenBeyondIntMaxIsExit3ForRunsAndLeaseBreakRepairsIt() async throws {
        try await EndToEndHarness.with { harness in
            try await harness.fixture.dynamoDB.updateItem(
                table: harness.tableName, key: harness.table.stateKey,
                update: DynamoDBExpression("SET lease_token = :t", values: [":t": .n("99999999999999999999")]))

            let run = try await harness.kscaler(["run"])
            #expect(run.status == 3, "\(run.combined)")
            #expect(run.combined.contains("lease_token is \"100000000000000000000\", outside 0…9223372036854775807"), "\(run.combined)")
            #expect(run.combined.contains("kscaler lease break --yes"))
            #expect(try await harness.instances().isEmpty)

            let status = try await harness.kscaler(["lease", "status"])
            #expect(status.status == 0, "\(status.combined)")
            #expect(status.stdout.contains("lease free (fencing token unreadable)"), "\(status.stdout)")
            #expect(status.stdout.contains("- lease_token is \"100000000000000000000\""))

            let json = try await harness.kscaler(["lease", "status", "--output", "json"])
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(Set(fields.keys) == ["problems"], "no owner, token or times: \(json.stdout)")

            let broken = try await harness.kscaler(["lease", "break", "--yes"])
            #expect(broken.status == 0, "\(broken.combined)")
            #expect(broken.stdout.contains("the unreadable fencing token was removed"))

            try await harness.waitForMetrics()
            let (again, report) = try await harness.report()
            #expect(again.status == 0, "\(again.combined)")
            #expect(report?.lease?.token == 1)
            #expect(report?.leaseReleased == true)
        }
    }

    /// A cooldown stamp an hour ahead (a host with a fast clock wrote it) would silently hold
    /// scale-ups for an hour; the run warns and does not use it.
    @Test func aFutureCooldownStampIsWarnedAboutAndNotHonoured() async throws {
        try await EndToEndHarness.with { harness in
            try await harness.fixture.dynamoDB.updateItem(
                table: harness.tableName, key: harness.table.stateKey,
                update: DynamoDBExpression("SET last_scale_up_at = :t", values: [":t": .n(String(Date().timeIntervalSince1970 + 3600))]))
            harness.exporter.update { $0.pending = [.init(cpu: 1, memory: 1_048_576)] }
            try await harness.waitForMetrics()
            let (result, report) = try await harness.report("run", ["--log-format", "json"])
            #expect(result.status == 0, "\(result.combined)")
            #expect(result.stderr.contains(#""event":"clock_skew""#), "\(result.stderr)")
            #expect(result.stderr.contains("not used as a cooldown"))
            #expect(report?.actions.first?.kind == .launch, "the pending pod is served, not held for an hour")
        }
    }

    @Test func leaseStatusJSONUsesSnakeCaseKeys() async throws {
        try await EndToEndHarness.with { harness in
            guard case .acquired = try await harness.table.acquire(owner: "host/1/a", ttl: .seconds(60), now: Date()) else {
                Issue.record("not acquired"); return
            }
            let json = try await harness.kscaler(["lease", "status", "--output", "json"])
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(Set(fields.keys) == ["owner", "token", "acquired_at", "expires_at", "problems"], "\(json.stdout)")
        }
    }

    @Test func historySkipsAnUnreadableItemWithAWarning() async throws {
        try await EndToEndHarness.with { harness in
            try await harness.fixture.dynamoDB.putItem(table: harness.tableName, item: [
                "cluster_id": .s(harness.clusterID), "record": .s("event#2026-01-01T00:00:00.000Z#edited"), "event": .n("3"),
            ])
            let history = try await harness.kscaler(["history"])
            #expect(history.status == 0, "\(history.combined)")
            #expect(history.stdout.contains("no history yet"))
            #expect(history.stderr.contains("skipped an unreadable history item"))
            #expect(history.stderr.contains("event#2026-01-01T00:00:00.000Z#edited"))
        }
    }
}
