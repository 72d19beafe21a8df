/// An IPv4 subnet in CIDR form. The stored address is always the network address.
public struct IPv4Subnet: Hashable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let prefix: Int

    /// Smallest and largest prefixes netlease accepts for a container network: /8 keeps the
    /// per-network bookkeeping bounded, /30 leaves at least two usable addresses.
    public static let prefixRange = 8...30

    public init?(network: IPv4Address, prefix: Int) {
        guard (0...32).contains(prefix) else { return nil }
        let mask = IPv4Subnet.mask(prefix)
        guard network.value & ~mask == 0 else { return nil }
        self.network = network
        self.prefix = prefix
    }

    /// Parses `A.B.C.D/P`. The address must be the network address itself (host bits zero).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(parts[0]),
            let prefix = IPv4Subnet.parsePrefix(parts[1])
        else { return nil }
        self.init(network: address, prefix: prefix)
    }

    static func parsePrefix(_ text: some StringProtocol) -> Int? {
        guard !text.isEmpty, text.count <= 2, text.allSatisfy({ $0.isASCII && $0.isNumber }),
            !(text.count == 2 && text.first == "0"), let value = Int(text), value <= 32
        else { return nil }
        return value
    }

    /// Address space that is not for hosts' unicast addresses (RFC 6890), with what it is for. A container network
    /// there cannot work: the kernel treats loopback and multicast destinations specially, 0/8 and 240/4 are not
    /// valid source addresses, and link-local is not routed (and holds 169.254.169.254, cloud metadata services).
    public static let nonUnicastBlocks: [(block: IPv4Subnet, use: String)] = [
        (IPv4Subnet(network: IPv4Address(0, 0, 0, 0), prefix: 8)!, "\"this network\""),
        (IPv4Subnet(network: IPv4Address(127, 0, 0, 0), prefix: 8)!, "loopback"),
        (IPv4Subnet(network: IPv4Address(169, 254, 0, 0), prefix: 16)!, "link-local"),
        (IPv4Subnet(network: IPv4Address(224, 0, 0, 0), prefix: 4)!, "multicast"),
        (IPv4Subnet(network: IPv4Address(240, 0, 0, 0), prefix: 4)!, "reserved, with the broadcast address"),
    ]

    /// The first non-unicast block this subnet overlaps, if any.
    public var nonUnicastBlock: (block: IPv4Subnet, use: String)? {
        Self.nonUnicastBlocks.first { $0.block.overlaps(self) }
    }

    public static func mask(_ prefix: Int) -> UInt32 {
        prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix)
    }

    public var mask: UInt32 { IPv4Subnet.mask(prefix) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask) }
    /// Number of addresses in the subnet, network and broadcast included.
    public var size: UInt64 { UInt64(1) << UInt64(32 - prefix) }
    /// First address a host may use (network address + 1).
    public var firstHost: IPv4Address { IPv4Address(network.value &+ 1) }
    /// Last address a host may use (broadcast − 1).
    public var lastHost: IPv4Address { IPv4Address(broadcast.value &- 1) }
    /// Addresses usable by hosts: everything except network and broadcast.
    public var hostCount: UInt64 { size >= 4 ? size - 2 : 0 }

    public func contains(_ address: IPv4Address) -> Bool { address.value & mask == network.value }

    /// True for an address inside the subnet that is neither network nor broadcast.
    public func isHostAddress(_ address: IPv4Address) -> Bool {
        contains(address) && address != network && address != broadcast
    }

    public func overlaps(_ other: IPv4Subnet) -> Bool {
        let shorter = min(prefix, other.prefix)
        let m = IPv4Subnet.mask(shorter)
        return network.value & m == other.network.value & m
    }

    public var description: String { "\(network)/\(prefix)" }
}

/// An inclusive range of IPv4 addresses, written `A.B.C.D-E.F.G.H`, a single address, or a CIDR.
public struct IPv4Range: Hashable, Sendable, CustomStringConvertible {
    public let first: IPv4Address
    public let last: IPv4Address

    public init?(first: IPv4Address, last: IPv4Address) {
        guard first <= last else { return nil }
        self.first = first
        self.last = last
    }

    public init?(_ text: some StringProtocol) {
        if text.contains("/") {
            guard let subnet = IPv4Subnet(text) else { return nil }
            self.init(first: subnet.network, last: subnet.broadcast)
        } else if let dash = text.firstIndex(of: "-") {
            guard let a = IPv4Address(text[..<dash]), let b = IPv4Address(text[text.index(after: dash)...]) else {
                return nil
            }
            self.init(first: a, last: b)
        } else {
            guard let a = IPv4Address(text) else { return nil }
            self.init(first: a, last: a)
        }
    }

    public func contains(_ address: IPv4Address) -> Bool { first <= address && address <= last }
    public var count: UInt64 { UInt64(last.value - first.value) + 1 }
    public var description: String { first == last ? "\(first)" : "\(first)-\(last)" }
}

extension IPv4Range {
    /// Sorted, with overlapping and adjacent ranges joined: every address appears in at most one range.
    public static func merged(_ ranges: [IPv4Range]) -> [IPv4Range] {
        var result: [IPv4Range] = []
        for range in ranges.sorted(by: { $0.first < $1.first }) {
            if let last = result.last, UInt64(range.first.value) <= UInt64(last.last.value) + 1 {
                result[result.count - 1] = IPv4Range(first: last.first, last: max(last.last, range.last))!
            } else {
                result.append(range)
            }
        }
        return result
    }
}
