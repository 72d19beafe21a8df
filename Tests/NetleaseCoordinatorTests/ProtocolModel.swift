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

/// A disagreement between the coordinator and the model, with what was expected.
struct ModelFailure: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

// MARK: - values

enum IPText {
    /// A dotted quad: four decimal octets 0–255 without leading zeros.
    static func parse(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                part.count == 1 || part.first != "0", let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    static func text(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
}

struct MSubnet: Equatable {
    let base: UInt32
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let base = IPText.parse(String(parts[0])),
            parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), (1...2).contains(parts[1].count),
            let prefix = Int(parts[1]), (0...32).contains(prefix)
        else { return nil }
        self.init(base: base, prefix: prefix)
        guard base & ~mask == 0 else { return nil }
    }

    init(base: UInt32, prefix: Int) {
        self.base = base
        self.prefix = prefix
    }

    var mask: UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }
    var broadcast: UInt32 { base | ~mask }
    var text: String { "\(IPText.text(base))/\(prefix)" }
    func contains(_ a: UInt32) -> Bool { a & mask == base }
    func isHost(_ a: UInt32) -> Bool { contains(a) && a != base && a != broadcast }
    func overlaps(_ o: MSubnet) -> Bool { base <= o.broadcast && o.base <= broadcast }
    var hosts: ClosedRange<UInt32> { (base + 1)...(broadcast - 1) }

    /// Not unicast space (§5 NETWORK-CREATE): 0/8, loopback, link-local, multicast, reserved.
    var isOutsideUnicast: Bool {
        let blocks = [
            MSubnet(base: 0, prefix: 8), MSubnet(base: 127 << 24, prefix: 8),
            MSubnet(base: 169 << 24 | 254 << 16, prefix: 16), MSubnet(base: 224 << 24, prefix: 4),
            MSubnet(base: 240 << 24, prefix: 4),
        ]
        return blocks.contains { overlaps($0) }
    }
}

/// The identifier rules of §2 "Identifiers", on canonical wire spellings.
enum IdentifierRules {
    static func bytes(_ canonical: String) -> [UInt8] { WireText.decode(canonical[...]) ?? Array(canonical.utf8) }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
    }

    private static func grammar(_ canonical: String, maxBytes: Int) -> Bool {
        let b = bytes(canonical)
        guard let first = b.first, b.count <= maxBytes, isAlnum(first) else { return false }
        return b.allSatisfy { isAlnum($0) || [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ".")].contains($0) }
    }

    /// Network and host names: 1–63 bytes of ASCII letters, digits, `-`, `_`, `.`, first a letter or digit.
    static func isName(_ canonical: String) -> Bool { grammar(canonical, maxBytes: 63) }

    /// Interface names: the same grammar in 1–15 bytes.
    static func isInterface(_ canonical: String) -> Bool { grammar(canonical, maxBytes: 15) }

    /// Free text: printable, assigned, NFC. Printable ASCII is decided here; any other value must be one the
    /// generator's table has a verdict for (written by hand from the Unicode tables, not computed).
    static func isText(_ canonical: String, maxBytes: Int, allowEmpty: Bool) -> Bool {
        let b = bytes(canonical)
        if b.isEmpty { return allowEmpty }
        if b.count > maxBytes { return false }
        if b.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return false }
        if b.allSatisfy({ $0 < 0x80 }) { return true }
        guard let verdict = ModelPools.freeTextVerdicts[canonical] else {
            preconditionFailure("the model has no verdict for the free text \(canonical)")
        }
        return verdict
    }

    /// `number`: optional `-`, then 1–18 decimal digits.
    static func number(_ text: String) -> Int64? {
        let digits = text.hasPrefix("-") ? text.dropFirst() : text[...]
        guard (1...18).contains(digits.count), digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }

    /// An `exclude` item: `A`, `A-B` (A <= B) or a CIDR; the addresses it covers.
    static func range(_ text: String) -> ClosedRange<UInt32>? {
        if text.contains("/") {
            guard let s = MSubnet(text) else { return nil }
            return s.base...s.broadcast
        }
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(ends.count), let lo = IPText.parse(String(ends[0])),
            let hi = IPText.parse(String(ends[ends.count - 1])), lo <= hi
        else { return nil }
        return lo...hi
    }

    /// Addresses as merged ranges (`A` or `A-B`), for comparing `exclude` however it is spelled.
    static func rangesText(_ addresses: Set<UInt32>) -> String {
        var ranges: [ClosedRange<UInt32>] = []
        for a in addresses.sorted() {
            if let last = ranges.last, a == last.upperBound + 1 {
                ranges[ranges.count - 1] = last.lowerBound...a
            } else {
                ranges.append(a...a)
            }
        }
        return ranges.map { r in
            r.count == 1 ? IPText.text(r.lowerBound) : "\(IPText.text(r.lowerBound))-\(IPText.text(r.upperBound))"
        }.joined(separator: ",")
    }
}

