import ArgumentParser
import AWS
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTP
import KScaler
import KScalerCore
import Logging

/// `kscaler protect ID|NODE [--until T]`: keep one machine of this cluster out of every
/// scale-down (and failed-boot termination) — for ever, or until T.
struct ProtectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protect",
        abstract: "Keep a machine out of every scale-down: tag kscaler:protected (and annotate its node kscaler.io/protected).",
        discussion: """
        TARGET is an instance id (i-…) or a node name (resolved through the Kubernetes API). Only a live \
        instance tagged with this cluster can be protected; anything else is refused (exit 6), nothing changed. \
        --until takes an RFC 3339 time or a duration from now (2h, 90m, 7d); once it has passed the machine \
        is a victim again. Protecting twice changes nothing the second time.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions
    @Argument(help: "An instance id (i-…) or a node name.") var target: String
    @Option(name: .long, help: "When the protection ends: an RFC 3339 time or a duration from now (2h, 90m, 7d). Default: for ever.")
    var until: String?
    @Option(name: .long, help: "Output: human or json.") var output: OutputFormat = .human

    func validate() throws {
        if let until, case .failure(let error) = Protection.parseUntil(until, now: Date()) { throw ValidationError(error.description) }
    }

    func run() async throws {
        let end: Date?
        switch until.map({ Protection.parseUntil($0, now: Date()) }) {
        case .failure(let error)?: throw ValidationError(error.description)
        case .success(let date)?: end = date
        case nil: end = nil
        }
        try await ProtectionRun(global: global, configOptions: configOptions, output: output).run(target: target, protect: true, until: end)
    }
}

/// `kscaler unprotect ID|NODE`: the machine may be chosen as a victim again.
struct UnprotectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unprotect",
        abstract: "Remove kscaler's protection from a machine (tags kscaler:protected and -until, node annotation kscaler.io/protected).",
        discussion: """
        TARGET is an instance id (i-…) or a node name. victims.protected_instances and the scale-down-disabled \
        annotations are not touched: they are the configuration's and the node's own. Idempotent.
        """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions
    @Argument(help: "An instance id (i-…) or a node name.") var target: String
    @Option(name: .long, help: "Output: human or json.") var output: OutputFormat = .human

    func run() async throws {
        try await ProtectionRun(global: global, configOptions: configOptions, output: output).run(target: target, protect: false, until: nil)
    }
}

/// What both commands share: resolve (a refusal is exit 6, a failed lookup exit 3), then
/// write (a failed write exit 4), then print.
private struct ProtectionRun {
    var global: GlobalOptions
    var configOptions: ConfigOptions
    var output: OutputFormat

    func run(target: String, protect: Bool, until: Date?) async throws {
        let logger = global.makeLogger()
        let environment = processEnvironment()
        let config = try configOptions.load(environment: environment).config
        let runtime: Runtime
        do {
            runtime = try await Runtime.make(config: config, environment: AWSEnvironment(variables: environment), transport: CurlTransport(),
                                             logger: logger)
        } catch let error as KubernetesConfigurationError {
            printError("kscaler: \(error)")
            throw KScalerExit.invalidConfig
        } catch {
            printError("kscaler: \(error)")
            throw KScalerExit.observationFailed
        }
        guard let protector = runtime.protector(logger: logger) else {
            printError("kscaler: protect and unprotect tag EC2 instances, and fleet.backend is \(config.backend.name). Nothing was changed. "
                + "Fix: list the machine in victims.protected_instances, or have your backend mark it protected.")
            throw KScalerExit.invalidConfig
        }
        let (resolved, instance): (MachineProtector.Target, EC2Instance)
        do {
            (resolved, instance) = try await protector.resolve(target)
        } catch let refused as ProtectionRefused {
            printError("kscaler: \(refused). Nothing was changed. Fix: name a live instance (or its node) of cluster \(config.clusterID).")
            throw KScalerExit.refused
        } catch {
            printError("kscaler: \(error)")
            throw KScalerExit.observationFailed
        }
        let result: MachineProtector.Result
        do {
            result = try await protector.apply(resolved, instance: instance, protect: protect, until: until)
        } catch {
            printError("kscaler: \(protect ? "protecting" : "unprotecting") \(resolved.instanceID) failed: \(error)")
            throw KScalerExit.actionFailed
        }
        // Kept in the history beside the runs, so "who protected this, and when" has an answer.
        let by = environment["USER"] ?? environment["LOGNAME"] ?? "unknown"
        let at = Date()
        let detail = "by \(by)" + (protect ? (result.until.map { ", until \(ReportPrinter.time($0))" } ?? ", for ever") : "")
            + (result.tagChanged ? "" : ", already so")
        let event = RunEvent(runID: Runtime.newRunID(), startedAt: at, finishedAt: at, outcome: result.tagChanged ? .acted : .nothing,
                             action: "none", counts: nil, reasons: [],
                             actions: [.init(kind: protect ? .protect : .unprotect, instanceIDs: [result.instanceID],
                                             nodes: result.nodeName.map { [$0] }, detail: detail)],
                             errors: [], leaseToken: nil)
        do {
            try await runtime.table.record(event, retention: config.historyRetention)
        } catch {
            // The protection itself is done: say that the record is missing, and carry on.
            logger.warning("the \(protect ? "protection" : "unprotection") was not recorded in the history: \(error)")
        }
        logger.notice("\(protect ? "protected" : "unprotected") \(result.instanceID)",
                      metadata: ["event": "\(protect ? "protect" : "unprotect")", "instance": "\(result.instanceID)",
                                 "until": "\(result.until.map(ReportPrinter.time) ?? "")", "tag_changed": "\(result.tagChanged)",
                                 "by": "\(environment["USER"] ?? environment["LOGNAME"] ?? "unknown")"])
        if output == .json { print(try JSONOutput.render(result)); return }
        let node = result.nodeName.map { " (node \($0))" } ?? ""
        if protect {
            print("protected \(result.instanceID)\(node) " + (result.until.map { "until \(ReportPrinter.time($0))" } ?? "for ever")
                + (result.tagChanged ? "" : " (already so: nothing changed)"))
        } else {
            print("unprotected \(result.instanceID)\(node)" + (result.tagChanged ? "" : " (was not protected by tag: nothing changed)"))
        }
        print("  tag         \(EC2Fleet.protectedTag)" + (protect ? "=true" + (result.until.map { ", \(EC2Fleet.protectedUntilTag)=\(ReportPrinter.time($0))" } ?? "") : " removed"))
        print("  annotation  \(Protection.annotation): \(result.annotation)")
    }
}
