import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore
import Logging

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Write a starter configuration, or check one.", subcommands: [Init.self, Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and print every effective value and where it came from.",
            discussion: "Every problem is reported at once with its field and a fix (exit 2). Secrets are redacted.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var configOptions: ConfigOptions
        @Option(name: .long, help: "Output: human or json.") var output: OutputFormat = .human

        func run() async throws {
            let environment = processEnvironment()
            let log = try global.settings(environment: environment)
            let loaded: ConfigLoader.Loaded
            switch ConfigLoader.load(explicitPath: configOptions.config, environment: environment) {
            case .success(let value): loaded = value
            case .failure(let errors):
                if output == .json {
                    print(try JSONOutput.render(ConfigCheckOutput(invalid: errors.problems, log: log)))
                } else {
                    ConfigOptions.report(errors, explicitPath: configOptions.config, environment: environment)
                }
                throw KScalerExit.invalidConfig
            }
            // The check `run` makes before it launches anything, so what passes here runs there.
            try ConfigOptions.workerUserData(for: loaded.config)
            let kubernetes: KubernetesAccess
            do {
                kubernetes = try KubernetesAccess.resolve(loaded.config.kubernetes, environment: environment)
            } catch {
                printError("kscaler: \(KubernetesConfigurationError(problem: "\(error)"))")
                throw KScalerExit.invalidConfig
            }
            let settings = loaded.config.effectiveSettings(machines: Runtime.machineIdentity(for: loaded.config)).map { setting in
                ConfigCheckOutput.Setting(path: setting.path, value: setting.sensitive && !setting.value.isEmpty ? "<redacted>" : setting.value,
                                          source: loaded.source(of: setting.path).description)
            }
            let sizes = ConfigCheckOutput.Size.all(loaded.config)
            if output == .json {
                var checked = ConfigCheckOutput(file: loaded.file, kubernetes: kubernetes.description,
                                                warnings: kubernetes.warnings, log: log, settings: settings)
                checked.sizes = sizes
                print(try JSONOutput.render(checked))
                return
            }
            print("configuration is valid\(loaded.file.map { " (file \($0))" } ?? " (environment only)")")
            print("kubernetes API: \(kubernetes.description)")
            for warning in kubernetes.warnings { print("warning: \(warning)") }
            print("log format: \(log.format.rawValue) (\(log.formatSource.describe(LogSettings.formatVariable)))")
            print("log level: \(log.level.rawValue) (\(log.levelSource.describe(LogSettings.levelVariable)))")
            let width = (settings.map(\.path.count).max() ?? 0) + 2
            for setting in settings {
                print(ReportPrinter.pad(setting.path, width) + ReportPrinter.pad(setting.value.isEmpty ? "—" : setting.value, 28) + setting.source)
            }
            if !sizes.isEmpty {
                print("")
                print("sizes (allocatable per instance type: the config's, else Ready nodes', else EC2's estimate)")
                for size in sizes {
                    let name = (size.pool.map { "pools.\($0): " } ?? "") + size.instanceType
                    let value = size.cpu.map { cpu in "\(cpu) cores, \(size.memory ?? "?")" } ?? "—"
                    print("  " + ReportPrinter.pad(name, width) + ReportPrinter.pad(value, 28) + size.source)
                }
            }
        }
    }
}

/// `config check --output json`: whether the configuration is valid, and either every problem
/// (path, message, fix) or every effective value with its source, secrets redacted.
struct ConfigCheckOutput: Encodable {
    struct Setting: Encodable {
        var path: String
        var value: String
        var source: String
    }
    struct Problem: Encodable {
        var path: String
        var message: String
        var fix: String
        var variable: String?
    }
    struct Log: Encodable {
        var format: String
        var formatSource: String
        var level: String
        var levelSource: String
    }

    var valid: Bool
    var file: String?
    var kubernetes: String?
    var warnings: [String] = []
    var log: Log
    var settings: [Setting] = []
    var problems: [Problem] = []
    /// Each listed instance type's size source as far as the configuration tells: `config`, or
    /// `learned at run time` (Ready nodes, then EC2; only a run can ask them).
    var sizes: [Size] = []

