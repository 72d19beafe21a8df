import Foundation

/// What the contract says of ACQUIRE, RELEASE, RESERVE, UNRESERVE, REPORT-CONFLICT, RECONCILE and LEASE-LIST.
extension ProtocolModel {
    // MARK: leases

    func acquire(_ f: [String: String], _ e: inout Expectation) {
        let owner = owner(f, &e, forAcquire: true)
        let claimed = claim(f, &e)
        let claimHost = claimed.host
        let wanted = address(f, "address", &e)
        let ifname = ifname(f, &e)
        guard let net = network(f, &e) else { return }
        serves(claimed, net, &e)
        if let wanted, !net.subnet.isHost(wanted) { e.bad() }
        guard let owner else { return }
        if let (address, existing) = activeLease(owner: owner, network: net.name) {
            // Idempotent: the same lease, unless the request names another address or another host.
            if let wanted, wanted != address { e.refuse("conflict") }
            if let claimHost, existing.host != claimHost { e.refuse("conflict") }
            e.accept = { [self] reply in
                try Self.same(
                    "ACQUIRE repeated",
                    Self.leaseText(observed: reply.head),
                    leaseText(net.name, address, existing, listed: false)
                )
            }
            return
        }
        if let wanted, net.subnet.isHost(wanted) {
            if net.excluded.contains(wanted) || records[net.name]![wanted] != nil { e.refuse("conflict") }
        } else if wanted == nil, freeCount(net.name) == 0 {
            e.refuse("pool-exhausted")
        }
        let hostBound = claimHost.flatMap { hosts[$0] }?.up ?? false
        e.accept = { [self] reply in
            guard let address = Self.leaseAddress(reply.head["address"], prefix: net.subnet.prefix) else {
                throw ModelFailure("ACQUIRE reply without a proper address: \(reply.head)")
            }
            if let wanted, wanted != address {
                throw ModelFailure("ACQUIRE address=\(IPText.text(wanted)) got \(IPText.text(address))")
            }
            try checkHandedOut(address, in: net, what: "ACQUIRE for '\(owner)'", chosen: wanted == nil)
            let record = MRecord(
                state: "active",
                host: claimHost ?? "",
                owner: owner,
                ifname: ifname,
                isStatic: !hostBound,
                created: now,
                renewed: now
            )
            records[net.name]![address] = record
            try Self.same(
                "ACQUIRE reply",
                Self.leaseText(observed: reply.head),
                leaseText(net.name, address, record, listed: false)
            )
        }
    }

    /// An address the coordinator chose must be free: leasable and without any record (§4 invariant "never
    /// handed out": reserved, quarantined, cooling, held, bridge, excluded, network and broadcast addresses).
    ///
    /// `chosen`: the coordinator picked the address. Allocation order (§5 "Lease lifetime"): addresses never handed
    /// out since the coordinator started come first, in ascending order. The contract and the design differ on
    /// addresses that only had a reservation or a quarantine meanwhile, so the model checks what both readings
    /// imply: while some address has had no record at all since the start, the pick is not above the lowest such
    /// address and is not one the coordinator itself picked before.
    func checkHandedOut(_ address: UInt32, in net: MNetwork, what: String, chosen: Bool = true) throws {
        guard net.isLeasable(address) else {
            throw ModelFailure("\(what) handed out \(IPText.text(address)), which \(net.name) never hands out")
        }
        if let record = records[net.name]![address] {
            throw ModelFailure(
                "\(what) handed out \(IPText.text(address)) in \(net.name), which is \(record.state) "
                    + "(owner '\(record.owner)', host '\(record.host)')"
            )
        }
        guard chosen else { return }
        let touched = touched[net.name] ?? []
        if let lowest = net.subnet.hosts.first(where: {
            net.isLeasable($0) && records[net.name]![$0] == nil && !touched.contains($0)
        }), address > lowest || allocated[net.name, default: []].contains(address) {
            throw ModelFailure(
                "\(what) handed out \(IPText.text(address)) in \(net.name) while \(IPText.text(lowest)) "
                    + "was never handed out since the coordinator started (allocation order)"
            )
        }
        allocated[net.name, default: []].insert(address)
    }

