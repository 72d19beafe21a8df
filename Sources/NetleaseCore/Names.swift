import Foundation

/// The one canonical byte form of every identifier (invariant 10, "one name, one key").
///
/// Design notes:
/// - Swift's `String` compares and hashes by Unicode canonical equivalence: "caf\u{E9}" == "cafe\u{301}", and even
///   "\u{212A}8s" == "K8s" (KELVIN SIGN has a singleton canonical decomposition to "K"). SQLite compares bytes. An
///   identifier with two spellings was one key in memory and two in the file: a second owner got the first one's
///   address, a network deleted under the other spelling came back after a restart.
/// - Network and host names are ASCII from a small grammar, interface names printable ASCII: one spelling each,
///   safe in interface names, file names, command lines and log lines. ASCII strings are equal as Swift strings
///   exactly when their bytes are.
/// - Free text (owner ids, notes, MAC addresses as reported) may be any printable Unicode, but only in NFC: two NFC
///   strings are canonically equivalent exactly when their bytes are equal, so memory and file agree. Nothing is
///   normalised on the way in; a client that sends another form gets `bad-request` and can fix its request.
/// - Unassigned code points (noncharacters included) are refused: normalization is stable only for assigned
///   characters, so a later Unicode version could otherwise make a stored value non-NFC. What is accepted now stays
///   accepted by every later version. Controls (C0, DEL, C1) and line/paragraph separators are refused: they end
///   or corrupt log lines and terminals; NUL would end C strings.
/// - The ledger's indexes also compare bytes (`ExactKey`), so records written before these rules stay apart.
public enum Names {
    public static let maxNameBytes = 63
    public static let maxInterfaceBytes = 15
    public static let maxOwnerBytes = 256
    public static let maxNoteBytes = 256
    public static let maxMACBytes = 64

    /// Names of networks and hosts: 1–63 bytes, an ASCII letter or digit, then letters, digits, '-', '_', '.'.
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxNameBytes, isAlnum(first) else { return false }
        return name.utf8.allSatisfy(isNameByte)
    }

    /// Interface names (bridges, container interfaces): Linux's rule in ASCII (1–15 bytes, no space, '/' or ':', not
    /// "." or ".."), without '%' and without a leading '-'. The kernel takes a '%' as a format ("nl%d" is created as
    /// "nl0", so the device would never be found under its stored name), and a leading '-' reads as an option to
    /// the tools. The agent checks existing bridges with this too, so it stays as wide as what worked before.
    public static func isValidInterface(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxInterfaceBytes, first != UInt8(ascii: "-"),
            name != ".", name != ".."
        else { return false }
        return name.utf8.allSatisfy {
            $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "%")
        }
    }

    /// Why `text` is not canonical free text, or nil when it is: printable, assigned, in NFC. Length is the caller's.
    public static func textProblem(_ text: String) -> String? {
        var ascii = true
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F { return "it has the control byte 0x\(hex(UInt32(byte), digits: 2))" }
            if byte >= 0x80 { ascii = false }
        }
        if ascii { return nil }  // printable ASCII is always NFC
        for scalar in text.unicodeScalars {
            let code = "U+\(hex(scalar.value, digits: 4))"
            switch scalar.properties.generalCategory {
            case .control: return "it has the control character \(code)"
            case .lineSeparator, .paragraphSeparator: return "it has the line or paragraph separator \(code)"
            case .unassigned, .surrogate: return "it has \(code), which is not an assigned character"
            default: continue
            }
        }
        guard text.utf8.elementsEqual(text.precomposedStringWithCanonicalMapping.utf8) else {
            return "it is not in Unicode NFC (another spelling of the same text is; send that one)"
        }
        return nil
    }

    // MARK: checks that name the field

    /// A network or host name; `kind` ("network", "host") goes into the message.
    public static func checkName(_ name: String, field: String, kind: String) throws {
        guard !isValid(name) else { return }
        throw NetleaseError.badRequest(
            "field '\(field)' must be a \(kind) name of 1-\(maxNameBytes) ASCII letters, digits, '-', '_' or '.', "
                + "starting with a letter or digit; got '\(excerpt(name))'"
        )
    }

    public static func checkInterface(_ name: String, field: String) throws {
        guard !isValidInterface(name) else { return }
        throw NetleaseError.badRequest(
            "field '\(field)': '\(excerpt(name))' is not a valid interface name (1-\(maxInterfaceBytes) bytes of "
                + "printable ASCII without space, '/', ':' or '%', not starting with '-', not '.' or '..')"
        )
    }

    /// Free text of at most `maxBytes` bytes (at least one unless `allowEmpty`).
    public static func checkText(_ text: String, field: String, maxBytes: Int, allowEmpty: Bool) throws {
        let count = text.utf8.count
        let problem: String?
        if count == 0 && !allowEmpty {
            problem = "it is empty"
        } else if count > maxBytes {
            problem = "it is \(count) bytes long"
        } else {
            problem = textProblem(text)
        }
        guard let problem else { return }
        throw NetleaseError.badRequest(
            "field '\(field)' must be \(allowEmpty ? 0 : 1)-\(maxBytes) bytes of printable UTF-8 in Unicode NFC; "
                + problem
        )
    }

    /// An owner id: 1–256 bytes of free text.
    public static func checkOwner(_ owner: String, field: String = "owner") throws {
        try checkText(owner, field: field, maxBytes: maxOwnerBytes, allowEmpty: false)
    }

    // MARK: helpers

    /// The start of a refused value for an error message (which escapes whatever is not printable ASCII).
    private static func excerpt(_ text: String) -> String {
        text.utf8.count <= 64 ? text : String(decoding: text.utf8.prefix(64), as: UTF8.self) + "..."
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        isAlnum(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
    }
}
