import Foundation

/// Renders an argument vector as a command line a person can paste into a shell: words that need it are put in
/// single quotes. Used only for logs and error messages; commands are never run through a shell.
public enum ShellQuote {
    public static func join(_ argv: [String]) -> String {
        argv.map(quote).joined(separator: " ")
    }

    public static func quote(_ word: String) -> String {
        guard !word.isEmpty else { return "''" }
        let plain = word.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "-_./:=,+@%".utf8.contains(byte)
            }
        }
        if plain { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
