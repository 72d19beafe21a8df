import NetleaseCore

/// The head line of a reply, read where it lies: its status and the lease address, without copying the line or
/// allocating.
///
/// For clients that read tens of thousands of replies a second and act on little of each (the load generator).
/// Everyone else uses `Reply.parseHead`, which validates the whole line and builds its `Fields`; on every line the
/// coordinator writes, the two agree (tests). The view validates only what it reads: fields it is not asked for
/// are skipped, not checked.
///
/// The view borrows `bytes`: use it only while they are valid (inside `withUnsafeReadableBytes` and the like).
/// Its reads are plain index loops over the bytes, with no closures, slices of generic collections or Strings on
/// the OK path, so that they allocate nothing even unoptimised.
public struct ReplyHeadView {
    /// What kind of reply the line is, as `Reply.parseHead` decides it.
    public enum Status: Sendable, Equatable {
        case ok
        /// An `ERR` line; an unknown code reads as `.internalError`, as in `Reply.parseHead`.
        case error(ErrorCode)
        /// Neither `OK` nor `ERR`: `Reply.parseHead` throws on such a line.
        case malformed
    }

    /// The line without its LF; a CR before the LF is ignored.
    public let bytes: UnsafeRawBufferPointer

    private static let okTag = Array(Reply.okTag.utf8)
    private static let errorTag = Array(Reply.errorTag.utf8)

    public init(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        if count > 0 && bytes[count - 1] == UInt8(ascii: "\r") {
            self.bytes = UnsafeRawBufferPointer(start: bytes.baseAddress, count: count - 1)
        } else {
            self.bytes = bytes
        }
    }

    public var status: Status {
        // `Reply.parseHead` reads `ERR ` only at the very start, and `OK` as the line's verb: after optional
        // spaces and in any case, like every verb.
        let errorTag = Self.errorTag
        if bytes.count > errorTag.count && bytes[errorTag.count] == UInt8(ascii: " ")
            && matches(errorTag, at: 0, ignoringCase: false)
        {
            let start = errorTag.count + 1
            let code = UnsafeRawBufferPointer(rebasing: bytes[start..<tokenEnd(from: start)])
            // Errors are rare: reading the code through a String keeps it identical to `Reply.parseHead`.
            return .error(ErrorCode(rawValue: String(decoding: code, as: UTF8.self)) ?? .internalError)
        }
        var start = 0
        while start < bytes.count && bytes[start] == UInt8(ascii: " ") { start += 1 }
        let okTag = Self.okTag
        guard tokenEnd(from: start) - start == okTag.count, matches(okTag, at: start, ignoringCase: true) else {
            return .malformed
        }
        return .ok
    }

    /// The escaped value of field `key`, or nil when the line has no such field.
    public func value(_ key: StaticString) -> UnsafeRawBufferPointer? {
        // Values never hold a raw space (it is written `%20`), so " key=" can only be the start of a field.
        let keyBytes = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        let needle = keyBytes.count + 2
        guard bytes.count >= needle else { return nil }
        var index = 0
        while index <= bytes.count - needle {
            if bytes[index] == UInt8(ascii: " ") && bytes[index + 1 + keyBytes.count] == UInt8(ascii: "=") {
                var offset = 0
                while offset < keyBytes.count && bytes[index + 1 + offset] == keyBytes[offset] { offset += 1 }
                if offset == keyBytes.count {
                    let start = index + needle
                    return UnsafeRawBufferPointer(rebasing: bytes[start..<tokenEnd(from: start)])
                }
            }
            index += 1
        }
        return nil
    }

    /// The `address=A.B.C.D/P` of a lease reply, read as `WireCodec.lease(from:)` reads it (the address as
    /// `IPv4Address(_:)` parses it: four decimal octets, no leading zeros; the prefix 0-32); nil when the field is
    /// missing or not of that form.
    public var leaseAddress: (address: IPv4Address, prefix: Int)? {
        guard let text = value("address") else { return nil }
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        var index = 0
        while index < text.count && text[index] != UInt8(ascii: "/") {
            let byte = text[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                if digits > 0 && current == 0 { return nil }  // leading zero
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || current > 255 { return nil }
            } else if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            } else {
                return nil
            }
            index += 1
        }
        guard digits > 0, octets == 3, index < text.count else { return nil }
        index += 1  // the '/'
        let prefixDigits = text.count - index
        guard prefixDigits == 1 || prefixDigits == 2 else { return nil }
        var prefix = 0
        while index < text.count {
            let byte = text[index]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            prefix = prefix * 10 + Int(byte - UInt8(ascii: "0"))
            index += 1
        }
        guard prefix <= 32 else { return nil }
        return (IPv4Address(value << 8 | current), prefix)
    }

    /// Whether `tag` is at `offset` (ASCII letters of the line compared case-insensitively when asked).
    private func matches(_ tag: [UInt8], at offset: Int, ignoringCase: Bool) -> Bool {
        guard bytes.count - offset >= tag.count else { return false }
        var index = 0
        while index < tag.count {
            var byte = bytes[offset + index]
            if ignoringCase && byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") { byte -= 0x20 }
            guard byte == tag[index] else { return false }
            index += 1
        }
        return true
    }

    private func tokenEnd(from start: Int) -> Int {
        var end = start
        while end < bytes.count && bytes[end] != UInt8(ascii: " ") { end += 1 }
        return end
    }
}
