import NetleaseCore

/// Every request a client can send, typed. `Request(line:)` parses, `line` renders; both directions are tested to
/// round-trip.
public enum Request: Sendable, Equatable {
    case ping
    case auth(secret: String)
    case quit
    case networkCreate(NetworkSpec)
    case networkList
    case networkShow(name: String)
    case networkDelete(name: String)
    /// `lastEpoch`: the highest epoch this host's agent was given before (`last-epoch`), so its new one is higher even
    /// when the coordinator's store was restored from an older backup.
    case join(host: String, underlay: IPv4Address, networks: [String], lastEpoch: Int64? = nil)
    case heartbeat(host: String, epoch: Int64)
    case hostList
    case hostRemove(host: String)
    case acquire(AcquireRequest)
    case release(ReleaseRequest)
    case reserve(network: String, address: IPv4Address, note: String)
    case unreserve(network: String, address: IPv4Address)
    case reportConflict(network: String, address: IPv4Address, mac: String, claim: HostClaim)
    case leaseList(Ledger.LeaseFilter)
    case reconcile(ReconcileRequest)
    case watch
    case backup
    case stats
    /// Stores the salted hash of a new credential of `host` (replacing any earlier one). Admin only.
    case hostCredentialSet(host: String, hash: String)
    case hostCredentialRevoke(host: String)
    case hostCredentialList

    /// Verbs as they appear on the wire.
    public enum Verb: String, CaseIterable, Sendable {
        case ping = "PING"
        case auth = "AUTH"
        case quit = "QUIT"
        case networkCreate = "NETWORK-CREATE"
        case networkList = "NETWORK-LIST"
        case networkShow = "NETWORK-SHOW"
        case networkDelete = "NETWORK-DELETE"
        case join = "JOIN"
        case heartbeat = "HEARTBEAT"
        case hostList = "HOST-LIST"
        case hostRemove = "HOST-REMOVE"
        case acquire = "ACQUIRE"
        case release = "RELEASE"
        case reserve = "RESERVE"
        case unreserve = "UNRESERVE"
        case reportConflict = "REPORT-CONFLICT"
        case leaseList = "LEASE-LIST"
        case reconcile = "RECONCILE"
        case watch = "WATCH"
        case backup = "BACKUP"
        case stats = "STATS"
        case hostCredentialSet = "HOST-CREDENTIAL-SET"
        case hostCredentialRevoke = "HOST-CREDENTIAL-REVOKE"
        case hostCredentialList = "HOST-CREDENTIAL-LIST"
    }

    public var verb: Verb {
        switch self {
        case .ping: .ping
        case .auth: .auth
        case .quit: .quit
        case .networkCreate: .networkCreate
        case .networkList: .networkList
        case .networkShow: .networkShow
        case .networkDelete: .networkDelete
        case .join: .join
        case .heartbeat: .heartbeat
        case .hostList: .hostList
        case .hostRemove: .hostRemove
        case .acquire: .acquire
        case .release: .release
        case .reserve: .reserve
        case .unreserve: .unreserve
        case .reportConflict: .reportConflict
        case .leaseList: .leaseList
        case .reconcile: .reconcile
        case .watch: .watch
        case .backup: .backup
        case .stats: .stats
        case .hostCredentialSet: .hostCredentialSet
        case .hostCredentialRevoke: .hostCredentialRevoke
        case .hostCredentialList: .hostCredentialList
        }
    }

    /// Whether the request changes state (needs an authenticated connection with write rights).
    public var changesState: Bool {
        switch self {
        case .ping, .auth, .quit, .networkList, .networkShow, .hostList, .leaseList, .stats, .watch, .backup: false
        default: true
        }
    }

    /// Whether read-only credentials are refused: every change, and the full copy of the store.
    public var needsAdmin: Bool { changesState || self == .backup }

    /// Whether the request may be sent before `AUTH`.
    public var allowedBeforeAuth: Bool {
        switch self {
        case .ping, .auth, .quit: true
        default: false
        }
    }
}

public struct AcquireRequest: Sendable, Equatable {
    public var network: String
    public var owner: String
    public var claim: HostClaim?
    public var address: IPv4Address?
    public var ifname: String
    /// Take `address` over from this owner's active lease on the claiming host instead of allocating (an agent
    /// handing out an address it leased ahead of demand). Needs `address` and a claim with an epoch.
    public var from: String?

    public init(
        network: String,
        owner: String,
        claim: HostClaim? = nil,
        address: IPv4Address? = nil,
        ifname: String = "",
        from: String? = nil
    ) {
        self.network = network
        self.owner = owner
        self.claim = claim
        self.address = address
        self.ifname = ifname
        self.from = from
    }
}

/// An agent states a lease it actually uses.
public struct ReconcileRequest: Sendable, Equatable {
    public var network: String
    public var owner: String
    public var address: IPv4Address
    public var ifname: String
    public var claim: HostClaim

