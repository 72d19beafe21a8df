import Foundation

/// One link of a scripted host, rendered as `ip -d -j addr show` renders it.
struct FakeLink {
    var name: String
    var index: Int
    var kind: String?
    var up = true
    var mtu = 1500
    var master: String?
    var addresses: [String] = []
    var peerName: String?
    var peerIndex: Int?
    var infoData: [String: Any] = [:]

    init(
        _ name: String,
        index: Int,
        kind: String? = nil,
        up: Bool = true,
        mtu: Int = 1500,
        master: String? = nil,
        addresses: [String] = [],
        peerName: String? = nil,
        peerIndex: Int? = nil,
        infoData: [String: Any] = [:]
    ) {
        self.name = name
        self.index = index
        self.kind = kind
        self.up = up
        self.mtu = mtu
        self.master = master
        self.addresses = addresses
        self.peerName = peerName
        self.peerIndex = peerIndex
        self.infoData = infoData
    }

    static func underlay(_ cidr: String = "10.0.0.1/24", mtu: Int = 1500) -> FakeLink {
        FakeLink("eth0", index: 2, mtu: mtu, addresses: [cidr])
    }

    static func bridge(
        _ name: String = "nl0",
        index: Int = 10,
        mtu: Int = 1450,
        address: String? = "172.30.0.1/16",
        up: Bool = true
    ) -> FakeLink {
        FakeLink(name, index: index, kind: "bridge", up: up, mtu: mtu, addresses: address.map { [$0] } ?? [])
    }

    static func vxlan(
        vni: Int = 42,
        index: Int = 11,
        local: String = "10.0.0.1",
        port: Int = 4789,
        mtu: Int = 1450,
        master: String? = "nl0",
        up: Bool = true
    ) -> FakeLink {
        FakeLink(
            "nlvx-\(vni)",
            index: index,
            kind: "vxlan",
            up: up,
            mtu: mtu,
            master: master,
            infoData: ["id": vni, "local": local, "port": port, "learning": false, "ttl": 0]
        )
    }

    static func gretap(
        _ name: String,
        index: Int,
        local: String = "10.0.0.1",
        remote: String,
        mtu: Int = 1462
    )
        -> FakeLink
    {
        FakeLink(
            name,
            index: index,
            kind: "gretap",
            mtu: mtu,
            master: "nl0",
            infoData: ["local": local, "remote": remote, "ttl": 0]
        )
    }

    var json: [String: Any] {
        var object: [String: Any] = [
            "ifindex": index, "ifname": name, "mtu": mtu, "qdisc": "noqueue", "operstate": up ? "UP" : "DOWN",
            "flags": up ? ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"] : ["BROADCAST", "MULTICAST"],
            "link_type": "ether", "address": String(format: "02:00:00:00:%02x:%02x", index / 256, index % 256),
        ]
        if let master { object["master"] = master }
        if let peerName { object["link"] = peerName }
        if let peerIndex { object["link_index"] = peerIndex }
        if let kind {
            var info: [String: Any] = ["info_kind": kind]
            if !infoData.isEmpty { info["info_data"] = infoData }
            object["linkinfo"] = info
        }
        object["addr_info"] = addresses.map { cidr -> [String: Any] in
            let parts = cidr.split(separator: "/")
            return ["family": "inet", "local": String(parts[0]), "prefixlen": Int(parts[1])!, "scope": "global"]
        }
        return object
    }

    static func render(_ links: [FakeLink]) -> String {
        let lo: [String: Any] = [
            "ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536,
            "addr_info": [["family": "inet", "local": "127.0.0.1", "prefixlen": 8]],
        ]
        let data = try! JSONSerialization.data(withJSONObject: [lo] + links.map(\.json), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func fdb(_ destinations: [String]) -> String {
        let entries: [[String: Any]] =
            destinations.map {
                ["mac": "00:00:00:00:00:00", "dst": $0, "flags": ["self"], "state": "permanent"]
            } + [["mac": "02:00:00:00:00:0b", "master": "nl0", "state": "permanent", "flags": []]]
        let data = try! JSONSerialization.data(withJSONObject: entries)
        return String(decoding: data, as: UTF8.self)
    }
}
