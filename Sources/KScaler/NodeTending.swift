import KScalerCore

extension Evaluator {
    /// Tends the Node objects after the machine actions: deletes those whose machine is gone
    /// (this run's terminations at once, other ghosts after `kubernetes.ghost_grace`), writes
    /// an Event on each node kscaler launched for or deletes, and leaves the ghost list to
    /// record in `acted`. A dry run asks the API server to check each deletion and writes nothing.
    func tendNodes(_ nodes: [ClusterNode], observed: Observed, mode: ActMode, state: StateDocument, into acted: inout Acted) async {
        guard let cluster else { return }
        let now = clock()
        let terminations = acted.actions.filter { $0.kind == .terminate || $0.kind == .terminateFailedBoot }
        let terminated = Set(terminations.filter { $0.result == .done }.flatMap(\.instanceIDs))
        // Sent without an answer: the next run sees whether the machine is gone, and its record says the Node is ours.
        let unsettled = Set(terminations.filter { $0.result == .unknown }.flatMap(\.instanceIDs))
        let thisRun = Set(acted.terminationRecords.map(\.machine))
        let recorded = state.ghostNodes.filter { !thisRun.contains($0.machine) }
            + acted.terminationRecords.filter { terminated.contains($0.machine) }
        let live = Set(observed.observation.instances.map(\.id)).subtracting(terminated)
        let cleanup = planNodeCleanup(nodes: nodes, live: live, ended: observed.observation.endedMachines.union(terminated), recorded: recorded,
                                      grace: config.kubernetes.ghostGrace, now: now)
        acted.nodeCleanup = cleanup
        acted.notes += cleanup.keptNodes
        var remaining = cleanup.records + acted.terminationRecords.filter { unsettled.contains($0.machine) }
        defer { acted.ghostRecords = remaining }

        let reasons = Dictionary(terminations.flatMap { action in action.instanceIDs.map { ($0, action.kind) } }, uniquingKeysWith: { a, _ in a })
        let launched = acted.actions.filter { $0.kind == .launch && $0.result == .done && !$0.recovered }.flatMap(\.instanceIDs)
        let events = mode.isDryRun ? [] : launched.map { id in
            NodeEvent(node: id, reason: .scaleUp, message: "kscaler launched instance \(id) for this node (scale-up: \(scaleUpCause(observed)))")
        } + cleanup.due.map { ghost in event(for: ghost, kind: reasons[ghost.machine]) }
        let due = cleanup.due
        guard !events.isEmpty || !due.isEmpty else { return }
        do {
            // Events and deletions are writes like any action: only inside the lease's safe window.
            try await withinActionWindow(mode, now: now) {
                acted.notes += await recordEvents(events, on: cluster)
                for ghost in due {
                    let name = ghost.node.name
                    do {
                        let result = try await cluster.deleteNode(name: name, uid: ghost.node.uid, dryRun: mode.isDryRun)
                        acted.actions.append(.init(kind: .deleteNode, instanceIDs: [ghost.machine], nodes: [name]))
                        if result == .replaced {
                            acted.notes.append("node \(name) was registered again (another uid) since it was listed: left alone")
                        }
                        if !mode.isDryRun {
                            remaining.removeAll { $0.machine == ghost.machine }
                            logger.notice("deleted node", metadata: ["node": "\(name)", "instance": "\(ghost.machine)"])
                        }
                    } catch {
                        let result: RunEvent.ActionRecord.Result = !mode.isDryRun && cluster.outcome(of: error) == .unknown ? .unknown : .failed
                        acted.actions.append(.init(kind: .deleteNode, instanceIDs: [ghost.machine], nodes: [name], result: result,
                                                   error: describeError(KubernetesCallFailed(what: "deleting node \(name)", error: error))))
                    }
                }
            }
        } catch {
            if acted.error == nil { acted.error = error }
        }
    }

    private func event(for ghost: NodeCleanup.Ghost, kind: RunEvent.ActionRecord.Kind?) -> NodeEvent {
        let name = ghost.node.name
        switch kind {
        case .terminate?:
            return NodeEvent(node: name, reason: .scaleDown, message: "kscaler terminated instance \(ghost.machine) (scale-down) and deletes this Node")
        case .terminateFailedBoot?:
            return NodeEvent(node: name, reason: .scaleDown, message: "kscaler terminated instance \(ghost.machine) (failed boot: not Ready "
                + "after provision_timeout) and deletes this Node", warning: true)
        default:
            let why = ghost.terminatedByKscaler ? "kscaler terminated it in an earlier run" : "it is shutting down or terminated"
            return NodeEvent(node: name, reason: .ghostNodeDeleted, message: "instance \(ghost.machine) behind this Node is gone (\(why)): "
                + "kscaler deletes this Node")
        }
    }

    private func scaleUpCause(_ observed: Observed) -> String {
        let pods = observed.observation.reading(.unschedulablePods).usableValue ?? 0
        return pods > 0 ? "\(Int(pods)) unschedulable pods" : "utilisation or the minimum node count"
    }

    /// Writes the events concurrently; each one that fails is a note, never a failed run.
    private func recordEvents(_ events: [NodeEvent], on cluster: any ClusterAPI) async -> [String] {
        guard !events.isEmpty else { return [] }
        return await withTaskGroup(of: String?.self) { group in
            for event in events {
                group.addTask {
                    do {
                        try await cluster.recordEvent(event)
                        return nil
                    } catch {
                        return "event \(event.reason.rawValue) on node \(event.node) not written: \(describeError(error))"
                    }
                }
            }
            var notes: [String] = []
            for await note in group { if let note { notes.append(note) } }
            return notes.sorted()
        }
    }
}

/// A Kubernetes API call that failed, named by what kscaler was doing.
struct KubernetesCallFailed: Error, CustomStringConvertible {
    var what: String
    var error: any Error
    var description: String { "Kubernetes API: \(what) failed: \(describeError(error))" }
}
