import NetleaseCore

extension TunnelKind {
    /// Bytes the tunnel adds to each frame on the underlay (IPv4 outer header): VXLAN 20 IP + 8 UDP + 8 VXLAN +
    /// 14 inner Ethernet = 50; GRE with transparent Ethernet bridging 20 IP + 4 GRE + 14 inner Ethernet = 38.
    public var overhead: Int {
        switch self {
        case .vxlan: return 50
        case .gre, .ovsGre: return 38
        }
    }
}
