import ArgumentParser
import KScaler
import KScalerCore

enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case human, json
}

/// One JSON document per command (`--output json`): stable snake_case keys, ISO 8601 dates.
enum JSONOutput {
    static func render<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "+Inf", negativeInfinity: "-Inf", nan: "NaN")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// The human view of a run or plan: each signal with its value, threshold and verdict, the
/// bounds, the cooldowns and when they end, the decision with every reason, the actions.
enum ReportPrinter {
    static func human(_ report: RunReport, bounds: NodeBounds, now: Date) -> String {
        var lines: [String] = []
        let command = report.manual == nil ? "" : " scale"
        let title = report.mode == .plan ? "kscaler\(command.isEmpty ? " plan" : command + " --dry-run") (dry run: nothing is written or changed)"
            : "kscaler" + (command.isEmpty ? " run" : command)
        lines.append("\(title) · cluster \(report.clusterID) · \(report.startedAt.formatted(.iso8601)) · run \(report.runID)")
        if let manual = report.manual {
            lines.append("request     \(manual.summary) by \(manual.by)" + (manual.reason.map { ": \"\($0)\"" } ?? ""))
        }
        if let hold = report.hold, hold.isActive(at: now) {
            lines.append("hold        \(hold.summary)" + (report.holdChanged ? " (set by this \(report.mode == .plan ? "request" : "run"))" : ""))
        } else if report.holdChanged {
            lines.append("hold        lifted: runs decide by the policy again")
        }
        if let lease = report.lease {
            if report.outcome == .skipped {
                lines.append("lease       held by \(lease.owner ?? "?") until \(lease.expiresAt.map(time) ?? "?") — skipped")
            } else {
                let released = report.leaseReleased == true ? "released" : "NOT released (expires \(lease.expiresAt.map(time) ?? "?"))"
                lines.append("lease       token \(lease.token), \(released)")
            }
        }
        if let decision = report.decision {
            // An operator's request reads no signal: no empty table.
            if !decision.signals.isEmpty {
                lines.append("")
                lines.append("signals")
            }
            for verdict in decision.signals {
                let value = verdict.reading.usableValue.map(format) ?? (verdict.reading.problem ?? "—")
                lines.append("  " + pad(verdict.signal.rawValue, 30) + pad(value, 14) + pad(verdict.verdict.rawValue, 22) + verdict.detail)
            }
            let counts = decision.counts
            lines.append("")
            let inForce = decision.schedule?.bounds(of: nil)
            let shownBounds = !decision.pools.isEmpty ? "cap \(bounds.max) across pools"
                : inForce.map { $0.raised ? "bounds \($0.min)…\($0.max) (scheduled; base \($0.baseMin)…\($0.baseMax))" : "bounds \($0.min)…\($0.max)" }
                ?? "bounds \(bounds.min)…\(bounds.max)"
            lines.append("nodes       managed \(counts.current) (ready \(counts.ready), booting \(counts.booting)) · desired \(counts.desired) · \(shownBounds) · cluster \(counts.clusterNodes) nodes, \(counts.clusterNotReady) not Ready"
                + (counts.ghostNodes > 0 ? ", \(counts.ghostNodes) ghosts not counted" : ""))
            for cooldown in decision.cooldowns {
                let state: String
                if let ends = cooldown.endsAt {
                    state = cooldown.active ? "active until \(time(ends)) (in \(span(ends.timeIntervalSince(now))))" : "over since \(time(ends))"
                } else {
                    state = "not started (no such event yet)"
                }
                lines.append("cooldown    " + pad(cooldown.name.rawValue, 34) + state)
            }
            if !decision.sizes.isEmpty {
                lines.append("sizes       " + decision.sizes.map { entry in
                    guard let size = entry.size, let source = entry.source else { return "\(entry.machineType) unknown (skipped)" }
                    return "\(entry.machineType) \(format(size.cpuCores)) cores, \(bytes(Double(size.memoryBytes))) (\(source.rawValue))"
                }.joined(separator: " · "))
            }
            if let schedule = decision.schedule { lines += describe(schedule, now: now) }
            if let headroom = decision.headroom { lines.append("headroom    " + describe(headroom)) }
            if !decision.pools.isEmpty {
                lines.append("")
                lines.append("pools       " + pad("name", 14) + pad("market", 22) + pad("nodes", 18) + pad("bounds", 9) + pad("pending pods", 14) + "decision")
                for pool in decision.pools {
                    let nodes = "\(pool.counts.current) (\(pool.counts.ready) Ready)"
                    lines.append("            " + pad(pool.name, 14) + pad(pool.capacityType.rawValue, 22) + pad(nodes, 18)
                        + pad("\(pool.min)…\(pool.max)", 9) + pad(String(pool.pendingPods), 14) + describe(pool.action))
                    // Its utilisation, measured on its own nodes.
                    let measured = pool.signals.compactMap { verdict in
                        verdict.reading.usableValue.map { "\(verdict.signal.rawValue) \(format($0))" }
                    }
                    if !measured.isEmpty { lines.append("              " + measured.joined(separator: " · ")) }
                    if let headroom = pool.headroom { lines.append("              headroom " + describe(headroom)) }
                }
                for pod in decision.unservablePods {
                    lines.append("unservable  \(pod.pod): " + pod.reasons.joined(separator: "; "))
                }
            }
            if !decision.protectedMachines.isEmpty {
                lines.append("")
                lines.append("protected   machines never chosen as victims (kscaler protect / unprotect)")
                for machine in decision.protectedMachines {
                    lines.append("  " + pad(machine.instanceID, 24) + pad(machine.nodeName ?? "—", 24) + machine.summary)
                }
            }
            lines.append("")
            lines.append("decision    \(describe(decision.action))")
            for reason in decision.reasons { lines.append("  - \(reason.message)") }
        }
        if let steps = report.decision?.drain.steps, !steps.isEmpty {
            lines.append("")
            lines.append("drains      nodes being emptied before their instance is terminated")
            for step in steps { lines.append("  " + pad(step.drain.node, 24) + pad(step.drain.machine, 24) + describe(step, now: now)) }
        }
        if let cleanup = report.nodeCleanup, !cleanup.ghosts.isEmpty {
            lines.append("")
            lines.append("ghosts      Node objects whose instance is gone")
            for ghost in cleanup.ghosts {
                let when = ghost.due ? (report.mode == .plan ? "would be deleted now" : "deleted now")
                    : "deleted after \(time(ghost.deleteAt)) (in \(span(ghost.deleteAt.timeIntervalSince(now))), kubernetes.ghost_grace)"
                let why = ghost.terminatedByKscaler ? "terminated by kscaler" : "gone since \(time(ghost.since))"
                lines.append("  " + pad(ghost.node.name, 24) + pad(ghost.machine, 24) + why + " · " + when)
            }
        }
        if !report.actions.isEmpty {
            lines.append("")
            for action in report.actions { lines.append("action      " + describe(action, plan: report.mode == .plan)) }
        }
        for note in report.notes { lines.append("note        \(note)") }
        for error in report.errors { lines.append("error       \(error)") }
        lines.append("")
        let outcome = report.decision?.halt == .refused ? "refused, nothing changed (exit 6)" : report.outcome.rawValue
        lines.append("outcome     \(outcome) (\(span(report.finishedAt.timeIntervalSince(report.startedAt))))")
        return lines.joined(separator: "\n")
    }