struct MNetwork {
    var name: String
    var subnet: MSubnet
    var tunnel: String
    var vni: Int64
    var bridge: String
    var mtu: Int64
    var ttl: Int64
    var cooldown: Int64
    var excluded: Set<UInt32>
    var created: Int64

    func isLeasable(_ a: UInt32) -> Bool { subnet.isHost(a) && !excluded.contains(a) }
    var usable: Int { subnet.hosts.count - excluded.filter { subnet.isHost($0) }.count }
}

struct MRecord: Equatable {
    var state: String
    var host = ""
    var owner = ""
    var ifname = ""
    var note = ""
    var mac = ""
    var isStatic = true
    var created: Int64
    var renewed: Int64
    var until: Int64 = 0

    var isBridge: Bool { owner.hasPrefix("bridge:") }
    /// An active host-bound lease of `host`: what losing or removing the host moves to cooldown.
    func isHostBound(to host: String) -> Bool { state == "active" && !isStatic && self.host == host }
}

struct MHost {
    var name: String
    var underlay: UInt32
    var epoch: Int64
    var up: Bool
    var networks: [String]
    var joined: Int64
    var heartbeat: Int64
}

/// What the contract allows as the answer to one request.
struct Expectation {
    struct Refusal: Hashable {
        var code: String
        /// The field an identifier refusal must name (`bad-request field '<key>' …`).
        var field: String?
        /// A refusal that does not rule out success: the contract leaves the choice to the coordinator.
        var soft = false
        /// A known difference between the code and docs/PROTOCOL.md, tolerated and counted.
        var deviation: String?
    }

    var refusals: [Refusal] = []
    var accept: ((WireReply) throws -> Void)?

    var mayFail: Bool { !refusals.isEmpty }
    var maySucceed: Bool { accept != nil && refusals.allSatisfy(\.soft) }

    mutating func refuse(_ code: String, field: String? = nil, soft: Bool = false, deviation: String? = nil) {
        // Strict: a known deviation is not tolerated; the model expects what docs/PROTOCOL.md says.
        if deviation != nil && ProtocolModel.strict { return }
        refusals.append(Refusal(code: code, field: field, soft: soft, deviation: deviation))
    }

    mutating func bad(_ field: String? = nil) { refuse("bad-request", field: field) }

    var codes: Set<String> { Set(refusals.map(\.code)) }
}

/// One request as sent: the verb and its fields in order, values as spelled on the wire.
struct ModelRequest {
    var verb: String
    var fields: [(key: String, value: String)]

    var line: String { ([verb] + fields.map { "\($0.key)=\($0.value)" }).joined(separator: " ") }
}

// MARK: - the model

final class ProtocolModel {
    private(set) var now: Int64
    private(set) var networks: [String: MNetwork] = [:]
    private(set) var records: [String: [UInt32: MRecord]] = [:]
    private(set) var hosts: [String: MHost] = [:]
    /// The highest epoch ever issued; every JOIN must get one above it.
    private(set) var lastEpoch: Int64 = 0
    /// Every epoch each host was given, oldest first.
    private(set) var epochs: [String: [Int64]] = [:]
    private var generation: Int64 = -1
    /// Tolerated differences from docs/PROTOCOL.md, by description, with how often each was seen.
    var deviations: [String: Int] = [:]

    init(now: Int64) { self.now = now }

