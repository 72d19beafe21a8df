import Foundation
import NetleaseCore

/// An IPv4 address on an interface, as `ip -j addr show` lists it.
struct InterfaceAddress: Sendable, Hashable, CustomStringConvertible {
    var address: IPv4Address
    var prefix: Int

    var description: String { "\(address)/\(prefix)" }
}

/// One network interface as `ip -d -j addr show` describes it: the fields netlease compares, nothing more.
struct ObservedLink: Sendable, Equatable {
    var index: Int
    var name: String
    /// `linkinfo.info_kind`: bridge, vxlan, gretap, veth, …; nil for plain devices.
    var kind: String?
    /// Administratively up (flag UP), whether or not it has carrier.
    var isUp: Bool
    var mtu: Int
    var master: String?
    var mac: String?
    /// For a veth whose peer is in another namespace: the peer's ifindex there (`link_index`).
    var peerIndex: Int?
    /// For a veth whose peer is in the same namespace: the peer's name (`link`).
    var peerName: String?
    var addresses: [InterfaceAddress]
    /// Tunnel attributes (`linkinfo.info_data`).
    var vni: UInt32?
    var local: IPv4Address?
    var remote: IPv4Address?
    var dstPort: Int?
    var learning: Bool?

    init(
        index: Int,
        name: String,
        kind: String? = nil,
        isUp: Bool = false,
        mtu: Int = 1500,
        master: String? = nil,
        mac: String? = nil,
        peerIndex: Int? = nil,
        addresses: [InterfaceAddress] = []
    ) {
        self.index = index
        self.name = name
        self.kind = kind
        self.isUp = isUp
        self.mtu = mtu
        self.master = master
        self.mac = mac
        self.peerIndex = peerIndex
        self.addresses = addresses
    }

    /// Parses the output of `ip -d -j addr show` (or `ip -d -j link show`). Fields of unexpected types are ignored
    /// rather than fatal: iproute2 versions differ in what they print.
    static func parseList(_ json: String, command: [String] = []) throws -> [ObservedLink] {
        let array = try CommandJSON.array(json, of: Any.self, command: command)
        return array.compactMap { element in
            guard let object = element as? [String: Any] else { return nil }
            return ObservedLink(json: object)
        }
    }

    private init?(json: [String: Any]) {
        guard let name = json["ifname"] as? String, let index = json["ifindex"] as? Int else { return nil }
        self.init(index: index, name: name)
        let flags = json["flags"] as? [String] ?? []
        isUp = flags.contains("UP")
        mtu = json["mtu"] as? Int ?? 0
        master = json["master"] as? String
        mac = json["address"] as? String
        peerIndex = json["link_index"] as? Int
        peerName = json["link"] as? String
        for entry in json["addr_info"] as? [[String: Any]] ?? [] {
            guard entry["family"] as? String == "inet",
                let local = (entry["local"] as? String).flatMap(IPv4Address.init),
                let prefix = entry["prefixlen"] as? Int
            else { continue }
            addresses.append(InterfaceAddress(address: local, prefix: prefix))
        }
        if let info = json["linkinfo"] as? [String: Any] {
            kind = info["info_kind"] as? String
            if let data = info["info_data"] as? [String: Any] {
                vni = (data["id"] as? Int).flatMap { UInt32(exactly: $0) }
                local = (data["local"] as? String).flatMap(IPv4Address.init)
                remote = (data["remote"] as? String).flatMap(IPv4Address.init)
                dstPort = data["port"] as? Int
                learning = data["learning"] as? Bool
            }
        }
    }

    func has(_ address: InterfaceAddress) -> Bool { addresses.contains(address) }
}

/// A route as `ip -j route show` lists it.
struct ObservedRoute: Sendable, Equatable {
    var destination: String
    var gateway: IPv4Address?
    var device: String?

    static func parseList(_ json: String, command: [String] = []) throws -> [ObservedRoute] {
        let array = try CommandJSON.array(json, of: [String: Any].self, command: command)
        return array.map { object in
            ObservedRoute(
                destination: object["dst"] as? String ?? "",
                gateway: (object["gateway"] as? String).flatMap(IPv4Address.init),
                device: object["dev"] as? String
            )
        }
    }
}