    /// The `schedules:` windows active now (or none) and the next change of the bounds.
    static func describe(_ schedule: ScheduleStatus, now: Date) -> [String] {
        var lines: [String] = []
        if schedule.active.isEmpty { lines.append("schedule    no window active") }
        for window in schedule.active {
            let raises = [window.min.map { "min \($0)" }, window.max.map { "max \($0)" }].compactMap { $0 }.joined(separator: ", ")
            lines.append("schedule    " + pad(window.name, 16) + (window.pool.map { "pool \($0) · " } ?? "") + "\(window.cron) (\(window.timeZone)) · "
                + "active \(time(window.startedAt)) until \(time(window.endsAt)) (in \(formatDuration(window.endsAt.timeIntervalSince(now).rounded()))) · \(raises)")
        }
        guard let change = schedule.nextChange else {
            lines.append("schedule    next change: none found (the windows keep the bounds as they are)")
            return lines
        }
        let bounds = change.bounds.map { bound in
            let now = schedule.bounds(of: bound.pool)
            return (bound.pool.map { "pool \($0) " } ?? "") + "bounds \(now.map { "\($0.min)…\($0.max)" } ?? "?") → \(bound.min)…\(bound.max)"
        }
        let why = [change.starting.isEmpty ? nil : change.starting.joined(separator: ", ") + " start" + (change.starting.count == 1 ? "s" : ""),
                   change.ending.isEmpty ? nil : change.ending.joined(separator: ", ") + " end" + (change.ending.count == 1 ? "s" : "")]
            .compactMap { $0 }.joined(separator: "; ")
        lines.append("schedule    next change \(time(change.at)) (in \(formatDuration(change.at.timeIntervalSince(now).rounded()))): " + bounds.joined(separator: ", ")
            + (why.isEmpty ? "" : " (\(why))"))
        return lines
    }

