import NetleaseCore

/// Limits of the line protocol.
public enum WireLimits {
    /// Longest accepted line in bytes, terminator excluded. Longer: `ERR bad-request` and the connection closes.
    public static let maxLineBytes = 8192
    /// Longest reply, record or event line a client accepts. Replies are not capped at the request limit: a
    /// network with many excluded ranges renders longer than any request may be.
    public static let maxReplyLineBytes = 1 << 24
    public static let protocolName = "NETLEASE"
    public static let protocolVersion = 1
}

/// An ordered list of `key=value` fields with typed accessors whose errors name the field.
public struct Fields: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var pairs: [(key: String, value: String)]

    public init() { pairs = [] }
    public init(dictionaryLiteral elements: (String, String)...) { pairs = elements.map { (key: $0.0, value: $0.1) } }

    public static func == (lhs: Fields, rhs: Fields) -> Bool {
        lhs.pairs.count == rhs.pairs.count
            && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public subscript(key: String) -> String? {
        get { pairs.first(where: { $0.key == key })?.value }
        set {
            if let index = pairs.firstIndex(where: { $0.key == key }) {
                if let newValue { pairs[index].value = newValue } else { pairs.remove(at: index) }
            } else if let newValue {
                pairs.append((key: key, value: newValue))
            }
        }
    }

    public mutating func append(_ key: String, _ value: String) { pairs.append((key: key, value: value)) }

    public var keys: [String] { pairs.map(\.key) }

    public func require(_ key: String) throws -> String {
        guard let value = self[key] else { throw NetleaseError.badRequest("missing field '\(key)'") }
        return value
    }

    public func requireNonEmpty(_ key: String) throws -> String {
        let value = try require(key)
        guard !value.isEmpty else { throw NetleaseError.badRequest("field '\(key)' must not be empty") }
        return value
    }

    public func int(_ key: String) throws -> Int64? {
        guard let text = self[key] else { return nil }
        guard let value = WireNumber.parse(text) else {
            throw NetleaseError.badRequest("field '\(key)' must be a whole number, got '\(text)'")
        }
        return value
    }

    public func requireInt(_ key: String) throws -> Int64 {
        guard let value = try int(key) else { throw NetleaseError.badRequest("missing field '\(key)'") }
        return value
    }

    public func address(_ key: String) throws -> IPv4Address? {
        guard let text = self[key] else { return nil }
        guard let value = IPv4Address(text) else {
            throw NetleaseError.badRequest("field '\(key)' must be an IPv4 address, got '\(text)'")
        }
        return value
    }

    public func requireAddress(_ key: String) throws -> IPv4Address {
        guard let value = try address(key) else { throw NetleaseError.badRequest("missing field '\(key)'") }
        return value
    }

    // MARK: identifiers: their one canonical byte form, or bad-request naming the field (`Names`)

    /// A required network or host name (`kind` says which, for the message).
    public func requireName(_ key: String, kind: String) throws -> String {
        let value = try requireNonEmpty(key)
        try Names.checkName(value, field: key, kind: kind)
        return value
    }

    /// An optional network or host name; present but empty is allowed only with `allowEmpty` (a filter for "none").
    public func name(_ key: String, kind: String, allowEmpty: Bool = false) throws -> String? {
        guard let value = self[key] else { return nil }
        if value.isEmpty && allowEmpty { return value }
        try Names.checkName(value, field: key, kind: kind)
        return value
    }

    /// A list of names: empty items are ignored, as in every list, and so is a name given again (its first place
    /// counts). A list of distinct names is its one canonical form; refusing repeats would stop an agent whose
    /// configuration names a network twice, which used to work.
    public func names(_ key: String, kind: String) throws -> [String] {
        guard let text = self[key] else { return [] }
        var seen = Set<String>()
        var names: [String] = []
        for item in text.split(separator: ",") {
            let name = String(item)
            try Names.checkName(name, field: key, kind: kind)
            // Names are ASCII, so `String` equality here is byte equality.
            if seen.insert(name).inserted { names.append(name) }
        }
        return names
    }

    /// A required owner id: 1-256 bytes of printable UTF-8 in NFC.
    public func requireOwner(_ key: String = "owner") throws -> String {
        let value = try requireNonEmpty(key)
        try Names.checkOwner(value, field: key)
        return value
    }

    /// An optional owner id; when present it follows the rules of `requireOwner`.
    public func owner(_ key: String = "owner") throws -> String? {
        guard self[key] != nil else { return nil }
        return try requireOwner(key)
    }

    /// An interface name; absent and empty both mean none ("").
    public func interfaceName(_ key: String) throws -> String {
        guard let value = self[key], !value.isEmpty else { return "" }
        try Names.checkInterface(value, field: key)
        return value
    }

    /// Optional free text of at most `maxBytes` bytes, empty allowed: printable UTF-8 in NFC.
    public func text(_ key: String, maxBytes: Int) throws -> String? {
        guard let value = self[key] else { return nil }
        try Names.checkText(value, field: key, maxBytes: maxBytes, allowEmpty: true)
        return value
    }

    /// Fails on keys outside `allowed`, so a mistyped field is an error instead of being ignored.
    public func only(_ allowed: Set<String>, verb: String) throws {
        for key in keys where !allowed.contains(key) {
            throw NetleaseError.badRequest("\(verb) does not take field '\(key)'")
        }
    }
}