    struct Size: Encodable {
        var pool: String?
        var instanceType: String
        var cpu: String?
        var memory: String?
        var source: String

        static let learned = "learned at run time"

        static func all(_ config: KScalerConfig) -> [Size] {
            config.workerPools.flatMap { pool in
                let types = pool.workers.instanceTypes.isEmpty ? pool.workers.sizes.keys.sorted() : pool.workers.instanceTypes
                return types.map { type in
                    let size = pool.workers.sizes[type]
                    return Size(pool: config.pools == nil ? nil : pool.name, instanceType: type, cpu: size.map { formatNumber($0.cpuCores) },
                                memory: size.map { formatQuantity($0.memoryBytes) }, source: size == nil ? learned : SizeSource.config.rawValue)
                }
            }
        }

        private enum CodingKeys: String, CodingKey { case pool, instanceType = "instance_type", cpu, memory, source }
    }

    init(file: String?, kubernetes: String, warnings: [String], log: LogSettings, settings: [Setting]) {
        (valid, self.file, self.kubernetes, self.warnings, self.settings) = (true, file, kubernetes, warnings, settings)
        self.log = Log(log)
    }

    init(invalid problems: [ConfigProblem], log: LogSettings) {
        valid = false
        self.log = Log(log)
        self.problems = problems.map { Problem(path: $0.path, message: $0.message, fix: $0.fix, variable: $0.variable) }
    }

    private enum CodingKeys: String, CodingKey {
        case valid, file, kubernetes, warnings, log, settings, problems, sizes
    }
}

extension ConfigCheckOutput.Log {
    init(_ settings: LogSettings) {
        self.init(format: settings.format.rawValue, formatSource: settings.formatSource.describe(LogSettings.formatVariable),
                  level: settings.level.rawValue, levelSource: settings.levelSource.describe(LogSettings.levelVariable))
    }

    private enum CodingKeys: String, CodingKey {
        case format, formatSource = "format_source", level, levelSource = "level_source"
    }
}

extension LogSettings.Source {
    /// Worded as `config check` words the other settings' sources.
    func describe(_ variable: String) -> String {
        switch self {
        case .flag: "flag"
        case .environment: "env \(variable)"
        case .defaultValue: "default"
        }
    }
}

struct LeaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease", abstract: "Show or break the cluster's lease.", subcommands: [Status.self, Break.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Who holds the lease: owner, expiry, fencing token, age.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var configOptions: ConfigOptions
        @Option(name: .long, help: "Output: human or json.") var output: OutputFormat = .human

        func run() async throws {
            let logger = global.makeLogger()
            let (store, config) = try await OperatorContext.store(configOptions, logger: logger)
            var holder = try await OperatorContext.observing { try await store.holder() }
            let now = Date()
            // Shown as a run would judge it: malformed attributes and times no correct clock wrote.
            holder.problems = holder.doubts(at: now, ttl: config.lease.ttl, clockSkew: config.lease.maxClockSkew)
            // The operator's hold lives in the same item: shown here, as it also stops runs from deciding.
            let hold = try? await store.readState().hold
            if output == .json { print(try JSONOutput.render(LeaseStatus(lease: holder, hold: hold.flatMap { $0 }))); return }
            let token = holder.token.map(String.init) ?? "unreadable"
            defer {
                if let hold = hold.flatMap({ $0 }), hold.isActive(at: now) {
                    print("hold: \(hold.summary); `kscaler scale --release-hold` ends it")
                }
            }
            if let owner = holder.owner, holder.isHeld(at: now) {
                print("lease held by \(owner)")
                print("  token    \(token)")
                if let acquired = holder.acquiredAt { print("  age      \(ReportPrinter.span(now.timeIntervalSince(acquired))) (since \(ReportPrinter.time(acquired)))") }
                if let expires = holder.expiresAt { print("  expires  \(ReportPrinter.time(expires)) (in \(ReportPrinter.span(expires.timeIntervalSince(now))))") }
            } else {
                print("lease free (fencing token \(token)\(holder.owner.map { ", last held by \($0), expired" } ?? ""))")
            }
            guard !holder.problems.isEmpty else { return }
            print("the lease cannot be trusted; runs take no action until `kscaler lease break --yes` clears it:")
            for problem in holder.problems { print("  - \(problem)") }
        }
    }

    struct Break: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "break",
            abstract: "Clear the lease whoever holds it (operators only).",
            discussion: "A run in progress will find its lease gone and record nothing. Requires --yes.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var configOptions: ConfigOptions
        @Flag(name: .long, help: "Confirm breaking the lease.") var yes = false

        func validate() throws {
            guard yes else { throw ValidationError("breaking the lease needs --yes (a run in progress will lose it)") }
        }

        func run() async throws {
            let logger = global.makeLogger()
            let (store, config) = try await OperatorContext.store(configOptions, logger: logger)
            let broken = try await OperatorContext.observing { try await store.breakLease() }
            let operatorName = processEnvironment()["USER"] ?? processEnvironment()["LOGNAME"] ?? "unknown"
            guard broken.cleared || broken.tokenReset else {
                print("the lease was not held; nothing to break")
                return
            }
            let holder = broken.holder
            let owner = holder.owner ?? (holder.problems.isEmpty ? "nobody" : "an unreadable owner")
            let token = holder.token.map(String.init) ?? "unreadable"
            logger.warning("lease broken", metadata: ["event": "lease_broken", "by": "\(operatorName)", "owner": "\(owner)",
                                                      "lease_token": "\(token)", "token_reset": "\(broken.tokenReset)",
                                                      "cluster": "\(config.clusterID)"])
            print("broke the lease held by \(owner) (token \(token))")
            for problem in holder.problems { print("  repaired: \(problem)") }
            if broken.tokenReset {
                print("the unreadable fencing token was removed: the next run takes token 1 (every write also names its owner, so fencing holds)")
            }
        }
    }
}

