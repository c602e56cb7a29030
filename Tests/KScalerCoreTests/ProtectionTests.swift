#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import KScalerCore

/// `kscaler protect`: the pure rules: an expired protection is no protection, `--until`'s
/// forms, the node annotation, and what `plan` lists.
@Suite("protection: the rules")
struct ProtectionTests {
    /// Two calm workers that a scale-down would take newest first (max_step 2, min 0).
    static func calm(protectNewestUntil until: Date?, protected: Bool = true) -> (Cluster, older: String, newer: String) {
        var cluster = Cluster()
        let older = cluster.addWorker(age: 7200, pods: 1)
        let newer = cluster.addWorker(age: 3600, pods: 1)
        cluster.instances[1].protected = protected
        cluster.instances[1].protectedUntil = until
        for signal in [Signal.cpuUtilization, .memoryUtilization, .cpuUtilizationWindowMax, .memoryUtilizationWindowMax] {
            cluster.set(signal, .value(0.05))
        }
        return (cluster, older, newer)
    }

    static let policy = Policy.test(min: 0, scaleDown: ScaleDownPolicy(maxStep: 2))

    @Test("a protection for ever, or until a time still ahead, keeps the machine; once the time has passed it is a victim again")
    func expiry() throws {
        let forever = Self.calm(protectNewestUntil: nil)
        #expect(forever.0.decide(Self.policy).victimIDs == [forever.older])
        let ahead = Self.calm(protectNewestUntil: t0.addingTimeInterval(1))
        #expect(ahead.0.decide(Self.policy).victimIDs == [ahead.older])
        // The end is exclusive: at it exactly, the protection is over.
        let over = Self.calm(protectNewestUntil: t0)
        let decision = over.0.decide(Self.policy)
        #expect(decision.victimIDs == [over.newer, over.older])
        let listed = try #require(decision.protectedMachines.first)
        #expect(listed.instanceID == over.newer && !listed.isProtected && listed.marks.first?.expired == true)
        #expect(listed.summary.contains("expired") && listed.summary.hasSuffix("a victim again"), "\(listed.summary)")
    }

    @Test("an expired protection does not keep a failed boot either")
    func failedBoot() {
        var cluster = Cluster()
        let stuck = cluster.addWorker(age: 3600, ready: nil, protected: true)
        #expect(cluster.decide().failedBoots.isEmpty)
        cluster.instances[0].protectedUntil = t0.addingTimeInterval(-1)
        #expect(cluster.decide().failedBoots.map(\.instanceID) == [stuck])
    }

    @Test("plan lists every protected machine with each reason: tag and its end, victims.protected_instances, node annotations")
    func listing() throws {
        var (cluster, older, newer) = Self.calm(protectNewestUntil: t0.addingTimeInterval(7200))
        var policy = Self.policy
        policy.victims.protectedInstances = [older]
        cluster.cluster = ClusterView(nodes: [
            ClusterNode(name: older, uid: "u1", providerID: nil, ready: true, machineID: older, scaleDownDisabled: true),
            ClusterNode(name: newer, uid: "u2", providerID: nil, ready: true, machineID: newer, protectedAnnotation: "true"),
        ], pods: [])
        let decision = cluster.decide(policy)
        #expect(decision.victimIDs == nil)
        let byID = Dictionary(uniqueKeysWithValues: decision.protectedMachines.map { ($0.instanceID, $0) })
        #expect(byID[older]?.marks.map(\.source) == [.protectedInstances, .annotation])
        #expect(byID[newer]?.marks.map(\.source) == [.tag, .annotation])
        #expect(byID[newer]?.marks.first?.until == t0.addingTimeInterval(7200))
        #expect(byID[newer]?.summary == "tag kscaler:protected until \(formatDate(t0.addingTimeInterval(7200))); annotation kscaler.io/protected: never a victim")
        #expect(decision.protectedMachines.allSatisfy { $0.isProtected })
    }