enum WireNumber {
    /// Strict decimal: optional '-', 1-18 digits, no '+', no spaces.
    static func parse(_ text: String) -> Int64? {
        var utf8 = Substring(text).utf8[...]
        var negative = false
        if utf8.first == UInt8(ascii: "-") {
            negative = true
            utf8 = utf8.dropFirst()
        }
        guard !utf8.isEmpty, utf8.count <= 18 else { return nil }
        var value: Int64 = 0
        for byte in utf8 {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int64(byte - 0x30)
        }
        return negative ? -value : value
    }
}

/// One parsed line: a verb (or reply tag) and its fields.
public struct Line: Sendable, Equatable {
    public var verb: String
    public var fields: Fields

    public init(_ verb: String, _ fields: Fields = Fields()) {
        self.verb = verb
        self.fields = fields
    }
}

/// The text form of the protocol.
///
/// ```
/// line  = word *( SP field )          ; LF-terminated on the wire, CR before LF tolerated
/// word  = 1*( ALPHA / DIGIT / "-" )   ; verbs are case-insensitive, rendered upper-case
/// field = key "=" value
/// key   = 1*( lower / DIGIT / "-" )
/// value = *( %x21-24 / %x26-7E / "%" HEXDIG HEXDIG )   ; percent-encoded UTF-8
/// ```
/// Every byte of a value that is not printable ASCII, and every '%', is written as `%HH`. A space inside a value
/// is therefore `%20`. Fields are separated by one or more spaces.
public enum LineFormat {
    public static func parse(_ text: Substring, maxBytes: Int = WireLimits.maxLineBytes) throws -> Line {
        var line = text
        if line.hasSuffix("\r") { line = line.dropLast() }
        guard line.utf8.count <= maxBytes else {
            throw NetleaseError.badRequest("line longer than \(maxBytes) bytes")
        }
        for byte in line.utf8 where byte < 0x20 || byte > 0x7E {
            throw NetleaseError.badRequest(
                "byte 0x\(String(byte, radix: 16)) is not allowed in a line; percent-encode it in a value"
            )
        }
        let tokens = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = tokens.first else { throw NetleaseError.badRequest("empty line") }
        guard first.utf8.allSatisfy({ isWordByte($0) }) else {
            throw NetleaseError.badRequest("'\(first.prefix(40))' is not a verb (letters, digits and '-')")
        }
        var fields = Fields()
        for token in tokens.dropFirst() {
            guard let equals = token.firstIndex(of: "=") else {
                throw NetleaseError.badRequest("'\(token.prefix(40))' is not a key=value field")
            }
            let key = String(token[..<equals])
            guard !key.isEmpty, key.utf8.allSatisfy({ isKeyByte($0) }) else {
                throw NetleaseError.badRequest(
                    "'\(key.prefix(40))' is not a field name (lower-case letters, digits, '-')"
                )
            }
            guard fields[key] == nil else { throw NetleaseError.badRequest("field '\(key)' given twice") }
            fields.append(key, try unescape(token[token.index(after: equals)...], key: key))
        }
        return Line(first.uppercased(), fields)
    }

    public static func render(_ line: Line) -> String {
        var out = line.verb
        for (key, value) in line.fields.pairs {
            out += " "
            out += key
            out += "="
            out += escape(value)
        }
        return out
    }

    public static func escape(_ value: String) -> String {
        var needs = false
        for byte in value.utf8 where byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "%") {
            needs = true
            break
        }
        guard needs else { return value }
        var out = ""
        out.reserveCapacity(value.utf8.count * 3)
        for byte in value.utf8 {
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "%") {
                out += "%"
                out += String(hexDigit(byte >> 4))
                out += String(hexDigit(byte & 0xF))
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    static func unescape(_ text: Substring, key: String) throws -> String {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw NetleaseError.badRequest("field '\(key)' has a '%' not followed by two hex digits")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw NetleaseError.badRequest("field '\(key)' is not valid UTF-8 after percent-decoding")
        }
        return string
    }

    /// Makes free text safe for the rest of an `ERR` line, which stays printable ASCII like every line: control
    /// characters become spaces, other bytes outside ASCII are percent-encoded.
    public static func sanitizeMessage(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F {
                out += " "
            } else if byte > 0x7F {
                out += "%" + String(hexDigit(byte >> 4)) + String(hexDigit(byte & 0xF))
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    private static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "-")
    }

    private static func isKeyByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "-")
    }

    private static func hexDigit(_ v: UInt8) -> Character {
        Character(Unicode.Scalar(v < 10 ? v + 0x30 : v - 10 + 0x41))
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
