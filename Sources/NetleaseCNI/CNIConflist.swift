import Foundation

/// The network configuration list (conflist) for one host: Debian's (the reference) `bridge` plugin on the agent's
/// bridge, with `netlease-cni` as its IPAM. The bridge already carries this host's address, so `isGateway` stays
/// false; `mtu` is the bridge's, so containers never send more than the tunnel carries.
public enum CNIConflist {
    /// 1.0.0: what podman 4.3.1's libcni and Debian's plugins speak; a runtime and plugins of CNI 1.1 may be given
    /// 1.1.0 (GC, STATUS).
    public static let defaultVersion = "1.0.0"

    /// The conflist as pretty-printed JSON, keys sorted, one trailing newline.
    public static func render(facts: CNINetworkFacts, socket: String, cniVersion: String = defaultVersion) -> Data {
        var ipam: [String: Any] = [
            "type": "netlease-cni", "network": facts.network, "socket": socket,
            "routes": [["dst": "0.0.0.0/0"]],
        ]
        // A relative state directory is the agent's, relative to where it runs: unusable by the plugin.
        if let directory = facts.stateDirectory, directory.hasPrefix("/") { ipam["stateDir"] = directory }
        let bridge: [String: Any] = [
            "type": "bridge", "bridge": facts.bridge, "isGateway": false, "ipMasq": false, "mtu": facts.mtu,
            "ipam": ipam,
        ]
        let list: [String: Any] = ["cniVersion": cniVersion, "name": facts.network, "plugins": [bridge]]
        var data =
            (try? JSONSerialization.data(
                withJSONObject: list,
                options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            )) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
