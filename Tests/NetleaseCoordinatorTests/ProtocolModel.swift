import Foundation

// A small reference model of the coordinator as docs/PROTOCOL.md specifies it: networks, hosts with epochs, and one
// record per address that is not free. It is written from the contract, not from Sources/NetleaseCore: identifiers
// are compared as bytes (their canonical wire spelling), free-text validity comes from a table of the values the
// generator uses, and every rule below quotes the document's behaviour, not the ledger's code.
//
// For each request the model lists every refusal the contract allows (error code, and the field an identifier
// refusal must name) and, when the request may succeed, a closure that checks the reply and applies it. Where the
// contract leaves a choice to the coordinator (which free address, which epoch number), the closure takes the
// coordinator's choice from the reply and checks it is allowed.
//
// Scope. Predicted exactly, field by field (timestamps included, the clock being the model's): the replies of
// NETWORK-CREATE/SHOW/LIST/DELETE, JOIN (but which new bridge address), HEARTBEAT, HOST-LIST, HOST-REMOVE, ACQUIRE
// (but which address), RELEASE, RESERVE, UNRESERVE, REPORT-CONFLICT, RECONCILE (status and record), LEASE-LIST
// with any filters, STATS' record counts, PING; and every record after every step. Checked as allowed, not
// predicted: the address ACQUIRE and JOIN pick (leasable, without any record, allocation order as far as contract
// and design agree), the epoch JOIN gives (above every epoch issued before), the store generation (never goes
// back). Where the contract allows several refusals the model accepts any of them; an identifier refusal must
// name its field. Not modelled: AUTH failures, QUIT, WATCH, BACKUP, the other STATS counters, time-outs.

// MARK: - the model

final class ProtocolModel {
    var now: Int64
    var networks: [String: MNetwork] = [:]
    var records: [String: [UInt32: MRecord]] = [:]
    var hosts: [String: MHost] = [:]
    /// The highest epoch ever issued; every JOIN must get one above it.
    var lastEpoch: Int64 = 0
    /// Every epoch each host was given, oldest first.
    var epochs: [String: [Int64]] = [:]
    var generation: Int64 = -1
    /// Addresses the coordinator picked itself (ACQUIRE without address, bridge addresses) since it started.
    var allocated: [String: Set<UInt32>] = [:]
    /// Every address that has had a record since the coordinator started (at a restart: the ones with a record).
    var touched: [String: Set<UInt32>] = [:]

    init(now: Int64) { self.now = now }

    static let defaultTTL: Int64 = 120

    static let verbs: [String: (allowed: Set<String>, required: [String])] = [
        "PING": ([], []),
        "NETWORK-CREATE": (
            ["name", "subnet", "tunnel", "vni", "bridge", "mtu", "lease-ttl", "cooldown", "exclude"],
            ["name", "subnet"]
        ),
        "NETWORK-LIST": ([], []),
        "NETWORK-SHOW": (["name"], ["name"]),
        "NETWORK-DELETE": (["name"], ["name"]),
        "JOIN": (["host", "underlay", "networks"], ["host", "underlay"]),
        "HEARTBEAT": (["host", "epoch"], ["host", "epoch"]),
        "HOST-LIST": ([], []),
        "HOST-REMOVE": (["host"], ["host"]),
        "ACQUIRE": (["network", "owner", "host", "epoch", "address", "ifname"], ["network", "owner"]),
        "RELEASE": (["network", "owner", "address", "host", "epoch"], ["network"]),
        "RESERVE": (["network", "address", "note"], ["network", "address"]),
        "UNRESERVE": (["network", "address"], ["network", "address"]),
        "REPORT-CONFLICT": (
            ["network", "address", "mac", "host", "epoch"],
            ["network", "address", "mac", "host", "epoch"]
        ),
        "LEASE-LIST": (["network", "host", "state", "owner"], []),
        "RECONCILE": (
            ["network", "owner", "address", "ifname", "host", "epoch"],
            ["network", "owner", "address", "host", "epoch"]
        ),
        "STATS": ([], []),
    ]
    static let readerVerbs: Set = ["PING", "NETWORK-LIST", "NETWORK-SHOW", "HOST-LIST", "LEASE-LIST", "STATS"]
    static let states = ["active", "reserved", "conflict", "cooldown"]