    /// Records the addresses that have a record now as touched; called after every step that changed state.
    func noteTouched() {
        for (network, book) in records { touched[network, default: []].formUnion(book.keys) }
        for network in touched.keys where records[network] == nil { touched[network] = nil }
        for network in allocated.keys where records[network] == nil { allocated[network] = nil }
    }

    func release(_ f: [String: String], _ e: inout Expectation) {
        let owner = owner(f, &e, forAcquire: false)
        let wanted = address(f, "address", &e)
        if f["owner"] == nil && f["address"] == nil { e.bad() }
        let (claimHost, claimEpoch) = claim(f, &e)
        guard let net = network(f, &e) else { return }
        var target: (address: UInt32, record: MRecord)?
        if f["owner"] != nil {
            guard let owner else { return }
            if let (address, record) = activeLease(owner: owner, network: net.name) {
                if let wanted, wanted != address { e.refuse("conflict") }
                target = (address, record)
            } else if wanted != nil {
                // Nothing matches (released=0) — or the owner's lease "must be that address" (conflict).
                e.refuse("conflict", soft: true)
            }
        } else if let wanted {
            if !net.subnet.isHost(wanted) { e.refuse("bad-request", soft: true) }
            if let record = records[net.name]![wanted] {
                if record.state == "reserved" { e.refuse("conflict") }
                if ["active", "conflict"].contains(record.state) { target = (wanted, record) }
            }
        }
        if let target {
            // A host's bridge address is its containers' gateway: not released (PROTOCOL.md RELEASE).
            if target.record.state == "active" && target.record.isBridge { e.refuse("conflict") }
            if let claimHost, target.record.host != claimHost { e.refuse("conflict") }
            // A quarantine is lifted by an admin, not by an agent's claim.
            if target.record.state == "conflict" && claimEpoch != nil { e.refuse("conflict") }
        }
        e.accept = { [self] reply in
            guard let target else {
                try Self.same("RELEASE of nothing", reply.head["released"], "0")
                return
            }
            try Self.same("RELEASE released", reply.head["released"], "1")
            let cooling = toCooldown(network: net.name, address: target.address)
            try Self.same(
                "RELEASE reply",
                Self.leaseText(observed: reply.head),
                leaseText(net.name, target.address, cooling, listed: false)
            )
        }
    }

    func reserve(_ f: [String: String], _ e: inout Expectation) {
        let wanted = address(f, "address", &e)
        let note = f["note"] ?? ""
        if !IdentifierRules.isText(note, maxBytes: 256, allowEmpty: true) { e.bad("note") }
        guard let net = network(f, &e), let wanted else { return }
        guard net.isLeasable(wanted) else {
            e.bad()
            return
        }
        let old = records[net.name]![wanted]
        if let old, ["active", "conflict"].contains(old.state) { e.refuse("conflict") }
        e.accept = { [self] reply in
            var record = MRecord(state: "reserved", note: note, created: now, renewed: now)
            if let old {
                if old.state == "reserved" { record.created = old.created }
                // A cooldown the reservation interrupts is kept in `until`.
                record.until = old.until > now ? old.until : 0
            }
            records[net.name]![wanted] = record
            try Self.same(
                "RESERVE reply",
                Self.leaseText(observed: reply.head),
                leaseText(net.name, wanted, record, listed: false)
            )
        }
    }

    func unreserve(_ f: [String: String], _ e: inout Expectation) {
        let wanted = address(f, "address", &e)
        guard let net = network(f, &e), let wanted else { return }
        guard let record = records[net.name]![wanted], record.state == "reserved" else {
            e.refuse("not-found")
            if !net.subnet.isHost(wanted) { e.bad() }
            return
        }
        e.accept = { [self] reply in
            try Self.same("UNRESERVE reply", reply.head["address"], IPText.text(wanted))
            if record.until > now {
                // Back in the cooldown it interrupted, as if it had never been reserved.
                records[net.name]![wanted] = MRecord(
                    state: "cooldown",
                    isStatic: record.isStatic,
                    created: record.created,
                    renewed: record.until - net.cooldown * 1000,
                    until: record.until
                )
            } else {
                records[net.name]![wanted] = nil
            }
        }
    }

