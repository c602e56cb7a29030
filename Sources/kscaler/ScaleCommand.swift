import ArgumentParser
import KScaler
import KScalerCore

struct ScaleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Scale by hand, under the lease: to a size, by some nodes, or named machines away; optionally pin the size.",
        discussion: """
        The request goes through the same safety rules as a run: nothing while the cluster is \
        unhealthy, at most max_step per run, failed boots replaced, protected machines never removed, \
        victims drained first while the Kubernetes API is on. A target outside nodes.min…nodes.max is \
        refused (exit 6) unless --force, which says what it overrides. A scale-up starts the \
        scale-down delay like any other. --hold pins the resulting size: runs take no decision of their \
        own until it ends (they only keep the fleet at the target), and `kscaler plan` shows it. \
        Every request, refused or not, is recorded in the history as manual, with --reason.

        \(KScalerExit.helpText)
        """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var options: EvaluateOptions

    @Option(name: .long, help: "Take the managed nodes (of --pool) to this many.") var to: Int?
    @Option(name: .long, help: "Add this many nodes to those there now.") var add: Int?
    @Option(name: .long, parsing: .upToNextOption, help: "Remove these machines (instance ids), drained first while the Kubernetes API is on.")
    var remove: [String] = []
    @Option(name: .long, help: "With pools: the pool to scale.") var pool: String?
    @Flag(name: .long, help: "Go past nodes.min/nodes.max (said in the output and the history). Protection is never overridden.")
    var force = false
    @Option(name: .long, help: "Pin the resulting size for this long (e.g. 30m, 2h): no automatic decision until then.")
    var hold: String?
    @Flag(name: .long, help: "End the hold in force now (alone, or with a new request).") var releaseHold = false
    @Option(name: .long, help: "Why, in your words; kept in the history.") var reason: String?
    @Flag(name: .long, help: "Observe and decide the request, change nothing (EC2 calls with DryRun=true).") var dryRun = false

    func validate() throws {
        let changes = [to != nil, add != nil, !remove.isEmpty].filter { $0 }.count
        guard changes <= 1 else { throw ValidationError("give one of --to, --add, --remove") }
        guard changes == 1 || hold != nil || releaseHold else {
            throw ValidationError("nothing asked: give --to N, --add N or --remove ID…, or --hold DURATION to pin today's size, or --release-hold")
        }
        if let to, to < 0 { throw ValidationError("--to must be 0 or more, got \(to)") }
        if let add, add < 1 { throw ValidationError("--add must be 1 or more, got \(add)") }
        if hold != nil && releaseHold { throw ValidationError("--hold and --release-hold contradict each other: give one") }
        if let hold {
            guard let seconds = parseDuration(hold), seconds > 0, seconds <= 7 * 86_400 else {
                throw ValidationError("--hold \(hold) is not a duration between 1s and 7d (e.g. 30m, 2h, 1d): a longer pin belongs in nodes.min/max")
            }
        }
        if let reason, reason.count > 500 { throw ValidationError("--reason is \(reason.count) characters: keep it under 500") }
    }

    func run() async throws {
        let environment = processEnvironment()
        let change: ManualRequest.Change =
            if let to { .to(to) } else if let add { .add(add) } else if !remove.isEmpty { .remove(remove) } else { .keep }
        let request = ManualRequest(change: change, pool: pool, force: force, hold: hold.flatMap(parseDuration), releaseHold: releaseHold, reason: reason,
                                    by: environment["USER"] ?? environment["LOGNAME"] ?? "unknown")
        let dryRun = dryRun
        try await Evaluation.execute(mode: dryRun ? .plan : .run, global: global, configOptions: configOptions, options: options) { evaluator, invocation in
            await evaluator.scale(invocation, request: request, dryRun: dryRun)
        }
    }
}
