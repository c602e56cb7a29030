import AWS
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// The state item and the history against moto's DynamoDB: every write fenced by the lease.
@Suite struct StateStoreTests {
    struct NotAcquired: Error {}

    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func acquire(_ table: KScalerTable, owner: String, at now: Date) async throws -> (Lease, StateDocument) {
        guard case .acquired(let lease, let state) = try await table.acquire(owner: owner, ttl: .seconds(60), now: now) else {
            throw NotAcquired()
        }
        return (lease, state)
    }

    func event(_ id: String, at date: Date, outcome: RunEvent.Outcome = .acted) -> RunEvent {
        RunEvent(runID: id, startedAt: date, finishedAt: date.addingTimeInterval(1), outcome: outcome, action: "scale_up",
                 counts: nil, reasons: ["unschedulable pods 3 > 0"],
                 actions: [.init(kind: .launch, instanceIDs: ["i-1"], machineType: "t3.large", placement: "subnet-a", launchID: "L1")],
                 errors: [], leaseToken: 1)
    }

    @Test func finishRecordsStateAndHistoryAndReleasesInOneStep() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        let (lease, initial) = try await acquire(table, owner: "run-1", at: t0)
        #expect(initial == StateDocument())
        try await table.write(StateDocument(launchIntent: LaunchIntent(launchID: "L1", count: 2, createdAt: t0)), lease: lease)
        #expect(try await table.readState().launchIntent == LaunchIntent(launchID: "L1", count: 2, createdAt: t0))

        let unavailable = [UnavailableOffering(machineType: "m5.large", placement: "subnet-b", until: t0.addingTimeInterval(1800))]
        let released = try await table.finish(
            lease: lease,
            document: StateDocument(launchIntent: LaunchIntent(launchID: "L1", count: 2, createdAt: t0))
                .applying(StateChanges(lastScaleUpAt: t0, unavailableOfferings: unavailable, clearLaunchIntent: true), pool: "default"),
            event: event("run-1", at: t0), retention: 86_400)
        #expect(released)

