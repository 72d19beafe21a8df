import Foundation

// The protocol model's own reading and writing of the wire (docs/PROTOCOL.md §2–§3). Deliberately independent of
// NetleaseWire: the model checks the coordinator against the contract, not against the code it shares.

/// Percent-encoding as §2 defines it. The model keeps every identifier in its canonical wire spelling (bytes <= 0x20,
/// >= 0x7F and `%` as upper-case `%HH`, everything else as is): an ASCII string whose equality is byte equality, so
/// two spellings of one text can never become one key in the model the way they can in a Swift `String`.
enum WireText {
    /// The bytes of a value, or nil when a `%` is not followed by two hex digits.
    static func decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard bytes.count >= 2, let hi = hexValue(bytes[bytes.startIndex]),
                let lo = hexValue(bytes[bytes.startIndex + 1])
            else { return nil }
            out.append(hi << 4 | lo)
            bytes = bytes.dropFirst(2)
        }
        return out
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out = ""
        for byte in bytes {
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "%") {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    /// The canonical spelling of a wire value; a value that does not decode stays as it is.
    static func canonical(_ text: String) -> String { decode(text[...]).map(encode) ?? text }

    static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        Array(String(decoding: bytes, as: UTF8.self).utf8) == bytes
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// One line of a reply: `OK k=v …`, `ERR code message`, or a record `TAG k=v …`. Values are kept canonical.
struct WireLine: CustomStringConvertible {
    let raw: String
    let tag: String
    let code: String
    let message: String
    private(set) var keys: [String] = []
    private(set) var values: [String: String] = [:]

    init(_ raw: String) {
        self.raw = raw
        let tokens = raw.split(separator: " ", omittingEmptySubsequences: true)
        tag = tokens.first.map(String.init) ?? ""
        if tag == "ERR" {
            code = tokens.count > 1 ? String(tokens[1]) : ""
            message = tokens.count > 2 ? tokens[2...].joined(separator: " ") : ""
            return
        }
        code = ""
        message = ""
        for token in tokens.dropFirst() {
            guard let eq = token.firstIndex(of: "=") else { continue }
            let key = String(token[..<eq])
            keys.append(key)
            values[key] = WireText.canonical(String(token[token.index(after: eq)...]))
        }
    }

    var isOK: Bool { tag == "OK" }
    subscript(key: String) -> String? { values[key] }
    var description: String { raw }
}

/// A whole reply: the head line and, for list replies (`OK count=N …`), its N records.
struct WireReply: CustomStringConvertible {
    let head: WireLine
    let records: [WireLine]

    var isOK: Bool { head.isOK }
    var code: String { head.code }
    var description: String {
        ([head.raw] + records.map { "  " + $0.raw }).joined(separator: "\n")
    }
}

struct WireClosed: Error, CustomStringConvertible {
    let context: String
    var description: String { "connection closed by the coordinator (\(context))" }
}

/// A protocol connection over `RawLineClient`: the greeting read, authenticated as asked, requests pipelined.
final class ModelConnection {
    enum Role: Equatable { case admin, reader, anonymous }

    let role: Role
    private let client: RawLineClient

    init(port: Int, role: Role) throws {
        self.role = role
        client = try RawLineClient(port: port, receiveTimeoutSeconds: 30)
        guard let greeting = try client.readLine(), greeting.hasPrefix("NETLEASE version=1") else {
            throw WireClosed(context: "no greeting")
        }
        let secret: String? =
            switch role {
            case .admin: "test-secret"
            case .reader: "reader-secret"
            case .anonymous: nil
            }
        if let secret {
            let reply = try exchange(["AUTH secret=\(secret)"])[0]
            guard reply.isOK else { throw WireClosed(context: "AUTH refused: \(reply)") }
        }
    }

    /// Sends every line at once (pipelined), then reads one reply per line, in order.
    func exchange(_ lines: [String]) throws -> [WireReply] {
        try send(lines)
        return try replies(to: lines)
    }

    func send(_ lines: [String]) throws { try client.send(lines.map { $0 + "\n" }.joined()) }

    /// One reply per line sent, in order.
    func replies(to lines: [String]) throws -> [WireReply] { try lines.map { try readReply(after: $0) } }

    /// Sends raw bytes and reads one reply.
    func exchangeRaw(_ bytes: [UInt8]) throws -> WireReply {
        try client.send(bytes)
        return try readReply(after: "raw bytes")
    }

    func isClosedByPeer() -> Bool { client.isClosedByPeer() }

    private func readReply(after line: String) throws -> WireReply {
        guard let text = try client.readLine() else { throw WireClosed(context: "no reply to \(line.prefix(80))") }
        let head = WireLine(text)
        var records: [WireLine] = []
        if head.isOK, head.keys.first == "count", let count = Int(head["count"] ?? "") {
            for _ in 0..<count {
                guard let record = try client.readLine() else {
                    throw WireClosed(context: "records of \(line.prefix(80))")
                }
                records.append(WireLine(record))
            }
        }
        return WireReply(head: head, records: records)
    }
}
