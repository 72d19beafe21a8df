/// An IPv4 address held as its 32-bit value in host byte order.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad notation strictly: four decimal octets, no leading zeros, no spaces.
    public init?(_ text: some StringProtocol) {
        var result: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits > 0 && current == 0 { return nil }  // leading zero
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || current > 255 { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, octets < 3 else { return nil }
                result = result << 8 | current
                octets += 1
                current = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        value = result << 8 | current
    }

    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (
            UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
            UInt8(truncatingIfNeeded: value)
        )
    }

    public var description: String {
        let o = octets
        return "\(o.0).\(o.1).\(o.2).\(o.3)"
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    /// Whether a packet can be addressed to this one host: not in 0.0.0.0/8 ("this network"), 224.0.0.0/4
    /// (multicast) or 240.0.0.0/4 (reserved, with the broadcast address 255.255.255.255).
    public var isUnicastDestination: Bool {
        let first = value >> 24
        return first != 0 && first < 224
    }
}