    /// MODEL_STRICT=1: the known deviations from docs/PROTOCOL.md are failures, not tolerated.
    static let strict = ProcessInfo.processInfo.environment["MODEL_STRICT"] == "1"

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
    private func toCooldown(network: String, address: UInt32) -> MRecord {
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
    private func name(_ f: [String: String], _ key: String, _ e: inout Expectation) -> String? {
        guard let value = f[key] else { return nil }
        guard IdentifierRules.isName(value) else {
            e.bad(key)
            return nil
        }
        return value
    }

    private func address(_ f: [String: String], _ key: String, _ e: inout Expectation) -> UInt32? {
        guard let text = f[key] else { return nil }
        guard let value = IPText.parse(text) else {
            e.bad(key)
            return nil
        }
        return value
    }

    private func owner(_ f: [String: String], _ e: inout Expectation, forAcquire: Bool) -> String? {
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

    private func ifname(_ f: [String: String], _ e: inout Expectation) -> String {
        guard let value = f["ifname"] else { return "" }
        if !value.isEmpty && !IdentifierRules.isInterface(value) { e.bad("ifname") }
        return value
    }

    /// The host claim (§5 "Host claims and epochs"): the claimed host's name when it is a valid name.
    private func claim(_ f: [String: String], _ e: inout Expectation) -> (host: String?, epoch: Int64?) {
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

    private func network(_ f: [String: String], _ e: inout Expectation, key: String = "network") -> MNetwork? {
        guard let name = name(f, key, &e) else { return nil }
        guard let network = networks[name] else {
            e.refuse("unknown-network")
            return nil
        }
        return network
    }

    private func number(
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

    // MARK: networks

    private func networkCreate(_ f: [String: String], _ e: inout Expectation) {
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

    private func networkShow(_ f: [String: String], _ e: inout Expectation) {
        guard let network = network(f, &e, key: "name") else { return }
        e.accept = { [self] reply in
            try Self.same(
                "NETWORK-SHOW reply",
                Self.networkText(observed: reply.head, counts: true),
                networkText(network, counts: true)
            )
        }
    }

    private func networkDelete(_ f: [String: String], _ e: inout Expectation) {
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

    private func join(_ f: [String: String], _ e: inout Expectation) {
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
        if hosts.values.contains(where: { $0.name != host && $0.up && $0.underlay == underlay }) {
            e.refuse("conflict")
        }
        let explicit = listed.isEmpty ? nil : listed
        let bridgeOwner = "bridge:" + host
        for network in explicit ?? Array(networks.keys) where networks[network] != nil {
            if activeLease(owner: bridgeOwner, network: network) == nil && freeCount(network) == 0 {
                // The contract promises a new address; the design hands back the host's own cooling one. Either
                // may be what the coordinator does when the pool has nothing else.
                let revivable = (records[network] ?? [:]).values.contains {
                    $0.state == "cooldown" && $0.owner == bridgeOwner
                }
                e.refuse("pool-exhausted", soft: revivable && !Self.strict)
            }
        }
        e.accept = { [self] reply in try acceptJoin(reply, host: host, underlay: underlay, explicit: explicit) }
    }

    private func acceptJoin(_ reply: WireReply, host: String, underlay: UInt32, explicit: [String]?) throws {
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
                let deviation =
                    "JOIN hands a returning host its own cooling bridge address (PROTOCOL.md JOIN says "
                    + "new addresses; DESIGN.md says its own back)"
                if Self.strict {
                    throw ModelFailure("\(deviation): \(IPText.text(address)) in \(network) for \(host)")
                }
                deviations[deviation, default: 0] += 1
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

    private func heartbeat(_ f: [String: String], _ e: inout Expectation) {
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

    private func hostRemove(_ f: [String: String], _ e: inout Expectation) {
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

    // MARK: leases

    private func acquire(_ f: [String: String], _ e: inout Expectation) {
        let owner = owner(f, &e, forAcquire: true)
        let (claimHost, _) = claim(f, &e)
        let wanted = address(f, "address", &e)
        let ifname = ifname(f, &e)
        guard let net = network(f, &e) else { return }
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
    private func checkHandedOut(_ address: UInt32, in net: MNetwork, what: String, chosen: Bool = true) throws {
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

    /// Addresses the coordinator picked itself (ACQUIRE without address, bridge addresses) since it started.
    private var allocated: [String: Set<UInt32>] = [:]

    /// Every address that has had a record since the coordinator started (at a restart: the ones with a record).
    private var touched: [String: Set<UInt32>] = [:]

    /// Records the addresses that have a record now as touched; called after every step that changed state.
    func noteTouched() {
        for (network, book) in records { touched[network, default: []].formUnion(book.keys) }
        for network in touched.keys where records[network] == nil { touched[network] = nil }
        for network in allocated.keys where records[network] == nil { allocated[network] = nil }
    }

    private func release(_ f: [String: String], _ e: inout Expectation) {
        let owner = owner(f, &e, forAcquire: false)
        let wanted = address(f, "address", &e)
        if f["owner"] == nil && f["address"] == nil { e.bad() }
        let (claimHost, _) = claim(f, &e)
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
            if target.record.state == "active" && target.record.isBridge {
                e.refuse(
                    "conflict",
                    soft: true,
                    deviation:
                        "RELEASE of a bridge address is refused (PROTOCOL.md RELEASE: \"Nothing stops releasing a host's "
                        + "bridge address\")"
                )
            }
            if let claimHost, target.record.host != claimHost { e.refuse("conflict") }
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

    private func reserve(_ f: [String: String], _ e: inout Expectation) {
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

    private func unreserve(_ f: [String: String], _ e: inout Expectation) {
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

    private func reportConflict(_ f: [String: String], _ e: inout Expectation) {
        let wanted = address(f, "address", &e)
        if let mac = f["mac"], !IdentifierRules.isText(mac, maxBytes: 64, allowEmpty: false) { e.bad("mac") }
        let (claimHost, _) = claim(f, &e)
        guard let net = network(f, &e), let wanted else { return }
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
            if old.host != claimHost {
                e.refuse("conflict")
            } else if old.isBridge {
                e.refuse(
                    "conflict",
                    soft: true,
                    deviation:
                        "REPORT-CONFLICT refuses the reporting host's own bridge address (PROTOCOL.md: an address "
                        + "active on the reporting host is quarantined)"
                )
            }
        }
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

    private func reconcile(_ f: [String: String], _ e: inout Expectation) {
        let owner = owner(f, &e, forAcquire: true)
        let ifname = ifname(f, &e)
        let wanted = address(f, "address", &e)
        let (claimHost, _) = claim(f, &e)
        guard let net = network(f, &e), let wanted else { return }
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

    private func leaseList(_ f: [String: String], _ e: inout Expectation) {
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

    // MARK: listings

    /// LEASE-LIST: sorted by network name, then address; cooldown records only when asked for by state.
    func listing(network: String? = nil, host: String? = nil, owner: String? = nil, state: String? = nil) -> [String] {
        var lines: [String] = []
        for name in networks.keys.sorted(by: Self.byteOrder) where network == nil || network == name {
            for (address, record) in records[name]!.sorted(by: { $0.key < $1.key }) {
                // Cooldown records only when asked for by state.
                guard record.state == state ?? (record.state == "cooldown" ? "" : record.state) else { continue }
                if let host, record.host != host { continue }
                if let owner, record.owner != owner { continue }
                lines.append(leaseText(name, address, record, listed: true))
            }
        }
        return lines
    }

    static func byteOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    static let leaseKeys = [
        "network", "address", "state", "host", "owner", "ifname", "note", "mac", "static",
        "created", "renewed", "until",
    ]

    /// A LEASE record as the model expects it. In listings a host-bound active lease shows its host's heartbeat.
    func leaseText(_ network: String, _ address: UInt32, _ r: MRecord, listed: Bool) -> String {
        var renewed = r.renewed
        if listed, r.state == "active", !r.isStatic, let host = hosts[r.host] { renewed = max(renewed, host.heartbeat) }
        let prefix = networks[network]!.subnet.prefix
        let values = [
            network, "\(IPText.text(address))/\(prefix)", r.state, r.host, r.owner, r.ifname, r.note, r.mac,
            r.isStatic ? "1" : "0", String(r.created), String(renewed), String(r.until),
        ]
        return zip(Self.leaseKeys, values).map { "\($0)=\($1)" }.joined(separator: " ")
    }

    static func leaseText(observed line: WireLine) -> String {
        leaseKeys.map { "\($0)=\(line[$0] ?? "<missing>")" }.joined(separator: " ")
    }

    static func leaseAddress(_ text: String?, prefix: Int) -> UInt32? {
        guard let parts = text?.split(separator: "/"), parts.count == 2, parts[1] == "\(prefix)" else { return nil }
        return IPText.parse(String(parts[0]))
    }

    static let networkKeys = [
        "name", "subnet", "tunnel", "vni", "bridge", "mtu", "lease-ttl", "cooldown", "exclude",
        "created",
    ]
    static let countKeys = ["usable", "active", "reserved", "conflict", "cooldown-count", "free"]

    func networkText(_ n: MNetwork, counts: Bool) -> String {
        var values = [
            n.name, n.subnet.text, n.tunnel, String(n.vni), n.bridge, String(n.mtu), String(n.ttl),
            String(n.cooldown), IdentifierRules.rangesText(n.excluded), String(n.created),
        ]
        if counts {
            let book = records[n.name] ?? [:]
            let count = { (state: String) in book.values.filter { $0.state == state }.count }
            let (active, reserved, conflict, cooling) = (
                count("active"), count("reserved"), count("conflict"),
                count("cooldown")
            )
            values += [
                n.usable, active, reserved, conflict, cooling,
                max(0, n.usable - active - reserved - conflict - cooling),
            ].map(String.init)
        }
        return zip(Self.networkKeys + (counts ? Self.countKeys : []), values).map { "\($0)=\($1)" }
            .joined(separator: " ")
    }

    static func networkText(observed line: WireLine, counts: Bool) -> String {
        var exclude = "<missing>"
        if let text = line["exclude"] {
            var addresses = Set<UInt32>()
            for item in text.split(separator: ",") {
                guard let range = IdentifierRules.range(String(item)) else {
                    addresses = []
                    exclude = "<unreadable \(text)>"
                    break
                }
                addresses.formUnion(range)
            }
            if !exclude.hasPrefix("<unreadable") { exclude = IdentifierRules.rangesText(addresses) }
        }
        return (networkKeys + (counts ? countKeys : [])).map { key in
            "\(key)=\(key == "exclude" ? exclude : line[key] ?? "<missing>")"
        }.joined(separator: " ")
    }

    static let hostKeys = ["name", "underlay", "epoch", "state", "networks", "joined", "heartbeat"]

    func hostText(_ h: MHost) -> String {
        let values = [
            h.name, IPText.text(h.underlay), String(h.epoch), h.up ? "up" : "lost",
            h.networks.joined(separator: ","), String(h.joined), String(h.heartbeat),
        ]
        return zip(Self.hostKeys, values).map { "\($0)=\($1)" }.joined(separator: " ")
    }

    static func hostText(observed line: WireLine) -> String {
        hostKeys.map { "\($0)=\(line[$0] ?? "<missing>")" }.joined(separator: " ")
    }

    func compareNetworks(_ reply: WireReply) throws {
        try Self.sameList(
            "NETWORK-LIST",
            reply.records.map { Self.networkText(observed: $0, counts: true) },
            networks.keys.sorted(by: Self.byteOrder).map { networkText(networks[$0]!, counts: true) }
        )
    }

    func compareHosts(_ reply: WireReply) throws {
        try Self.sameList(
            "HOST-LIST",
            reply.records.map(Self.hostText(observed:)),
            hosts.keys.sorted(by: Self.byteOrder).map { hostText(hosts[$0]!) }
        )
    }

    func compareStats(_ reply: WireReply) throws {
        let all = records.values.flatMap(\.values)
        let expected: [(String, Int)] =
            [
                ("networks", networks.count), ("hosts-up", hosts.values.filter(\.up).count),
                ("hosts-lost", hosts.values.filter { !$0.up }.count),
            ] + Self.states.map { state in ("leases-\(state)", all.filter { $0.state == state }.count) }
        for (key, value) in expected { try Self.same("STATS \(key)", reply.head[key], String(value)) }
    }

    private func checkGeneration(_ text: String?, _ verb: String) throws {
        guard let generation = text.flatMap(IdentifierRules.number) else {
            throw ModelFailure("\(verb) reply without a store generation")
        }
        guard generation >= self.generation else {
            throw ModelFailure("\(verb): store generation went back from \(self.generation) to \(generation)")
        }
        self.generation = generation
    }

    // MARK: comparing

    static func same(_ what: String, _ observed: String?, _ expected: String) throws {
        guard observed == expected else {
            throw ModelFailure("\(what):\n    expected \(expected)\n    got      \(observed ?? "<missing>")")
        }
    }

    static func sameList(_ what: String, _ observed: [String], _ expected: [String]) throws {
        guard observed != expected else { return }
        let missing = expected.filter { !observed.contains($0) }
        let extra = observed.filter { !expected.contains($0) }
        var text = "\(what) differs from the model (\(observed.count) records, expected \(expected.count))"
        for line in missing.prefix(6) { text += "\n    expected  \(line)" }
        for line in extra.prefix(6) { text += "\n    got       \(line)" }
        if missing.isEmpty && extra.isEmpty { text += "\n    (same records in another order)" }
        throw ModelFailure(text)
    }
}