    public init(network: String, owner: String, address: IPv4Address, ifname: String = "", claim: HostClaim) {
        self.network = network
        self.owner = owner
        self.address = address
        self.ifname = ifname
        self.claim = claim
    }
}

public struct ReleaseRequest: Sendable, Equatable {
    public var network: String
    public var owner: String?
    public var address: IPv4Address?
    public var claim: HostClaim?

    public init(network: String, owner: String? = nil, address: IPv4Address? = nil, claim: HostClaim? = nil) {
        self.network = network
        self.owner = owner
        self.address = address
        self.claim = claim
    }
}

extension Request {
    /// Parses one request line (terminator already removed).
    public init(line text: Substring) throws {
        try self.init(LineFormat.parse(text))
    }

    public init(_ line: Line) throws {
        guard let verb = Verb(rawValue: line.verb) else {
            throw NetleaseError.badRequest("unknown verb '\(line.verb.prefix(40))'")
        }
        let f = line.fields
        func only(_ keys: String...) throws { try f.only(Set(keys), verb: verb.rawValue) }
        switch verb {
        case .ping:
            try only()
            self = .ping
        case .quit:
            try only()
            self = .quit
        case .auth:
            try only("secret")
            self = .auth(secret: try f.require("secret"))
        case .networkCreate:
            try only("name", "subnet", "tunnel", "vni", "bridge", "mtu", "lease-ttl", "cooldown", "exclude")
            let spec = try WireCodec.networkSpec(from: f, requireAll: false)
            try Names.checkName(spec.name, field: "name", kind: "network")
            if !spec.bridge.isEmpty { try Names.checkInterface(spec.bridge, field: "bridge") }
            self = .networkCreate(spec)
        case .networkList:
            try only()
            self = .networkList
        case .networkShow:
            try only("name")
            self = .networkShow(name: try f.requireName("name", kind: "network"))
        case .networkDelete:
            try only("name")
            self = .networkDelete(name: try f.requireName("name", kind: "network"))
        case .join:
            try only("host", "underlay", "networks", "last-epoch")
            self = .join(
                host: try f.requireName("host", kind: "host"),
                underlay: try f.requireAddress("underlay"),
                networks: try f.names("networks", kind: "network"),
                lastEpoch: try f.int("last-epoch")
            )
        case .heartbeat:
            try only("host", "epoch")
            self = .heartbeat(host: try f.requireName("host", kind: "host"), epoch: try f.requireInt("epoch"))
        case .hostList:
            try only()
            self = .hostList
        case .hostRemove:
            try only("host")
            self = .hostRemove(host: try f.requireName("host", kind: "host"))
        case .acquire:
            try only("network", "owner", "host", "epoch", "address", "ifname", "from")
            let request = AcquireRequest(
                network: try f.requireName("network", kind: "network"),
                owner: try f.requireOwner(),
                claim: try Self.claim(f),
                address: try f.address("address"),
                ifname: try f.interfaceName("ifname"),
                from: try f.owner("from")
            )
            if request.from != nil, request.address == nil || request.claim?.epoch == nil {
                throw NetleaseError.badRequest("ACQUIRE with field 'from' needs fields 'address', 'host' and 'epoch'")
            }
            self = .acquire(request)
        case .release:
            try only("network", "owner", "address", "host", "epoch")
            let request = ReleaseRequest(
                network: try f.requireName("network", kind: "network"),
                owner: try f.owner(),
                address: try f.address("address"),
                claim: try Self.claim(f)
            )
            guard request.owner != nil || request.address != nil else {
                throw NetleaseError.badRequest("RELEASE needs field 'owner' or 'address'")
            }
            self = .release(request)
        case .reserve:
            try only("network", "address", "note")
            self = .reserve(
                network: try f.requireName("network", kind: "network"),
                address: try f.requireAddress("address"),
                note: try f.text("note", maxBytes: Names.maxNoteBytes) ?? ""
            )
        case .unreserve:
            try only("network", "address")
            self = .unreserve(
                network: try f.requireName("network", kind: "network"),
                address: try f.requireAddress("address")
            )
        case .reportConflict:
            try only("network", "address", "mac", "host", "epoch")
            guard let claim = try Self.claim(f), claim.epoch != nil else {
                throw NetleaseError.badRequest("REPORT-CONFLICT needs fields 'host' and 'epoch'")
            }
            let mac = try f.requireNonEmpty("mac")
            try Names.checkText(mac, field: "mac", maxBytes: Names.maxMACBytes, allowEmpty: false)
            self = .reportConflict(
                network: try f.requireName("network", kind: "network"),
                address: try f.requireAddress("address"),
                mac: mac,
                claim: claim
            )
        case .leaseList:
            try only("network", "host", "state", "owner")
            var state: LeaseState?
            if let text = f["state"] {
                guard let parsed = LeaseState(rawValue: text) else {
                    throw NetleaseError.badRequest(
                        "field 'state' must be one of \(LeaseState.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                state = parsed
            }
            self = .leaseList(
                Ledger.LeaseFilter(
                    network: try f.name("network", kind: "network"),
                    host: try f.name("host", kind: "host", allowEmpty: true),
                    state: state,
                    owner: try f.text("owner", maxBytes: Names.maxOwnerBytes)
                )
            )
        case .reconcile:
            try only("network", "owner", "address", "ifname", "host", "epoch")
            guard let claim = try Self.claim(f), claim.epoch != nil else {
                throw NetleaseError.badRequest("RECONCILE needs fields 'host' and 'epoch'")
            }
            self = .reconcile(
                ReconcileRequest(
                    network: try f.requireName("network", kind: "network"),
                    owner: try f.requireOwner(),
                    address: try f.requireAddress("address"),
                    ifname: try f.interfaceName("ifname"),
                    claim: claim
                )
            )
        case .watch:
            try only()
            self = .watch
        case .backup:
            try only()
            self = .backup
        case .stats:
            try only()
            self = .stats
        case .hostCredentialSet:
            try only("host", "hash")
            let hash = try f.requireNonEmpty("hash")
            guard Self.isCredentialHash(hash) else {
                throw NetleaseError.badRequest(
                    "field 'hash' must be sha256:<salt, hex>:<SHA-256 of salt and secret, 64 hex digits>"
                )
            }
            self = .hostCredentialSet(host: try f.requireName("host", kind: "host"), hash: hash)
        case .hostCredentialRevoke:
            try only("host")
            self = .hostCredentialRevoke(host: try f.requireName("host", kind: "host"))
        case .hostCredentialList:
            try only()
            self = .hostCredentialList
        }
    }

    /// A host claim whose host name follows the name rules.
    private static func claim(_ f: Fields) throws -> HostClaim? {
        guard let claim = try WireCodec.claim(from: f) else { return nil }
        try Names.checkName(claim.host, field: "host", kind: "host")
        return claim
    }

    /// A stored credential hash as the stores keep it: `sha256:<salt: 2-128 lowercase hex>:<64 lowercase hex>`.
    static func isCredentialHash(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let hex = { (part: Substring) in
            part.utf8.count % 2 == 0
                && part.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }
        return parts.count == 3 && parts[0] == "sha256" && (2...128).contains(parts[1].utf8.count) && hex(parts[1])
            && parts[2].utf8.count == 64 && hex(parts[2])
    }

    /// The request as a line, without terminator.
    public var line: Line {
        var f = Fields()
        switch self {
        case .ping, .quit, .networkList, .hostList, .stats, .watch, .backup, .hostCredentialList:
            break
        case .hostCredentialSet(let host, let hash):
            f.append("host", host)
            f.append("hash", hash)
        case .hostCredentialRevoke(let host):
            f.append("host", host)
        case .reconcile(let r):
            f.append("network", r.network)
            f.append("owner", r.owner)
            f.append("address", r.address.description)
            if !r.ifname.isEmpty { f.append("ifname", r.ifname) }
            WireCodec.append(claim: r.claim, to: &f)
        case .auth(let secret):
            f.append("secret", secret)
        case .networkCreate(let spec):
            f = WireCodec.fields(createRequest: spec)
        case .networkShow(let name), .networkDelete(let name):
            f.append("name", name)
        case .join(let host, let underlay, let networks, let lastEpoch):
            f.append("host", host)
            f.append("underlay", underlay.description)
            if !networks.isEmpty { f.append("networks", networks.joined(separator: ",")) }
            if let lastEpoch { f.append("last-epoch", String(lastEpoch)) }
        case .heartbeat(let host, let epoch):
            f.append("host", host)
            f.append("epoch", String(epoch))
        case .hostRemove(let host):
            f.append("host", host)
        case .acquire(let r):
            f.append("network", r.network)
            f.append("owner", r.owner)
            WireCodec.append(claim: r.claim, to: &f)
            if let address = r.address { f.append("address", address.description) }
            if !r.ifname.isEmpty { f.append("ifname", r.ifname) }
            if let from = r.from { f.append("from", from) }
        case .release(let r):
            f.append("network", r.network)
            if let owner = r.owner { f.append("owner", owner) }
            if let address = r.address { f.append("address", address.description) }
            WireCodec.append(claim: r.claim, to: &f)
        case .reserve(let network, let address, let note):
            f.append("network", network)
            f.append("address", address.description)
            if !note.isEmpty { f.append("note", note) }
        case .unreserve(let network, let address):
            f.append("network", network)
            f.append("address", address.description)
        case .reportConflict(let network, let address, let mac, let claim):
            f.append("network", network)
            f.append("address", address.description)
            f.append("mac", mac)
            WireCodec.append(claim: claim, to: &f)
        case .leaseList(let filter):
            if let v = filter.network { f.append("network", v) }
            if let v = filter.host { f.append("host", v) }
            if let v = filter.state { f.append("state", v.rawValue) }
            if let v = filter.owner { f.append("owner", v) }
        }
        return Line(verb.rawValue, f)
    }

    public var rendered: String { LineFormat.render(line) }
}
