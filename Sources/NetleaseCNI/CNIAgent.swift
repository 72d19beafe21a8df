import NetleaseClient
import NetleaseCore
import NetleaseWire

/// What the plugin asks of the host's agent (its local API). A reply `ERR` is thrown as `NetleaseError`; an agent
/// that cannot be reached at all as `CNIAgentUnreachable`, because DEL and STATUS treat the two differently.
public protocol CNIAgent: Sendable {
    func acquire(network: String, owner: String, ifname: String, address: IPv4Address?) async throws -> CNIHandout
    func release(network: String, owner: String) async throws
    /// This host's leases in `network`.
    func leases(network: String) async throws -> [Lease]
    func network(_ name: String) async throws -> CNINetworkFacts
}

/// The agent's answer to ACQUIRE: the lease and this host's gateway.
public struct CNIHandout: Sendable, Equatable {
    public var address: IPv4Address
    public var prefix: Int
    public var gateway: IPv4Address?

    public init(address: IPv4Address, prefix: Int, gateway: IPv4Address?) {
        self.address = address
        self.prefix = prefix
        self.gateway = gateway
    }
}

/// The agent's answer to NETWORK: what this host serves of a network.
public struct CNINetworkFacts: Sendable, Equatable {
    public var network: String
    public var subnet: IPv4Subnet
    public var bridge: String
    public var mtu: Int
    public var gateway: IPv4Address
    public var free: UInt64
    /// The agent's state directory, whose `leases.json` says what it handed out (read by DEL while the agent is
    /// down); nil from an agent that does not say.
    public var stateDirectory: String?

    public init(
        network: String,
        subnet: IPv4Subnet,
        bridge: String,
        mtu: Int,
        gateway: IPv4Address,
        free: UInt64,
        stateDirectory: String? = nil
    ) {
        self.network = network
        self.subnet = subnet
        self.bridge = bridge
        self.mtu = mtu
        self.gateway = gateway
        self.free = free
        self.stateDirectory = stateDirectory
    }

    init(fields f: Fields) throws {
        guard let subnet = IPv4Subnet(try f.require("subnet")), let gateway = IPv4Address(try f.require("gateway")),
            let mtu = Int(try f.require("mtu")), let free = UInt64(try f.require("free"))
        else { throw NetleaseError(.internalError, "the agent's NETWORK reply is malformed") }
        self.init(
            network: try f.require("network"),
            subnet: subnet,
            bridge: try f.require("bridge"),
            mtu: mtu,
            gateway: gateway,
            free: free,
            stateDirectory: f["state-dir"]
        )
    }
}

/// No agent answers at the socket (no file, refused, no greeting).
public struct CNIAgentUnreachable: Error, Sendable, CustomStringConvertible {
    public var socket: String
    public var reason: String
    public var description: String { "netlease agent unavailable at \(socket)" }

    public init(socket: String, reason: String) {
        self.socket = socket
        self.reason = reason
    }
}

/// The agent at a unix socket, one connection per call (the plugin runs one command and exits).
public struct SocketCNIAgent: CNIAgent {
    public let socket: String

    public init(socket: String) { self.socket = socket }

    public func acquire(
        network: String,
        owner: String,
        ifname: String,
        address: IPv4Address?
    ) async throws
        -> CNIHandout
    {
        let reply = try await call(.acquire(network: network, owner: owner, ifname: ifname, address: address))
        let lease = try WireCodec.lease(from: reply.fields)
        return CNIHandout(
            address: lease.address,
            prefix: lease.prefix,
            gateway: reply.fields["gateway"].flatMap { IPv4Address($0) }
        )
    }

    public func release(network: String, owner: String) async throws {
        try await call(.release(network: network, owner: owner))
    }

    public func leases(network: String) async throws -> [Lease] {
        try await call(.leaseList(network: network)).records.map(WireCodec.lease)
    }

    public func network(_ name: String) async throws -> CNINetworkFacts {
        try CNINetworkFacts(fields: try await call(.network(name: name)).fields)
    }

    @discardableResult
    private func call(_ request: LocalRequest) async throws -> ReplyData {
        let answer: Result<ReplyData, NetleaseError>
        do {
            answer = try await NetleaseConnection.connect(socketPath: socket) { connection in
                do { return .success(try await connection.send(request)) } catch let error as NetleaseError {
                    return .failure(error)
                }
            }
        } catch {
            throw CNIAgentUnreachable(socket: socket, reason: "\(error)")
        }
        return try answer.get()
    }
}
