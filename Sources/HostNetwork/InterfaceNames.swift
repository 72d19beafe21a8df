import NetleaseCore

/// Deterministic names of the links and ports netlease creates. Linux limits interface names to 15 bytes, so names
/// derived from long inputs (host names, owner ids) carry a hash instead of the input. The same input always gives
/// the same name, which is how a restarted agent finds what it created before.
public enum InterfaceNames {
    /// The VXLAN device of a network: `nlvx-<vni>` (at most 13 bytes). The kernel allows one device per VNI and UDP
    /// port anyway.
    public static func vxlan(vni: UInt32) -> String { "nlvx-\(vni)" }

    /// The gretap device towards one peer: `nlg` + 12 hex digits of a hash of bridge and peer.
    public static func gretap(bridge: String, peer: String) -> String {
        "nlg" + hex(bridge + "\u{0}" + peer, digits: 12)
    }

    /// A network's Open vSwitch bridge: `nlo-` + 8 hex digits of a hash of the Linux bridge's name.
    public static func ovsBridge(bridge: String) -> String { "nlo-" + hex(bridge, digits: 8) }

    /// The veth end that sits on the Linux bridge and leads to the OVS bridge.
    public static func ovsLinkBridgeSide(bridge: String) -> String { "nlvl-" + hex(bridge, digits: 8) }

    /// The veth end that is a port of the OVS bridge.
    public static func ovsLinkSwitchSide(bridge: String) -> String { "nlvo-" + hex(bridge, digits: 8) }

    /// The OVS GRE port towards one peer: `gre-<peer>` as operators name it when that is a valid name of at most
    /// 15 bytes, otherwise `gre-` + 11 hex digits of a hash of the peer's name.
    public static func ovsGREPort(peer: String) -> String {
        let plain = "gre-" + peer
        if Names.isValidInterface(plain) { return plain }
        return "gre-" + hex(peer, digits: 11)
    }

    /// The host end of a container's veth pair as releases before keyed names made it: `nl` + 12 hex digits of an
    /// unkeyed hash of network and owner id. Anyone can compute colliding owners for it, so it is only looked up
    /// (an interface of an older agent, whose peer must still be the expected one); new pairs get
    /// `ContainerNaming.hostVeth`.
    public static func unkeyedContainerVeth(network: String, owner: String) -> String {
        "nl" + hex(network + "\u{0}" + owner, digits: 12)
    }

    /// Whether `name` has the shape of a container veth's host end: `nl` + 13 base-32 digits
    /// (`ContainerNaming.hostVeth`) or `nl` + 12 hex digits (`unkeyedContainerVeth`).
    public static func isContainerVeth(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count == 14 || bytes.count == 15, bytes.starts(with: Array("nl".utf8)) else { return false }
        let digits = bytes.dropFirst(2)
        if bytes.count == 15 { return digits.allSatisfy { (48...57).contains($0) || (97...118).contains($0) } }
        return digits.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// A default bridge name for a network that names none: `nl-<network>` when it fits, otherwise `nlb` + hash.
    public static func bridge(network: String) -> String {
        let plain = "nl-" + network
        if Names.isValidInterface(plain) { return plain }
        return "nlb" + hex(network, digits: 12)
    }

    /// 64-bit FNV-1a: small, stable across runs and platforms (unlike `Hasher`, which is seeded per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    static func hex(_ text: String, digits: Int) -> String {
        let full = String(fnv1a(text), radix: 16)
        let padded = String(repeating: "0", count: 16 - full.count) + full
        return String(padded.prefix(digits))
    }
}
