import Foundation

// Random operation sequences for the protocol model check: small pools of identifiers (hostile spellings
// included), small subnets so pools exhaust, symbolic addresses and epochs resolved against the model when the
// operation runs, so that a shrunk sequence still means something.

/// A value of a request field; addresses and epochs are resolved when the request is sent.
enum ModelValue {
    case text(String)
    /// An address of `network`'s subnet (or 10.9.0.0/28 when there is no such network).
    case address(network: String, AddressChoice)
    case epoch(host: String, EpochChoice)

    enum AddressChoice {
        /// The n-th address (modulo their number) that has a record in the network.
        case record(Int)
        /// The subnet's base address plus n (0 is the network address; the size is past the broadcast address).
        case offset(Int)
        /// The n-th host address of the subnet (modulo their number).
        case host(Int)
        /// The n-th address with a record in that state, else as `record`.
        case recordIn(state: String, Int)
        case fixed(String)
    }

    enum EpochChoice {
        case current
        /// An earlier epoch of the host (n-th modulo their number), or current − 1.
        case past(Int)
        case bogus
        case notANumber
    }
}

struct ModelRequestTemplate {
    var verb: String
    var fields: [(key: String, value: ModelValue)]
}

/// One step of a sequence.
enum ModelOp {
    /// A request on connection `connection` (0–2 admin, 3 reader, 4 without AUTH).
    case request(connection: Int, ModelRequestTemplate)
    /// Requests sent together on one admin connection before any reply is read.
    case pipeline(connection: Int, [ModelRequestTemplate])
    /// The clock moves, then one reclaim pass.
    case advance(seconds: Int)
    /// The coordinator stops and starts again on the same data directory and clock.
    case restart
    /// A malformed line on a fresh admin connection.
    case garbage(Int)
    /// Pipelines sent on several admin connections at once, before any reply is read. Their requests commute
    /// (ACQUIRE and RELEASE, each batch in its own network), so the outcome does not depend on how the coordinator
    /// interleaves them; they share its group commits.
    case concurrent([(connection: Int, requests: [ModelRequestTemplate])])

    var requestCount: Int {
        switch self {
        case .request: 1
        case .pipeline(_, let requests): requests.count
        case .concurrent(let batches): batches.reduce(0) { $0 + $1.requests.count }
        case .advance, .restart, .garbage: 0
        }
    }
}

