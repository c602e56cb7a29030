import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

struct LambdaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lambda",
        abstract: "Serve AWS Lambda invocations: each one is one run (or, with {\"mode\":\"plan\"}, one plan).",
        discussion: """
        Speaks the Lambda Runtime API at $AWS_LAMBDA_RUNTIME_API (as a custom runtime on \
        provided.al2023, the binary named `bootstrap` starts this loop by itself). The \
        configuration is read once, at start; an invalid one is reported as an initialization \
        error (exit 2). Each invocation is bounded by its Lambda-Runtime-Deadline-Ms less 1 s \
        (and by lease.ttl); the response is the run's JSON report, and a run that would have \
        exited non-zero is an invocation error whose errorType names the exit code's class \
        (KScaler.ObservationFailed, ...). The event may be {"mode": "run"} (the default) or \
        {"mode": "plan"}. SIGTERM between invocations exits 0; during one, it cancels the run \
        (lease released), reports KScaler.Terminated and exits 143.

        \(KScalerExit.helpText)
        """
    )

    // The logging flags of `GlobalOptions`, without its `validate()`: an unusable
    // KSCALER_LOG_FORMAT or KSCALER_LOG_LEVEL must reach Lambda as an initialization error too.
    @Option(name: .long, help: "Log format on stderr: plain or json. Default: $KSCALER_LOG_FORMAT, else plain.")
    var logFormat: LogFormat?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical. Default: $KSCALER_LOG_LEVEL, else info.")
    var logLevel: LogLevelArgument?

    @OptionGroup var configOptions: ConfigOptions

    func run() async throws {
        let environment = processEnvironment()
        let settings: LogSettings
        var problems: [String] = []
        do {
            settings = try LogSettings.resolve(format: logFormat, level: logLevel?.level, environment: environment)
        } catch {
            settings = LogSettings()
            printError("kscaler: \(error)")
            problems.append("\(error)")
        }
        LoggingSystem.bootstrap { [settings] label in StderrLogHandler(label: label, format: settings.format, logLevel: settings.level) }
        let logger = Logger(label: "kscaler")
        guard let host = environment["AWS_LAMBDA_RUNTIME_API"], !host.isEmpty else {
            printError("kscaler: AWS_LAMBDA_RUNTIME_API is not set: `kscaler lambda` runs inside AWS Lambda (or against a stand-in of its Runtime API)")
            throw KScalerExit.invalidConfig
        }
        let api = LambdaRuntimeAPI(host: host, transport: CurlTransport())
        var config: KScalerConfig?
        switch ConfigLoader.load(explicitPath: configOptions.config, environment: environment) {
        case .success(let loaded):
            config = loaded.config
        case .failure(let errors):
            ConfigOptions.report(errors)
            problems += errors.listing.map { $0.trimmingWhitespace() }
        }
        guard let config, problems.isEmpty else {
            let message = "the configuration is invalid: " + problems.joined(separator: "; ")
            do {
                let status = try await api.initializationError(type: KScalerExit.errorType(for: KScalerExit.invalidConfig), message: message)
                logger.error("lambda_init_error", metadata: ["event": "lambda_init_error", "status": "\(status)"])
            } catch {
                logger.error("the Runtime API did not take the initialization error: \(error)", metadata: ["event": "lambda_runtime_api_failed"])
            }
            throw KScalerExit.invalidConfig
        }
        let loop = LambdaLoop(api: api, config: config, environment: environment, logger: logger)
        let exit = await SignalHandling.runCancellingOnSignal(deadline: nil) { await loop.run() }
        if exit != KScalerExit.success { throw exit }
    }
}

/// The invocation loop: next → one run → response or error, until a signal or a broken
/// Runtime API ends it.
struct LambdaLoop: Sendable {
    /// Taken off each invocation's deadline, so the lease is released and the answer posted
    /// before Lambda stops the process.
    static let safetyMargin = Duration.seconds(1)

    let api: LambdaRuntimeAPI
    let config: KScalerConfig
    let environment: [String: String]
    let logger: Logger
    /// One connection pool for every run of this execution environment.
    let transport = CurlTransport()

