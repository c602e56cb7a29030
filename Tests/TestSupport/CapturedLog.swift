import Logging
import Synchronization

/// Keeps every record of the loggers it makes, at every level, as structured records and as
/// text (the message and every metadata key and value, so a secret anywhere in a record shows
/// in `text`). For tests of what the clients log.
package final class CapturedLog: Sendable {
    package struct Record: Sendable {
        package var level: Logger.Level
        package var message: String
        package var metadata: [String: String]
    }

    private let captured = Mutex<[Record]>([])
    package init() {}

    package var records: [Record] { captured.withLock { $0 } }
    /// Every record on its own line: level, message, then `key=value` pairs.
    package var text: String {
        records.map { record in
            ([record.level.rawValue, record.message] + record.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
                .joined(separator: " ")
        }.joined(separator: "\n")
    }

    /// The records with this message.
    package func records(_ message: String) -> [Record] { records.filter { $0.message == message } }

    /// A logger at trace level whose records land here.
    package func logger(label: String = "test") -> Logger {
        Logger(label: label) { _ in Handler(log: self) }
    }

    fileprivate func append(_ record: Record) { captured.withLock { $0.append(record) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            log.append(Record(level: event.level, message: "\(event.message)",
                              metadata: merged.mapValues { "\($0)" }))
        }
    }
}
