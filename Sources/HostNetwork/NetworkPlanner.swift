import NetleaseCore

/// Turns a network's configuration and a snapshot of the host into the ordered steps that make the host match:
/// bridge first, then the tunnel mesh of the network's kind. Pure; `LinuxHostNetwork` runs the steps.
///
/// Design notes:
/// - A device that exists with the wrong kind is never touched: the plan stops with a blocking step, because the
///   name may belong to someone else.
/// - A tunnel device of ours (by its deterministic name) with wrong fixed attributes (VNI, local address, port) is
///   deleted and created again; attributes that `ip link set` can change (MTU, master, up) are changed in place.
/// - Which peers get tunnels is `MeshPlan`'s decision: removals before additions, so a peer that changed its
///   underlay address loses the old tunnel before it gets the new one.
struct NetworkPlanner {
    static let vxlanPort = 4789
    static let ovsVsctl = ["ovs-vsctl", "--timeout=10"]

    let config: HostNetworkConfig
    let snapshot: HostSnapshot
    /// The MTU of the bridge and every tunnel-side device.
    let mtu: Int

    init(config: HostNetworkConfig, snapshot: HostSnapshot) {
        self.config = config
        self.snapshot = snapshot
        let underlayMTU = config.underlayMTU ?? snapshot.link(holding: config.underlay)?.mtu ?? 1500
        mtu = config.effectiveMTU(underlayMTU: underlayMTU)
    }

    func plan() -> [PlannedStep] {
        var steps: [PlannedStep] = []
        if snapshot.link(holding: config.underlay) == nil {
            steps.append(
                PlannedStep(.underlay, "no interface holds the underlay address \(config.underlay)", nil)
            )
        }
        planBridge(&steps)
        if steps.contains(where: \.blocking) { return steps }
        switch config.tunnel {
        case .vxlan: planVXLAN(&steps)
        case .gre: planGretap(&steps)
        case .ovsGre: planOVS(&steps)
        }
        return steps
    }

    // MARK: bridge

    private func planBridge(_ steps: inout [PlannedStep]) {
        let name = config.bridge
        let wanted = InterfaceAddress(address: config.bridgeAddress, prefix: config.prefix)
        guard let bridge = snapshot.links[name] else {
            // The MTU is set by a separate `ip link set … mtu`: only that marks it as chosen by the user. An MTU
            // given to `ip link add` is not sticky, and the kernel re-derives the bridge's MTU from its ports
            // whenever one is added or removed (measured on 6.18: removing the VXLAN port raised it to 1500).
            steps.append(
                PlannedStep(
                    .bridgePresent,
                    "bridge \(name) is missing",
                    ["ip", "link", "add", name, "type", "bridge"],
                    creates: .link(name)
                )
            )
            steps.append(
                PlannedStep(
                    .bridgeMTU,
                    "bridge \(name) has no MTU set",
                    ["ip", "link", "set", "dev", name, "mtu", "\(mtu)"]
                )
            )
            steps.append(addAddress(wanted, to: name, created: true))
            steps.append(PlannedStep(.bridgeUp, "bridge \(name) is down", ["ip", "link", "set", "dev", name, "up"]))
            return
        }
        guard bridge.kind == "bridge" else {
            steps.append(
                PlannedStep(
                    .bridgePresent,
                    "link \(name) exists but is \(bridge.kind ?? "a plain device"), not a bridge",
                    nil,
                    blocking: true
                )
            )
            return
        }
        if bridge.mtu != mtu {
            steps.append(setMTU(name, from: bridge.mtu, check: .bridgeMTU))
        }
        if !bridge.has(wanted) {
            for other in bridge.addresses where other.address == wanted.address {
                steps.append(
                    PlannedStep(
                        .bridgeAddress,
                        "bridge \(name) has \(other), not \(wanted)",
                        ["ip", "addr", "del", "\(other)", "dev", name]
                    )
                )
            }
            steps.append(addAddress(wanted, to: name, created: false))
        }
        // A bridge address this host held before (e.g. before it was declared lost and rejoined) is stale: the
        // coordinator may hand it to a container. Only addresses inside this network's subnet are touched.
        let mask = IPv4Subnet.mask(config.prefix)
        for other in bridge.addresses
        where other.address != wanted.address
            && other.address.value & mask == wanted.address.value & mask
        {
            steps.append(
                PlannedStep(
                    .bridgeAddress,
                    "bridge \(name) still has the stale address \(other)",
                    ["ip", "addr", "del", "\(other)", "dev", name]
                )
            )
        }
        if !bridge.isUp {
            steps.append(PlannedStep(.bridgeUp, "bridge \(name) is down", ["ip", "link", "set", "dev", name, "up"]))
        }
    }

