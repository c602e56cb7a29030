import AWS
import Testing
import TestSupport
@testable import KScaler

/// The lease against moto's DynamoDB (real JSON 1.0 wire protocol, signature checking on).
@Suite struct LeaseTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A run's release: `finish` with nothing to record (conditional on owner and token).
    func release(_ table: KScalerTable, _ lease: Lease) async throws -> Bool {
        try await table.finish(lease: lease, document: nil, event: nil, retention: 60)
    }

    @Test func aFreeLeaseIsAcquiredAndItsTokenGrowsOnEveryAcquisition() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        guard case .acquired(let first, _) = try await table.acquire(owner: "a", ttl: .seconds(60), now: t0) else {
            Issue.record("a free lease was not acquired"); return
        }
        #expect(first.token == 1)
        #expect(first.expiresAt == t0.addingTimeInterval(60))
        #expect(try await release(table, first))
        guard case .acquired(let second, _) = try await table.acquire(owner: "b", ttl: .seconds(60), now: t0) else {
            Issue.record("a released lease was not acquired"); return
        }
        #expect(second.token == 2)
    }

    @Test func aHeldLeaseIsReportedWithItsHolderAndNotTaken() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        _ = try await table.acquire(owner: "holder", ttl: .seconds(60), now: t0)
        let attempt = try await table.acquire(owner: "late", ttl: .seconds(60), now: t0.addingTimeInterval(60))
        guard case .heldByOther(let holder) = attempt else { Issue.record("took a lease that was still valid"); return }
        #expect(holder.owner == "holder")
        #expect(holder.expiresAt == t0.addingTimeInterval(60))
        #expect(holder.token == 1)
    }

    @Test func anExpiredLeaseIsTakenOverAndTheTokenIncremented() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        _ = try await table.acquire(owner: "crashed", ttl: .seconds(60), now: t0)
        let takeover = try await table.acquire(owner: "next", ttl: .seconds(60), now: t0.addingTimeInterval(61))
        guard case .acquired(let lease, _) = takeover else { Issue.record("an expired lease was not taken over"); return }
        #expect(lease.owner == "next")
        #expect(lease.token == 2)
        #expect(try await table.holder().owner == "next")
    }

    @Test func releaseByANonOwnerFailsAndChangesNothing() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        guard case .acquired(let real, _) = try await table.acquire(owner: "owner", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquired"); return
        }
        var impostor = real
        impostor.owner = "impostor"
        #expect(try await release(table, impostor) == false)
        var staleToken = real
        staleToken.token = real.token - 1
        #expect(try await release(table, staleToken) == false)
        let holder = try await table.holder()
        #expect(holder.owner == "owner")
        #expect(holder.token == real.token)
        #expect(holder.expiresAt == real.expiresAt)
    }

    @Test func breakingClearsTheLeaseAndReportsWhatWasBroken() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table(try await fixture.createTable())
        _ = try await table.acquire(owner: "stuck", ttl: .seconds(3600), now: t0)
        let broken = try await table.breakLease()
        #expect(broken.holder.owner == "stuck")
        #expect(broken.cleared && !broken.tokenReset)
        #expect(try await table.holder().owner == nil)
        guard case .acquired(let lease, _) = try await table.acquire(owner: "after", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquirable after break"); return
        }
        #expect(lease.token == 2)
    }

    @Test func aMissingTableIsAClearError() async throws {
        let fixture = try MotoFixture()
        let table = fixture.table("no-such-table")
        await #expect {
            _ = try await table.acquire(owner: "x", ttl: .seconds(60), now: t0)
        } throws: { error in
            guard let error = error as? AWSError else { return false }
            return error.code == "ResourceNotFoundException" && error.description.contains("create it")
        }
    }
}
