import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore
import Logging

/// Options shared by `run` and `plan`.
struct EvaluateOptions: ParsableArguments {
    @Option(name: .long, help: "Output: human (a table) or json (one JSON document, stable field names).")
    var output: OutputFormat = .human

    @Option(name: .long, help: ArgumentHelp("Deadline for the whole run, in seconds (at least 1).",
                                            discussion: "The process ends by then, lease released: requests in flight are cut off, nothing further is started. Must be shorter than lease.ttl."))
    var timeout: Int = 60

    func validate() throws {
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second, got \(timeout)") }
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Take the lease, observe, decide, act, record, release — once.",
        discussion: """
        Safe to start every minute from cron, a systemd timer or a scheduler: a run that finds \
        the lease held by another exits 0 ("skipped"). SIGTERM and SIGINT release the lease before exit.

        \(KScalerExit.helpText)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var options: EvaluateOptions

    @Flag(name: .long, help: "The same as `kscaler plan`: observe and decide, change nothing.")
    var dryRun = false

    func run() async throws {
        try await Evaluation.execute(mode: dryRun ? .plan : .run, global: global, configOptions: configOptions, options: options)
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Observe and decide, and print why — without writing or changing anything.",
        discussion: """
        Never takes the lease, never writes the state or the history, never launches or terminates: \
        EC2 actions are sent with DryRun=true so missing IAM permissions show up. Works with read-only credentials.
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var options: EvaluateOptions

    func run() async throws {
        try await Evaluation.execute(mode: .plan, global: global, configOptions: configOptions, options: options)
    }
}

/// The shared body of `run`, `plan` and `scale`: wiring, deadline, signals, output, exit code.
enum Evaluation {
    /// What the command does once everything is wired: a run or a plan by default.
    typealias Body = @Sendable (Evaluator, Evaluator.Invocation) async -> RunReport

    static func execute(mode: RunReport.Mode, global: GlobalOptions, configOptions: ConfigOptions, options: EvaluateOptions,
                        body: Body? = nil) async throws {
        // The whole process, credential lookups included, is over by `end`.
        let end = ContinuousClock.now + .seconds(options.timeout)
        let logger = global.makeLogger()
        let environment = processEnvironment()
        let loaded = try configOptions.load(environment: environment)
        let config = loaded.config
        guard Double(options.timeout) < config.lease.ttl else {
            printError("kscaler: --timeout \(options.timeout)s must be shorter than lease.ttl (\(Int(config.lease.ttl))s), or the lease could expire mid-run")
            throw KScalerExit.invalidConfig
        }
        let finished = await perform(mode: mode, config: config, environment: environment, logger: logger, end: end,
                                     transport: CurlTransport(), body: body) { end, work in
            await SignalHandling.runCancellingOnSignal(deadline: end, work)
        }
        guard let report = finished.report else {
            if let problem = finished.problem { printError("kscaler: \(problem)") }
            throw finished.exit
        }
        switch options.output {
        case .json: print(try JSONOutput.render(report))
        case .human: print(ReportPrinter.human(report, bounds: config.nodes, now: Date()))
        }
        if let exit = SignalHandling.exitCodeForReceivedSignal() { throw exit }
        if finished.exit != KScalerExit.success { throw finished.exit }
    }

    /// How one evaluation ended: its report (nil when it never started: the wiring failed,
    /// `problem` says why) and the exit code it maps to (README, "Exit codes").
    struct Finished: Sendable {
        var report: RunReport?
        var exit: ExitCode
        var problem: String?
    }

    /// One run or plan from a loaded configuration: wiring, the run itself (through `runner`,
    /// which bounds it by `end` and cancels it on a signal), the Pushgateway, the log records
    /// (`run_finished` last). Shared by `run`, `plan`, `scale` and each `lambda` invocation.
    /// Prints nothing on stdout; the caller renders the report.
    static func perform(mode: RunReport.Mode, config: KScalerConfig, environment: [String: String], logger: Logger,
                        end: ContinuousClock.Instant, transport base: any HTTPTransport, body: Body? = nil,
                        runner: (ContinuousClock.Instant, @escaping @Sendable () async -> RunReport) async -> RunReport) async -> Finished {
        // Counts the run's requests and the sequential round trips they came in: the run's
        // cost is its network shape, and the last log record reports it.
        let transport = RecordingTransport(wrapping: base)
        let runtime: Runtime
        let evaluator: Evaluator
        do {
            (runtime, evaluator) = try await RequestDeadline.bounded(by: Evaluator.workDeadline(before: end)) {
                let runtime = try await Runtime.make(config: config, environment: AWSEnvironment(variables: environment),
                                                     transport: transport, logger: logger)
                return (runtime, try await runtime.evaluator(logger: logger))
            }
        } catch let error as KubernetesConfigurationError {
            return Finished(report: nil, exit: KScalerExit.invalidConfig, problem: "\(error)")
        } catch {
            return Finished(report: nil, exit: KScalerExit.observationFailed, problem: "cannot start: \(error)")
        }
        if let (pool, problem) = (runtime.fleet as? EC2Fleet)?.unrenderableUserData {
            let which = runtime.config.pools == nil ? "" : " of pool \(pool)"
            return Finished(report: nil, exit: KScalerExit.invalidConfig,
                            problem: "the worker user data\(which) cannot be rendered from this configuration: \(problem)")
        }
        let invocation = Evaluator.Invocation(runID: Runtime.newRunID(), owner: Runtime.leaseOwner(), deadline: end)

        let report = await runner(end) {
            if let body { return await body(evaluator, invocation) }
            return mode == .run ? await evaluator.run(invocation) : await evaluator.plan(invocation)
        }
        await RequestDeadline.bounded(by: end) { await runtime.pushMetrics(report, logger: logger) }

        for error in report.errors { logger.error("\(error)") }
        // A clock running ahead (or an edited state item) is worth an operator's look even when
        // the run could go on.
        for reason in report.decision?.reasons ?? [] where reason.code == .futureTimestamp {
            logger.warning("\(reason.message)", metadata: ["event": "clock_skew"])
        }
        // The run's last log record: CloudWatch metric filters and alarms key on these fields
        // (infra/README.md, "Log fields").
        logger.info("run_finished", metadata: [
            "event": "run_finished", "outcome": "\(report.outcome.rawValue)", "mode": "\(mode.rawValue)", "run_id": "\(report.runID)",
            "cluster_id": "\(config.clusterID)",
            "at_max": .stringConvertible(report.decision.map { $0.counts.desired >= ($0.schedule?.bounds(of: nil)?.max ?? config.nodes.max) } ?? false),
            "duration_ms": .stringConvertible(Int(report.finishedAt.timeIntervalSince(report.startedAt) * 1000)),
            "http_requests": .stringConvertible(transport.counts.requests),
            "http_round_trips": .stringConvertible(transport.counts.bursts),
            "http_max_in_flight": .stringConvertible(transport.counts.maxInFlight),
        ])
        if report.decision?.halt == .refused { return Finished(report: report, exit: KScalerExit.refused) }
        switch report.outcome {
        case .acted, .nothing, .skipped: return Finished(report: report, exit: KScalerExit.success)
        case .failed: return Finished(report: report, exit: KScalerExit.observationFailed)
        case .actionFailed, .actionResultUnknown: return Finished(report: report, exit: KScalerExit.actionFailed)
        }
    }
}
