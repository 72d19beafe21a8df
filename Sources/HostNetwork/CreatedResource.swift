import NetleaseCore

/// Something `LinuxHostNetwork` added to the host. It keeps a list per network so that teardown removes exactly
/// what it added: a bridge or an address an operator made stays.
public enum CreatedResource: Sendable, Hashable, CustomStringConvertible {
    /// A link (bridge, VXLAN or gretap device, one end of a veth pair: deleting it deletes both ends).
    case link(String)
    /// An address (`A.B.C.D/P`) added to a link that was already there.
    case address(link: String, cidr: String)
    /// A VXLAN forwarding entry.
    case fdb(device: String, destination: IPv4Address)
    case ovsBridge(String)
    case ovsPort(bridge: String, port: String)

    public var description: String {
        switch self {
        case .link(let name): return "link \(name)"
        case .address(let link, let cidr): return "address \(cidr) on \(link)"
        case .fdb(let device, let destination): return "fdb entry \(device) → \(destination)"
        case .ovsBridge(let name): return "OVS bridge \(name)"
        case .ovsPort(let bridge, let port): return "OVS port \(port) on \(bridge)"
        }
    }
}
