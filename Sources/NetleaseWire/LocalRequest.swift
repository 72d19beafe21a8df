import NetleaseCore

/// Requests of an agent's local API (a unix socket on the host). Same line grammar and reply forms as the
/// coordinator protocol; the socket's file permissions are the authentication, so there is no AUTH.
///
/// ```
/// PING
/// ACQUIRE network=N owner=ID [ifname=IF] [address=A]       ; probe-then-lease; the CNI plugin's ADD
/// RELEASE network=N owner=ID                               ; idempotent; the CNI plugin's DEL
/// ATTACH  network=N owner=ID netns=NAME|/PATH [ifname=IF]  ; lease + veth + address + route, in one step
/// DETACH  network=N owner=ID                               ; the reverse; idempotent
/// LEASE-LIST [network=N]                                   ; this host's leases
/// NETWORK network=N                                        ; subnet, bridge, MTU, gateway and free addresses
/// DOCTOR                                                   ; run every check; one CHECK record each
/// QUIT
/// ```
public enum LocalRequest: Sendable, Equatable {
    case ping
    case quit
    /// `address`: that address instead of the next free one.
    case acquire(network: String, owner: String, ifname: String, address: IPv4Address? = nil)
    case release(network: String, owner: String)
    case attach(network: String, owner: String, netns: String, ifname: String)
    case detach(network: String, owner: String)
    case leaseList(network: String?)
    /// What this host serves of a network, ready or not: the CNI plugin's STATUS and `netlease cni-config`.
    case network(name: String)
    case doctor

    public enum Verb: String, CaseIterable, Sendable {
        case ping = "PING"
        case quit = "QUIT"
        case acquire = "ACQUIRE"
        case release = "RELEASE"
        case attach = "ATTACH"
        case detach = "DETACH"
        case leaseList = "LEASE-LIST"
        case network = "NETWORK"
        case doctor = "DOCTOR"
    }

    public init(line text: Substring) throws {
        let line = try LineFormat.parse(text)
        guard let verb = Verb(rawValue: line.verb) else {
            throw NetleaseError.badRequest("unknown verb '\(line.verb.prefix(40))' for the agent's local API")
        }
        let f = line.fields
        func only(_ keys: String...) throws { try f.only(Set(keys), verb: verb.rawValue) }
        func ifname() throws -> String {
            let name = f["ifname"] ?? "eth0"
            guard Names.isValidInterface(name) else {
                throw NetleaseError.badRequest("ifname '\(name)' is not a valid interface name (1-15 bytes)")
            }
            return name
        }
        switch verb {
        case .ping:
            try only()
            self = .ping
        case .quit:
            try only()
            self = .quit
        case .acquire:
            try only("network", "owner", "ifname", "address")
            var address: IPv4Address?
            if let text = f["address"] {
                guard let parsed = IPv4Address(text) else {
                    throw NetleaseError.badRequest("address '\(text.prefix(40))' is not an IPv4 address")
                }
                address = parsed
            }
            self = .acquire(
                network: try f.requireNonEmpty("network"),
                owner: try f.requireNonEmpty("owner"),
                ifname: try ifname(),
                address: address
            )
        case .release:
            try only("network", "owner")
            self = .release(network: try f.requireNonEmpty("network"), owner: try f.requireNonEmpty("owner"))
        case .attach:
            try only("network", "owner", "netns", "ifname")
            self = .attach(
                network: try f.requireNonEmpty("network"),
                owner: try f.requireNonEmpty("owner"),
                netns: try f.requireNonEmpty("netns"),
                ifname: try ifname()
            )
        case .detach:
            try only("network", "owner")
            self = .detach(network: try f.requireNonEmpty("network"), owner: try f.requireNonEmpty("owner"))
        case .leaseList:
            try only("network")
            self = .leaseList(network: f["network"])
        case .network:
            try only("network")
            self = .network(name: try f.requireNonEmpty("network"))
        case .doctor:
            try only()
            self = .doctor
        }
    }

    public var line: Line {
        var f = Fields()
        let verb: Verb
        switch self {
        case .ping: verb = .ping
        case .quit: verb = .quit
        case .acquire(let network, let owner, let ifname, let address):
            verb = .acquire
            f.append("network", network)
            f.append("owner", owner)
            f.append("ifname", ifname)
            if let address { f.append("address", address.description) }
        case .release(let network, let owner):
            verb = .release
            f.append("network", network)
            f.append("owner", owner)
        case .attach(let network, let owner, let netns, let ifname):
            verb = .attach
            f.append("network", network)
            f.append("owner", owner)
            f.append("netns", netns)
            f.append("ifname", ifname)
        case .detach(let network, let owner):
            verb = .detach
            f.append("network", network)
            f.append("owner", owner)
        case .leaseList(let network):
            verb = .leaseList
            if let network { f.append("network", network) }
        case .network(let name):
            verb = .network
            f.append("network", name)
        case .doctor: verb = .doctor
        }
        return Line(verb.rawValue, f)
    }

    public var rendered: String { LineFormat.render(line) }
}

/// One result of `DOCTOR`: `CHECK name=… status=ok|fail detail=…`.
public struct DoctorCheck: Sendable, Equatable {
    public var name: String
    public var ok: Bool
    public var detail: String

    public static let tag = "CHECK"

    public init(name: String, ok: Bool, detail: String) {
        self.name = name
        self.ok = ok
        self.detail = detail
    }

    public var fields: Fields { ["name": name, "status": ok ? "ok" : "fail", "detail": detail] }

    public init(fields: Fields) throws {
        name = try fields.require("name")
        ok = try fields.require("status") == "ok"
        detail = fields["detail"] ?? ""
    }
}