/// `lease status --output json`: the lease's fields as ever, and the operator's hold beside them.
struct LeaseStatus: Encodable {
    var lease: LeaseHolder
    var hold: Hold?

    private enum CodingKeys: String, CodingKey { case hold }

    func encode(to encoder: any Encoder) throws {
        try lease.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(hold, forKey: .hold)
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "What recent runs decided and did, newest first.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions
    @Option(name: .long, help: "How many events.") var limit = 20
    @Option(name: .long, help: "Output: human or json.") var output: OutputFormat = .human

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be between 1 and 1000") }
    }

    func run() async throws {
        let logger = global.makeLogger()
        let (store, config) = try await OperatorContext.store(configOptions, logger: logger)
        let (events, unreadable) = try await OperatorContext.observing { try await store.history(limit: limit) }
        // One damaged item must not hide the others: it is skipped and named.
        for problem in unreadable { logger.warning("skipped an unreadable history item", metadata: ["problem": "\(problem)"]) }
        if output == .json { print(try JSONOutput.render(events)); return }
        if events.isEmpty { print("no history yet for cluster \(config.clusterID)") }
        for event in events {
            print("\(ReportPrinter.time(event.startedAt))  \(ReportPrinter.pad(event.outcome.rawValue, 14))\(ReportPrinter.pad(event.action, 11))run \(event.runID)")
            if let manual = event.manual {
                print("    manual: kscaler scale \(manual.summary) by \(manual.by)" + (manual.reason.map { ": \"\($0)\"" } ?? ""))
            }
            if let hold = event.hold { print("    hold: \(hold.summary)") }
            for action in event.actions { print("    " + ReportPrinter.describe(action, plan: false)) }
            for reason in event.reasons { print("    - \(reason)") }
            for error in event.errors { print("    error: \(error)") }
        }
    }
}

/// What the operator commands share: the config, AWS, the run store; errors become exit 3.
enum OperatorContext {
    static func store(_ options: ConfigOptions, logger: Logger) async throws -> (any RunStore, KScalerConfig) {
        let environment = processEnvironment()
        let config = try options.load(environment: environment).config
        let table = try await observing {
            try await Runtime.make(config: config, environment: AWSEnvironment(variables: environment), transport: CurlTransport(),
                                   logger: logger).table
        }
        return (table, config)
    }

    /// Runs an AWS call; a failure is printed and becomes exit code 3.
    static func observing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("kscaler: \(error)")
            throw KScalerExit.observationFailed
        }
    }
}
