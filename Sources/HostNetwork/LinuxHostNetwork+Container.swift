import NetleaseCore

extension LinuxHostNetwork {
    /// Connects a container. A fresh attach is, with H the host end, P the namespace file as this process holds it
    /// open (`/proc/PID/fd/N`, see `PinnedNamespace`) and MAC the container end's derived address:
    ///
    ///     ip link add H mtu M type veth peer name eth0 address MAC mtu M netns P
    ///     ip link set dev H master BRIDGE
    ///     ip link set dev H up
    ///     nsenter --net=P ip addr add A/N dev eth0
    ///     nsenter --net=P ip link set dev eth0 up
    ///     nsenter --net=P ip route replace default via GATEWAY dev eth0
    ///
    /// The container end is created directly inside the namespace with its final name, so it never exists in the
    /// host namespace (where `eth0` may be taken) and there is no half-moved state. When a step after the first
    /// fails, the pair this call created is deleted again; nothing that existed before is touched.
    ///
    /// The namespace file is opened and checked once, before anything else, and every step enters that descriptor:
    /// what the caller's path leads to afterwards does not matter. With `namespaceIdentity` set, a namespace that is
    /// not that one is refused with `namespaceReplaced` (the container is gone).
    ///
    /// When H exists and its peer is the requested interface in the requested namespace, only differences are
    /// fixed. Attach never deletes a link: a host end whose peer is anywhere else belongs to another container (an
    /// old one of this owner still running, or another owner) and the request is refused with `conflict`.
    public func attach(_ attachment: ContainerAttachment) async throws -> AttachedContainer {
        try attachment.validate()
        let namespace = try await namespaceGuard.pin(attachment.namespace)
        defer { namespace.close() }
        if let replaced = Self.replacement(namespace, of: attachment.link) {
            throw HostNetworkError(.namespaceReplaced, replaced + "; not plumbing it")
        }
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
        // Looking inside first also proves the namespace can be entered before anything is created.
        let inside = try await observeInside(namespace)
        switch Self.pair(of: attachment.link, host: host, inside: inside) {
        case .foreign(let reason):
            throw HostNetworkError(.conflict, reason + "; not changing it (detach the owner first)")
        case .paired(let end, let peer):
            let steps = try await fixes(attachment, in: namespace, mtu: mtu, host: end, inside: peer)
            for step in steps { try await apply(step, network: attachment.network) }
            return AttachedContainer(
                hostInterface: end.name,
                containerInterface: attachment.ifname,
                containerMAC: peer.mac,
                mtu: mtu,
                changes: steps.map(\.problem),
                created: false,
                namespaceIdentity: namespace.identity
            )
        case .absent:
            if inside[attachment.ifname] != nil {
                throw HostNetworkError(
                    .conflict,
                    "\(attachment.namespace) already has an interface named \(attachment.ifname) that netlease did "
                        + "not make for '\(attachment.owner)'; not changing it"
                )
            }
            let steps = Self.containerCreation(attachment, in: namespace.path, mtu: mtu)
            try await apply(steps[0], network: attachment.network)
            do {
                for step in steps.dropFirst() { try await apply(step, network: attachment.network) }
            } catch {
                await removeQuietly(attachment.hostInterface, network: attachment.network, why: "attach failed")
                throw error
            }
            return AttachedContainer(
                hostInterface: attachment.hostInterface,
                containerInterface: attachment.ifname,
                containerMAC: attachment.link.containerMAC,
                mtu: mtu,
                changes: steps.map(\.problem),
                created: true,
                namespaceIdentity: namespace.identity
            )
        }
    }

    public nonisolated func checkNamespace(_ namespace: NetworkNamespace) async throws {
        try await namespaceGuard.check(namespace)
    }