    /// The process's exit code: 0 after a signal between invocations, 128 + the signal after
    /// one during an invocation, 1 when the Runtime API fails.
    func run() async -> ExitCode {
        logger.info("lambda_ready", metadata: ["event": "lambda_ready", "cluster_id": "\(config.clusterID)"])
        while true {
            let invocation: LambdaInvocation
            do {
                invocation = try await api.next()
            } catch {
                if Task.isCancelled || SignalHandling.signalReceived {
                    logger.info("lambda_shutdown", metadata: ["event": "lambda_shutdown", "reason": "signal between invocations"])
                    return KScalerExit.success
                }
                logger.error("the Runtime API did not hand out the next invocation: \(error)", metadata: ["event": "lambda_runtime_api_failed"])
                return KScalerExit.internalError
            }
            var log = logger
            log[metadataKey: "aws_request_id"] = "\(invocation.requestID)"
            let answer = await handle(invocation, logger: log)
            // Posted from a task of its own: a run cancelled by SIGTERM still reports how it ended.
            let api = self.api
            let posted = await Task { try await api.post(answer, for: invocation.requestID) }.result
            switch posted {
            case .success(let status) where status == 202:
                break
            case .success(let status) where status >= 500:
                log.error("the Runtime API answered \(status) to the invocation's result: exiting, as it asks", metadata: ["event": "lambda_runtime_api_failed"])
                return KScalerExit.internalError
            case .success(let status):
                log.warning("the Runtime API refused the invocation's result with \(status)", metadata: ["event": "lambda_runtime_api_refused"])
            case .failure(let error):
                log.error("the invocation's result could not be posted: \(error)", metadata: ["event": "lambda_runtime_api_failed"])
                return KScalerExit.internalError
            }
            if let signal = SignalHandling.exitCodeForReceivedSignal() { return signal }
        }
    }

    /// One invocation: its event's mode, its deadline, one run through the same code path as
    /// `kscaler run`.
    func handle(_ invocation: LambdaInvocation, logger: Logger) async -> LambdaAnswer {
        let mode: RunReport.Mode
        do {
            mode = try LambdaEvent.mode(of: invocation.event)
        } catch {
            logger.error("\(error)", metadata: ["event": "lambda_invocation", "error_type": "KScaler.InvalidEvent"])
            return .error(type: "KScaler.InvalidEvent", message: "\(error)")
        }
        let end = Self.end(deadlineEpochMilliseconds: invocation.deadlineEpochMilliseconds, leaseTTL: config.lease.ttl)
        let workEnd = Evaluator.workDeadline(before: end)
        let finished = await Evaluation.perform(mode: mode, config: config, environment: environment, logger: logger, end: end,
                                                transport: transport) { end, work in
            await RequestDeadline.enforcing(end, work)
        }
        let exit = SignalHandling.exitCodeForReceivedSignal() ?? finished.exit
        let answer: LambdaAnswer
        if exit == KScalerExit.success, let report = finished.report, let json = try? JSONOutput.render(report) {
            answer = .response(Data(json.utf8))
        } else {
            var message = "exit \(exit.rawValue) (\(KScalerExit.meaning(of: exit)))"
            if exit == finished.exit, exit != KScalerExit.success, ContinuousClock.now >= workEnd {
                message += ": the invocation's deadline (Lambda-Runtime-Deadline-Ms less \(Self.safetyMargin)) cut the run off"
            }
            let said = (finished.problem.map { [$0] } ?? []) + (finished.report?.errors ?? [])
            if !said.isEmpty { message += ": " + said.joined(separator: "; ") }
            if let report = finished.report { message += " (run \(report.runID), outcome \(report.outcome.rawValue), lease released: \(report.leaseReleased.map { "\($0)" } ?? "not taken"))" }
            answer = .error(type: KScalerExit.errorType(for: exit), message: message)
        }
        logger.info("lambda_invocation", metadata: [
            "event": "lambda_invocation", "mode": "\(mode.rawValue)", "exit_code": "\(exit.rawValue)",
            "error_type": "\(answer.errorType ?? "")",
        ])
        return answer
    }

    /// When the run must be over: the invocation's deadline less `safetyMargin`, and never
    /// later than the lease could last (lease.ttl less a second), as `run --timeout` requires.
    static func end(deadlineEpochMilliseconds: Int64?, leaseTTL: Double,
                    now: ContinuousClock.Instant = .now, wallNow: Date = Date()) -> ContinuousClock.Instant {
        let byLease = now + .milliseconds(Int64(leaseTTL * 1000) - 1000)
        guard let deadline = deadlineEpochMilliseconds else { return min(byLease, now + .seconds(60)) }
        let left = Duration.milliseconds(deadline - Int64(wallNow.timeIntervalSince1970 * 1000)) - safetyMargin
        return min(byLease, now + left)
    }
}

