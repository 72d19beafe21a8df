import Foundation

/// What the contract says of NETWORK-CREATE/SHOW/DELETE, JOIN, HEARTBEAT and HOST-REMOVE.
extension ProtocolModel {
    // MARK: networks

    func networkCreate(_ f: [String: String], _ e: inout Expectation) {
        let name = name(f, "name", &e)
        var subnet: MSubnet?
        if let text = f["subnet"] {
            if let s = MSubnet(text) {
                if !(8...30).contains(s.prefix) || s.isOutsideUnicast { e.bad() } else { subnet = s }
            } else {
                e.bad("subnet")
            }
        }
        let tunnel = f["tunnel"] ?? "vxlan"
        if !["vxlan", "gre", "ovs-gre"].contains(tunnel) { e.bad("tunnel") }
        let vni = number(f, "vni", default: 0, valid: { (0...16_777_215).contains($0) }, &e)
        var bridge: String?
        if let value = f["bridge"] {
            if IdentifierRules.isInterface(value) { bridge = value } else { e.bad("bridge") }
        }
        let mtu = number(f, "mtu", default: 0, valid: { $0 == 0 || (576...9000).contains($0) }, &e)
        let ttl = number(f, "lease-ttl", default: 120, valid: { (3...31_536_000).contains($0) }, &e)
        let cooldown = number(f, "cooldown", default: 60, valid: { (0...31_536_000).contains($0) }, &e)
        var excluded = Set<UInt32>()
        var excludeOK = true
        if let text = f["exclude"] {
            for item in text.split(separator: ",") {
                guard let range = IdentifierRules.range(String(item)) else {
                    e.bad("exclude")
                    excludeOK = false
                    continue
                }
                guard let subnet else { continue }
                if subnet.contains(range.lowerBound) && subnet.contains(range.upperBound) {
                    excluded.formUnion(range)
                } else {
                    e.bad()
                    excludeOK = false
                }
            }
        }
        if let subnet, excludeOK, subnet.hosts.allSatisfy({ excluded.contains($0) }) { e.bad() }
        if let name, networks[name] != nil { e.refuse("conflict") }
        if let subnet, networks.values.contains(where: { $0.subnet.overlaps(subnet) }) { e.refuse("conflict") }
        if vni != 0, networks.values.contains(where: { $0.vni == vni }) { e.refuse("conflict") }
        guard let name, let subnet else { return }
        let finalBridge = bridge ?? String(("nl-" + name).prefix(15))
        if networks.values.contains(where: { $0.bridge == finalBridge }) { e.refuse("conflict") }
        e.accept = { [self] reply in
            let network = MNetwork(
                name: name,
                subnet: subnet,
                tunnel: tunnel,
                vni: vni != 0 ? vni : (networks.values.map(\.vni).max() ?? 41) + 1,
                bridge: finalBridge,
                mtu: mtu,
                ttl: ttl,
                cooldown: cooldown,
                excluded: excluded,
                created: now
            )
            try Self.same(
                "NETWORK-CREATE reply",
                Self.networkText(observed: reply.head, counts: false),
                networkText(network, counts: false)
            )
            networks[name] = network
            records[name] = [:]
        }
    }

    func networkShow(_ f: [String: String], _ e: inout Expectation) {
        guard let network = network(f, &e, key: "name") else { return }
        e.accept = { [self] reply in
            try Self.same(
                "NETWORK-SHOW reply",
                Self.networkText(observed: reply.head, counts: true),
                networkText(network, counts: true)
            )
        }
    }

    func networkDelete(_ f: [String: String], _ e: inout Expectation) {
        guard let network = network(f, &e, key: "name") else { return }
        let book = records[network.name] ?? [:]
        // Refused while any active lease other than bridge addresses, or any cooldown (also one a reservation
        // interrupted that has not ended) remains.
        if book.values.contains(where: { $0.state == "active" && !$0.isBridge }) { e.refuse("conflict") }
        if book.values.contains(where: { ["cooldown", "reserved"].contains($0.state) && $0.until > now }) {
            e.refuse("conflict")
        }
        // And while any host, up or lost, still serves it (its bridge keeps the gateway address).
        if hosts.values.contains(where: { $0.networks.contains(network.name) }) { e.refuse("conflict") }
        e.accept = { [self] reply in
            try Self.same("NETWORK-DELETE reply", reply.head["deleted"], network.name)
            networks[network.name] = nil
            records[network.name] = nil
        }
    }

    // MARK: hosts

    func join(_ f: [String: String], _ e: inout Expectation) {
        let host = name(f, "host", &e)
        let underlay = address(f, "underlay", &e)
        var listed: [String] = []
        if let text = f["networks"] {
            for item in text.split(separator: ",").map(String.init) {
                if !IdentifierRules.isName(item) {
                    e.bad("networks")
                    continue
                }
                // A network named twice counts once, at its first place (PROTOCOL.md, JOIN).
                if listed.contains(item) { continue }
                listed.append(item)
                if networks[item] == nil { e.refuse("unknown-network") }
            }
        }
        guard let host, let underlay else { return }
        if hosts.values.contains(where: { $0.name != host && $0.underlay == underlay }) {
            e.refuse("conflict")
        }
        let explicit = listed.isEmpty ? nil : listed
        let bridgeOwner = "bridge:" + host
        for network in explicit ?? Array(networks.keys) where networks[network] != nil {
            guard activeLease(owner: bridgeOwner, network: network) == nil && freeCount(network) == 0 else { continue }
            // Its own cooling bridge address, if any, is given back (PROTOCOL.md JOIN), so only a host without one
            // finds the pool exhausted.
            if coolingBridges(of: host, in: network).isEmpty { e.refuse("pool-exhausted") }
        }
        e.accept = { [self] reply in try acceptJoin(reply, host: host, underlay: underlay, explicit: explicit) }
    }

