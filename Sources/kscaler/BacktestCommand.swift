import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore

struct BacktestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "What would a policy have done? Replays decide over Prometheus history on a simulated fleet.",
        discussion: """
        Reads the pods that wanted a worker (with their requests) and the nodes the cluster really had \
        from Prometheus (range queries), places the pods on a simulated fleet, and runs the policy's decide \
        once a step. Needs only read access to Prometheus: no AWS, no lease, no Kubernetes API. \
        Times: ISO 8601 (2026-12-01T09:00:00Z), Unix seconds, now, or now-6h.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Start of the replay: ISO 8601, Unix seconds, now, or now-<duration> (now-1d).")
    var from: String

    @Option(name: .long, help: "End of the replay (same forms as --from).")
    var to: String

    @Option(name: .long, help: "Time between two replayed runs, e.g. 1m (as often as kscaler runs).")
    var step = "1m"

    @Option(name: .long, help: ArgumentHelp(
        "YAML configuration to replay; give it twice to compare two side by side.",
        discussion: "Default: $KSCALER_CONFIG, else /etc/kscaler/config.yaml. Prometheus is the first configuration's."))
    var config: [String] = []

    @Option(name: .long, help: "How long a launched node takes to be Ready (default: 2m, or boot_grace when shorter).")
    var bootTime: String?

    @Option(name: .long, help: "Output: human (tables) or json (everything, every action).")
    var output: OutputFormat = .human

    @Option(name: .long, help: "Write an SVG chart of the nodes over time, real and simulated, to this file.")
    var chart: String?

    func validate() throws {
        let now = Date()
        guard let start = BacktestTimes.parse(from, now: now) else {
            throw ValidationError("--from \(from) is not a time; give ISO 8601 (2026-12-01T09:00:00Z), Unix seconds, now or now-6h")
        }
        guard let end = BacktestTimes.parse(to, now: now) else {
            throw ValidationError("--to \(to) is not a time; give ISO 8601 (2026-12-01T15:00:00Z), Unix seconds, now or now-1h")
        }
        guard start < end else { throw ValidationError("--from \(from) is not before --to \(to); give an earlier --from") }
        // History cannot hold the future: those steps would all be "no data".
        guard end <= now.addingTimeInterval(60) else { throw ValidationError("--to \(to) is in the future; give now or an earlier time") }
        guard let step = parseFlagDuration(step), step >= 1 else {
            throw ValidationError("--step \(step) is not a duration of at least 1s; give e.g. 1m or 30s")
        }
        guard end.timeIntervalSince(start) / step <= 1_000_000 else {
            throw ValidationError("--from … --to is more than 1,000,000 steps of --step \(self.step); give a longer --step or a shorter range")
        }
        if let bootTime, parseFlagDuration(bootTime) == nil {
            throw ValidationError("--boot-time \(bootTime) is not a duration; give e.g. 3m or 90s")
        }
        guard config.count <= 4 else { throw ValidationError("--config given \(config.count) times; compare at most 4 configurations at once") }
    }

    func run() async throws {
        let now = Date()
        let logger = global.makeLogger()
        let environment = processEnvironment()
        // validate() checked them.
        let start = BacktestTimes.parse(from, now: now)!, end = BacktestTimes.parse(to, now: now)!
        let stepSeconds = parseFlagDuration(step)!
        let paths: [String?] = config.isEmpty ? [nil] : config
        var replays: [(label: String, path: String?, config: KScalerConfig, settings: BacktestSettings)] = []
        var notes = [
            "simulated: pods placed first fit by requests on nodes of the configured size (no affinity, taints or volumes); "
                + "a launch is Ready after the boot time and never fails; a victim leaves at once (no drain simulated)",
        ]
        for path in paths {
            let config = try Self.load(path, environment: environment)
            let boot = bootTime.flatMap(parseFlagDuration) ?? BacktestSettings.defaultBootTime(for: config)
            let settings = BacktestSettings(step: stepSeconds, bootTime: boot, start: start)
            let problems = settings.problems(for: config)
            let label = Self.label(path, among: paths)
            guard problems.isEmpty else {
                printError("kscaler: cannot backtest \(path ?? "the configuration"):")
                for problem in problems { printError("  \(problem)") }
                throw KScalerExit.invalidConfig
            }
            if config.utilization == .usage {
                notes.append("\(label): utilization: usage cannot be replayed on another fleet (usage was measured on the real one): "
                    + "approximated by requested utilisation")
            }
            if !config.signalQueries.isEmpty {
                notes.append("\(label): signals.* overrides are not replayed: every signal is recomputed from the recorded demand")
            }
            if bootTime == nil {
                notes.append("\(label): boot time \(formatDuration(boot)) (the default: 2m, or boot_grace when shorter; --boot-time sets it)")
            }
            replays.append((label, path, config, settings))
        }
        // Enough history before --from to fill the longest stabilization window.
        let window = replays.map(\.config.scaleDown.stabilizationWindow).max() ?? 0
        let warmUp = (window / stepSeconds).rounded(.up) * stepSeconds
        let first = replays[0].config
        let history: [BacktestStep]
        do {
            var prometheus = first
            // A range query over days can take longer than one run's instant query.
            prometheus.prometheus.timeout = max(first.prometheus.timeout, 60)
            let client = try await BacktestHistory.client(config: prometheus, environment: AWSEnvironment(variables: environment),
                                                          transport: CurlTransport(), logger: logger)
            history = try await BacktestHistory(client: client, workerNodeNames: Runtime.machineIdentity(for: first).workerNodeNames).steps(from: start.addingTimeInterval(-warmUp), to: end, step: stepSeconds)
        } catch {
            printError("kscaler: cannot read the history from Prometheus: \(error)")
            throw KScalerExit.observationFailed
        }
        let real = realFleet(history, settings: replays[0].settings)
        let report = BacktestReport(
            from: start, to: end, stepSeconds: stepSeconds, prometheus: first.prometheus.url, notes: notes,
            real: .init(summary: real.summary, timeline: real.timeline),
            configs: replays.map { replay in
                let run = backtest(history, policy: replay.config.policy, settings: replay.settings)
                return .init(label: replay.label, path: replay.path, bootTimeSeconds: replay.settings.bootTime, summary: run.summary,
                             actions: run.actions, timeline: run.timeline)
            })
        if let chart {
            do {
                try BacktestPrinter.svg(report).write(toFile: chart, atomically: true, encoding: .utf8)
            } catch {
                printError("kscaler: cannot write the chart to \(chart): \(error)")
                throw KScalerExit.internalError
            }
        }
        switch output {
        case .json: print(try JSONOutput.render(report))
        case .human: print(BacktestPrinter.human(report))
        }
    }

    /// Loads and validates one configuration as `ConfigOptions.load` does: every problem printed, exit 2.
    static func load(_ path: String?, environment: [String: String]) throws -> KScalerConfig {
        switch ConfigLoader.load(explicitPath: path, environment: environment) {
        case .success(let loaded):
            return loaded.config
        case .failure(let errors):
            printError("kscaler: the configuration\(path.map { " \($0)" } ?? "") is invalid (\(errors.problems.count) problem\(errors.problems.count == 1 ? "" : "s")):")
            for line in errors.listing { printError(line) }
            throw KScalerExit.invalidConfig
        }
    }

    /// A configuration's column name: its file name without `.yaml`, the path when two share it.
    static func label(_ path: String?, among paths: [String?]) -> String {
        guard let path else { return "config" }
        func stem(_ path: String) -> String {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            for suffix in [".yaml", ".yml"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
            return name
        }
        let others = paths.compactMap { $0 }.filter { $0 != path }
        return others.contains { stem($0) == stem(path) } ? path : stem(path)
    }
}

/// `--from` / `--to`.
enum BacktestTimes {
    /// ISO 8601 with a zone, Unix seconds, `now`, or `now-<duration>`.
    static func parse(_ text: String, now: Date) -> Date? {
        if text == "now" { return now }
        if text.hasPrefix("now-") { return parseFlagDuration(String(text.dropFirst(4))).map { now.addingTimeInterval(-$0) } }
        if let seconds = Double(text), seconds.isFinite, seconds > 0 { return Date(timeIntervalSince1970: seconds) }
        return try? Date(text, strategy: .iso8601)
    }
}

/// `kscaler backtest --output json`: stable snake_case keys, ISO 8601 times.
struct BacktestReport: Encodable {
    struct Real: Encodable {
        var summary: BacktestSummary
        var timeline: [BacktestPoint]
    }

    struct Replay: Encodable {
        var label: String
        var path: String?
        var bootTimeSeconds: Double
        var summary: BacktestSummary
        var actions: [BacktestAction]
        var timeline: [BacktestPoint]

        private enum CodingKeys: String, CodingKey {
            case label, path, bootTimeSeconds = "boot_time_seconds", summary, actions, timeline
        }
    }

    var from: Date
    var to: Date
    var stepSeconds: Double
    var prometheus: String
    var notes: [String]
    var real: Real
    var configs: [Replay]

    private enum CodingKeys: String, CodingKey {
        case from, to, stepSeconds = "step_seconds", prometheus, notes, real, configs
    }
}