/// What an invocation's event may ask: `{"mode": "run"}` (also an empty body, `{}`, or any
/// object without `mode`, such as EventBridge's own events) or `{"mode": "plan"}`.
enum LambdaEvent {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    static func mode(of event: Data) throws -> RunReport.Mode {
        let trimmed = String(decoding: event, as: UTF8.self).trimmingWhitespace()
        guard !trimmed.isEmpty, trimmed != "null" else { return .run }
        let shape: Shape
        do {
            shape = try JSONDecoder().decode(Shape.self, from: Data(trimmed.utf8))
        } catch Shape.NotAString.error {
            throw Invalid(description: "the event's mode must be \"run\" or \"plan\", got a value that is not a string")
        } catch {
            throw Invalid(description: "the event is not a JSON object: send {\"mode\": \"run\"} or {\"mode\": \"plan\"}")
        }
        switch shape.mode {
        case nil, "run"?: return .run
        case "plan"?: return .plan
        case let other?: throw Invalid(description: "the event's mode must be \"run\" or \"plan\", got \(other)")
        }
    }

    /// A JSON object, its other keys ignored (EventBridge sends its own), and its `mode` if any.
    private struct Shape: Decodable {
        enum NotAString: Error { case error }
        enum Key: String, CodingKey { case mode }
        var mode: String?

        init(from decoder: any Decoder) throws {
            let object = try decoder.container(keyedBy: Key.self)
            guard object.contains(.mode) else { return }
            guard let mode = try? object.decode(String.self, forKey: .mode) else { throw NotAString.error }
            self.mode = mode
        }
    }
}

/// One invocation as `next` hands it out.
struct LambdaInvocation: Sendable {
    var requestID: String
    var deadlineEpochMilliseconds: Int64?
    var traceID: String?
    var functionARN: String?
    var event: Data
}

/// How an invocation ended, as posted back.
enum LambdaAnswer: Sendable {
    case response(Data)
    case error(type: String, message: String)

    var errorType: String? {
        if case .error(let type, _) = self { return type }
        return nil
    }
}

/// The Lambda Runtime API, version 2018-06-01, over the HTTP layer's libcurl transport.
struct LambdaRuntimeAPI: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let host: String
    let transport: any HTTPTransport
    /// `next` long-polls: Lambda may freeze the process while it waits, so it gets no real
    /// timeout (the spec: "Do not set a timeout on the GET request"); a day stands for none.
    static let nextTimeout = Duration.seconds(24 * 3600)
    /// Posting a result is answered at once.
    static let postTimeout = Duration.seconds(10)

    private var base: String { "http://\(host)/2018-06-01/runtime" }

    func next() async throws -> LambdaInvocation {
        let response = try await transport.send(HTTPRequest(method: "GET", url: "\(base)/invocation/next", timeout: Self.nextTimeout))
        guard response.status == 200 else {
            throw Failure(description: "GET /runtime/invocation/next answered \(response.status)")
        }
        guard let id = response.header("Lambda-Runtime-Aws-Request-Id"), !id.isEmpty else {
            throw Failure(description: "GET /runtime/invocation/next answered without Lambda-Runtime-Aws-Request-Id")
        }
        return LambdaInvocation(requestID: id, deadlineEpochMilliseconds: response.header("Lambda-Runtime-Deadline-Ms").flatMap { Int64($0) },
                                traceID: response.header("Lambda-Runtime-Trace-Id"),
                                functionARN: response.header("Lambda-Runtime-Invoked-Function-Arn"), event: response.body)
    }

    /// Posts the response or the error of invocation `id`; returns the status (202 = accepted).
    func post(_ answer: LambdaAnswer, for id: String) async throws -> Int {
        let path = "\(base)/invocation/\(id.percentEncodedAllButUnreserved)"
        switch answer {
        case .response(let body):
            return try await transport.send(HTTPRequest(method: "POST", url: "\(path)/response",
                                                        headers: [HTTPHeader("Content-Type", "application/json")],
                                                        body: body, timeout: Self.postTimeout)).status
        case .error(let type, let message):
            return try await postError(to: "\(path)/error", type: type, message: message)
        }
    }

    /// `POST /runtime/init/error`: the function cannot start (an invalid configuration).
    func initializationError(type: String, message: String) async throws -> Int {
        try await postError(to: "\(base)/init/error", type: type, message: message)
    }

    private func postError(to url: String, type: String, message: String) async throws -> Int {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = try encoder.encode(["errorMessage": message, "errorType": type])
        return try await transport.send(HTTPRequest(method: "POST", url: url,
                                                    headers: [HTTPHeader("Content-Type", "application/json"),
                                                              HTTPHeader("Lambda-Runtime-Function-Error-Type", type)],
                                                    body: body, timeout: Self.postTimeout)).status
    }
}