/// SplitMix64: small, fast, and the same sequence for a seed on every platform.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum ModelPools {
    static let o256a = String(repeating: "o", count: 255) + "a"
    static let o256b = String(repeating: "o", count: 255) + "b"

    /// Network names with weights. `b%6Cue` is another wire spelling of `blue` (§2: encoding other bytes is
    /// allowed); `Blue` is another network (case matters); the two long names share their default bridge name.
    static let networks: [(String, Int)] = [
        ("blue", 30), ("red", 24), ("Blue", 8), ("b%6Cue", 4), ("green", 8),
        ("averyveryverylongname-a", 4), ("averyveryverylongname-b", 4),
        ("bl%C3%BCe", 2), ("-blue", 1), ("blue%00", 1), (String(repeating: "n", count: 64), 1), ("", 1),
    ]

    static let subnets: [String: String] = [
        "blue": "10.9.0.0/28", "red": "10.9.0.16/28", "Blue": "10.9.0.32/29", "green": "10.9.0.40/30",
        "averyveryverylongname-a": "10.9.0.48/28", "averyveryverylongname-b": "10.9.0.64/28",
    ]

    static let otherSubnets: [(String, Int)] = [
        ("10.9.0.0/27", 4), ("10.9.0.80/28", 4), ("10.9.0.16/28", 2), ("10.9.0.1/28", 1), ("10.9.0.0/31", 1),
        ("127.0.0.0/28", 1), ("10.9.0.0/7", 1), ("10.9.0.0", 1), ("224.1.0.0/28", 1), ("10.9.0.96/30", 2),
    ]

    /// Host names; `H1` is another host than `h1` and shares its underlay address.
    static let hosts: [(String, Int)] = [
        ("h1", 30), ("h2", 25), ("h3", 15), ("H1", 6),
        ("h%C3%A9", 2), ("-h", 1), (String(repeating: "h", count: 64), 1), ("h%00", 1),
    ]

    static let underlays: [String: String] = [
        "h1": "192.168.56.11", "h2": "192.168.56.12", "h3": "192.168.56.13", "H1": "192.168.56.11",
    ]

    /// Owners. Aliases: `%77eb-1` is `web-1`, `caf%c3%a9` is `caf%C3%A9` (lower-case hex). Refused: another
    /// normal form of `café` (NFD), KELVIN SIGN, NUL, controls, C1, U+2028, noncharacters, unassigned, over-long,
    /// empty, invalid UTF-8, a bad escape, and (for ACQUIRE and RECONCILE) the `bridge:` prefix.
    static let owners: [(String, Int)] = [
        ("web-1", 40), ("web-2", 30), ("%77eb-1", 6), ("container-a1", 16), ("container-a2", 16), ("caf%C3%A9", 10),
        ("caf%c3%a9", 5), ("K8s", 8), ("%EF%AC%81le", 3), ("%F0%9F%98%80", 3), ("%ED%95%9C", 3), ("%EE%80%80", 2),
        (o256a, 5), (o256b, 5),
        ("cafe%CC%81", 3), ("%E2%84%AA8s", 3), ("a%00b", 2), ("x%01y", 1), ("%C2%85x", 1), ("x%E2%80%A8", 1),
        ("%EF%BF%BE", 1), ("%EF%B7%90", 1), ("%CD%B8", 1), ("%E1%84%92%E1%85%A1%E1%86%AB", 1),
        (String(repeating: "o", count: 257), 1), ("", 1), ("bridge:h1", 3), ("%FF", 1), ("caf%C3", 1), ("a%zz", 1),
    ]

    /// Verdicts of §2 for every free text outside printable ASCII the pools use, keyed by canonical spelling.
    /// Written from the Unicode tables by hand, not computed with the code under test.
    static let freeTextVerdicts: [String: Bool] = [
        "caf%C3%A9": true,  // é precomposed (NFC)
        "%EF%AC%81le": true,  // U+FB01 LATIN SMALL LIGATURE FI: a compatibility character, NFC as it is
        "%F0%9F%98%80": true,  // U+1F600, assigned
        "%ED%95%9C": true,  // U+D55C HANGUL SYLLABLE HAN, precomposed
        "%EE%80%80": true,  // U+E000 private use: assigned (Co), NFC
        "cafe%CC%81": false,  // e + U+0301: NFD
        "%E2%84%AA8s": false,  // U+212A KELVIN SIGN: NFC is K
        "%E2%84%AA": false,
        "%C2%85x": false,  // U+0085, a C1 control
        "x%E2%80%A8": false,  // U+2028 LINE SEPARATOR
        "%EF%BF%BE": false,  // U+FFFE noncharacter
        "%EF%B7%90": false,  // U+FDD0 noncharacter
        "%CD%B8": false,  // U+0378 unassigned
        "%E1%84%92%E1%85%A1%E1%86%AB": false,  // the conjoining jamo of 한: not NFC
    ]

    static let ifnames: [(String?, Int)] = [
        (nil, 60), ("eth0", 20), ("eth1", 8), ("", 3), ("nl-blue", 2),
        ("eth%25d", 2), ("-eth", 1), ("0123456789abcdef", 1), ("e%C3%A9", 1),
    ]

    static let notes: [(String?, Int)] = [
        (nil, 40), ("gateway%20VIP", 20), ("caf%C3%A9", 8), ("", 5), (String(repeating: "n", count: 256), 3),
        ("cafe%CC%81", 4), (String(repeating: "n", count: 257), 2), ("%0A", 2), ("%E2%84%AA", 2),
    ]

    static let macs: [(String?, Int)] = [
        ("aa:bb:cc:dd:ee:ff", 30), ("02:00:00:00:00:01", 20), ("AA:BB:CC:DD:EE:FF", 4),
        (String(repeating: "m", count: 64), 2), ("%E2%84%AA", 2), ("", 2), (String(repeating: "m", count: 65), 2),
    ]

    static let advances: [(Int, Int)] = [
        (1, 10), (3, 6), (4, 8), (5, 8), (6, 8), (9, 5), (10, 8), (11, 8), (19, 4), (20, 6), (21, 6), (59, 3),
        (60, 4), (61, 4), (119, 2), (120, 3), (121, 3), (200, 2),
    ]

    /// Lines no request may be: each is refused with bad-request and changes nothing (the first also closes).
    static let garbage: [String] = [
        "ACQUIRE network=blue owner=" + String(repeating: "a", count: 9000),
        "FROB x=1",
        "ACQUIRE network=blue owner=a\tb",
        "   ",
        "ACQUIRE network=blue Owner=a",
        "ACQUIRE network=blue owner=caf\u{E9}",
        "ACQUIRE network=blue owner=a%zz",
        "RELEASE network=blue",
    ]
}

