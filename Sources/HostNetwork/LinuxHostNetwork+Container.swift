import NetleaseCore

extension LinuxHostNetwork {
    /// Connects a container. A fresh attach is, with H the host end and P the namespace file:
    ///
    ///     ip link add H mtu M type veth peer name eth0 mtu M netns P
    ///     ip link set dev H master BRIDGE
    ///     ip link set dev H up
    ///     nsenter --net=P ip addr add A/N dev eth0
    ///     nsenter --net=P ip link set dev eth0 up
    ///     nsenter --net=P ip route replace default via GATEWAY dev eth0
    ///
    /// The container end is created directly inside the namespace with its final name, so it never exists in the
    /// host namespace (where `eth0` may be taken) and there is no half-moved state. When H exists and its peer is the
    /// requested interface in that namespace, only differences are fixed; when its peer is elsewhere (an old
    /// container of the same owner), H is deleted and the pair made anew.
    public func attach(_ attachment: ContainerAttachment) async throws -> AttachedContainer {
        try attachment.validate()
        await gate.acquire()
        defer { gate.release() }
        let host = HostSnapshot(links: try await observeLinks(Self.listLinks)).links
        guard let bridge = host[attachment.bridge], bridge.kind == "bridge" else {
            throw HostNetworkError(
                .invalidConfiguration,
                "bridge \(attachment.bridge) of network '\(attachment.network)' does not exist; "
                    + "ensure the network first"
            )
        }
        let mtu = attachment.mtu > 0 ? attachment.mtu : bridge.mtu
        let name = attachment.hostInterface
        var steps: [PlannedStep] = []
        var paired = false
        if let veth = host[name] {
            guard veth.kind == "veth" else {
                throw HostNetworkError(
                    .conflict,
                    "link \(name) exists but is \(veth.kind ?? "a plain device"), not a veth"
                )
            }
            let inside = HostSnapshot(
                links: try await observeLinks(attachment.namespace.enterPrefix + Self.listLinks)
            ).links
            if let peer = inside[attachment.ifname], peer.kind == "veth", peer.peerIndex == veth.index,
                veth.peerIndex == peer.index
            {
                paired = true
                let routesCommand = attachment.namespace.enterPrefix + ["ip", "-j", "route", "show", "default"]
                let routes = try ObservedRoute.parseList(
                    try await runner.run(routesCommand).stdout,
                    command: routesCommand
                )
                steps = Self.containerFixes(attachment, mtu: mtu, host: veth, inside: peer, routes: routes)
            } else {
                steps.append(
                    PlannedStep(
                        .containerLink,
                        "\(name) does not lead to \(attachment.ifname) in \(attachment.namespace)",
                        ["ip", "link", "del", name],
                        removes: .link(name)
                    )
                )
            }
        }
        if !paired {
            steps += Self.containerCreation(attachment, mtu: mtu)
        }
        for step in steps { try await apply(step, network: attachment.network) }
        return AttachedContainer(
            hostInterface: name,
            containerInterface: attachment.ifname,
            mtu: mtu,
            changes: steps.map(\.problem)
        )
    }

    public func detach(network: String, owner: String) async throws {
        await gate.acquire()
        defer { gate.release() }
        let name = InterfaceNames.containerVeth(network: network, owner: owner)
        let host = HostSnapshot(links: try await observeLinks(Self.listLinks)).links
        guard let veth = host[name] else {
            created[network]?.removeAll { $0 == .link(name) }
            return
        }
        guard veth.kind == "veth" else {
            throw HostNetworkError(
                .conflict,
                "link \(name) exists but is \(veth.kind ?? "a plain device"), not a veth"
            )
        }
        try await apply(
            PlannedStep(
                .containerLink,
                "container \(owner) detached",
                ["ip", "link", "del", name],
                removes: .link(name)
            ),
            network: network
        )
    }

