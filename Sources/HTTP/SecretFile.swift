#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A one-line secret kept in a file (a password, a bearer or API token): read where it is
/// used, so a rotated file takes effect on the next run, and checked to be one line, since a
/// line break inside would end a header early and inject the rest as headers.
package enum SecretFile {
    /// What is wrong with the file, never quoting its content.
    package struct Problem: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// The secret, trailing line breaks (as editors and `echo` leave them) dropped.
    package static func read(_ path: String, purpose: String) throws(Problem) -> String {
        guard !path.isEmpty else { throw Problem(description: "the \(purpose) file path is empty") }
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let problem = FileManager.default.fileExists(atPath: path) ? "cannot be read (check its permissions)" : "does not exist"
            throw Problem(description: "\(purpose) file \(path) \(problem)")
        }
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw Problem(description: "\(purpose) file \(path) is not UTF-8 text")
        }
        var secret = Substring(text)
        while let last = secret.last, last == "\n" || last == "\r" || last == "\r\n" { secret = secret.dropLast() }
        guard !secret.isEmpty else { throw Problem(description: "\(purpose) file \(path) is empty") }
        guard !secret.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Problem(description: "\(purpose) file \(path) holds more than one line or control characters; put the \(purpose) alone in it")
        }
        return String(secret)
    }
}