    /// Deletes the container's veth pair, only when its host end's peer is `link.ifname` in `link.namespace`.
    /// Harmless when it is gone; a host end that leads anywhere else is left alone and reported as `conflict`. A
    /// namespace the checks refuse, or not the one `link.namespaceIdentity` names, is not looked into: the container
    /// counts as gone.
    public func detach(_ link: ContainerLink) async throws {
        await gate.acquire()
        defer { gate.release() }
        let host = HostSnapshot(links: try await observeLinks(Self.listLinks)).links
        guard host[link.hostInterface] != nil || host[link.unkeyedHostInterface] != nil else {
            created[link.network]?.removeAll { $0 == .link(link.hostInterface) }
            return
        }
        // A namespace that is gone took its end of the pair with it: whatever still has our name is not ours.
        var inside: [String: ObservedLink] = [:]
        if let namespace = try? await namespaceGuard.pin(link.namespace) {
            defer { namespace.close() }
            if Self.replacement(namespace, of: link) == nil {
                inside = (try? await observeInside(namespace)) ?? [:]
            }
        }
        switch Self.pair(of: link, host: host, inside: inside) {
        case .absent:
            return
        case .foreign(let reason):
            throw HostNetworkError(.conflict, reason + "; not deleting it")
        case .paired(let end, _):
            try await apply(
                PlannedStep(
                    .containerLink,
                    "container \(link.owner) detached",
                    ["ip", "link", "del", end.name],
                    removes: .link(end.name)
                ),
                network: link.network
            )
        }
    }

    /// What differs from `attachment` as `attach` would fix it, changing nothing; empty when the container is
    /// attached as asked.
    public func inspect(_ attachment: ContainerAttachment) async throws -> [String] {
        try attachment.validate()
        await gate.acquire()
        defer { gate.release() }
        let host = HostSnapshot(links: try await observeLinks(Self.listLinks)).links
        guard let bridge = host[attachment.bridge], bridge.kind == "bridge" else {
            return ["bridge \(attachment.bridge) does not exist"]
        }
        let namespace: PinnedNamespace
        let inside: [String: ObservedLink]
        do {
            namespace = try await namespaceGuard.pin(attachment.namespace)
        } catch {
            return ["cannot look into \(attachment.namespace): \(error)"]
        }
        defer { namespace.close() }
        if let replaced = Self.replacement(namespace, of: attachment.link) { return [replaced] }
        do {
            inside = try await observeInside(namespace)
        } catch {
            return ["cannot look into \(attachment.namespace): \(error)"]
        }
        switch Self.pair(of: attachment.link, host: host, inside: inside) {
        case .absent:
            return ["no veth pair leads to \(attachment.ifname) in \(attachment.namespace)"]
        case .foreign(let reason):
            return [reason]
        case .paired(let end, let peer):
            let mtu = attachment.mtu > 0 ? attachment.mtu : bridge.mtu
            return try await fixes(attachment, in: namespace, mtu: mtu, host: end, inside: peer).map(\.problem)
        }
    }

    /// What differs in the container's existing pair: looks at the routes inside, then plans.
    private func fixes(
        _ attachment: ContainerAttachment,
        in namespace: PinnedNamespace,
        mtu: Int,
        host end: ObservedLink,
        inside peer: ObservedLink
    ) async throws -> [PlannedStep] {
        let routesCommand = namespace.enterPrefix + ["ip", "-j", "route", "show", "default"]
        let routes = try ObservedRoute.parseList(try await runner.run(routesCommand).stdout, command: routesCommand)
        return Self.containerFixes(attachment, in: namespace.path, mtu: mtu, host: end, inside: peer, routes: routes)
    }

    /// Why `namespace` is not the one `link` was attached to; nil when it is, or when `link` does not say.
    static func replacement(_ namespace: PinnedNamespace, of link: ContainerLink) -> String? {
        guard let expected = link.namespaceIdentity, namespace.identity != expected else { return nil }
        return
            "\(link.namespace) is now \(namespace.identity?.description ?? "a namespace the kernel cannot identify"), "
            + "not \(expected) that '\(link.owner)' was attached to: the container is gone"
    }

    public func containerPorts(bridge: String) async throws -> [String] {
        await gate.acquire()
        defer { gate.release() }
        return try await observeLinks(Self.listLinks)
            .filter { $0.kind == "veth" && $0.master == bridge && InterfaceNames.isContainerVeth($0.name) }
            .map(\.name).sorted()
    }