    func acceptJoin(_ reply: WireReply, host: String, underlay: UInt32, explicit: [String]?) throws {
        try Self.same("JOIN host", reply.head["host"], host)
        guard let epoch = reply.head["epoch"].flatMap(IdentifierRules.number) else {
            throw ModelFailure("JOIN reply without an epoch: \(reply.head)")
        }
        guard epoch > lastEpoch else {
            throw ModelFailure("JOIN gave epoch \(epoch), not above every epoch issued before (\(lastEpoch))")
        }
        try checkGeneration(reply.head["generation"], "JOIN")
        let order = explicit ?? reply.records.map { $0["network"] ?? "" }
        if explicit == nil {
            guard Set(order) == Set(networks.keys), order.count == networks.count else {
                throw ModelFailure(
                    "JOIN without networks gave \(order), expected every network \(networks.keys.sorted())"
                )
            }
        }
        guard reply.records.count == order.count else {
            throw ModelFailure("JOIN gave \(reply.records.count) bridge records for \(order.count) networks")
        }
        let bridgeOwner = "bridge:" + host
        let backFromLost = hosts[host]?.up == false
        lastEpoch = epoch
        epochs[host, default: []].append(epoch)
        if let old = hosts[host] {
            // A rejoin that no longer lists a network moves the host's bridge address there to cooldown.
            for network in old.networks where !order.contains(network) {
                if let (address, _) = activeLease(owner: bridgeOwner, network: network) {
                    toCooldown(network: network, address: address)
                }
            }
        }
        hosts[host] = MHost(
            name: host,
            underlay: underlay,
            epoch: epoch,
            up: true,
            networks: order,
            joined: now,
            heartbeat: now
        )
        for (observed, network) in zip(reply.records, order) {
            try Self.same("JOIN record network", observed["network"], network)
            let net = networks[network]!
            if let (address, record) = activeLease(owner: bridgeOwner, network: network) {
                try Self.same(
                    "JOIN keeps the bridge address",
                    Self.leaseText(observed: observed),
                    leaseText(network, address, record, listed: false)
                )
                continue
            }
            guard let address = Self.leaseAddress(observed["address"], prefix: net.subnet.prefix) else {
                throw ModelFailure("JOIN bridge record with a bad address: \(observed)")
            }
            let cooling = coolingBridges(of: host, in: network)
            if backFromLost && !cooling.isEmpty && !cooling.contains(address) {
                throw ModelFailure(
                    "JOIN gave \(host) a new bridge address \(IPText.text(address)) in \(network), not its own cooling "
                        + "one (\(cooling.map(IPText.text).joined(separator: ", ")))"
                )
            }
            var record = MRecord(
                state: "active",
                host: host,
                owner: bridgeOwner,
                ifname: net.bridge,
                isStatic: false,
                created: now,
                renewed: now
            )
            if let existing = records[network]![address] {
                guard existing.state == "cooldown", existing.owner == bridgeOwner else {
                    throw ModelFailure(
                        "JOIN gave \(IPText.text(address)) in \(network) as bridge address of \(host), but it is "
                            + "\(existing.state) (owner '\(existing.owner)')"
                    )
                }
                if observed["created"] == String(existing.created) { record.created = existing.created }
            } else {
                try checkHandedOut(address, in: net, what: "JOIN for the bridge of \(host)")
            }
            records[network]![address] = record
            try Self.same(
                "JOIN bridge record",
                Self.leaseText(observed: observed),
                leaseText(network, address, record, listed: false)
            )
        }
    }

    func heartbeat(_ f: [String: String], _ e: inout Expectation) {
        let host = name(f, "host", &e)
        var epoch: Int64?
        if let text = f["epoch"] {
            if let value = IdentifierRules.number(text) { epoch = value } else { e.bad("epoch") }
        }
        guard let host, let epoch else { return }
        guard let record = hosts[host] else {
            e.refuse("not-found")
            return
        }
        if !record.up || record.epoch != epoch { e.refuse("stale-epoch") }
        e.accept = { [self] reply in
            try Self.same("HEARTBEAT epoch", reply.head["epoch"], String(record.epoch))
            try checkGeneration(reply.head["generation"], "HEARTBEAT")
            hosts[host]!.heartbeat = now
        }
    }

    func hostRemove(_ f: [String: String], _ e: inout Expectation) {
        guard let host = name(f, "host", &e) else { return }
        guard hosts[host] != nil else {
            e.refuse("not-found")
            return
        }
        e.accept = { [self] reply in
            var released = 0
            for (network, book) in records {
                for (address, record) in book where record.isHostBound(to: host) {
                    toCooldown(network: network, address: address)
                    released += 1
                }
            }
            hosts[host] = nil
            try Self.same("HOST-REMOVE released", reply.head["released"], String(released))
        }
    }
}
