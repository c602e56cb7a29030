import AWS
import Dispatch
import Foundation
import HTTP
import KScalerCore
import Synchronization
import Testing
import TestSupport
@testable import KScaler

/// Conditional writes whose answer is lost on the way back, against moto behind a
/// `FaultyProxy`: the first attempt is applied, the client never hears so, and its retry meets
/// the write it already made. A lost answer must neither lock a run out nor make it believe it
/// lost a lease it released.
@Suite struct LostAnswerTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(5))

    /// A table reached through a proxy that applies `fault`, with the SDKs' retries on.
    func table(_ fault: @escaping @Sendable (String?, Int) -> FaultyProxy.Fault) async throws -> (KScalerTable, FaultyProxy) {
        let direct = try MotoFixture()
        let name = try await direct.createTable()
        let proxy = try FaultyProxy(upstream: direct.moto.endpoint, fault: fault)
        let fixture = try MotoFixture(endpoint: proxy.baseURL, retry: Self.retry)
        return (fixture.table(name), proxy)
    }

    @Test func anAcquisitionWhoseAnswerWasLostIsRecognisedAsOurs() async throws {
        let (table, proxy) = try await table { operation, earlier in
            operation == "DynamoDB_20120810.UpdateItem" && earlier == 0 ? .dropAnswer : .none
        }
        defer { proxy.stop() }
        let acquisition = try await table.acquire(owner: "host/1/ours", ttl: .seconds(60), now: t0)
        guard case .acquired(let lease, _) = acquisition else { Issue.record("locked out by its own lease: \(acquisition)"); return }
        #expect(lease.token == 1)
        #expect(lease.owner == "host/1/ours")
        #expect(lease.expiresAt == t0.addingTimeInterval(60))
        #expect(proxy.log.filter { $0.operation == "DynamoDB_20120810.UpdateItem" }.count == 2, "the first attempt really was retried")
        #expect(try await table.holder().token == 1, "one acquisition, not two")
    }

    @Test func aReleaseWhoseAnswerWasLostIsStillARelease() async throws {
        let (table, proxy) = try await table { operation, earlier in
            operation == "DynamoDB_20120810.UpdateItem" && earlier == 1 ? .dropAnswer : .none
        }
        defer { proxy.stop() }
        guard case .acquired(let lease, _) = try await table.acquire(owner: "host/1/ours", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquired"); return
        }
        let released = try await table.finish(lease: lease, document: StateDocument().applying(StateChanges(lastScaleDownAt: t0), pool: "default"), event: nil, retention: 60)
        #expect(released, "the release took effect; the retry's condition failure is its own doing")
        #expect(try await table.holder().owner == nil)
        #expect(try await table.readState().pool("default").lastScaleDownAt == t0)
    }

    @Test func aRecordedFinishWhoseAnswerWasLostIsRecognisedByItsEvent() async throws {
        let (table, proxy) = try await table { operation, earlier in
            operation == "DynamoDB_20120810.TransactWriteItems" && earlier == 0 ? .dropAnswer : .none
        }
        defer { proxy.stop() }
        guard case .acquired(let lease, _) = try await table.acquire(owner: "host/1/ours", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquired"); return
        }
        let event = RunEvent(runID: "run-lost-answer", startedAt: t0, finishedAt: t0, outcome: .acted, action: "scale_up", counts: nil,
                             reasons: [], actions: [], errors: [], leaseToken: lease.token)
        #expect(try await table.finish(lease: lease, document: StateDocument().applying(StateChanges(lastScaleUpAt: t0), pool: "default"), event: event, retention: 600))
        #expect(try await table.history(limit: 10).events.map(\.runID) == ["run-lost-answer"])
        #expect(try await table.holder().owner == nil)
    }

    /// The rule is narrow: a condition failure with no lost answer before it is still a lost lease.
    @Test func aPlainConditionFailureIsStillALostLease() async throws {
        let (table, proxy) = try await table { _, _ in .none }
        defer { proxy.stop() }
        guard case .acquired(var lease, _) = try await table.acquire(owner: "host/1/ours", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquired"); return
        }
        lease.token += 1
        #expect(try await table.finish(lease: lease, document: nil, event: nil, retention: 60) == false)
        #expect(try await table.holder().owner == "host/1/ours")
    }

    /// README: "retries on 5xx". A gateway's HTML page is not an AWS error, but it is a 5xx.
    @Test func aSingleBadGatewayPageIsRetried() async throws {
        let (table, proxy) = try await table { _, earlier in earlier == 0 ? .badGatewayPage : .none }
        defer { proxy.stop() }
        guard case .acquired(let lease, _) = try await table.acquire(owner: "host/1/ours", ttl: .seconds(60), now: t0) else {
            Issue.record("not acquired"); return
        }
        #expect(lease.token == 1)
        #expect(proxy.log.first.map { $0.fault == .badGatewayPage } == true)
    }

    /// The holder releases between the refused write and the read that names the holder (20
    /// racing processes on a loaded CI machine did this): the run takes the lease with one more
    /// conditional write instead of being skipped as "held" by nobody.
    @Test func aLeaseReleasedBetweenTheRefusedWriteAndTheReadIsTakenOnTheSecondTry() async throws {
        let direct = try MotoFixture()
        let name = try await direct.createTable()
        let cluster = Peers.uniqueName("cluster")
        let holderTable = direct.table(name, cluster: cluster)
        guard case .acquired(let held, _) = try await holderTable.acquire(owner: "host/1/holder", ttl: .seconds(60), now: t0) else {
            Issue.record("the holder did not acquire"); return
        }
        let releasedOnce = ReleaseSeen()
        let proxy = try FaultyProxy(upstream: direct.moto.endpoint, beforeForwarding: { operation, earlier in
            guard operation == "DynamoDB_20120810.GetItem", earlier == 0 else { return }
            // On the proxy's own thread: waiting here blocks no task of the pool.
            let done = DispatchSemaphore(value: 0)
            Task {
                let released = (try? await holderTable.finish(lease: held, document: nil, event: nil, retention: 60)) ?? false
                releasedOnce.value.withLock { $0 = released }
                done.signal()
            }
            _ = done.wait(timeout: .now() + 120)
        }, fault: { _, _ in .none })
        defer { proxy.stop() }
        let late = try MotoFixture(endpoint: proxy.baseURL).table(name, cluster: cluster)

        let acquisition = try await late.acquire(owner: "host/2/late", ttl: .seconds(60), now: t0.addingTimeInterval(1))
        #expect(releasedOnce.value.withLock { $0 }, "the holder's release went through between the two requests")
        guard case .acquired(let lease, _) = acquisition else { Issue.record("not taken after the release: \(acquisition)"); return }
        #expect(lease.owner == "host/2/late")
        #expect(lease.token == 2)
        #expect(proxy.log.map(\.operation) == ["DynamoDB_20120810.UpdateItem", "DynamoDB_20120810.GetItem", "DynamoDB_20120810.UpdateItem"])
    }

    /// Still held at the read: skipped, naming the holder, after exactly one write and one read.
    @Test func aLeaseStillHeldAtTheReadIsReportedAfterOneWrite() async throws {
        let direct = try MotoFixture()
        let name = try await direct.createTable()
        let cluster = Peers.uniqueName("cluster")
        _ = try await direct.table(name, cluster: cluster).acquire(owner: "host/1/holder", ttl: .seconds(60), now: t0)
        let proxy = try FaultyProxy(upstream: direct.moto.endpoint) { _, _ in .none }
        defer { proxy.stop() }
        let late = try MotoFixture(endpoint: proxy.baseURL).table(name, cluster: cluster)
        guard case .heldByOther(let holder) = try await late.acquire(owner: "host/2/late", ttl: .seconds(60), now: t0.addingTimeInterval(1)) else {
            Issue.record("a held lease was taken"); return
        }
        #expect(holder.owner == "host/1/holder")
        #expect(proxy.log.map(\.operation) == ["DynamoDB_20120810.UpdateItem", "DynamoDB_20120810.GetItem"])
    }
}

/// Whether the holder's release, made from the proxy's thread, went through.
private final class ReleaseSeen: Sendable {
    let value = Mutex(false)
}