    private func addAddress(_ address: InterfaceAddress, to link: String, created: Bool) -> PlannedStep {
        PlannedStep(
            .bridgeAddress,
            "bridge \(link) lacks address \(address)",
            ["ip", "addr", "add", "\(address)", "dev", link],
            creates: created ? nil : .address(link: link, cidr: "\(address)")
        )
    }

    // MARK: shared link fixes

    private func setMTU(_ name: String, from current: Int, check: VerifyCheck) -> PlannedStep {
        PlannedStep(
            check,
            "\(name) has MTU \(current), not \(mtu)",
            ["ip", "link", "set", "dev", name, "mtu", "\(mtu)"]
        )
    }

    private func setMaster(_ name: String, current: String?) -> PlannedStep {
        PlannedStep(
            .tunnelMaster,
            "\(name) is on \(current.map { "bridge \($0)" } ?? "no bridge"), not \(config.bridge)",
            ["ip", "link", "set", "dev", name, "master", config.bridge]
        )
    }

    private func setUp(_ name: String, check: VerifyCheck = .tunnelUp) -> PlannedStep {
        PlannedStep(check, "\(name) is down", ["ip", "link", "set", "dev", name, "up"])
    }

    /// MTU, master and up for a tunnel-side link that exists (`link` non-nil) or is about to be created (nil).
    private func attachToBridge(_ name: String, _ link: ObservedLink?, _ steps: inout [PlannedStep]) {
        if let link, link.mtu != mtu { steps.append(setMTU(name, from: link.mtu, check: .tunnelMTU)) }
        if link?.master != config.bridge { steps.append(setMaster(name, current: link?.master)) }
        if link?.isUp != true { steps.append(setUp(name)) }
    }

    private func wrongKind(_ name: String, _ link: ObservedLink, expected: String, check: VerifyCheck) -> PlannedStep {
        PlannedStep(
            check,
            "link \(name) exists but is \(link.kind ?? "a plain device"), not \(expected)",
            nil,
            blocking: true
        )
    }

    // MARK: vxlan

    private func planVXLAN(_ steps: inout [PlannedStep]) {
        let name = InterfaceNames.vxlan(vni: config.vni)
        var device = snapshot.links[name]
        var observed = snapshot.fdbDestinations
        if let existing = device {
            guard existing.kind == "vxlan" else {
                steps.append(wrongKind(name, existing, expected: "vxlan", check: .tunnelDevice))
                return
            }
            var wrong: [String] = []
            if existing.vni != config.vni { wrong.append("id \(existing.vni.map(String.init) ?? "?")") }
            if existing.local != config.underlay { wrong.append("local \(existing.local?.description ?? "none")") }
            if existing.dstPort != Self.vxlanPort { wrong.append("dstport \(existing.dstPort ?? 0)") }
            if existing.learning != false { wrong.append("learning on") }
            if !wrong.isEmpty {
                steps.append(
                    PlannedStep(
                        .tunnelDevice,
                        "\(name) has \(wrong.joined(separator: ", ")); recreating it",
                        ["ip", "link", "del", name],
                        removes: .link(name)
                    )
                )
                device = nil
                observed = []
            }
        }
        if device == nil {
            steps.append(
                PlannedStep(
                    .tunnelDevice,
                    "VXLAN device \(name) is missing",
                    [
                        "ip", "link", "add", name, "mtu", "\(mtu)", "type", "vxlan", "id", "\(config.vni)",
                        "dstport", "\(Self.vxlanPort)", "local", "\(config.underlay)", "nolearning",
                    ],
                    creates: .link(name)
                )
            )
        }
        attachToBridge(name, device, &steps)
        let mesh = MeshPlan(peers: config.peers, local: config.underlay, observedDestinations: observed)
        for endpoint in mesh.remove {
            steps.append(
                PlannedStep(
                    .tunnelFDB,
                    "\(name) forwards to \(endpoint.underlay), which is no peer",
                    ["bridge", "fdb", "del", HostSnapshot.zeroMAC, "dev", name, "dst", "\(endpoint.underlay)"],
                    removes: .fdb(device: name, destination: endpoint.underlay)
                )
            )
        }
        for endpoint in mesh.add {
            let hosts = config.peers.filter { $0.value == endpoint.underlay }.keys.sorted().joined(separator: ",")
            steps.append(
                PlannedStep(
                    .tunnelFDB,
                    "\(name) has no forwarding entry for peer \(hosts) at \(endpoint.underlay)",
                    ["bridge", "fdb", "append", HostSnapshot.zeroMAC, "dev", name, "dst", "\(endpoint.underlay)"],
                    creates: .fdb(device: name, destination: endpoint.underlay)
                )
            )
        }
    }