        let state = try await table.readState()
        #expect(state.pool("default").lastScaleUpAt == t0)
        #expect(state.pool("default").unavailableOfferings == unavailable)
        #expect(state.launchIntent == nil)
        #expect(try await table.holder().owner == nil)
        #expect(try await table.history(limit: 10).events == [event("run-1", at: t0)])
        // The next acquisition sees the stored state in the same round trip.
        let (_, seen) = try await acquire(table, owner: "run-2", at: t0.addingTimeInterval(5))
        #expect(seen.pool("default").lastScaleUpAt == t0)
    }

    @Test func aRunThatLostItsLeaseWritesNothing() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        let (stale, _) = try await acquire(table, owner: "slow-run", at: t0)
        // The lease expires and another run takes over (token 2).
        let (current, _) = try await acquire(table, owner: "next-run", at: t0.addingTimeInterval(61))
        await #expect(throws: DynamoDBClient.ConditionalCheckFailed.self) {
            try await table.write(StateDocument(launchIntent: LaunchIntent(launchID: "STALE", count: 5, createdAt: t0)), lease: stale)
        }
        let released = try await table.finish(lease: stale, document: StateDocument().applying(StateChanges(lastScaleDownAt: t0), pool: "default"), event: event("slow-run", at: t0), retention: 60)
        #expect(released == false)
        let state = try await table.readState()
        #expect(state.launchIntent == nil)
        #expect(state.pool("default").lastScaleDownAt == nil)
        #expect(try await table.history(limit: 10).events.isEmpty)
        #expect(try await table.holder().owner == current.owner)
    }

    @Test func historyIsNewestFirstAndLimited() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        for index in 0..<4 {
            let at = t0.addingTimeInterval(Double(index) * 60)
            let (lease, _) = try await acquire(table, owner: "run-\(index)", at: at)
            #expect(try await table.finish(lease: lease, document: nil, event: event("run-\(index)", at: at, outcome: .nothing), retention: 60))
        }
        let latest = try await table.history(limit: 3).events
        #expect(latest.map(\.runID) == ["run-3", "run-2", "run-1"])
    }

    // MARK: The state document

    func stateItem(_ table: KScalerTable) async throws -> DynamoDBItem {
        try await table.dynamoDB.getItem(table: table.tableName, key: table.stateKey) ?? [:]
    }

    /// A state written by a kscaler before the document (one attribute per field) is read as
    /// version 1 and rewritten as a document by the next write, its old attributes removed.
    @Test func aStateOfVersion0IsMigratedOnTheNextWrite() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        try await table.dynamoDB.putItem(table: table.tableName, item: table.stateKey.merging([
            "last_scale_up_at": .n("1800000000.5"), "last_scale_down_at": .n("1799999000"),
            "unavailable": .l([.m(["instance_type": .s("m5.large"), "subnet_id": .s("subnet-b"), "until": .n("1800001800")])]),
            "launch_intent": .m(["launch_id": .s("ks-old"), "count": .n("2"), "created_at": .n("1800000000")]),
        ]) { _, new in new })
        let expected = StateDocument(
            pools: ["default": ScalerState(lastScaleUpAt: Date(timeIntervalSince1970: 1_800_000_000.5),
                                           lastScaleDownAt: Date(timeIntervalSince1970: 1_799_999_000),
                                           unavailableOfferings: [UnavailableOffering(machineType: "m5.large", placement: "subnet-b",
                                                                                      until: Date(timeIntervalSince1970: 1_800_001_800))])],
            launchIntent: LaunchIntent(launchID: "ks-old", count: 2, createdAt: t0))
        #expect(try await table.readState() == expected)

        let (lease, acquired) = try await acquire(table, owner: "run-1", at: t0.addingTimeInterval(10))
        #expect(acquired == expected)
        #expect(try await table.finish(lease: lease, document: acquired.applying(StateChanges(clearLaunchIntent: true), pool: "default"),
                                       event: nil, retention: 60))
        let item = try await stateItem(table)
        #expect(item["state"]?.string != nil)
        #expect(Set(item.keys) == ["cluster_id", "record", "lease_token", "state"], "\(item.keys.sorted())")
        var migrated = expected
        migrated.launchIntent = nil
        #expect(try await table.readState() == migrated)
    }

    /// Drains and ghost nodes are not acted on yet, but every write keeps them as they were.
    @Test func whatARunDoesNotTouchSurvivesItsWrites() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        let (lease, _) = try await acquire(table, owner: "run-1", at: t0)
        let kept = StateDocument(pools: ["batch": ScalerState(lastScaleUpAt: t0)],
                                 drains: [OpenDrain(node: "i-0abc", machine: "i-0abc", startedAt: t0, deadline: t0.addingTimeInterval(600),
                                                    blockedBy: "PodDisruptionBudget web allows 0 disruptions")],
                                 ghostNodes: [GhostNode(node: "i-0def", machine: "i-0def", since: t0)])
        #expect(try await table.finish(lease: lease, document: kept, event: nil, retention: 60))
        let (next, seen) = try await acquire(table, owner: "run-2", at: t0.addingTimeInterval(5))
        #expect(seen == kept)
        let changed = seen.applying(StateChanges(lastScaleUpAt: t0.addingTimeInterval(5)), pool: "default")
        #expect(try await table.finish(lease: next, document: changed, event: nil, retention: 60))
        let after = try await table.readState()
        #expect(after.drains == kept.drains && after.ghostNodes == kept.ghostNodes && after.pool("batch") == kept.pool("batch"))
        #expect(after.pool("default").lastScaleUpAt == t0.addingTimeInterval(5))
    }

    @Test(arguments: [
        (#"{"version": 2, "pools": {}}"#, "version 2 is not one this kscaler reads (1…1): written by a newer kscaler? Upgrade it"),
        (#"{"version": 1, "pools": {"default": {"last_scale_up_at": "yesterday"}}}"#,
         #"at pools.default.last_scale_up_at: "yesterday" is not an ISO 8601 time"#),
        (#"{"pools": {}}"#, "can read: version is missing"),
        ("not json", "can read: The given data was not valid JSON."),
    ])
    func anUnreadableDocumentIsNamedAndNotActedOn(json: String, problem: String) async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        try await table.dynamoDB.putItem(table: table.tableName, item: table.stateKey.merging(["state": .s(json)]) { _, new in new })
        let error = await #expect(throws: StateItemError.self) { _ = try await table.readState() }
        #expect(error?.problems.count == 1)
        #expect(error?.problems.first?.hasSuffix(problem) == true, "\(error?.problems ?? [])")
        guard case .untrustworthy = try await table.acquire(owner: "run", ttl: .seconds(60), now: t0) else {
            Issue.record("acquired on an unreadable document"); return
        }
        #expect(try await table.holder().owner == nil)
    }
}