    /// One open drain: pods left, what blocks it, its deadline, and this run's step.
    static func describe(_ step: DrainStep, now: Date) -> String {
        let drain = step.drain
        var parts = ["\(step.podsLeft) pod\(step.podsLeft == 1 ? "" : "s") left",
                     "started \(time(drain.startedAt))",
                     "deadline \(time(drain.deadline))" + (drain.deadline > now ? " (in \(span(drain.deadline.timeIntervalSince(now))))" : " (passed)")]
        if let blocker = drain.blockedBy { parts.append("blocked by \(blocker)") }
        let next: String = switch step.action {
        case .evict(let pods): "evict \(pods.map(\.reference).joined(separator: ", "))" + (step.recordon ? " after cordoning again" : "")
        case .wait(let why): "wait: \(why)"
        case .terminate: "terminate and delete the node"
        case .force(let pods, _): "timed out: delete \(pods.map(\.reference).joined(separator: ", ")) and terminate"
        case .abort(let why): "abort and uncordon: \(why)"
        case .cancel: "cancel and uncordon (pods are unschedulable, the minimum is at stake, or the machine is protected)"
        case .close(let why): "close: \(why)"
        }
        parts.append("this run: " + next)
        return parts.joined(separator: " · ")
    }

    /// Wanted and free (Ready workers' free room plus booting capacity), and what is short.
    static func describe(_ headroom: HeadroomStatus) -> String {
        let short = headroom.shortfall
        return headroom.summary + (short.cpu > 0 || short.memory > 0 ? " · short" : " · kept")
            + " (free on Ready workers: \(format(headroom.freeReady.cpu)) cores, \(bytes(headroom.freeReady.memory)); "
            + "booting: \(format(headroom.booting.cpu)) cores, \(bytes(headroom.booting.memory)))"
    }

    static func bytes(_ value: Double) -> String {
        let gib = value / 1_073_741_824
        return gib >= 1 || value == 0 ? "\(format(gib)) GiB" : "\(format(value / 1_048_576)) MiB"
    }

    static func describe(_ action: Decision.Action) -> String {
        switch action {
        case .none: "no change"
        case .scaleUp(let count): "scale up by \(count)"
        case .scaleDown(let victims): "scale down by \(victims.count): \(victims.map(\.instanceID).joined(separator: ", "))"
        }
    }

