import ArgumentParser
import Foundation
import NetleaseCore

/// How a failed command tells its caller: exit status 1 and one line on stderr, `error: <code>: <message>` for
/// people, or `{"error":{"code":"…","message":"…"}}` with `--json`. The codes are the protocol's (docs/PROTOCOL.md)
/// plus `usage` for a command line that was refused before anything ran (exit status 64).
enum ErrorReport {
    /// The code of a refused command line.
    static let usageCode = "usage"

    struct Body: Encodable {
        struct Details: Encodable {
            var code: String
            var message: String
        }

        var error: Details
    }

    /// How the line looks: for people, for scripts (`--json`), or for the journal (a daemon whose log format is
    /// `journal`: the `<3>` prefix files it as an error, so `journalctl -p err` shows why it did not start).
    enum Style: Sendable {
        case text, json, journal

        init(json: Bool) { self = json ? .json : .text }

        /// A daemon reports a failed start in its log format.
        init(_ format: LogFormat) {
            switch format {
            case .text: self = .text
            case .json: self = .json
            case .journal: self = .journal
            }
        }
    }

    /// The line written to stderr for a failure with `code` and `message`.
    static func line(code: String, message: String, style: Style) -> String {
        switch style {
        case .text:
            return "error: \(code): \(message)\n"
        case .journal:
            return "<\(LogLine.syslogPriority(.error))>error: \(code): \(LogLine.singleLine(message))\n"
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data = (try? encoder.encode(Body(error: .init(code: code, message: message)))) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }

    static func write(code: String, message: String, style: Style) {
        FileHandle.standardError.write(Data(line(code: code, message: message, style: style).utf8))
    }

    /// Whether `arguments` (argv without the program name) ask for JSON: `--json` before any `--`. Used only when
    /// parsing failed, so the parsed flag is not there to ask.
    static func jsonRequested(_ arguments: some Sequence<String>) -> Bool {
        for argument in arguments {
            if argument == "--" { return false }
            if argument == "--json" { return true }
        }
        return false
    }
}

/// Runs a command body and turns failures into exit status 1 and one line on stderr (see `ErrorReport`).
func reportingErrors(json: Bool = false, _ body: () async throws -> Void) async throws {
    try await reportingErrors(style: ErrorReport.Style(json: json), body)
}

func reportingErrors(style: ErrorReport.Style, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as NetleaseError {
        ErrorReport.write(code: error.code.rawValue, message: error.message, style: style)
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch {
        ErrorReport.write(code: ErrorCode.internalError.rawValue, message: "\(error)", style: style)
        throw ExitCode(1)
    }
}
