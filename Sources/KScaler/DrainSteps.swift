#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KScalerCore

extension Evaluator {
    /// Carries out this run's drain steps (`DrainDecision.steps`), then removes orphaned taints.
    /// Every step is idempotent: a run killed anywhere leaves a state the next run's steps finish
    /// (a drain recorded but not cordoned is cordoned again; a terminated machine closes its
    /// drain). A failed call is recorded on its action and the other drains go on.
    func advanceDrains(_ plan: DrainDecision, mode: ActMode, state: StateDocument, observed: Observed, now: Date,
                       into acted: inout Acted) async throws {
        guard !plan.steps.isEmpty || !plan.untaint.isEmpty, let cluster else { return }
        var drains = acted.drains ?? state.drains
        var aborted = (acted.abortedDrains ?? state.abortedDrains).filter { $0.until > now }
        defer {
            if !mode.isDryRun {
                acted.drains = drains
                acted.abortedDrains = aborted
            }
        }
        func update(_ drain: OpenDrain, _ change: (inout OpenDrain) -> Void) {
            guard let index = drains.firstIndex(where: { $0.node == drain.node && $0.machine == drain.machine }) else { return }
            change(&drains[index])
        }
        func close(_ drain: OpenDrain) { drains.removeAll { $0.node == drain.node && $0.machine == drain.machine } }

        for step in plan.steps {
            try Task.checkCancellation()
            let drain = step.drain
            let base = RunEvent.ActionRecord(kind: .evict, instanceIDs: [drain.machine], nodes: [drain.node])
            switch step.action {
            case .evict(let pods):
                var record = base
                do {
                    if step.recordon, !mode.isDryRun { try await cluster.cordonForDrain(node: drain.node, at: drain.startedAt) }
                    let outcome = try await evict(pods, mode: mode, on: cluster)
                    record.pods = outcome.evicted
                    record.detail = outcome.blocked.first
                    update(drain) { $0.blockedBy = outcome.blocked.first; $0.podsLeft = step.podsLeft - outcome.evicted.count }
                } catch {
                    record.result = result(ofKubernetes: error, mode: mode, on: cluster)
                    record.error = describeError(KubernetesCallFailed(what: "draining node \(drain.node)", error: error))
                }
                acted.actions.append(record)
            case .wait(let why):
                update(drain) { $0.podsLeft = step.podsLeft }
                acted.notes.append("drain of node \(drain.node): \(why)")
            case .terminate, .force:
                var pods: [String] = []
                if case .force(let left, let blocker) = step.action {
                    var record = base
                    record.kind = .forceDelete
                    record.detail = "drain.timeout passed; blocked by \(blocker)"
                    do {
                        for pod in left {
                            if !mode.isDryRun { try await cluster.deletePod(pod) }
                            pods.append(pod.reference)
                        }
                    } catch {
                        record.result = result(ofKubernetes: error, mode: mode, on: cluster)
                        record.error = describeError(KubernetesCallFailed(what: "deleting the pods left on node \(drain.node)", error: error))
                    }
                    record.pods = pods
                    acted.actions.append(record)
                    guard record.result == .done else { continue }
                }
                // The ghost record is written before the call (see `terminate`); the drain closes
                // with it, and a run killed in between closes it next time (machine gone).
                close(drain)
                do {
                    try await terminate(.terminate, [drain.machine], mode: mode, state: state, observed: observed, into: &acted)
                } catch {
                    if acted.error == nil { acted.error = error }
                    continue
                }
                let machine = observed.observation.instances.first { $0.id == drain.machine }
                // A Spot interruption's drain is no scale-down: it starts no cooldown.
                if !mode.isDryRun, machine?.interrupted != true {
                    acted.poolChanges[stateKey(of: machine), default: StateChanges()].lastScaleDownAt = now
                    acted.drainDurations.append(now.timeIntervalSince(drain.startedAt))
                }
            case .abort(let why), .close(let why):
                let isAbort = if case .abort = step.action { true } else { false }
                var record = base
                record.kind = isAbort ? .drainAbort : .drainClose
                record.detail = why
                if isAbort {
                    do {
                        if !mode.isDryRun { try await cluster.releaseDrain(node: drain.node) }
                        aborted.append(AbortedDrain(node: drain.node, machine: drain.machine, abortedAt: now,
                                                    until: now.addingTimeInterval(config.drain.abortBackoff), reason: why))
                        close(drain)
                        await note(NodeEvent(node: drain.node, reason: .drainAborted, message: "kscaler aborted the drain of this node and "
                            + "uncordoned it: \(why)", warning: true), mode: mode, on: cluster, into: &acted)
                    } catch {
                        record.result = result(ofKubernetes: error, mode: mode, on: cluster)
                        record.error = describeError(KubernetesCallFailed(what: "uncordoning node \(drain.node)", error: error))
                    }
                } else {
                    close(drain)
                }
                acted.actions.append(record)
            case .cancel:
                var record = base
                record.kind = .drainCancel
                record.detail = "pods are unschedulable, the fleet would fall below nodes.min, or the machine is protected: the node is kept"
                do {
                    if !mode.isDryRun { try await cluster.releaseDrain(node: drain.node) }
                    close(drain)
                    await note(NodeEvent(node: drain.node, reason: .drainCancelled, message: "kscaler cancelled the drain of this node "
                        + "and uncordoned it: \(record.detail ?? "")"), mode: mode, on: cluster, into: &acted)
                } catch {
                    record.result = result(ofKubernetes: error, mode: mode, on: cluster)
                    record.error = describeError(KubernetesCallFailed(what: "uncordoning node \(drain.node)", error: error))
                }
                acted.actions.append(record)
            }
        }
        for node in plan.untaint {
            var record = RunEvent.ActionRecord(kind: .untaint, instanceIDs: [], nodes: [node],
                                               detail: "kscaler's taint with no open drain (a crash, or a hand edit)")
            do {
                if !mode.isDryRun { try await cluster.releaseDrain(node: node) }
            } catch {
                record.result = result(ofKubernetes: error, mode: mode, on: cluster)
                record.error = describeError(KubernetesCallFailed(what: "untainting node \(node)", error: error))
            }
            acted.actions.append(record)
        }
        // A failed drain call makes the run's outcome say so (exit 4 or 5), like any failed action.
        let drainKinds: Set<RunEvent.ActionRecord.Kind> = [.evict, .forceDelete, .drainAbort, .drainCancel, .untaint]
        if acted.error == nil, let failed = acted.actions.first(where: { drainKinds.contains($0.kind) && $0.result != .done }) {
            acted.error = DrainStepFailed(description: failed.error ?? "a drain step failed")
        }
    }

