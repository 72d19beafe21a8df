/// The checks `verify` performs. Raw values are stable: the agent logs and reports them.
public enum VerifyCheck: String, Sendable, CaseIterable {
    case underlay = "underlay"
    case bridgePresent = "bridge-present"
    case bridgeUp = "bridge-up"
    case bridgeAddress = "bridge-address"
    case bridgeMTU = "bridge-mtu"
    case tunnelDevice = "tunnel-device"
    case tunnelMaster = "tunnel-master"
    case tunnelUp = "tunnel-up"
    case tunnelMTU = "tunnel-mtu"
    /// VXLAN forwarding entries differ from the peer list.
    case tunnelFDB = "tunnel-fdb"
    /// Per-peer tunnels (gretap devices, OVS GRE ports) differ from the peer list.
    case tunnelPeers = "tunnel-peers"
    case ovsBridge = "ovs-bridge"
    /// The veth pair joining the OVS bridge and the Linux bridge.
    case ovsLink = "ovs-link"
    case containerLink = "container-link"
    case containerAddress = "container-address"
    case containerRoute = "container-route"
}

/// One failed check: what was checked and what is wrong.
public struct VerifyFailure: Sendable, Equatable, CustomStringConvertible {
    public var check: VerifyCheck
    public var detail: String

    public init(check: VerifyCheck, detail: String) {
        self.check = check
        self.detail = detail
    }

    public var description: String { "\(check.rawValue): \(detail)" }
}