    // MARK: queries the generator and the runner use

    func currentEpoch(of host: String) -> Int64? { hosts[host]?.epoch }
    func pastEpochs(of host: String) -> [Int64] { epochs[host] ?? [] }
    func subnet(of network: String) -> MSubnet? { networks[network]?.subnet }
    func addresses(in network: String, state: String? = nil) -> [UInt32] {
        (records[network] ?? [:]).filter { state == nil || $0.value.state == state }.keys.sorted()
    }

    func freeCount(_ network: String) -> Int {
        guard let net = networks[network] else { return 0 }
        return net.usable - (records[network] ?? [:]).count
    }

    func activeLease(owner: String, network: String) -> (UInt32, MRecord)? {
        (records[network] ?? [:]).first { $0.value.state == "active" && $0.value.owner == owner }
            .map { ($0.key, $0.value) }
    }

    /// The addresses of `network` cooling down under `host`'s bridge owner: what a JOIN hands back to it.
    func coolingBridges(of host: String, in network: String) -> [UInt32] {
        (records[network] ?? [:]).filter { $0.value.state == "cooldown" && $0.value.owner == "bridge:" + host }.keys
            .sorted()
    }

    func ttl(of host: MHost) -> Int64 {
        host.networks.compactMap { networks[$0]?.ttl }.max() ?? Self.defaultTTL
    }

    // MARK: time, reclaim, restart

    /// The clock moved; then one deterministic reclaim pass (§5 "Lease lifetime").
    func advance(milliseconds: Int64) {
        now += milliseconds
        reclaim()
    }

    /// Hosts silent for more than their TTL are lost and their host-bound active leases go to cooldown; ended
    /// cooldowns are removed.
    func reclaim() {
        var lost: [String] = []
        for (name, host) in hosts where host.up && now - host.heartbeat > ttl(of: host) * 1000 {
            hosts[name]!.up = false
            lost.append(name)
        }
        for name in lost {
            for (network, book) in records {
                for (address, record) in book where record.isHostBound(to: name) {
                    toCooldown(network: network, address: address)
                }
            }
        }
        for (network, book) in records {
            for (address, record) in book where record.state == "cooldown" && record.until <= now {
                records[network]![address] = nil
            }
        }
    }

    /// A restarted coordinator: downtime is never held against hosts that were up.
    func restarted() {
        for (name, host) in hosts where host.up { hosts[name]!.heartbeat = max(host.heartbeat, now) }
        touched = [:]
        allocated = [:]
        noteTouched()
    }

    @discardableResult
    func toCooldown(network: String, address: UInt32) -> MRecord {
        var record = records[network]![address]!
        let cooldown = networks[network]!.cooldown * 1000
        record.state = "cooldown"
        record.renewed = now
        record.until = now + cooldown
        records[network]![address] = cooldown == 0 ? nil : record
        return record
    }

    // MARK: expectations

    func expect(_ request: ModelRequest, role: ModelConnection.Role) -> Expectation {
        var e = Expectation()
        guard let spec = Self.verbs[request.verb] else {
            e.bad()
            return e
        }
        var f: [String: String] = [:]
        var given = Set<String>()
        for (key, value) in request.fields {
            guard given.insert(key).inserted else {
                e.bad(key)
                continue
            }
            guard spec.allowed.contains(key) else {
                e.bad(key)
                continue
            }
            guard let bytes = WireText.decode(value[...]), WireText.isValidUTF8(bytes) else {
                e.bad(key)
                continue
            }
            f[key] = WireText.encode(bytes)
        }
        for key in spec.required where !given.contains(key) { e.bad() }

        switch request.verb {
        case "PING": e.accept = { reply in try Self.same("pong", reply.head["pong"], "1") }
        case "NETWORK-CREATE": networkCreate(f, &e)
        case "NETWORK-LIST": e.accept = { [self] reply in try compareNetworks(reply) }
        case "NETWORK-SHOW": networkShow(f, &e)
        case "NETWORK-DELETE": networkDelete(f, &e)
        case "JOIN": join(f, &e)
        case "HEARTBEAT": heartbeat(f, &e)
        case "HOST-LIST": e.accept = { [self] reply in try compareHosts(reply) }
        case "HOST-REMOVE": hostRemove(f, &e)
        case "ACQUIRE": acquire(f, &e)
        case "RELEASE": release(f, &e)
        case "RESERVE": reserve(f, &e)
        case "UNRESERVE": unreserve(f, &e)
        case "REPORT-CONFLICT": reportConflict(f, &e)
        case "LEASE-LIST": leaseList(f, &e)
        case "RECONCILE": reconcile(f, &e)
        case "STATS": e.accept = { [self] reply in try compareStats(reply) }
        default: preconditionFailure("verb \(request.verb) has no model")
        }

        switch role {
        case .admin: return e
        case .reader where Self.readerVerbs.contains(request.verb): return e
        case .anonymous where request.verb == "PING": return e
        case .reader, .anonymous:
            // A syntactically invalid line is answered with bad-request before the access check (§1): the
            // contract does not say which identifier problems count as syntax, so either answer is allowed.
            var refused = Expectation()
            refused.refuse(role == .reader ? "forbidden" : "auth-required")
            refused.refusals += e.refusals.filter { $0.code == "bad-request" && !$0.soft }
            return refused
        }
    }

