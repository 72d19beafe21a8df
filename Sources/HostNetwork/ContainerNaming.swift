/// Names and MAC addresses of the links netlease makes for containers, keyed with a secret of this host.
///
/// Design notes:
/// - The host end of a container's veth pair is named after (network, owner), so that a repeated ATTACH, a DETACH
///   and a restarted agent find it again. Linux allows 15 bytes, so the name is a hash. Owner ids come from
///   whoever may use the local API (a CNI runtime passes container ids; Docker passes endpoint ids; an operator
///   types anything), so the hash must not be something an owner can aim at: with a plain hash truncated to 48
///   bits (the former FNV-1a names), a colliding pair is found offline in seconds, and an ATTACH of one owner then
///   acted on the other's veth.
/// - A keyed PRF makes names unpredictable without the key, which never leaves this host (`interface-key` in the
///   agent's state directory, mode 0600). SipHash-2-4 is built for this (short inputs, attacker-chosen); a keyless
///   SHA-256 truncated to 15 bytes of name would still be open to an offline birthday search (2^32 work for 64
///   bits), because truncation, not the hash, sets that cost. 64 bits of output, written in base 32 as 13
///   characters, make `nl` + 13 = 15 bytes; among honest owners a collision needs about 2^32 containers.
/// - Names alone are not trusted either: an interface is only changed or deleted when its peer is the expected
///   interface in the expected namespace (`LinuxHostNetwork.attach`/`detach`).
/// - The container end gets a MAC derived the same way, so the agent knows its own containers' MACs without
///   looking (an ARP probe answered by the owner's own container is not a conflict).
public struct ContainerNaming: Sendable, Hashable {
    /// 16 bytes.
    public let key: [UInt8]

    public init(key: [UInt8]) {
        precondition(key.count == 16, "a container naming key has 16 bytes")
        self.key = key
    }

    /// A fresh key from the system's random number generator.
    public static func random() -> ContainerNaming {
        var generator = SystemRandomNumberGenerator()
        return ContainerNaming(key: (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The key as 32 hexadecimal digits (the state file's format), and back.
    public var hex: String { key.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 32 else { return nil }
        var key: [UInt8] = []
        for index in stride(from: 0, to: 32, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else {
                return nil
            }
            key.append(byte)
        }
        self.init(key: key)
    }

    /// The host end of the container's veth pair: `nl` + 13 base-32 digits of the keyed hash (15 bytes).
    public func hostVeth(network: String, owner: String) -> String {
        let value = SipHash24.hash(Self.message("veth", network, owner), key: key)
        let digits = Array("0123456789abcdefghijklmnopqrstuv")
        var name = "nl"
        for index in (0..<13).reversed() { name.append(digits[Int(value >> (5 * UInt64(index)) & 31)]) }
        return name
    }

    /// The container end's MAC: locally administered, unicast.
    public func containerMAC(network: String, owner: String) -> String {
        let value = SipHash24.hash(Self.message("mac", network, owner), key: key)
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
        bytes[0] = bytes[0] & 0xfc | 0x02
        return ARPPacket.format(mac: bytes)
    }

    /// Domain, network and owner separated by NUL, which no identifier may contain.
    private static func message(_ domain: String, _ network: String, _ owner: String) -> [UInt8] {
        Array(domain.utf8) + [0] + Array(network.utf8) + [0] + Array(owner.utf8)
    }
}