    func reportConflict(_ f: [String: String], _ e: inout Expectation) {
        let wanted = address(f, "address", &e)
        if let mac = f["mac"], !IdentifierRules.isText(mac, maxBytes: 64, allowEmpty: false) { e.bad("mac") }
        let claimed = claim(f, &e)
        let claimHost = claimed.host
        guard let net = network(f, &e), let wanted else { return }
        serves(claimed, net, &e)
        guard net.isLeasable(wanted) else {
            e.bad()
            return
        }
        guard let claimHost, let mac = f["mac"] else { return }
        let old = records[net.name]![wanted]
        if let old, old.state == "reserved" {
            e.accept = { [self] reply in
                try Self.same(
                    "REPORT-CONFLICT on a reservation",
                    Self.leaseText(observed: reply.head),
                    leaseText(net.name, wanted, old, listed: false)
                )
            }
            return
        }
        if let old, old.state == "active" {
            // Another host's address, or any host's bridge address (the reporter's own included): refused.
            if old.host != claimHost || old.isBridge { e.refuse("conflict") }
        }
        // Cooling after another host's holder (or none): the cooldown protects it already; not quarantined.
        if let old, old.state == "cooldown", old.host != claimHost { e.refuse("conflict") }
        e.accept = { [self] reply in
            let record = MRecord(
                state: "conflict",
                host: claimHost,
                owner: old?.state == "active" ? old!.owner : "",
                mac: mac,
                created: now,
                renewed: now
            )
            records[net.name]![wanted] = record
            try Self.same(
                "REPORT-CONFLICT reply",
                Self.leaseText(observed: reply.head),
                leaseText(net.name, wanted, record, listed: false)
            )
        }
    }

    func reconcile(_ f: [String: String], _ e: inout Expectation) {
        let owner = owner(f, &e, forAcquire: true)
        let ifname = ifname(f, &e)
        let wanted = address(f, "address", &e)
        let claimed = claim(f, &e)
        let claimHost = claimed.host
        guard let net = network(f, &e), let wanted else { return }
        serves(claimed, net, &e)
        guard net.isLeasable(wanted) else {
            e.bad()
            return
        }
        guard let owner, let claimHost else { return }
        e.accept = { [self] reply in
            let status: String
            let shown: (UInt32, MRecord)
            if let (address, current) = activeLease(owner: owner, network: net.name), address != wanted {
                (status, shown) = ("moved", (address, current))
            } else if let record = records[net.name]![wanted], record.state != "cooldown" {
                let held = record.state == "active" && record.owner == owner && record.host == claimHost
                (status, shown) = (held ? "held" : "taken", (wanted, record))
            } else if let record = records[net.name]![wanted], record.host != claimHost {
                // An address cooling after another host's holder is not adopted: that holder (a lost, partitioned
                // host) may still use it (PROTOCOL.md, RECONCILE).
                (status, shown) = ("taken", (wanted, record))
            } else {
                let record = MRecord(
                    state: "active",
                    host: claimHost,
                    owner: owner,
                    ifname: ifname,
                    isStatic: false,
                    created: now,
                    renewed: now
                )
                records[net.name]![wanted] = record
                (status, shown) = ("adopted", (wanted, record))
            }
            try Self.same("RECONCILE status", reply.head["status"], status)
            try Self.same(
                "RECONCILE reply",
                Self.leaseText(observed: reply.head),
                leaseText(net.name, shown.0, shown.1, listed: false)
            )
        }
    }

    func leaseList(_ f: [String: String], _ e: inout Expectation) {
        var network: String?
        if f["network"] != nil { network = self.network(f, &e)?.name }
        let host = f["host"]
        if let host, !host.isEmpty, !IdentifierRules.isName(host) { e.bad("host") }
        let owner = f["owner"]
        if let owner, !IdentifierRules.isText(owner, maxBytes: 256, allowEmpty: true) { e.bad("owner") }
        let state = f["state"]
        if let state, !Self.states.contains(state) { e.bad("state") }
        e.accept = { [self] reply in
            try Self.sameList(
                "LEASE-LIST",
                reply.records.map(Self.leaseText(observed:)),
                listing(network: network, host: host, owner: owner, state: state)
            )
        }
    }
}