    // MARK: gretap

    private func planGretap(_ steps: inout [PlannedStep]) {
        let bridge = config.bridge
        var names: [String: String] = [:]  // device → peer host
        for host in config.remotePeers.keys { names[InterfaceNames.gretap(bridge: bridge, peer: host)] = host }
        // Ours: gretap devices on our bridge, and devices carrying a name we would give. A device whose local
        // address is wrong is observed at 0.0.0.0 so that the mesh plan recreates it.
        var observed: [String: IPv4Address] = [:]
        for link in snapshot.links.values where link.master == bridge || names[link.name] != nil {
            guard link.kind == "gretap" else {
                if names[link.name] != nil {
                    steps.append(wrongKind(link.name, link, expected: "gretap", check: .tunnelDevice))
                    return
                }
                continue
            }
            observed[link.name] = link.local == config.underlay ? (link.remote ?? IPv4Address(0)) : IPv4Address(0)
        }
        let mesh = MeshPlan(peers: config.peers, local: config.underlay, observed: observed) {
            InterfaceNames.gretap(bridge: bridge, peer: $0)
        }
        for endpoint in mesh.remove {
            let who = names[endpoint.key].map { "peer \($0)" } ?? "no peer"
            steps.append(
                PlannedStep(
                    .tunnelPeers,
                    "gretap \(endpoint.key) leads to \(endpoint.underlay), \(who) is not there",
                    ["ip", "link", "del", endpoint.key],
                    removes: .link(endpoint.key)
                )
            )
        }
        let added = Set(mesh.add.map(\.key))
        for endpoint in mesh.add {
            var argv = [
                "ip", "link", "add", endpoint.key, "mtu", "\(mtu)", "type", "gretap", "local", "\(config.underlay)",
                "remote", "\(endpoint.underlay)",
            ]
            if config.vni != 0 { argv += ["key", "\(config.vni)"] }
            steps.append(
                PlannedStep(
                    .tunnelPeers,
                    "no gretap device to peer \(names[endpoint.key] ?? endpoint.key) at \(endpoint.underlay)",
                    argv,
                    creates: .link(endpoint.key)
                )
            )
            attachToBridge(endpoint.key, nil, &steps)
        }
        for name in names.keys.sorted() where !added.contains(name) {
            if let link = snapshot.links[name] { attachToBridge(name, link, &steps) }
        }
    }

    // MARK: ovs-gre

