import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Logging of the long-running commands: one line per event on stderr, at the chosen level, in the chosen format.
enum LogSetup {
    /// Installs `LineLogHandler` for every logger of the process. Call once, before the first logger is made.
    static func bootstrap(_ level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, format: format, level: level, sink: StandardErrorSink.shared)
        }
    }
}

/// Where finished lines go. Each call writes one whole line.
protocol LogSink: Sendable {
    func write(line: String)
}

/// stderr, one `write(2)` per line under a lock, so lines of concurrent tasks never interleave.
///
/// It also keeps the secrets this process holds and replaces any occurrence in a line with `[redacted]`. No code
/// logs a secret on purpose; this makes sure a future message that quotes a request line or an error carrying
/// one cannot leak it either.
final class StandardErrorSink: LogSink {
    static let shared = StandardErrorSink()

    private let secrets = Mutex<[String]>([])
    private let writing = Mutex<Void>(())

    /// Secrets shorter than this are not redacted: replacing a few common characters would shred every line, and
    /// the coordinator only makes 64-character secrets.
    static let shortestRedacted = 8

    /// Never write `secret` in a log line from now on.
    func redact(_ secret: String) {
        guard secret.count >= Self.shortestRedacted else { return }
        secrets.withLock { if !$0.contains(secret) { $0.append(secret) } }
    }

    func redacted(_ line: String) -> String {
        secrets.withLock { secrets in
            secrets.reduce(line) { $0.contains($1) ? $0.replacingOccurrences(of: $1, with: "[redacted]") : $0 }
        }
    }

    func write(line: String) {
        let bytes = Array((redacted(line) + "\n").utf8)
        writing.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let count = bytes.withUnsafeBytes { buffer in
                    Glibc.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return }  // stderr closed or broken: nothing to tell anyone
                offset += count
            }
        }
    }
}

/// A swift-log handler that renders each event as one `LogLine` in `format` and hands it to `sink`.
struct LineLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    let sink: any LogSink
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(
        label: String,
        format: LogFormat,
        level: Logger.Level,
        sink: any LogSink,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let own = event.metadata { fields.merge(own) { _, new in new } }
        if let error = event.error, fields["error"] == nil { fields["error"] = "\(error)" }
        let line = LogLine(
            time: Date(),
            level: event.level,
            label: label,
            message: event.message.description,
            metadata: fields
        )
        sink.write(line: line.rendered(format))
    }
}
