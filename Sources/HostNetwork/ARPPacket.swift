import NetleaseCore

/// Ethernet/ARP frames for IPv4 over Ethernet: building the RFC 5227 probe and reading answers. Pure bytes.
enum ARPPacket {
    static let etherTypeARP: UInt16 = 0x0806
    static let request: UInt16 = 1
    static let reply: UInt16 = 2
    /// Ethernet header (14) + ARP for IPv4 over Ethernet (28).
    static let minimumLength = 42

    /// The fields of an ARP packet for IPv4 over Ethernet.
    struct Message: Equatable {
        var operation: UInt16
        var senderMAC: [UInt8]
        var senderIP: IPv4Address
        var targetMAC: [UInt8]
        var targetIP: IPv4Address
    }

    /// An ARP probe (RFC 5227 §2.1.1): a broadcast request from `senderMAC` with sender IP 0.0.0.0, so that no
    /// neighbour cache learns a binding for an address we do not hold yet, and target IP the candidate. Padded to
    /// the 60-byte Ethernet minimum.
    static func probe(senderMAC: [UInt8], target: IPv4Address) -> [UInt8] {
        precondition(senderMAC.count == 6)
        var frame = [UInt8](repeating: 0, count: 60)
        frame.replaceSubrange(0..<6, with: [UInt8](repeating: 0xff, count: 6))
        frame.replaceSubrange(6..<12, with: senderMAC)
        put16(&frame, 12, etherTypeARP)
        put16(&frame, 14, 1)  // hardware type: Ethernet
        put16(&frame, 16, 0x0800)  // protocol type: IPv4
        frame[18] = 6
        frame[19] = 4
        put16(&frame, 20, request)
        frame.replaceSubrange(22..<28, with: senderMAC)
        // 28..<32 sender IP 0.0.0.0, 32..<38 target MAC zero.
        put32(&frame, 38, target.value)
        return frame
    }

    /// Reads an Ethernet frame as ARP for IPv4 over Ethernet; nil for anything else.
    static func parse(_ frame: ArraySlice<UInt8>) -> Message? {
        let f = Array(frame)
        guard f.count >= minimumLength, get16(f, 12) == etherTypeARP, get16(f, 14) == 1, get16(f, 16) == 0x0800,
            f[18] == 6, f[19] == 4
        else { return nil }
        return Message(
            operation: get16(f, 20),
            senderMAC: Array(f[22..<28]),
            senderIP: IPv4Address(get32(f, 28)),
            targetMAC: Array(f[32..<38]),
            targetIP: IPv4Address(get32(f, 38))
        )
    }

    /// The MAC that claims `candidate` in `frame`, or nil. Any ARP request or reply whose sender IP is the
    /// candidate, from a MAC that is not ours, is a conflict (RFC 5227 §2.1.1). A simultaneous probe by another host
    /// (sender IP 0.0.0.0) is not treated as one: the coordinator leases an address to one host at a time.
    static func conflictingMAC(in frame: ArraySlice<UInt8>, candidate: IPv4Address, ownMAC: [UInt8]) -> String? {
        guard let message = parse(frame), message.operation == request || message.operation == reply,
            message.senderIP == candidate, message.senderMAC != ownMAC
        else { return nil }
        return format(mac: message.senderMAC)
    }

    /// The address an ARP request or reply claims for its sender, unless it is a probe (sender IP 0.0.0.0) or
    /// from `ownMAC`.
    static func claim(in frame: ArraySlice<UInt8>, ownMAC: [UInt8]) -> ARPClaim? {
        guard let message = parse(frame), message.operation == request || message.operation == reply,
            message.senderIP.value != 0, message.senderMAC != ownMAC
        else { return nil }
        return ARPClaim(address: message.senderIP, mac: format(mac: message.senderMAC))
    }

    /// `aa:bb:cc:dd:ee:ff`.
    static func format(mac: [UInt8]) -> String {
        mac.map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined(separator: ":")
    }

    private static func put16(_ frame: inout [UInt8], _ offset: Int, _ value: UInt16) {
        frame[offset] = UInt8(value >> 8)
        frame[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    private static func put32(_ frame: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for index in 0..<4 { frame[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(index))) }
    }

    private static func get16(_ frame: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1])
    }

    private static func get32(_ frame: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(frame[offset + $1]) }
    }
}