    @Test("the node annotation kscaler.io/protected keeps a node from being drained until it ends")
    func annotation() {
        var cluster = Cluster()
        let id = cluster.addWorker(pods: 0)
        for signal in [Signal.cpuUtilization, .memoryUtilization, .cpuUtilizationWindowMax, .memoryUtilizationWindowMax] {
            cluster.set(signal, .value(0.05))
        }
        func decide(annotation: String?) -> Decision {
            var copy = cluster
            copy.cluster = ClusterView(nodes: [ClusterNode(name: id, uid: "u", providerID: nil, ready: true, machineID: id,
                                                           allocatable: Resources(cpu: 2, memory: 8 * Double(gib)), protectedAnnotation: annotation)],
                                       pods: [])
            return copy.decide(.test(min: 0, withoutDrain: false))
        }
        #expect(decide(annotation: nil).victimIDs == [id])
        #expect(decide(annotation: "true").victimIDs == nil)
        #expect(decide(annotation: "true").reasons(.notDrainable).contains { $0.contains("kscaler.io/protected=true") })
        #expect(decide(annotation: formatDate(t0.addingTimeInterval(60))).victimIDs == nil)
        #expect(decide(annotation: formatDate(t0.addingTimeInterval(-60))).victimIDs == [id])
        // A value nobody can read is doubt: the node is kept.
        #expect(decide(annotation: "next tuesday").victimIDs == nil)
    }

    @Test("a machine protected while its node drains keeps it: the drain is cancelled, not finished")
    func protectedMidDrain() {
        var cluster = Cluster()
        let id = cluster.addWorker(pods: 0)
        cluster.cluster = ClusterView(nodes: [ClusterNode(name: id, uid: "u", providerID: nil, ready: true, machineID: id, unschedulable: true,
                                                          hasDrainTaint: true, drainTaintedAt: t0.addingTimeInterval(-60))], pods: [])
        cluster.drains = [OpenDrain(node: id, machine: id, startedAt: t0.addingTimeInterval(-60), deadline: t0.addingTimeInterval(540))]
        let policy = Policy.test(min: 0, withoutDrain: false)
        // No pod left: unprotected, the drain ends in a termination this run.
        #expect(cluster.decide(policy).drain.steps.map(\.action) == [.terminate])
        cluster.instances[0].protected = true
        let kept = cluster.decide(policy)
        #expect(kept.drain.steps.map(\.action) == [.cancel])
        #expect(kept.reasons(.drainsCancelled).contains { $0.contains("is protected") })
        // The same by the node annotation, and not once it has expired.
        cluster.instances[0].protected = false
        cluster.cluster?.nodes[0].protectedAnnotation = "true"
        #expect(cluster.decide(policy).drain.steps.map(\.action) == [.cancel])
        cluster.cluster?.nodes[0].protectedAnnotation = formatDate(t0.addingTimeInterval(-1))
        #expect(cluster.decide(policy).drain.steps.map(\.action) == [.terminate])
    }

    @Test("--until: an RFC 3339 time or a duration from now, in the future; anything else says how to write it")
    func until() throws {
        #expect(try Protection.parseUntil("2h", now: t0).get() == t0.addingTimeInterval(7200))
        #expect(try Protection.parseUntil("1h30m", now: t0).get() == t0.addingTimeInterval(5400))
        let time = t0.addingTimeInterval(86_400)
        #expect(try Protection.parseUntil(formatDate(time), now: t0).get() == time)
        #expect(Protection.parseTime("2027-01-15T08:00:00+01:00") == Protection.parseTime("2027-01-15T07:00:00Z"))
        #expect(Protection.parseTime("2027-01-15T07:00:00.250Z") != nil)
        for bad in ["tomorrow", "", "2h garbage", "-1h"] {
            guard case .failure(let error) = Protection.parseUntil(bad, now: t0) else {
                Issue.record("\(bad) was accepted")
                continue
            }
            #expect(error.description.contains("RFC 3339"), "\(error)")
        }
        guard case .failure(let past) = Protection.parseUntil(formatDate(t0.addingTimeInterval(-1)), now: t0) else {
            Issue.record("a time in the past was accepted")
            return
        }
        #expect(past.description.contains("not in the future"))
    }

    @Test("a mark's value: true for ever, a time until then, anything else kept for ever as unreadable")
    func marks() {
        #expect(Protection.mark("true") == (nil, false))
        #expect(Protection.mark("TRUE") == (nil, false))
        #expect(Protection.mark(formatDate(t0)) == (t0, false))
        #expect(Protection.mark("soon") == (nil, true))
        #expect(Protection.isActive(until: nil, now: t0))
        #expect(Protection.isActive(until: t0.addingTimeInterval(1), now: t0))
        #expect(!Protection.isActive(until: t0, now: t0))
    }
}
