#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An AWS access key pair, optionally temporary (STS, instance role, web identity).
///
/// Its textual and reflected forms never show the secret key or the session token, so a
/// `Credentials` value can end up in a log line, an error or a test failure without leaking.
package struct Credentials: Sendable, Equatable {
    package var accessKeyID: String
    package var secretAccessKey: String
    /// Present for temporary credentials; sent as `X-Amz-Security-Token`.
    package var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-term keys.
    package var expiration: Date?

    package init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    /// The access key ID with its middle hidden (`AKIA…MPLE`): enough to tell keys apart in a log.
    /// Keys too short to mask meaningfully are hidden entirely.
    var maskedAccessKeyID: String {
        guard accessKeyID.count > 8 else { return "<redacted>" }
        return "\(accessKeyID.prefix(4))…\(accessKeyID.suffix(4))"
    }
}

extension Credentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    package var description: String {
        var text = "Credentials(accessKeyID: \(maskedAccessKeyID), secretAccessKey: <redacted>"
        text += ", sessionToken: \(sessionToken == nil ? "nil" : "<redacted>")"
        if let expiration { text += ", expiration: \(expiration)" }
        return text + ")"
    }

    package var debugDescription: String { description }

    /// `dump()` and debuggers walk the mirror, not `description`: redact there too.
    package var customMirror: Mirror {
        Mirror(self, children: [
            "accessKeyID": maskedAccessKeyID,
            "secretAccessKey": "<redacted>",
            "sessionToken": sessionToken == nil ? "nil" : "<redacted>",
            "expiration": expiration as Any,
        ])
    }
}