struct ModelGenerator {
    private var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func sequence(length: Int) -> [ModelOp] {
        var ops: [ModelOp] = [
            .request(connection: 0, networkCreate(name: "blue", plain: true)),
            .request(connection: 0, networkCreate(name: "red", plain: true)),
            .request(
                connection: 0,
                ModelRequestTemplate(
                    verb: "JOIN",
                    fields: [
                        ("host", .text("h1")), ("underlay", .text("192.168.56.11")),
                    ]
                )
            ),
            .request(
                connection: 0,
                ModelRequestTemplate(
                    verb: "JOIN",
                    fields: [
                        ("host", .text("h2")), ("underlay", .text("192.168.56.12")),
                    ]
                )
            ),
        ]
        while ops.count < length { ops.append(op()) }
        return Array(ops.prefix(length))
    }

    // MARK: choices

    private mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }
    private mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

    private mutating func pick<T>(_ weighted: [(T, Int)]) -> T {
        var n = Int.random(in: 0..<weighted.reduce(0) { $0 + $1.1 }, using: &rng)
        for (value, weight) in weighted {
            if n < weight { return value }
            n -= weight
        }
        return weighted[0].0
    }

    /// Whether the request being made may use refused values; otherwise every identifier and number is valid
    /// (the request can still be refused for what the state says), so that sequences build up state.
    private var hostile = false

    private mutating func network() -> String { pick(hostile ? ModelPools.networks : Self.validNetworks) }
    private mutating func host() -> String { pick(hostile ? ModelPools.hosts : Self.validHosts) }
    private mutating func owner() -> String { pick(hostile ? ModelPools.owners : Self.validOwners) }
    private mutating func pickValid<T>(_ pool: [(T?, Int)], _ isValid: (T) -> Bool) -> T? {
        pick(hostile ? pool : pool.filter { $0.0.map(isValid) ?? true })
    }

    private static let validNetworks = ModelPools.networks.filter { IdentifierRules.isName(WireText.canonical($0.0)) }
        .map { name, weight in (name, ["blue": 40, "red": 30, "Blue": 12, "green": 10][name] ?? weight) }
    private static let validHosts = ModelPools.hosts.filter { IdentifierRules.isName(WireText.canonical($0.0)) }
    private static let validOwners = ModelPools.owners.filter { owner, _ in
        guard let bytes = WireText.decode(owner[...]), WireText.isValidUTF8(bytes) else { return false }
        return !owner.hasPrefix("bridge:")
            && IdentifierRules.isText(WireText.encode(bytes), maxBytes: 256, allowEmpty: false)
    }

    private static func validText(max: Int, allowEmpty: Bool) -> (String) -> Bool {
        { text in
            guard let bytes = WireText.decode(text[...]), WireText.isValidUTF8(bytes) else { return false }
            return IdentifierRules.isText(WireText.encode(bytes), maxBytes: max, allowEmpty: allowEmpty)
        }
    }

    private mutating func address(_ network: String, recordPercent: Int, state: String? = nil) -> ModelValue {
        if hostile && chance(10) {
            return .address(network: network, .fixed(pick([("10.8.0.1", 2), ("10.9.3.3", 2), ("10.9.0.300", 1)])))
        }
        if chance(recordPercent) {
            if let state, chance(60) { return .address(network: network, .recordIn(state: state, int(0...40))) }
            return .address(network: network, .record(int(0...40)))
        }
        return .address(network: network, hostile ? .offset(int(0...16)) : .host(int(0...40)))
    }

    /// A host claim's fields: mostly the host's current epoch; sometimes stale, bogus, absent or malformed.
    private mutating func claim(_ fields: inout [(key: String, value: ModelValue)], currentPercent: Int = 70) {
        let host = host()
        let kind = chance(currentPercent) ? 0 : hostile ? int(1...6) : pick([(1, 3), (2, 1)])
        switch kind {
        case 0: fields += [("host", .text(host)), ("epoch", .epoch(host: host, .current))]
        case 1: fields += [("host", .text(host))]
        case 2: fields += [("host", .text(host)), ("epoch", .epoch(host: host, .past(int(0...5))))]
        case 3: fields += [("host", .text(host)), ("epoch", .epoch(host: host, .bogus))]
        case 4: fields += [("epoch", .epoch(host: host, .current))]
        case 5: fields += [("host", .text(host)), ("epoch", .epoch(host: host, .notANumber))]
        default: fields += [("host", .text("")), ("epoch", .epoch(host: host, .current))]
        }
    }

    // MARK: operations

    private mutating func op() -> ModelOp {
        let roll = int(0...999)
        switch roll {
        case 0..<70: return .advance(seconds: pick(ModelPools.advances))
        case 70..<85: return .restart
        case 85..<95: return .garbage(int(0...(ModelPools.garbage.count - 1)))
        case 95..<145:
            return .pipeline(connection: int(0...2), (0..<int(2...6)).map { _ in request(listings: false) })
        case 145..<175:
            let networks = ["blue", "red", "Blue", "green"].shuffled(using: &rng)
            let connections = [0, 1, 2].shuffled(using: &rng)
            return .concurrent(
                (0..<2).map { index in
                    (connections[index], (0..<int(2...5)).map { _ in commuting(in: networks[index]) })
                }
            )
        default:
            let connection = pick([(0, 30), (1, 28), (2, 28), (3, 7), (4, 7)])
            var template = request(listings: true)
            if chance(1) {
                // An unknown field, or a field given twice.
                let extra = chance(50) ? ("colour", .text("red")) : template.fields.first ?? ("x", .text("1"))
                template.fields.append(extra)
            }
            return .request(connection: connection, template)
        }
    }

    private mutating func request(listings: Bool) -> ModelRequestTemplate {
        hostile = chance(25)
        let roll = int(0...(listings ? 999 : 899))
        switch roll {
        case 0..<240: return acquire()
        case 240..<370: return release()
        case 370..<480: return join(host: host())
        case 480..<560: return heartbeat()
        case 560..<620: return reserve()
        case 620..<670: return unreserve()
        case 670..<720: return reportConflict()
        case 720..<770: return reconcile()
        case 770..<840: return networkCreate(name: network())
        case 840..<875: return ModelRequestTemplate(verb: "NETWORK-DELETE", fields: [("name", .text(network()))])
        case 875..<900: return ModelRequestTemplate(verb: "HOST-REMOVE", fields: [("host", .text(host()))])
        case 900..<940: return leaseList()
        case 940..<960: return ModelRequestTemplate(verb: "NETWORK-SHOW", fields: [("name", .text(network()))])
        case 960..<975: return ModelRequestTemplate(verb: "STATS", fields: [])
        case 975..<985: return ModelRequestTemplate(verb: "NETWORK-LIST", fields: [])
        case 985..<995: return ModelRequestTemplate(verb: "HOST-LIST", fields: [])
        default: return ModelRequestTemplate(verb: "PING", fields: [])
        }
    }

    /// `plain`: the pool's subnet and valid TTL and cooldown, nothing else (the networks a sequence starts with).
    mutating func networkCreate(name: String, plain: Bool = false) -> ModelRequestTemplate {
        let otherSubnets =
            hostile
            ? ModelPools.otherSubnets
            : ModelPools.otherSubnets.filter {
                MSubnet($0.0).map { (8...30).contains($0.prefix) && !$0.isOutsideUnicast } ?? false
            }
        let subnetText = ModelPools.subnets[name].flatMap { chance(85) || plain ? $0 : nil } ?? pick(otherSubnets)
        var fields: [(key: String, value: ModelValue)] = [("name", .text(name)), ("subnet", .text(subnetText))]
        if plain {
            fields.append(("lease-ttl", .text(pick([("5", 1), ("20", 1)]))))
            fields.append(("cooldown", .text(pick([("0", 1), ("10", 2)]))))
            return ModelRequestTemplate(verb: "NETWORK-CREATE", fields: fields)
        }
        /// A value from `valid`, or with `hostile` now and then one from `refused`.
        func value(_ valid: [(String, Int)], _ refused: [(String, Int)]) -> String {
            pick(valid + (hostile ? refused : []))
        }
        if chance(15) { fields.append(("tunnel", .text(value([("gre", 3), ("ovs-gre", 3)], [("ipip", 2)])))) }
        if chance(15) {
            fields.append(("vni", .text(value([("0", 2), ("42", 3), ("43", 3)], [("16777216", 2), ("-5", 1)]))))
        }
        if chance(12) {
            fields.append(
                (
                    "bridge",
                    .text(
                        value(
                            [("br0", 4), ("nl-blue", 3)],
                            [("br%25d", 2), ("0123456789abcdef", 2), ("-br", 2)]
                        )
                    )
                )
            )
        }
        if chance(10) { fields.append(("mtu", .text(value([("1400", 4)], [("100", 2), ("9001", 2)])))) }
        if chance(85) {
            fields.append(("lease-ttl", .text(value([("5", 5), ("20", 5), ("120", 2)], [("2", 2), ("x", 1)]))))
        }
        if chance(85) { fields.append(("cooldown", .text(value([("0", 4), ("10", 6), ("60", 2)], [("-1", 2)])))) }
        if chance(20), let subnet = MSubnet(subnetText) {
            let b = subnet.base
            let t = IPText.text
            let last = subnet.broadcast
            let exclude = value(
                [
                    (t(b + 3), 4), ("\(t(b + 4))-\(t(b + 6))", 4), ("\(t(b + 1)),\(t(b + 2))", 2),
                    ("\(t(b))-\(t(b + 2))", 1),
                ] + (subnet.prefix <= 28 ? [("\(IPText.text(b + 8))/30", 2)] : []),
                [
                    (t(last &+ 1), 1), ("\(t(b + 1))-\(t(last - 1))", 1), ("\(t(b + 6))-\(t(b + 4))", 1),
                ]
            )
            fields.append(("exclude", .text(exclude)))
        }
        return ModelRequestTemplate(verb: "NETWORK-CREATE", fields: fields)
    }

    mutating func join(host: String) -> ModelRequestTemplate {
        let underlay =
            chance(85)
            ? ModelPools.underlays[host] ?? "192.168.56.14"
            : pick(
                [("192.168.56.11", 3), ("192.168.56.12", 3), ("192.168.56.14", 3)]
                    + (hostile ? [("192.168.56.256", 1)] : [])
            )
        var fields: [(key: String, value: ModelValue)] = [("host", .text(host)), ("underlay", .text(underlay))]
        if chance(5) {
            fields.append(("networks", .text("")))
        } else if chance(65) {
            var names = (0..<int(1...3)).map { _ in network() }
            if !hostile { names = names.reduce(into: []) { if !$0.contains($1) { $0.append($1) } } }
            fields.append(("networks", .text(names.joined(separator: ","))))
        }
        return ModelRequestTemplate(verb: "JOIN", fields: fields)
    }

    private mutating func heartbeat() -> ModelRequestTemplate {
        let host = host()
        let epoch: ModelValue.EpochChoice =
            hostile
            ? pick([(.current, 40), (.past(int(0...5)), 30), (.bogus, 15), (.notANumber, 15)])
            : pick([(.current, 9), (.past(int(0...5)), 1)])
        return ModelRequestTemplate(
            verb: "HEARTBEAT",
            fields: [
                ("host", .text(host)), ("epoch", .epoch(host: host, epoch)),
            ]
        )
    }

    /// A request of the pipelined kind confined to `network`: ACQUIRE or RELEASE. (Not HEARTBEAT: its reply
    /// carries the store generation, which the model may only compare in the order the coordinator answered.)
    private mutating func commuting(in network: String) -> ModelRequestTemplate {
        hostile = chance(15)
        return chance(55) ? acquire(in: network) : release(in: network)
    }

    private mutating func acquire(in chosen: String? = nil) -> ModelRequestTemplate {
        let network = chosen ?? network()
        var fields: [(key: String, value: ModelValue)] = [("network", .text(network)), ("owner", .text(owner()))]
        if chance(65) { claim(&fields) }
        if chance(25) { fields.append(("address", address(network, recordPercent: 30))) }
        if let ifname = pickValid(ModelPools.ifnames, { $0.isEmpty || IdentifierRules.isInterface($0) }) {
            fields.append(("ifname", .text(ifname)))
        }
        return ModelRequestTemplate(verb: "ACQUIRE", fields: fields)
    }

    private mutating func release(in chosen: String? = nil) -> ModelRequestTemplate {
        let network = chosen ?? network()
        var fields: [(key: String, value: ModelValue)] = [("network", .text(network))]
        switch pick([(0, 50), (1, 30), (2, 15)] + (hostile ? [(3, 5)] : [])) {
        case 0: fields.append(("owner", .text(owner())))
        case 1: fields.append(("address", address(network, recordPercent: 80, state: "conflict")))
        case 2:
            fields += [("owner", .text(owner())), ("address", address(network, recordPercent: 80, state: "active"))]
        default: break
        }
        if chance(40) { claim(&fields) }
        return ModelRequestTemplate(verb: "RELEASE", fields: fields)
    }

    private mutating func reserve() -> ModelRequestTemplate {
        let network = network()
        var fields: [(key: String, value: ModelValue)] = [
            ("network", .text(network)), ("address", address(network, recordPercent: 40, state: "cooldown")),
        ]
        if let note = pickValid(ModelPools.notes, Self.validText(max: 256, allowEmpty: true)) {
            fields.append(("note", .text(note)))
        }
        return ModelRequestTemplate(verb: "RESERVE", fields: fields)
    }

    private mutating func unreserve() -> ModelRequestTemplate {
        let network = network()
        return ModelRequestTemplate(
            verb: "UNRESERVE",
            fields: [
                ("network", .text(network)), ("address", address(network, recordPercent: 85, state: "reserved")),
            ]
        )
    }

    private mutating func reportConflict() -> ModelRequestTemplate {
        let network = network()
        var fields: [(key: String, value: ModelValue)] = [
            ("network", .text(network)), ("address", address(network, recordPercent: 60, state: "active")),
            ("mac", .text(pickValid(ModelPools.macs, Self.validText(max: 64, allowEmpty: false))!)),
        ]
        claim(&fields, currentPercent: 85)
        if hostile && chance(5) { fields.removeAll { $0.key == "mac" } }
        return ModelRequestTemplate(verb: "REPORT-CONFLICT", fields: fields)
    }

    private mutating func reconcile() -> ModelRequestTemplate {
        let network = network()
        var fields: [(key: String, value: ModelValue)] = [
            ("network", .text(network)), ("owner", .text(owner())),
            ("address", address(network, recordPercent: 50, state: "cooldown")),
        ]
        if let ifname = pickValid(ModelPools.ifnames, { $0.isEmpty || IdentifierRules.isInterface($0) }) {
            fields.append(("ifname", .text(ifname)))
        }
        claim(&fields, currentPercent: 85)
        return ModelRequestTemplate(verb: "RECONCILE", fields: fields)
    }

    private mutating func leaseList() -> ModelRequestTemplate {
        var fields: [(key: String, value: ModelValue)] = []
        if chance(50) { fields.append(("network", .text(network()))) }
        if chance(30) { fields.append(("host", .text(chance(20) ? "" : host()))) }
        if chance(30) { fields.append(("owner", .text(chance(10) ? "" : owner()))) }
        if chance(40) {
            fields.append(
                (
                    "state",
                    .text(
                        pick(
                            [("active", 3), ("reserved", 2), ("conflict", 2), ("cooldown", 3)]
                                + (hostile ? [("lost", 1)] : [])
                        )
                    )
                )
            )
        }
        return ModelRequestTemplate(verb: "LEASE-LIST", fields: fields)
    }
}