    static func containerCreation(_ attachment: ContainerAttachment, mtu: Int) -> [PlannedStep] {
        let name = attachment.hostInterface
        let ifname = attachment.ifname
        let inside = attachment.namespace.enterPrefix
        let cidr = "\(attachment.address)/\(attachment.prefix)"
        return [
            PlannedStep(
                .containerLink,
                "no veth pair \(name)/\(ifname) for \(attachment.owner)",
                [
                    "ip", "link", "add", name, "mtu", "\(mtu)", "type", "veth", "peer", "name", ifname, "mtu", "\(mtu)",
                    "netns", attachment.namespace.path,
                ],
                creates: .link(name)
            ),
            PlannedStep(
                .containerLink,
                "\(name) is not on \(attachment.bridge)",
                ["ip", "link", "set", "dev", name, "master", attachment.bridge]
            ),
            PlannedStep(.containerLink, "\(name) is down", ["ip", "link", "set", "dev", name, "up"]),
            PlannedStep(
                .containerAddress,
                "\(ifname) lacks \(cidr)",
                inside + ["ip", "addr", "add", cidr, "dev", ifname]
            ),
            PlannedStep(.containerLink, "\(ifname) is down", inside + ["ip", "link", "set", "dev", ifname, "up"]),
            PlannedStep(
                .containerRoute,
                "no default route via \(attachment.gateway)",
                inside + ["ip", "route", "replace", "default", "via", "\(attachment.gateway)", "dev", ifname]
            ),
        ]
    }

    static func containerFixes(
        _ attachment: ContainerAttachment,
        mtu: Int,
        host: ObservedLink,
        inside peer: ObservedLink,
        routes: [ObservedRoute]
    ) -> [PlannedStep] {
        let name = attachment.hostInterface
        let ifname = attachment.ifname
        let inside = attachment.namespace.enterPrefix
        let wanted = InterfaceAddress(address: attachment.address, prefix: attachment.prefix)
        var steps: [PlannedStep] = []
        if host.mtu != mtu {
            steps.append(
                PlannedStep(
                    .containerLink,
                    "\(name) has MTU \(host.mtu), not \(mtu)",
                    ["ip", "link", "set", "dev", name, "mtu", "\(mtu)"]
                )
            )
        }
        if host.master != attachment.bridge {
            steps.append(
                PlannedStep(
                    .containerLink,
                    "\(name) is not on \(attachment.bridge)",
                    ["ip", "link", "set", "dev", name, "master", attachment.bridge]
                )
            )
        }
        if !host.isUp {
            steps.append(PlannedStep(.containerLink, "\(name) is down", ["ip", "link", "set", "dev", name, "up"]))
        }
        if peer.mtu != mtu {
            steps.append(
                PlannedStep(
                    .containerLink,
                    "\(ifname) has MTU \(peer.mtu), not \(mtu)",
                    inside + ["ip", "link", "set", "dev", ifname, "mtu", "\(mtu)"]
                )
            )
        }
        if !peer.has(wanted) {
            // The interface is ours (it is the peer of our veth): an address it has besides the leased one is a
            // leftover of an earlier lease and would answer ARP for someone else's address.
            for other in peer.addresses where other != wanted {
                steps.append(
                    PlannedStep(
                        .containerAddress,
                        "\(ifname) has stale address \(other)",
                        inside + ["ip", "addr", "del", "\(other)", "dev", ifname]
                    )
                )
            }
            steps.append(
                PlannedStep(
                    .containerAddress,
                    "\(ifname) lacks \(wanted)",
                    inside + ["ip", "addr", "add", "\(wanted)", "dev", ifname]
                )
            )
        }
        if !peer.isUp {
            steps.append(
                PlannedStep(
                    .containerLink,
                    "\(ifname) is down",
                    inside + ["ip", "link", "set", "dev", ifname, "up"]
                )
            )
        }
        let hasRoute = routes.contains {
            $0.destination == "default" && $0.gateway == attachment.gateway && $0.device == ifname
        }
        if !hasRoute {
            steps.append(
                PlannedStep(
                    .containerRoute,
                    "no default route via \(attachment.gateway) dev \(ifname)",
                    inside + ["ip", "route", "replace", "default", "via", "\(attachment.gateway)", "dev", ifname]
                )
            )
        }
        return steps
    }
}