    /// Starts a drain on each victim: the drains are written into the state (conditional on
    /// the lease) before any node is touched, then each node is cordoned and tainted. The next
    /// runs evict; a run killed in between leaves a recorded drain the next run cordons again.
    func startDrains(_ victims: [Victim], mode: ActMode, state: StateDocument, observed: Observed, now: Date,
                     into acted: inout Acted) async throws {
        guard let cluster else { return }
        let nodes = victims.compactMap { victim in
            observed.observation.cluster?.node(ofMachine: victim.instanceID).map { (victim, $0) }
        }
        let started = nodes.map { victim, node in
            OpenDrain(node: node.name, machine: victim.instanceID, startedAt: now, deadline: now.addingTimeInterval(config.drain.timeout),
                      podsLeft: observed.observation.cluster?.pods(on: node.name).count(where: \.mustLeave))
        }
        if case .real(let lease) = mode {
            var document = acted.written ?? state
            document.drains = (acted.drains ?? state.drains) + started
            if let aborted = acted.abortedDrains { document.abortedDrains = aborted }
            try await store.write(document, lease: lease)
            acted.written = document
            acted.drains = document.drains
        }
        for drain in started {
            var record = RunEvent.ActionRecord(kind: .drainStart, instanceIDs: [drain.machine], nodes: [drain.node],
                                               detail: "\(drain.podsLeft ?? 0) pods to move; times out \(describe(drain.deadline))")
            do {
                if !mode.isDryRun { try await cluster.cordonForDrain(node: drain.node, at: now) }
                await note(NodeEvent(node: drain.node, reason: .drainStarted, message: "kscaler cordoned this node and drains it "
                    + "(scale-down; drain.timeout \(Int(config.drain.timeout))s)"), mode: mode, on: cluster, into: &acted)
            } catch {
                // The drain stays recorded: the next run cordons again, or it times out.
                record.result = result(ofKubernetes: error, mode: mode, on: cluster)
                record.error = describeError(KubernetesCallFailed(what: "cordoning node \(drain.node)", error: error))
                if acted.error == nil { acted.error = DrainStepFailed(description: record.error ?? "") }
            }
            acted.actions.append(record)
        }
    }

    /// Evicts pods one at a time; a refusal (a disruption budget) is not an error: the next run
    /// tries again. Returns the evicted pods and, per refused pod, why.
    private func evict(_ pods: [ClusterPod], mode: ActMode, on cluster: any ClusterAPI) async throws -> (evicted: [String], blocked: [String]) {
        var evicted: [String] = [], blocked: [String] = []
        for pod in pods {
            if mode.isDryRun {
                evicted.append(pod.reference)
                continue
            }
            switch try await cluster.evict(pod) {
            case .evicted, .gone: evicted.append(pod.reference)
            case .blocked(let why): blocked.append("pod \(pod.reference): \(why)")
            }
        }
        return (evicted, blocked)
    }

    private func note(_ event: NodeEvent, mode: ActMode, on cluster: any ClusterAPI, into acted: inout Acted) async {
        guard !mode.isDryRun else { return }
        do {
            try await cluster.recordEvent(event)
        } catch {
            acted.notes.append("event \(event.reason.rawValue) on node \(event.node) not written: \(describeError(error))")
        }
    }

    private func result(ofKubernetes error: any Error, mode: ActMode, on cluster: any ClusterAPI) -> RunEvent.ActionRecord.Result {
        !mode.isDryRun && cluster.outcome(of: error) == .unknown ? .unknown : .failed
    }
}

/// A drain step's Kubernetes call failed; its action record says which and why.
struct DrainStepFailed: Error, CustomStringConvertible {
    var description: String
}
