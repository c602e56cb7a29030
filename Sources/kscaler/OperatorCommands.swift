import ArgumentParser
import AWS
import HTTP
import KScaler
import KScalerCore
import Logging

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Inspect the configuration.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and print every effective value and where it came from.",
            discussion: "Every problem is reported at once with its field and a fix (exit 2). Secrets are redacted.")

        @OptionGroup var configOptions: ConfigOptions

        func run() async throws {
            let loaded = try configOptions.load(environment: processEnvironment())
            print("configuration is valid\(loaded.file.map { " (file \($0))" } ?? " (environment only)")")
            let settings = loaded.config.effectiveSettings()
            let width = (settings.map(\.path.count).max() ?? 0) + 2
            for setting in settings {
                let value = setting.sensitive && !setting.value.isEmpty ? "<redacted>" : setting.value
                print(ReportPrinter.pad(setting.path, width) + ReportPrinter.pad(value.isEmpty ? "—" : value, 28)
                      + loaded.source(of: setting.path).description)
            }
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
            let table = try await OperatorContext.table(configOptions, logger: logger)
            let holder = try await OperatorContext.observing { try await table.holder() }
            let now = Date()
            if output == .json { print(try JSONOutput.render(holder)); return }
            guard let owner = holder.owner, holder.isHeld(at: now) else {
                print("lease free (fencing token \(holder.token)\(holder.owner.map { ", last held by \($0), expired" } ?? ""))")
                return
            }
            print("lease held by \(owner)")
            print("  token    \(holder.token)")
            if let acquired = holder.acquiredAt { print("  age      \(ReportPrinter.span(now.timeIntervalSince(acquired))) (since \(ReportPrinter.time(acquired)))") }
            if let expires = holder.expiresAt { print("  expires  \(ReportPrinter.time(expires)) (in \(ReportPrinter.span(expires.timeIntervalSince(now))))") }
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
            let table = try await OperatorContext.table(configOptions, logger: logger)
            let broken = try await OperatorContext.observing { try await table.breakLease() }
            let operatorName = processEnvironment()["USER"] ?? processEnvironment()["LOGNAME"] ?? "unknown"
            if let owner = broken.owner {
                logger.warning("lease broken", metadata: ["event": "lease_broken", "by": "\(operatorName)", "owner": "\(owner)",
                                                          "token": "\(broken.token)", "cluster": "\(table.clusterID)"])
                print("broke the lease held by \(owner) (token \(broken.token))")
            } else {
                print("the lease was not held; nothing to break")
            }
        }
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
        let table = try await OperatorContext.table(configOptions, logger: logger)
        let events = try await OperatorContext.observing { try await table.history(limit: limit) }
        if output == .json { print(try JSONOutput.render(events)); return }
        if events.isEmpty { print("no history yet for cluster \(table.clusterID)") }
        for event in events {
            print("\(ReportPrinter.time(event.startedAt))  \(ReportPrinter.pad(event.outcome.rawValue, 14))\(ReportPrinter.pad(event.action, 11))run \(event.runID)")
            for action in event.actions { print("    " + ReportPrinter.describe(action, plan: false)) }
            for reason in event.reasons { print("    - \(reason)") }
            for error in event.errors { print("    error: \(error)") }
        }
    }
}

/// What the operator commands share: the config, AWS, the table; errors become exit 3.
enum OperatorContext {
    static func table(_ options: ConfigOptions, logger: Logger) async throws -> KScalerTable {
        let environment = processEnvironment()
        let config = try options.load(environment: environment).config
        return try await observing {
            try await Runtime.make(config: config, environment: AWSEnvironment(variables: environment), transport: CurlTransport(),
                                   logger: logger).table
        }
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