    private func planOVS(_ steps: inout [PlannedStep]) {
        let ovs = snapshot.ovs ?? OVSSnapshot(bridgeExists: false)
        let switchName = config.ovsBridge
        let vsctl = Self.ovsVsctl
        // The userspace datapath encapsulates GRE itself and sends it only through an OVS bridge: its router uses
        // just the routes whose device is an OVS bridge, and it resolves the next hop with its own ARP there.
        // With the underlay address on a plain NIC, every tunnelled frame is dropped (measured: no route, zero
        // packets; after moving the NIC into an OVS bridge `br-phy` holding the address, pings pass). Operators must
        // do that move; netlease reports it and does not touch the underlay.
        if let holder = snapshot.link(holding: config.underlay), !ovs.bridges.contains(holder.name) {
            steps.append(
                PlannedStep(
                    .underlay,
                    "underlay address \(config.underlay) is on \(holder.name), not on an OVS bridge: the userspace "
                        + "datapath sends GRE only from an address on an OVS bridge (add \(holder.name) to one, e.g. "
                        + "br-phy, and move the address there)",
                    nil
                )
            )
        }
        if !ovs.bridgeExists {
            steps.append(
                PlannedStep(
                    .ovsBridge,
                    "OVS bridge \(switchName) is missing",
                    vsctl + [
                        "--may-exist", "add-br", switchName, "--", "set", "bridge", switchName,
                        "datapath_type=netdev",
                    ],
                    creates: .ovsBridge(switchName)
                )
            )
        } else if ovs.datapathType != "netdev" {
            steps.append(
                PlannedStep(
                    .ovsBridge,
                    "OVS bridge \(switchName) has datapath_type '\(ovs.datapathType)', not netdev",
                    vsctl + ["set", "bridge", switchName, "datapath_type=netdev"]
                )
            )
        }
        planOVSLink(ovs, &steps)
        if steps.contains(where: \.blocking) { return }
        // GRE ports of our OVS bridge, keyed by port name.
        let observed = ovs.greRemotes.filter { ovs.ports.contains($0.key) }
        let mesh = MeshPlan(peers: config.peers, local: config.underlay, observed: observed) {
            InterfaceNames.ovsGREPort(peer: $0)
        }
        for endpoint in mesh.remove {
            steps.append(
                PlannedStep(
                    .tunnelPeers,
                    "OVS port \(endpoint.key) leads to \(endpoint.underlay), which is no current peer",
                    vsctl + ["--if-exists", "del-port", switchName, endpoint.key],
                    removes: .ovsPort(bridge: switchName, port: endpoint.key)
                )
            )
        }
        for endpoint in mesh.add {
            let port = endpoint.key
            steps.append(
                PlannedStep(
                    .tunnelPeers,
                    "no OVS GRE port \(port) to \(endpoint.underlay)",
                    vsctl + [
                        "--may-exist", "add-port", switchName, port, "--", "set", "interface", port, "type=gre",
                        "options:remote_ip=\(endpoint.underlay)",
                    ],
                    creates: .ovsPort(bridge: switchName, port: port)
                )
            )
        }
    }

    /// The veth pair that joins the OVS bridge to the Linux bridge: one end on each.
    private func planOVSLink(_ ovs: OVSSnapshot, _ steps: inout [PlannedStep]) {
        let bridgeSide = InterfaceNames.ovsLinkBridgeSide(bridge: config.bridge)
        let switchSide = InterfaceNames.ovsLinkSwitchSide(bridge: config.bridge)
        var near = snapshot.links[bridgeSide]
        var far = snapshot.links[switchSide]
        for (name, link) in [(bridgeSide, near), (switchSide, far)] {
            if let link, link.kind != "veth" {
                steps.append(wrongKind(name, link, expected: "veth", check: .ovsLink))
                return
            }
        }
        let paired = near?.peerName == switchSide && far?.peerName == bridgeSide
        if !paired {
            // Half a pair, or two ends of different pairs, cannot be mended: remove them and make a new pair.
            for (name, link) in [(bridgeSide, near), (switchSide, far)] where link != nil {
                steps.append(
                    PlannedStep(
                        .ovsLink,
                        "\(name) is not paired with its veth peer",
                        ["ip", "link", "del", name],
                        removes: .link(name)
                    )
                )
            }
            steps.append(
                PlannedStep(
                    .ovsLink,
                    "veth pair \(bridgeSide)/\(switchSide) between the bridges is missing",
                    [
                        "ip", "link", "add", bridgeSide, "mtu", "\(mtu)", "type", "veth", "peer", "name", switchSide,
                        "mtu", "\(mtu)",
                    ],
                    creates: .link(bridgeSide)
                )
            )
            near = nil
            far = nil
        }
        for (name, link) in [(bridgeSide, near), (switchSide, far)] {
            if let link, link.mtu != mtu { steps.append(setMTU(name, from: link.mtu, check: .ovsLink)) }
        }
        if near?.master != config.bridge {
            var step = setMaster(bridgeSide, current: near?.master)
            step.check = .ovsLink
            steps.append(step)
        }
        if near?.isUp != true { steps.append(setUp(bridgeSide, check: .ovsLink)) }
        if far?.isUp != true { steps.append(setUp(switchSide, check: .ovsLink)) }
        if !ovs.ports.contains(switchSide) {
            steps.append(
                PlannedStep(
                    .ovsLink,
                    "\(switchSide) is not a port of OVS bridge \(config.ovsBridge)",
                    Self.ovsVsctl + ["--may-exist", "add-port", config.ovsBridge, switchSide],
                    creates: .ovsPort(bridge: config.ovsBridge, port: switchSide)
                )
            )
        }
    }
}
