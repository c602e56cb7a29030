import ArgumentParser
import AWS
import Logging
import KScalerCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif

enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case plain, json
}

/// The log format and level in force, and where each came from (`config check` shows both).
struct LogSettings: Equatable, Sendable {
    static let formatVariable = "KSCALER_LOG_FORMAT"
    static let levelVariable = "KSCALER_LOG_LEVEL"

    enum Source: String, Sendable { case flag, environment, defaultValue = "default" }

    var format: LogFormat = .plain
    var formatSource: Source = .defaultValue
    var level: Logger.Level = .info
    var levelSource: Source = .defaultValue

    struct Invalid: Error, CustomStringConvertible {
        var variable: String
        var value: String
        var allowed: [String]
        var description: String {
            "\(variable)=\(JSONText.quote(value)) is not a log \(variable == LogSettings.formatVariable ? "format" : "level"). "
                + "Fix: set it to one of \(allowed.joined(separator: ", ")), or unset it"
        }
    }

    /// A flag wins over its variable; an empty variable counts as unset (as for config keys).
    static func resolve(format: LogFormat?, level: Logger.Level?, environment: [String: String]) throws(Invalid) -> LogSettings {
        var settings = LogSettings()
        if let format {
            (settings.format, settings.formatSource) = (format, .flag)
        } else if let value = environment[formatVariable], !value.isEmpty {
            guard let parsed = LogFormat(rawValue: value.lowercased()) else {
                throw Invalid(variable: formatVariable, value: value, allowed: LogFormat.allCases.map(\.rawValue))
            }
            (settings.format, settings.formatSource) = (parsed, .environment)
        }
        if let level {
            (settings.level, settings.levelSource) = (level, .flag)
        } else if let value = environment[levelVariable], !value.isEmpty {
            guard let parsed = Logger.Level(rawValue: value.lowercased()) else {
                throw Invalid(variable: levelVariable, value: value, allowed: Logger.Level.allCases.map(\.rawValue))
            }
            (settings.level, settings.levelSource) = (parsed, .environment)
        }
        return settings
    }
}

struct LogLevelArgument: ExpressibleByArgument, Sendable {
    var level: Logger.Level
    init(_ level: Logger.Level) { self.level = level }
    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        self.level = level
    }
    var defaultValueDescription: String { level.rawValue }
}

/// Writes one line per log record to stderr, plain or as JSON. Metadata under a known secret
/// key is redacted here, the last line of defence: kscaler never logs secrets on purpose.
struct StderrLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The keys a secret travels under, matched whole and case-insensitively: HTTP auth
    /// headers, AWS credentials as the SDKs, the shared files and SigV4 name them, Prometheus's
    /// password and bearer token, the cluster join token. Only whole keys: `lease_token` (the
    /// fencing counter operators read) or a `launch_token_count` is no secret, so a key is not
    /// redacted for merely containing "token".
    static let secretKeys: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie",
        "x-amz-security-token", "x-amz-signature", "x-aws-ec2-metadata-token", "signature",
        "aws_secret_access_key", "secret_access_key", "secretaccesskey", "secret_key",
        "aws_session_token", "session_token", "sessiontoken", "security_token",
        "aws_container_authorization_token", "web_identity_token", "webidentitytoken",
        "bearer_token", "password", "join_token", "token",
    ]

    static func isSecret(_ key: String) -> Bool {
        secretKeys.contains(key.lowercased())
    }

    func log(event: LogEvent) {
        // One write(2) per line: lines from concurrent tasks never interleave.
        var bytes = Array(line(for: event, time: Date().formatted(.iso8601)).utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// The record as written: one line with its trailing line break, secrets redacted.
    func line(for event: LogEvent, time: String) -> String {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = merged.map { key, value in (key, Self.isSecret(key) ? Logger.MetadataValue.string("<redacted>") : value) }
            .sorted { $0.0 < $1.0 }
        var line: String
        switch format {
        case .plain:
            line = "\(time) \(event.level.rawValue.uppercased()) \(event.message)"
            for (key, value) in fields {
                let text = "\(value)"
                line += " \(key)=\(text.contains(" ") ? "\"\(text)\"" : text)"
            }
        case .json:
            let head = [("time", time), ("level", event.level.rawValue), ("logger", label), ("message", "\(event.message)")]
                .map { "\(JSONText.quote($0.0)):\(JSONText.quote($0.1))" }
            line = "{" + (head + fields.map { "\(JSONText.quote($0.0)):\(JSONText.literal($0.1))" }).joined(separator: ",") + "}"
        }
        return line + "\n"
    }
}

enum JSONText {
    /// Booleans and numbers stay JSON literals (log filters compare `at_max IS TRUE`,
    /// `duration_ms > 1000`); everything else is a string.
    static func literal(_ value: Logger.MetadataValue) -> String {
        if case .stringConvertible(let convertible) = value {
            switch convertible {
            case let flag as Bool: return flag ? "true" : "false"
            case let number as Int: return String(number)
            case let number as Double where number.isFinite: return String(number)
            default: break
            }
        }
        return quote("\(value)")
    }

    /// A JSON string literal for `text`.
    static func quote(_ text: String) -> String { jsonQuoted(text) }
}

extension GlobalOptions {
    /// Bootstraps swift-log once per process and returns the root logger. `validate()` has
    /// already refused an unusable environment value, so the fallback here is never taken.
    func makeLogger() -> Logger {
        let settings = (try? settings()) ?? LogSettings()
        let format = settings.format
        let level = settings.level
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, format: format, logLevel: level) }
        return Logger(label: "kscaler")
    }
}

/// Writes a line to stderr (for messages that are not log records: usage and config errors).
func printError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}
