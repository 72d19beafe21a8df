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

    public init(_ bytes: UnsafeRawBufferPointer) {
        if let last = bytes.last, last == UInt8(ascii: "\r") {
            self.bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast())
        } else {
            self.bytes = bytes
        }
    }

    public var status: Status {
        // `Reply.parseHead` reads `ERR ` only at the very start, and `OK` as the line's verb: after optional
        // spaces and in any case, like every verb.
        if starts(with: Reply.errorTag, at: 0), bytes.count > Reply.errorTag.utf8.count,
            bytes[Reply.errorTag.utf8.count] == UInt8(ascii: " ")
        {
            let start = Reply.errorTag.utf8.count + 1
            let end = tokenEnd(from: start)
            // Every known code has at most 15 bytes: a small string, stored inline, so this allocates nothing.
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
            return .error(ErrorCode(rawValue: text) ?? .internalError)
        }
        var start = 0
        while start < bytes.count && bytes[start] == UInt8(ascii: " ") { start += 1 }
        let end = tokenEnd(from: start)
        let tag = Reply.okTag.utf8
        guard end - start == tag.count else { return .malformed }
        for (offset, expected) in tag.enumerated() where bytes[start + offset] & 0xDF != expected {
            return .malformed
        }
        return .ok
    }

    /// The escaped value of field `key`, or nil when the line has no such field.
    public func value(_ key: StaticString) -> UnsafeRawBufferPointer? {
        // Values never hold a raw space (it is written `%20`), so " key=" can only be the start of a field.
        let keyLength = key.utf8CodeUnitCount
        let needle = keyLength + 2
        guard bytes.count >= needle else { return nil }
        var index = 0
        search: while index <= bytes.count - needle {
            guard bytes[index] == UInt8(ascii: " "), bytes[index + 1 + keyLength] == UInt8(ascii: "=") else {
                index += 1
                continue
            }
            for offset in 0..<keyLength where bytes[index + 1 + offset] != key.utf8Start[offset] {
                index += 1
                continue search
            }
            let start = index + needle
            return UnsafeRawBufferPointer(rebasing: bytes[start..<tokenEnd(from: start)])
        }
        return nil
    }

    /// The `address=A.B.C.D/P` of a lease reply, read as `WireCodec.lease(from:)` reads it; nil when the field is
    /// missing or not of that form.
    public var leaseAddress: (address: IPv4Address, prefix: Int)? {
        guard let text = value("address"), let slash = text.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let dotted = UnsafeRawBufferPointer(rebasing: text[..<slash])
        let digits = text[(slash + 1)...]
        // A dotted quad has at most 15 bytes: as a String it is stored inline, so parsing it allocates nothing.
        guard dotted.count <= 15, (1...2).contains(digits.count),
            digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let address = IPv4Address(String(decoding: dotted, as: UTF8.self))
        else { return nil }
        let prefix = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard prefix <= 32 else { return nil }
        return (address, prefix)
    }

    private func starts(with tag: String, at offset: Int) -> Bool {
        let utf8 = tag.utf8
        guard bytes.count - offset >= utf8.count else { return false }
        return utf8.enumerated().allSatisfy { bytes[offset + $0.offset] == $0.element }
    }

    private func tokenEnd(from start: Int) -> Int {
        var end = start
        while end < bytes.count && bytes[end] != UInt8(ascii: " ") { end += 1 }
        return end
    }
}
