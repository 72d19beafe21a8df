import ArgumentParser
import Foundation

/// The agent's settings file, `netlease agent --config FILE`: the same `KEY=value` lines as
/// `/etc/netlease/agent.env` (so a host's existing file keeps working), read by the agent itself. systemd cannot turn
/// a space-separated list into repeated `--network` options without a shell; the agent can.
///
/// Format: one `KEY=value` per line; blank lines and lines starting with `#` are ignored; a value may be wrapped in
/// single or double quotes, which are removed. Keys:
///
/// | key | option | |
/// |---|---|---|
/// | `NETLEASE_COORDINATORS` | `--coordinator` | separated by commas or spaces |
/// | `NETLEASE_HOST` | `--host` | |
/// | `NETLEASE_UNDERLAY` | `--underlay` | |
/// | `NETLEASE_NETWORKS` | `--network` | separated by spaces or commas |
/// | `NETLEASE_SECRET_FILE` | `--secret-file` | absent: `/etc/netlease/cluster-secret`; empty: no secret |
/// | `NETLEASE_AGENT_ARGS` | – | further options, passed by the unit on the command line; ignored here |
///
/// Any other key is refused, so a misspelt one cannot be silently ignored. Options on the command line win.
struct AgentConfigFile: Equatable {
    /// The secret file a settings file means when it names none.
    static let defaultSecretFile = "/etc/netlease/cluster-secret"

    var coordinators: String?
    var host: String?
    var underlay: String?
    var networks: [String]?
    /// nil: the key is absent (the default file applies); "": no secret.
    var secretFile: String?

    static func load(path: String) throws -> AgentConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--config \(path) cannot be read")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    static func parse(_ text: String, path: String) throws -> AgentConfigFile {
        var file = AgentConfigFile()
        // Any line ending: in Swift "\r\n" is one Character, not "\n", so splitting on "\n" alone read a CRLF file
        // as one line — a comment first meant every key was silently ignored.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func refuse(_ problem: String) -> ValidationError {
                ValidationError("--config \(path) line \(index + 1): \(problem)")
            }
            guard let equals = line.firstIndex(of: "=") else { throw refuse("'\(line.prefix(40))' is not KEY=value") }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = unquoted(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces))
            switch key {
            case "NETLEASE_COORDINATORS": file.coordinators = words(value).joined(separator: ",")
            case "NETLEASE_HOST": file.host = value
            case "NETLEASE_UNDERLAY": file.underlay = value
            case "NETLEASE_NETWORKS": file.networks = words(value)
            case "NETLEASE_SECRET_FILE": file.secretFile = value
            case "NETLEASE_AGENT_ARGS": continue
            default: throw refuse("unknown key '\(key.prefix(40))'")
            }
        }
        return file
    }

    /// A value without one pair of surrounding quotes.
    private static func unquoted(_ value: String) -> String {
        for quote in ["\"", "'"] where value.count >= 2 && value.hasPrefix(quote) && value.hasSuffix(quote) {
            return String(value.dropFirst().dropLast())
        }
        return value
    }

    private static func words(_ value: String) -> [String] {
        value.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
    }
}
