import ArgumentParser

/// kscaler's exit codes, documented in README.md and `kscaler --help`. Schedulers and alarms
/// key on them, so they never change meaning.
enum KScalerExit {
    /// Success: acted, decided to do nothing, or skipped because another run holds the lease.
    static let success = ExitCode(0)
    /// An internal error (a bug): nothing was changed after it happened; please report it.
    static let internalError = ExitCode(1)
    /// The configuration is invalid (every problem is printed); nothing was contacted.
    static let invalidConfig = ExitCode(2)
    /// Observing failed (AWS, Prometheus or the lease table answered wrongly or not at all):
    /// no action was taken and the lease was released.
    static let observationFailed = ExitCode(3)
    /// An EC2 action failed part-way; what was done is recorded in the history.
    static let actionFailed = ExitCode(4)
    /// `kscaler doctor` or `kscaler backend test`: at least one check failed.
    static let checksFailed = ExitCode(5)
    /// An operator's request was refused as a whole: `kscaler scale` outside the bounds without
    /// `--force`, or naming a protected or unknown machine; `protect`/`unprotect` of a target
    /// that is not a live machine of this cluster; `config init --output` to an existing file
    /// without `--force`. Nothing changed; a `scale` refusal is in the history.
    static let refused = ExitCode(6)
    /// Command-line usage error (unknown flag or subcommand); from the argument parser.
    static let usage = ExitCode(64)

    /// The `errorType` a failed `lambda` invocation reports: the class of the exit code the same
    /// run would have ended `kscaler run` with (README, "Exit codes"), e.g. `KScaler.ObservationFailed`.
    static func errorType(for code: ExitCode) -> String {
        switch code.rawValue {
        case 1: "KScaler.InternalError"
        case 2: "KScaler.InvalidConfiguration"
        case 3: "KScaler.ObservationFailed"
        case 4: "KScaler.ActionFailed"
        case 6: "KScaler.Refused"
        case 64: "KScaler.UsageError"
        case 128 + 2: "KScaler.Interrupted"
        case 128 + 15: "KScaler.Terminated"
        default: "KScaler.Exit\(code.rawValue)"
        }
    }

    /// The words of the README's table for an exit code, for an invocation error's message.
    static func meaning(of code: ExitCode) -> String {
        switch code.rawValue {
        case 1: "internal error"
        case 2: "invalid configuration"
        case 3: "observation failed, no action taken"
        case 4: "an action failed or its result is unknown"
        case 6: "request refused"
        case 130, 143: "ended by a signal, lease released"
        default: "exit \(code.rawValue)"
        }
    }

    static let helpText = """
    EXIT CODES:
      0   success: acted, nothing to do, or skipped (another run holds the lease)
      1   internal error (a bug); nothing changed after it
      2   invalid configuration; every problem is listed
      3   observation failed (AWS, Prometheus, lease table); no action taken
      4   an EC2 action failed; see `kscaler history`
      5   `kscaler doctor`: a check failed
      6   an operator's request was refused (scale: bounds, protection; protect: not ours;
          config init: the --output file exists); nothing changed
      64  command-line usage error
    """
}
