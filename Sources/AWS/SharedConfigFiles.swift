/// The AWS shared `credentials` and `config` files (INI). Parsed strictly: a line that is
/// neither a section, a `key = value`, a continuation, a comment nor blank is an error that
/// names the file and line. A missing file is simply empty (a soft miss).
package struct SharedConfigFiles: Sendable {
    /// profile name → settings. Config-file sections `[profile x]` are stored under `x`.
    package var credentials: [String: [String: String]]
    package var config: [String: [String: String]]

    package init(credentials: [String: [String: String]] = [:], config: [String: [String: String]] = [:]) {
        self.credentials = credentials
        self.config = config
    }

    /// Reads both files named by the environment.
    package static func load(_ environment: AWSEnvironment) throws(SharedConfigError) -> SharedConfigFiles {
        SharedConfigFiles(
            credentials: try parseFile(environment.sharedCredentialsFile, isConfigFile: false),
            config: try parseFile(environment.sharedConfigFile, isConfigFile: true)
        )
    }

    /// Settings of one profile: the credentials file wins over the config file, key by key.
    package func profile(_ name: String) -> [String: String]? {
        let fromConfig = config[name]
        let fromCredentials = credentials[name]
        if fromConfig == nil && fromCredentials == nil { return nil }
        return (fromConfig ?? [:]).merging(fromCredentials ?? [:]) { _, credentialsValue in credentialsValue }
    }

    static func parseFile(_ path: String, isConfigFile: Bool) throws(SharedConfigError) -> [String: [String: String]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SharedConfigError(file: path, line: 0, reason: "file is not UTF-8 text")
        }
        return try parse(text, file: path, isConfigFile: isConfigFile)
    }

    static func parse(_ text: String, file: String, isConfigFile: Bool) throws(SharedConfigError) -> [String: [String: String]] {
        var profiles: [String: [String: String]] = [:]
        var current: String?
        var lastKey: String?
        var lineNumber = 0
        // "\r\n" is one Character, so the split is on either, not on the Character "\n" alone.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if trimmed.hasPrefix("[") {
                guard let close = trimmed.firstIndex(of: "]") else {
                    throw SharedConfigError(file: file, line: lineNumber, reason: "section header without ']'")
                }
                var name = trimmed[trimmed.index(after: trimmed.startIndex)..<close].trimmingWhitespace()
                if isConfigFile, name.hasPrefix("profile ") {
                    name = name.dropFirst("profile ".count).trimmingWhitespace()
                }
                guard !name.isEmpty else { throw SharedConfigError(file: file, line: lineNumber, reason: "empty section name") }
                current = name
                lastKey = nil
                profiles[name, default: [:]] = profiles[name] ?? [:]
                continue
            }
            if line.first == " " || line.first == "\t" {
                // Continuation of the previous value (nested settings such as `s3 =`); kept verbatim.
                guard let current, let lastKey else {
                    throw SharedConfigError(file: file, line: lineNumber, reason: "indented line outside a setting")
                }
                profiles[current]?[lastKey, default: ""] += "\n" + trimmed
                continue
            }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw SharedConfigError(file: file, line: lineNumber, reason: "expected 'key = value' or '[section]'")
            }
            guard let current else {
                throw SharedConfigError(file: file, line: lineNumber, reason: "setting before any [section]")
            }
            let key = trimmed[..<equals].trimmingWhitespace().lowercased()
            let value = trimmed[trimmed.index(after: equals)...].trimmingWhitespace()
            guard !key.isEmpty else { throw SharedConfigError(file: file, line: lineNumber, reason: "setting without a name") }
            profiles[current]?[key] = value
            lastKey = key
        }
        return profiles
    }
}

package struct SharedConfigError: Error, Sendable, CustomStringConvertible {
    package var file: String
    package var line: Int
    package var reason: String
    package var description: String { "\(file):\(line): \(reason)" }
}