    static func describe(_ action: RunEvent.ActionRecord, plan: Bool) -> String {
        let what: String = switch (action.kind, action.result) {
        case (.launch, _) where plan: "launch (dry run passed)"
        case (.terminate, _) where plan: "terminate (dry run passed)"
        case (.terminateFailedBoot, _) where plan: "terminate failed boots (dry run passed)"
        case (.launch, .done): "launched \(action.instanceIDs.count)"
        case (.launch, .failed): "launch FAILED (nothing launched)"
        case (.launch, .unknown): "launch RESULT UNKNOWN (the next run looks its launch id up first)"
        case (.terminate, .done): "terminated"
        case (.terminate, .failed): "terminate FAILED (nothing terminated)"
        case (.terminate, .unknown): "terminate RESULT UNKNOWN (the next run sees what is left)"
        case (.terminateFailedBoot, .done): "terminated failed boots"
        case (.terminateFailedBoot, .failed): "terminate failed boots FAILED"
        case (.terminateFailedBoot, .unknown): "terminate failed boots RESULT UNKNOWN"
        case (.deleteNode, _) where plan: "delete node \(action.nodes?.joined(separator: ", ") ?? "?") (server-side dry run passed)"
        case (.deleteNode, .done): "deleted node \(action.nodes?.joined(separator: ", ") ?? "?")"
        case (.deleteNode, .failed): "delete node \(action.nodes?.joined(separator: ", ") ?? "?") FAILED (kept for the next run)"
        case (.deleteNode, .unknown): "delete node \(action.nodes?.joined(separator: ", ") ?? "?") RESULT UNKNOWN (the next run looks again)"
        case (.drainStart, let result), (.evict, let result), (.forceDelete, let result), (.drainAbort, let result),
             (.drainCancel, let result), (.drainClose, let result), (.untaint, let result):
            drainAction(action, result: result, plan: plan)
        case (.protect, _): "protected" + (action.detail.map { " (\($0))" } ?? "")
        case (.unprotect, _): "unprotected" + (action.detail.map { " (\($0))" } ?? "")
        }
        var parts = [what + (action.recovered ? " (by an earlier run that ended before recording it)" : "")]
        if let pool = action.pool { parts.append("pool \(pool)") }
        if let type = action.machineType { parts.append(type) }
        if let market = action.market { parts.append(market.rawValue) }
        if let subnet = action.placement { parts.append("in \(subnet)") }
        if !action.instanceIDs.isEmpty { parts.append(action.instanceIDs.joined(separator: ", ")) }
        if let launchID = action.launchID { parts.append("launch id \(launchID)") }
        if let error = action.error { parts.append(error) }
        return parts.joined(separator: " · ")
    }

    /// The drain kinds: what happened to which node, and any pods named.
    private static func drainAction(_ action: RunEvent.ActionRecord, result: RunEvent.ActionRecord.Result, plan: Bool) -> String {
        let node = action.nodes?.joined(separator: ", ") ?? "?"
        let pods = action.pods.map { $0.isEmpty ? "" : " (\($0.joined(separator: ", ")))" } ?? ""
        let verb: String = switch action.kind {
        case .drainStart: plan ? "would cordon and drain node \(node)" : "cordoned node \(node), drain started"
        case .evict: plan ? "would evict \(action.pods?.count ?? 0) pods from node \(node)\(pods)"
            : "evicted \(action.pods?.count ?? 0) pods from node \(node)\(pods)"
        case .forceDelete: plan ? "would delete the pods left on node \(node)\(pods)" : "deleted the pods left on node \(node)\(pods)"
        case .drainAbort: plan ? "would abort the drain of node \(node)" : "aborted the drain of node \(node), uncordoned"
        case .drainCancel: plan ? "would cancel the drain of node \(node)" : "cancelled the drain of node \(node), uncordoned"
        case .drainClose: "closed the drain of node \(node)"
        default: plan ? "would remove kscaler's taint from node \(node)" : "removed kscaler's taint from node \(node), uncordoned"
        }
        let status = switch result {
        case .done: ""
        case .failed: " FAILED (the next run tries again)"
        case .unknown: " RESULT UNKNOWN (the next run looks again)"
        }
        return verb + status + (action.detail.map { ": \($0)" } ?? "")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format3(value))
    }

    static func format3(_ value: Double) -> String {
        let scaled = (value * 1000).rounded() / 1000
        return String(scaled)
    }

    static func time(_ date: Date) -> String { date.formatted(.iso8601) }

    static func span(_ seconds: TimeInterval) -> String {
        let total = Int(seconds.rounded())
        if total < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if total < 60 { return "\(total)s" }
        let minutes = total / 60, rest = total % 60
        return rest == 0 ? "\(minutes)m" : "\(minutes)m \(rest)s"
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
