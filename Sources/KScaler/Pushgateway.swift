import AWS
import HTTP
import KScalerCore
import Logging

/// Metrics for a job that does not stay up: at the end of each run, the run's figures are
/// pushed to a Prometheus Pushgateway, grouped by cluster id. A run that observed the fleet
/// replaces the group (PUT), so a label that disappeared (a removed pool) does not linger. A
/// run that failed before deciding knows nothing new about the fleet: it pushes its own
/// figures only (POST replaces just the metrics it names), and the node gauges of the last run
/// that saw the fleet stay, so dashboards show no gap while `kscaler_last_run_success` says 0.
/// Skipped runs push nothing: the run holding the lease reports.
package struct Pushgateway: Sendable {
    let baseURL: String
    let transport: any HTTPTransport

    package init(baseURL: String, transport: any HTTPTransport) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.transport = transport
    }

    package struct PushFailed: Error, CustomStringConvertible {
        package var status: Int
        package var body: String
        package var description: String { "the Pushgateway answered HTTP \(status): \(body)" }
    }

    package func push(_ report: RunReport) async throws {
        let group = "\(baseURL)/metrics/job/kscaler/cluster/\(Self.pathSegment(report.clusterID))"
        let response = try await transport.send(HTTPRequest(
            method: report.decision == nil ? "POST" : "PUT", url: group, headers: [HTTPHeader("Content-Type", "text/plain; version=0.0.4")],
            body: Data(Self.exposition(report).utf8), timeout: .seconds(5)))
        guard (200..<300).contains(response.status) else {
            throw PushFailed(status: response.status, body: String(decoding: response.body.prefix(200), as: UTF8.self))
        }
    }

    /// The Prometheus text exposition of one run. Ends with a newline, as the format requires.
    /// Without a decision only the run's own figures: what the fleet looked like is unknown.
    static func exposition(_ report: RunReport) -> String {
        var lines: [String] = []
        func gauge(_ name: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) gauge")
            for sample in samples { lines.append("\(name)\(sample.labels) \(format(sample.value))") }
        }
        let success = report.outcome == .acted || report.outcome == .nothing
        if let backend = report.backend {
            gauge("kscaler_backend_info", "The backend the last run acted on (fleet.backend), as a label.", [("{backend=\"\(backend)\"}", 1)])
        }
        gauge("kscaler_last_run_timestamp_seconds", "When the last run finished (Unix seconds).", [("", report.finishedAt.timeIntervalSince1970)])
        gauge("kscaler_last_run_success", "1 if the last run observed, decided and acted without error.", [("", success ? 1 : 0)])
        gauge("kscaler_last_run_duration_seconds", "Wall time of the last run.", [("", report.finishedAt.timeIntervalSince(report.startedAt))])
        gauge("kscaler_last_run_outcome", "The last run's outcome (1 for the one that happened).",
              RunReport.Outcome.allCases.map { ("{outcome=\"\($0.rawValue)\"}", $0 == report.outcome ? 1 : 0) })
        // All 0 when the run decided nothing, so a failed run's previous decision does not linger.
        let decided = report.decision?.action.kindName
        gauge("kscaler_last_run_decision", "The last decision by kind (1 for the one taken).",
              ["none", "scale_up", "scale_down"].map { (kind: String) in ("{action=\"\(kind)\"}", kind == decided ? 1 : 0) })
        gauge("kscaler_last_run_manual", "1 when the last run was an operator's request (kscaler scale).", [("", report.manual == nil ? 0 : 1)])
        let kinds: [RunEvent.ActionRecord.Kind] = [.launch, .terminate, .terminateFailedBoot]
        gauge("kscaler_last_run_instances", "Instances the last run launched or terminated, by kind.",
              kinds.map { kind in ("{kind=\"\(kind.rawValue)\"}", Double(report.actions.filter { $0.kind == kind && $0.error == nil }.reduce(0) { $0 + $1.instanceIDs.count })) })
        guard let decision = report.decision else { return lines.joined(separator: "\n") + "\n" }

        gauge("kscaler_managed_nodes", "Managed instances (pending or running).", [("", Double(decision.counts.current))])
        gauge("kscaler_ready_nodes", "Managed instances whose node is Ready.", [("", Double(decision.counts.ready))])
        gauge("kscaler_booting_nodes", "Managed instances still booting: no Ready node yet, within the boot timeout.", [("", Double(decision.counts.booting))])
        gauge("kscaler_desired_nodes", "Managed instances the last decision wanted.", [("", Double(decision.counts.desired))])
        if let pods = report.observation?.reading(.unschedulablePods).usableValue {
            gauge("kscaler_unschedulable_pods", "Unschedulable pods the last run saw.", [("", pods)])
        }
        // The bounds in force: the base raised by any active `schedules:` window.
        if let schedule = decision.schedule, let bounds = schedule.bounds(of: nil) {
            gauge("kscaler_min_nodes", "The min the last decision kept to (nodes.min raised by active schedules).", [("", Double(bounds.min))])
            gauge("kscaler_max_nodes", "The max the last decision kept to (nodes.max raised by active schedules).", [("", Double(bounds.max))])
        }
        if decision.schedule != nil {
            gauge("kscaler_schedules_active", "schedules: windows active at the last run.", [("", Double(decision.schedule?.active.count ?? 0))])
        }
        // With pools, the same figures for each pool, labelled with its name.
        if !decision.pools.isEmpty {
            func byPool(_ value: (PoolOutcome) -> Double) -> [(labels: String, value: Double)] {
                decision.pools.map { ("{pool=\"\($0.name)\"}", value($0)) }
            }
            gauge("kscaler_pool_managed_nodes", "Managed instances of the pool (pending or running).", byPool { Double($0.counts.current) })
            gauge("kscaler_pool_ready_nodes", "Managed instances of the pool whose node is Ready.", byPool { Double($0.counts.ready) })
            gauge("kscaler_pool_booting_nodes", "Managed instances of the pool still booting.", byPool { Double($0.counts.booting) })
            gauge("kscaler_pool_desired_nodes", "Managed instances of the pool the last decision wanted.", byPool { Double($0.counts.desired) })
            gauge("kscaler_pool_pending_pods", "Unschedulable pods routed to the pool.", byPool { Double($0.pendingPods) })
            gauge("kscaler_pool_min_nodes", "The pool's min in force (raised by active schedules).", byPool { Double($0.min) })
            gauge("kscaler_pool_max_nodes", "The pool's max in force (raised by active schedules).", byPool { Double($0.max) })
            gauge("kscaler_unservable_pods", "Unschedulable pods no pool can take.", [("", Double(decision.unservablePods.count))])
        }
        // `headroom:` short even once booting nodes are Ready (cores, bytes), by pool with pools.
        let headrooms = decision.pools.isEmpty ? decision.headroom.map { [("", $0)] } ?? []
            : decision.pools.compactMap { pool in pool.headroom.map { ("pool=\"\(pool.name)\",", $0) } }
        if !headrooms.isEmpty {
            gauge("kscaler_headroom_shortfall", "Headroom wanted but not free (cores or bytes), counting booting capacity.",
                  headrooms.flatMap { pool, status in
                      [("{\(pool)resource=\"cpu\"}", status.shortfall.cpu), ("{\(pool)resource=\"memory\"}", status.shortfall.memory)]
                  })
        }
        gauge("kscaler_drains_open", "Scale-down drains open after the last run.", [("", Double(report.drainsOpen))])
        // A pinned size is the first thing to check when the fleet does not follow the load.
        let hold = report.hold.flatMap { $0.isActive(at: report.finishedAt) ? $0 : nil }
        gauge("kscaler_hold_active", "1 while an operator's hold (kscaler scale --hold) keeps runs from deciding.", [("", hold == nil ? 0 : 1)])
        if let hold {
            gauge("kscaler_hold_target_nodes", "The node count the operator's hold keeps.", [("", Double(hold.target))])
            gauge("kscaler_hold_until_timestamp_seconds", "When the operator's hold ends (Unix seconds).", [("", hold.until.timeIntervalSince1970)])
        }
        if let longest = report.drainDurations.max() {
            gauge("kscaler_drain_duration_seconds", "How long the drain the last run finished took, from cordon to terminate "
                + "(the longest, when several finished).", [("", longest)])
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// Grouping-key values go into the URL path; kscaler's cluster ids are [a-z0-9-], but be safe.
    static func pathSegment(_ value: String) -> String { FormEncoding.encode(value) }
}

extension Runtime {
    /// Pushes the run's metrics when a Pushgateway is configured. A failed push is logged, not
    /// fatal: the run itself has already happened.
    package func pushMetrics(_ report: RunReport, logger: Logger) async {
        guard let url = config.pushgatewayURL, !url.isEmpty, report.outcome != .skipped else { return }
        do {
            try await Pushgateway(baseURL: url, transport: transport).push(report)
        } catch {
            logger.warning("pushing metrics failed: \(error)")
        }
    }
}
