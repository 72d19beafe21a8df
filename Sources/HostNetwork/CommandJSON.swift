import Foundation

/// What `ip -j` and `bridge -j` print: one JSON array, or nothing at all when there is nothing to list.
enum CommandJSON {
    /// The array `command` printed as `json` (empty when it printed nothing); an error naming the command when it is
    /// not an array of `Element`.
    static func array<Element>(_ json: String, of _: Element.Type, command: [String]) throws -> [Element] {
        let trimmed = json.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        guard let array = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [Element] else {
            throw HostNetworkError(
                .unexpectedOutput,
                "`\(ShellQuote.join(command))` did not print a JSON array",
                command: command
            )
        }
        return array
    }
}