    /// Where a container's host end stands.
    enum PairState: Equatable {
        /// No link has the owner's name.
        case absent
        /// The host end (keyed name, or an older release's) leads to `ifname` in the expected namespace.
        case paired(ObservedLink, ObservedLink)
        /// A link has the owner's name but is not this container's; the reason says what it is.
        case foreign(String)
    }

    /// Finds the container's pair by the host end's name and proves it by the peer: the host end is a veth whose
    /// peer (`link_index`) is a veth inside the namespace that points back at it. An interface whose peer is
    /// anywhere else is never treated as this container's, whatever its name. The unkeyed name of older releases
    /// counts only when it proves paired: anyone can make names collide with it, so a foreign link under it is
    /// none of this owner's business.
    static func pair(of link: ContainerLink, host: [String: ObservedLink], inside: [String: ObservedLink]) -> PairState
    {
        func peer(of end: ObservedLink) -> ObservedLink? {
            guard end.kind == "veth", end.peerName == nil, let peerIndex = end.peerIndex else { return nil }
            return inside.values.first { $0.kind == "veth" && $0.index == peerIndex && $0.peerIndex == end.index }
        }
        if let legacy = host[link.unkeyedHostInterface], host[link.hostInterface] == nil,
            let inner = peer(of: legacy), inner.name == link.ifname
        {
            return .paired(legacy, inner)
        }
        guard let end = host[link.hostInterface] else { return .absent }
        guard end.kind == "veth" else {
            return .foreign("link \(end.name) exists but is \(end.kind ?? "a plain device"), not a veth")
        }
        guard let inner = peer(of: end) else {
            return .foreign("\(end.name) does not lead into \(link.namespace); it belongs to another container")
        }
        guard inner.name == link.ifname else {
            return .foreign("\(end.name) leads to \(inner.name) in \(link.namespace), not to \(link.ifname)")
        }
        return .paired(end, inner)
    }

    /// The links inside a namespace, by name; throws when the namespace cannot be entered.
    private func observeInside(_ namespace: PinnedNamespace) async throws -> [String: ObservedLink] {
        HostSnapshot(links: try await observeLinks(namespace.enterPrefix + Self.listLinks)).links
    }

    /// Deletes a link this call created after a later step failed; a failure to delete is logged, the first
    /// error is what the caller reports.
    private func removeQuietly(_ name: String, network: String, why: String) async {
        do {
            try await apply(
                PlannedStep(
                    .containerLink,
                    "\(why): undoing \(name)",
                    ["ip", "link", "del", name],
                    removes: .link(name)
                ),
                network: network
            )
        } catch {
            logger.error(
                "cannot remove a veth this attach created",
                metadata: ["link": "\(name)", "error": "\(error)"]
            )
        }
    }

    /// The steps of a fresh attach into the namespace file `path` (the pinned descriptor's).
    static func containerCreation(_ attachment: ContainerAttachment, in path: String, mtu: Int) -> [PlannedStep] {
        let name = attachment.hostInterface
        let ifname = attachment.ifname
        let inside = PinnedNamespace.enterPrefix(path)
        let cidr = "\(attachment.address)/\(attachment.prefix)"
        return [
            PlannedStep(
                .containerLink,
                "no veth pair \(name)/\(ifname) for \(attachment.owner)",
                [
                    "ip", "link", "add", name, "mtu", "\(mtu)", "type", "veth", "peer", "name", ifname, "address",
                    attachment.link.containerMAC, "mtu", "\(mtu)", "netns", path,
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

    /// What differs in an existing pair, as steps entering the namespace file `path` (the pinned descriptor's).
    static func containerFixes(
        _ attachment: ContainerAttachment,
        in path: String,
        mtu: Int,
        host: ObservedLink,
        inside peer: ObservedLink,
        routes: [ObservedRoute]
    ) -> [PlannedStep] {
        let name = host.name
        let ifname = attachment.ifname
        let inside = PinnedNamespace.enterPrefix(path)
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
