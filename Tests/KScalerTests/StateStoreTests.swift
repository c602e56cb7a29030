import AWS
import KScalerCore
import Testing
import TestSupport
@testable import KScaler

/// The state item and the history against moto's DynamoDB: every write fenced by the lease.
@Suite struct StateStoreTests {
    struct NotAcquired: Error {}

    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func acquire(_ table: KScalerTable, owner: String, at now: Date) async throws -> (Lease, StoredState) {
        guard case .acquired(let lease, let state) = try await table.acquire(owner: owner, ttl: .seconds(60), now: now) else {
            throw NotAcquired()
        }
        return (lease, state)
    }

    func event(_ id: String, at date: Date, outcome: RunEvent.Outcome = .acted) -> RunEvent {
        RunEvent(runID: id, startedAt: date, finishedAt: date.addingTimeInterval(1), outcome: outcome, action: "scale_up",
                 counts: nil, reasons: ["unschedulable pods 3 > 0"],
                 actions: [.init(kind: .launch, instanceIDs: ["i-1"], instanceType: "t3.large", subnetID: "subnet-a", launchID: "L1")],
                 errors: [], leaseToken: 1)
    }

    @Test func finishRecordsStateAndHistoryAndReleasesInOneStep() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        let (lease, initial) = try await acquire(table, owner: "run-1", at: t0)
        #expect(initial == StoredState())
        try await table.recordLaunchIntent(LaunchIntent(launchID: "L1", count: 2, createdAt: t0), lease: lease)
        #expect(try await table.readState().launchIntent == LaunchIntent(launchID: "L1", count: 2, createdAt: t0))

        let unavailable = [UnavailableOffering(instanceType: "m5.large", subnetID: "subnet-b", until: t0.addingTimeInterval(1800))]
        let released = try await table.finish(
            lease: lease, changes: StateChanges(lastScaleUpAt: t0, unavailableOfferings: unavailable, clearLaunchIntent: true),
            event: event("run-1", at: t0), retention: 86_400)
        #expect(released)

        let state = try await table.readState()
        #expect(state.scaler.lastScaleUpAt == t0)
        #expect(state.scaler.unavailableOfferings == unavailable)
        #expect(state.launchIntent == nil)
        #expect(try await table.holder().owner == nil)
        #expect(try await table.history(limit: 10).events == [event("run-1", at: t0)])
        // The next acquisition sees the stored state in the same round trip.
        let (_, seen) = try await acquire(table, owner: "run-2", at: t0.addingTimeInterval(5))
        #expect(seen.scaler.lastScaleUpAt == t0)
    }

    @Test func aRunThatLostItsLeaseWritesNothing() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        let (stale, _) = try await acquire(table, owner: "slow-run", at: t0)
        // The lease expires and another run takes over (token 2).
        let (current, _) = try await acquire(table, owner: "next-run", at: t0.addingTimeInterval(61))
        await #expect(throws: DynamoDBClient.ConditionalCheckFailed.self) {
            try await table.recordLaunchIntent(LaunchIntent(launchID: "STALE", count: 5, createdAt: t0), lease: stale)
        }
        let released = try await table.finish(lease: stale, changes: StateChanges(lastScaleDownAt: t0), event: event("slow-run", at: t0), retention: 60)
        #expect(released == false)
        let state = try await table.readState()
        #expect(state.launchIntent == nil)
        #expect(state.scaler.lastScaleDownAt == nil)
        #expect(try await table.history(limit: 10).events.isEmpty)
        #expect(try await table.holder().owner == current.owner)
    }

    @Test func historyIsNewestFirstAndLimited() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        for index in 0..<4 {
            let at = t0.addingTimeInterval(Double(index) * 60)
            let (lease, _) = try await acquire(table, owner: "run-\(index)", at: at)
            #expect(try await table.finish(lease: lease, changes: StateChanges(), event: event("run-\(index)", at: at, outcome: .nothing), retention: 60))
        }
        let latest = try await table.history(limit: 3).events
        #expect(latest.map(\.runID) == ["run-3", "run-2", "run-1"])
    }
}