    // MARK: field helpers

    /// A name field: the canonical value when present and valid; a refusal naming the field when invalid.
    func name(_ f: [String: String], _ key: String, _ e: inout Expectation) -> String? {
        guard let value = f[key] else { return nil }
        guard IdentifierRules.isName(value) else {
            e.bad(key)
            return nil
        }
        return value
    }

    func address(_ f: [String: String], _ key: String, _ e: inout Expectation) -> UInt32? {
        guard let text = f[key] else { return nil }
        guard let value = IPText.parse(text) else {
            e.bad(key)
            return nil
        }
        return value
    }

    func owner(_ f: [String: String], _ e: inout Expectation, forAcquire: Bool) -> String? {
        guard let value = f["owner"] else { return nil }
        guard IdentifierRules.isText(value, maxBytes: 256, allowEmpty: false) else {
            e.bad("owner")
            return nil
        }
        if forAcquire && value.hasPrefix("bridge:") {
            e.bad()
            return nil
        }
        return value
    }

    func ifname(_ f: [String: String], _ e: inout Expectation) -> String {
        guard let value = f["ifname"] else { return "" }
        if !value.isEmpty && !IdentifierRules.isInterface(value) { e.bad("ifname") }
        return value
    }

    /// The host claim (§5 "Host claims and epochs"): the claimed host's name when it is a valid name.
    func claim(_ f: [String: String], _ e: inout Expectation) -> (host: String?, epoch: Int64?) {
        let host = name(f, "host", &e)
        var epoch: Int64?
        if let text = f["epoch"] {
            if let value = IdentifierRules.number(text) { epoch = value } else { e.bad("epoch") }
            if f["host"] == nil { e.bad("epoch") }
        }
        if let host, let epoch {
            if let record = hosts[host] {
                if !record.up || record.epoch != epoch { e.refuse("stale-epoch") }
            } else {
                e.refuse("not-found")
            }
        }
        return (host, epoch)
    }

    /// A claim with an epoch acts only in a network its host joined (§5 "Host claims and epochs"); checked once the
    /// claim itself holds.
    func serves(_ claim: (host: String?, epoch: Int64?), _ net: MNetwork, _ e: inout Expectation) {
        guard let host = claim.host, let epoch = claim.epoch, let record = hosts[host], record.up,
            record.epoch == epoch
        else { return }
        if !record.networks.contains(net.name) { e.refuse("forbidden") }
    }

    func network(_ f: [String: String], _ e: inout Expectation, key: String = "network") -> MNetwork? {
        guard let name = name(f, key, &e) else { return nil }
        guard let network = networks[name] else {
            e.refuse("unknown-network")
            return nil
        }
        return network
    }

    func number(
        _ f: [String: String],
        _ key: String,
        default value: Int64,
        valid: (Int64) -> Bool,
        _ e: inout Expectation
    ) -> Int64 {
        guard let text = f[key] else { return value }
        guard let number = IdentifierRules.number(text) else {
            e.bad(key)
            return value
        }
        if !valid(number) { e.bad() }
        return number
    }
}
