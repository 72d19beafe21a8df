import ArgumentParser
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// How the daemons write log lines on stderr.
///
/// - `text`: `2026-01-02T03:04:05.678Z warning netlease.agent: coordinator session ended coordinator=10.0.0.10:7420
///   error="unavailable: …"` — for a terminal or a file.
/// - `json`: one object per line, `{"time":…,"level":…,"logger":…,"message":…}` plus one key per metadata field —
///   for log shippers.
/// - `journal`: `<4>netlease.agent: coordinator session ended coordinator=…` — the `<N>` syslog priority prefix
///   journald reads from a service's stderr, so `journalctl -p warning` filters; journald adds the time.
///
/// Metadata (network, host, owner, address, epoch, …) is always fields, never part of the message text, so it can
/// be filtered on. Every event is exactly one line: line breaks inside messages and values are escaped.
enum LogFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    case text, json, journal

    /// `journal` when stderr is the journal, else `text`.
    ///
    /// systemd sets JOURNAL_STREAM to `DEVICE:INODE` of the stream it connected to the journal. A process that
    /// inherited the variable but whose stderr was redirected elsewhere (a file, a pipe) must not write `<N>`
    /// prefixes there, so the variable counts only when it names stderr itself (as sd-journal's documentation
    /// asks).
    static func detected(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        stderrIdentity: (device: UInt64, inode: UInt64)? = LogFormat.stderrIdentity()
    ) -> LogFormat {
        guard let stream = environment["JOURNAL_STREAM"], let stderrIdentity else { return .text }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return .text }
        return (device, inode) == stderrIdentity ? .journal : .text
    }

    /// Device and inode of this process's stderr.
    static func stderrIdentity() -> (device: UInt64, inode: UInt64)? {
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return nil }
        return (UInt64(status.st_dev), UInt64(status.st_ino))
    }
}

/// One log event, rendered as one line in a `LogFormat`. Pure: the tests render events without a process.
struct LogLine {
    var time: Date
    var level: Logger.Level
    var label: String
    var message: String
    var metadata: Logger.Metadata

    /// Keys the JSON format uses itself; a metadata field of the same name is written as `field.<name>`.
    static let reservedJSONKeys: Set<String> = ["time", "level", "logger", "message"]

    /// The line, without its terminating newline.
    func rendered(_ format: LogFormat) -> String {
        switch format {
        case .text:
            return "\(Self.timestamp(time)) \(level.rawValue) \(label): \(Self.singleLine(message))\(textFields)"
        case .journal:
            return "<\(Self.syslogPriority(level))>\(label): \(Self.singleLine(message))\(textFields)"
        case .json:
            var line = "{\"time\":\(Self.jsonString(Self.timestamp(time))),\"level\":\(Self.jsonString(level.rawValue))"
            line += ",\"logger\":\(Self.jsonString(label)),\"message\":\(Self.jsonString(message))"
            for key in metadata.keys.sorted() {
                let name = Self.reservedJSONKeys.contains(key) ? "field.\(key)" : key
                line += ",\(Self.jsonString(name)):\(Self.json(metadata[key]!))"
            }
            return line + "}"
        }
    }

    /// The syslog priority journald files the line under: debug 7, info 6, notice 5, warning 4, err 3, crit 2.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// ` key=value` for each field, sorted by key; values quoted when they hold spaces, quotes, '=' or control
    /// characters, or are empty.
    private var textFields: String {
        metadata.keys.sorted().map { " \($0)=\(Self.textValue(Self.text(metadata[$0]!)))" }.joined()
    }

    private static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: value.description
        }
    }

    static func textValue(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains {
                $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F
            }
        guard needsQuotes else { return value }
        return "\"" + escaped(value, quote: true) + "\""
    }

    /// A message on one line: control characters escaped, quotes left alone.
    static func singleLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        return escaped(text, quote: false)
    }

    private static func escaped(_ text: String, quote: Bool) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"" where quote: result += "\\\""
            case "\\" where quote: result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): jsonString(string)
        case .stringConvertible(let convertible): jsonString(convertible.description)
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let fields):
            "{" + fields.keys.sorted().map { "\(jsonString($0)):\(json(fields[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (RFC 8259: quote, backslash and control characters escaped).
    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// RFC 3339 UTC with milliseconds, formatted by hand: a formatter object per line would cost more than the
    /// rest of the line.
    static func timestamp(_ time: Date) -> String {
        let milliseconds = Int64((time.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fraction = Int(milliseconds % 1000)
        let millis = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }
}
