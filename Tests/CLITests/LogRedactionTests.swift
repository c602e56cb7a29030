import Logging
import Testing
@testable import kscaler

/// The log handler redacts metadata under the known secret keys, and only those: a key is
/// not a secret for containing "token".
@Suite struct LogRedactionTests {
    @Test(arguments: ["fencing_token", "lease_token", "launch_token_count", "token_parameter", "secret_name", "credentials_source"])
    func aKeyThatOnlyMentionsATokenOrSecretIsShown(key: String) {
        #expect(!StderrLogHandler.isSecret(key))
    }

    @Test(arguments: ["authorization", "Authorization", "aws_session_token", "AWS_SECRET_ACCESS_KEY", "x-amz-security-token",
                      "bearer_token", "password", "join_token"])
    func aKnownSecretKeyIsRedacted(key: String) {
        #expect(StderrLogHandler.isSecret(key))
    }

    @Test(arguments: [LogFormat.plain, .json])
    func theWrittenLineRedactsSecretsAndKeepsTheRest(format: LogFormat) {
        var handler = StderrLogHandler(label: "kscaler", format: format, logLevel: .debug)
        handler[metadataKey: "aws_session_token"] = "FwoGZXIvYXdzEXAMPLESESSION"
        let event = LogEvent(level: .debug, message: "aws request",
                             metadata: ["authorization": "AWS4-HMAC-SHA256 Signature=0123abcd", "fencing_token": "7",
                                        "launch_token_count": "2"],
                             source: nil, file: #fileID, function: #function, line: #line)
        let line = handler.line(for: event, time: "2026-01-01T00:00:00Z")
        #expect(!line.contains("FwoGZXIvYXdzEXAMPLESESSION") && !line.contains("0123abcd"), "\(line)")
        switch format {
        case .plain:
            #expect(line.contains("authorization=<redacted>") && line.contains("aws_session_token=<redacted>"), "\(line)")
            #expect(line.contains("fencing_token=7") && line.contains("launch_token_count=2"), "\(line)")
        case .json:
            #expect(line.contains(#""authorization":"<redacted>""#) && line.contains(#""aws_session_token":"<redacted>""#), "\(line)")
            #expect(line.contains(#""fencing_token":"7""#) && line.contains(#""launch_token_count":"2""#), "\(line)")
        }
    }
}
