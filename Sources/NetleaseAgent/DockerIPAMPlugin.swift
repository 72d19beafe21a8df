import Foundation
import Logging
import NetleaseCore
import NetleaseTransport

/// What Docker's IPAM driver needs of the agent. `Agent` is the real one; tests hand in a fake.
public protocol DockerIPAMBackend: Sendable {
    /// The networks the agent is configured to serve, ready or not (for requests naming another one).
    var servedNetworks: [String] { get }
    /// A served network as built on this host. Throws `unavailable` until the agent is ready (its networks built and
    /// verified, a coordinator session live), `unknownNetwork` for a network it does not serve.
    func dockerNetwork(_ name: String) throws -> DockerNetworkFacts
    /// Leases through the agent's probe-then-lease path; `address` asks for that one address.
    func dockerAcquire(network: String, owner: String, address: IPv4Address?) async throws -> IPv4Address
    /// Releases an owner's lease (idempotent).
    func dockerRelease(network: String, owner: String) async throws
    /// The owner this host handed `address` to, from the agent's own record of its leases.
    func localOwner(network: String, address: IPv4Address) -> String?
    /// Records a release the coordinator cannot take now; the agent finishes it once it can.
    func deferRelease(network: String, owner: String, address: IPv4Address) throws
}

/// One netlease network as Docker sees it on this host.
public struct DockerNetworkFacts: Sendable, Equatable {
    public var subnet: IPv4Subnet
    /// This host's bridge address: the containers' gateway.
    public var gateway: IPv4Address

    public init(subnet: IPv4Subnet, gateway: IPv4Address) {
        self.subnet = subnet
        self.gateway = gateway
    }
}

/// Docker's remote IPAM driver, answered from the agent: one call in (path and JSON body), one reply out. No I/O of
/// its own — the HTTP server feeds it, the backend leases — so every endpoint is tested as a table.
///
/// Design notes:
/// - A Docker pool is a netlease network: `RequestPool` must name it (`--ipam-opt network=NAME`) and give its exact
///   subnet; the pool id `netlease/NAME` carries the name, so no pool state lives here and an agent restart loses
///   nothing. `ReleasePool` changes nothing: the netlease network outlives Docker's view of it.
/// - An empty `Pool` is refused rather than answered with the network's subnet: libnetwork checks a pool it did not
///   ask for against the host's routes and asks again on overlap — and the bridge's own route always overlaps.
/// - The gateway is this host's bridge address, never leased: Docker's bridge driver adopts the agent's bridge.
/// - A container address is leased for owner `docker/<MAC>` (Docker sends the endpoint's MAC because the driver
///   requires it), so a retried request gets the same address. `ReleaseAddress` carries only the address: the agent's
///   own lease record names the owner.
/// - Docker never repeats a failed `ReleaseAddress`, so one that cannot reach the coordinator (agent not ready,
///   session lost) is deferred — recorded by the agent and finished later — and answered as done.
/// - On a restart Docker replays its pools, gateways and live endpoints' addresses (`RequiresRequestReplay`) with no
///   MAC: an address this host already leased to a Docker endpoint is confirmed for that owner without a probe (the
///   container itself would answer it); one it does not know is refused rather than leased blind.
public struct DockerIPAMPlugin: Sendable {
    /// Every pool id is this prefix and the netlease network's name.
    public static let poolPrefix = "netlease/"
    /// Owners of addresses leased to Docker endpoints start with this.
    public static let ownerPrefix = "docker/"
    public static let localAddressSpace = "netlease-local"
    public static let globalAddressSpace = "netlease-global"

    /// The `docker network create` line that puts a Docker network on netlease network `name`: Docker's bridge driver
    /// adopts the agent's bridge (its address is the gateway) and asks this driver for every address. With `mtu`
    /// (the bridge's) containers get that MTU instead of Docker's 1500, which a tunnel would not carry.
    public static func createNetworkCommand(
        network name: String,
        subnet: IPv4Subnet,
        bridge: String,
        mtu: Int? = nil
    ) -> String {
        "docker network create --driver bridge --ipam-driver netlease "
            + "--ipam-opt \(DockerPluginAPI.networkOption)=\(name) --subnet \(subnet) "
            + "-o com.docker.network.bridge.name=\(bridge) "
            + (mtu.map { "-o com.docker.network.driver.mtu=\($0) " } ?? "") + name
    }

    /// An HTTP status and a JSON body.
    public struct Reply: Sendable, Equatable {
        public var status: Int
        public var body: [UInt8]

        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// How long a lease may take (the coordinator, up to `maxProbeAttempts` ARP probes) before Docker is answered
    /// with an error: Docker's plugin client waits without limit, and with it `docker run`.
    public static let defaultAcquireTimeout: Duration = .seconds(20)
    /// How long a release may take before it is deferred.
    public static let defaultReleaseTimeout: Duration = .seconds(5)

    let backend: any DockerIPAMBackend
    let logger: Logger
    let acquireTimeout: Duration
    let releaseTimeout: Duration

    public init(
        backend: any DockerIPAMBackend,
        logger: Logger = Logger(label: "netlease.docker"),
        acquireTimeout: Duration = defaultAcquireTimeout,
        releaseTimeout: Duration = defaultReleaseTimeout
    ) {
        self.backend = backend
        self.logger = logger
        self.acquireTimeout = acquireTimeout
        self.releaseTimeout = releaseTimeout
    }

    /// Answers one plugin call: `method` and `path` of the HTTP request, its body.
    public func handle(method: String, path: String, body: [UInt8]) async -> Reply {
        guard method == "POST" else {
            return failure(405, "Docker plugin calls are POST requests; got \(method) \(path)")
        }
        do {
            switch path {
            case "/Plugin.Activate":
                return success(DockerPluginAPI.ActivateResponse(implements: ["IpamDriver"]))
            case "/IpamDriver.GetCapabilities":
                return success(
                    DockerPluginAPI.CapabilitiesResponse(
                        requiresMACAddress: true,
                        requiresRequestReplay: true
                    )
                )
            case "/IpamDriver.GetDefaultAddressSpaces":
                return success(
                    DockerPluginAPI.AddressSpacesResponse(
                        local: Self.localAddressSpace,
                        global: Self.globalAddressSpace
                    )
                )
            case "/IpamDriver.RequestPool":
                return success(try requestPool(decode(body, as: DockerPluginAPI.RequestPoolRequest.self)))
            case "/IpamDriver.ReleasePool":
                try releasePool(decode(body, as: DockerPluginAPI.ReleasePoolRequest.self))
                return success(DockerPluginAPI.EmptyResponse())
            case "/IpamDriver.RequestAddress":
                return success(try await requestAddress(decode(body, as: DockerPluginAPI.RequestAddressRequest.self)))
            case "/IpamDriver.ReleaseAddress":
                try await releaseAddress(decode(body, as: DockerPluginAPI.ReleaseAddressRequest.self))
                return success(DockerPluginAPI.EmptyResponse())
            case "/IpamDriver.DiscoverNew", "/IpamDriver.DiscoverDelete":
                // Cluster discovery notifications: the coordinator already tells the agent about its peers.
                return success(DockerPluginAPI.EmptyResponse())
            default:
                return failure(404, "netlease implements Docker's IpamDriver only; there is no call \(path)")
            }
        } catch let error as NetleaseError {
            logger.notice("Docker plugin call refused", metadata: ["call": "\(path)", "error": "\(error)"])
            return failure(Self.status(of: error.code), error.message)
        } catch {
            logger.error("Docker plugin call failed", metadata: ["call": "\(path)", "error": "\(error)"])
            return failure(500, "\(error)")
        }
    }

    // MARK: - Pools

    func requestPool(_ request: DockerPluginAPI.RequestPoolRequest) throws -> DockerPluginAPI.RequestPoolResponse {
        if request.v6 == true {
            throw NetleaseError.badRequest(
                "netlease leases IPv4 addresses only; create the Docker network without --ipv6"
            )
        }
        let served = backend.servedNetworks.joined(separator: ", ")
        guard let name = request.options?[DockerPluginAPI.networkOption], !name.isEmpty else {
            throw NetleaseError.badRequest(
                "name the netlease network with --ipam-opt network=NAME (this agent serves: \(served)); "
                    + "'netlease docker-network NAME' prints the whole 'docker network create' line"
            )
        }
        guard backend.servedNetworks.contains(name) else {
            throw NetleaseError(
                .unknownNetwork,
                "this host's netlease agent does not serve network '\(name)' (it serves: \(served)); "
                    + "start the agent with --network \(name), or name a network it serves"
            )
        }
        let facts = try backend.dockerNetwork(name)
        let pool = request.pool ?? ""
        guard !pool.isEmpty else {
            throw NetleaseError.badRequest(
                "give the subnet of netlease network '\(name)': --subnet \(facts.subnet)"
            )
        }
        guard IPv4Subnet(pool) == facts.subnet else {
            throw NetleaseError.badRequest(
                "netlease network '\(name)' is \(facts.subnet), not \(pool): create the Docker network with "
                    + "--subnet \(facts.subnet)"
            )
        }
        guard (request.subPool ?? "").isEmpty else {
            throw NetleaseError.badRequest(
                "--ip-range is not supported: netlease hands out addresses from the whole of \(facts.subnet) "
                    + "across hosts; use 'netlease network create --exclude' to keep addresses out"
            )
        }
        logger.info("Docker network uses netlease network", metadata: ["network": "\(name)", "subnet": "\(pool)"])
        return .init(poolID: Self.poolPrefix + name, pool: facts.subnet.description, data: [:])
    }

    func releasePool(_ request: DockerPluginAPI.ReleasePoolRequest) throws {
        _ = try backend.dockerNetwork(try network(ofPool: request.poolID))
    }

    // MARK: - Addresses

    func requestAddress(
        _ request: DockerPluginAPI.RequestAddressRequest
    ) async throws
        -> DockerPluginAPI.RequestAddressResponse
    {
        let name = try network(ofPool: request.poolID)
        let facts = try backend.dockerNetwork(name)
        let wanted = try address(request.address, in: facts, name: name)
        let options = request.options ?? [:]
        if options[DockerPluginAPI.addressTypeOption] == DockerPluginAPI.gatewayAddressType {
            if let wanted, wanted != facts.gateway {
                throw NetleaseError.badRequest(
                    "the gateway of netlease network '\(name)' on this host is its bridge address \(facts.gateway), "
                        + "not \(wanted); create the Docker network without --gateway"
                )
            }
            return .init(address: "\(facts.gateway)/\(facts.subnet.prefix)", data: [:])
        }
        let owner = try owner(options: options, wanted: wanted, network: name)
        let backend = self.backend
        let leased = try await Self.within(acquireTimeout, "leasing an address") {
            try await backend.dockerAcquire(network: name, owner: owner, address: wanted)
        }
        logger.info(
            "address leased to a Docker endpoint",
            metadata: [
                "network": "\(name)", "owner": "\(owner)", "address": "\(leased)",
            ]
        )
        return .init(address: "\(leased)/\(facts.subnet.prefix)", data: [:])
    }

    func releaseAddress(_ request: DockerPluginAPI.ReleaseAddressRequest) async throws {
        let name = try network(ofPool: request.poolID)
        // Not ready is no reason to refuse here: the release is deferred below.
        var facts: DockerNetworkFacts?
        do {
            facts = try backend.dockerNetwork(name)
        } catch let error as NetleaseError where error.code == .unavailable {
            facts = nil
        }
        let text = request.address ?? ""
        guard let address = IPv4Address(text.split(separator: "/", maxSplits: 1).first.map(String.init) ?? text)
        else {
            throw NetleaseError.badRequest(
                text.isEmpty ? "ReleaseAddress needs an Address" : "'\(text)' is not an IPv4 address"
            )
        }
        if let facts {
            _ = try self.address(text, in: facts, name: name)
            // The gateway is the bridge's, never leased: Docker releases it when the Docker network is removed.
            if address == facts.gateway { return }
        }
        guard let owner = backend.localOwner(network: name, address: address) else {
            // Released before (Docker repeats releases after failures) or never leased here: nothing to do.
            logger.debug("Docker released an address this host does not hold", metadata: ["address": "\(address)"])
            return
        }
        guard owner.hasPrefix(Self.ownerPrefix) else {
            throw NetleaseError.conflict(
                "\(address) was not leased to a Docker endpoint (its owner is '\(owner)'); not released"
            )
        }
        do {
            guard facts != nil else { throw NetleaseError(.unavailable, "the agent is not ready") }
            let backend = self.backend
            try await Self.within(releaseTimeout, "releasing \(address)") {
                try await backend.dockerRelease(network: name, owner: owner)
            }
        } catch  where Self.isWorthRetrying(error) {
            try backend.deferRelease(network: name, owner: owner, address: address)
            logger.warning(
                "coordinator out of reach; the address Docker released is released later",
                metadata: [
                    "network": "\(name)", "owner": "\(owner)", "address": "\(address)", "error": "\(error)",
                ]
            )
            return
        }
        logger.info(
            "address released by Docker",
            metadata: [
                "network": "\(name)", "owner": "\(owner)", "address": "\(address)",
            ]
        )
    }

    /// Whether a failed release may succeed when repeated later: anything but a refusal the coordinator would
    /// repeat (a release is idempotent, so repeating one that did happen is harmless).
    public static func isWorthRetrying(_ error: any Error) -> Bool {
        guard let error = error as? NetleaseError else { return true }
        switch error.code {
        case .badRequest, .forbidden, .unknownNetwork, .authRequired, .authFailed: return false
        default: return true
        }
    }

    /// Who a container address is leased for. With a MAC, the endpoint's; without one, only a replay of an address
    /// this host already leased to a Docker endpoint is answered.
    private func owner(options: [String: String], wanted: IPv4Address?, network: String) throws -> String {
        if let text = options[DockerPluginAPI.macAddressOption], !text.isEmpty {
            guard let mac = Self.canonicalMAC(text) else {
                throw NetleaseError.badRequest("'\(text)' is not a MAC address (like 02:42:ac:1e:00:05)")
            }
            return Self.ownerPrefix + mac
        }
        guard let wanted else {
            throw NetleaseError.badRequest(
                "Docker sent no endpoint MAC address (\(DockerPluginAPI.macAddressOption)), which netlease needs to "
                    + "name the lease's owner: restart dockerd so that it reads the plugin's capabilities again"
            )
        }
        guard let owner = backend.localOwner(network: network, address: wanted),
            owner.hasPrefix(Self.ownerPrefix)
        else {
            throw NetleaseError.conflict(
                "\(wanted) is not leased to a Docker endpoint on this host, and Docker sent no endpoint MAC address "
                    + "to lease it for (a replayed address this agent has no record of); "
                    + "run 'netlease leases --json' to see who holds it"
            )
        }
        return owner
    }

    private func network(ofPool poolID: String?) throws -> String {
        guard let poolID, poolID.hasPrefix(Self.poolPrefix), poolID.count > Self.poolPrefix.count else {
            throw NetleaseError.notFound(
                "unknown pool '\(poolID ?? "")': netlease pools are named \(Self.poolPrefix)NETWORK; was the Docker "
                    + "network created with --ipam-driver netlease?"
            )
        }
        let name = String(poolID.dropFirst(Self.poolPrefix.count))
        guard backend.servedNetworks.contains(name) else {
            throw NetleaseError(
                .unknownNetwork,
                "pool '\(poolID)': this host's netlease agent does not serve network '\(name)'"
            )
        }
        return name
    }

    private func address(_ text: String?, in facts: DockerNetworkFacts, name: String) throws -> IPv4Address? {
        guard let text, !text.isEmpty else { return nil }
        // Docker sends a bare address; accept a CIDR form too.
        let bare = text.split(separator: "/", maxSplits: 1).first.map(String.init) ?? text
        guard let address = IPv4Address(bare) else {
            throw NetleaseError.badRequest("'\(text)' is not an IPv4 address")
        }
        guard facts.subnet.contains(address) else {
            throw NetleaseError.badRequest("\(address) is not in netlease network '\(name)' (\(facts.subnet))")
        }
        return address
    }

    /// Runs `work` but answers `unavailable` after `timeout`. The work is cancelled then and left to finish on its
    /// own: a coordinator call that is stuck (a link gone silent before the agent's heartbeat notices) must not hold
    /// Docker, whose plugin client waits without limit.
    static func within<T: Sendable>(
        _ timeout: Duration,
        _ what: String,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let message = "\(what) took longer than \(timeout): the coordinator does not answer; retry shortly"
        return try await withTimeout(timeout, orThrow: { NetleaseError(.unavailable, message) }, work)
    }

    /// Lower-case, colon-separated, six octets: one spelling per endpoint, so one owner per endpoint.
    public static func canonicalMAC(_ text: String) -> String? {
        let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6,
            parts.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0.isHexDigit && $0.isASCII } })
        else { return nil }
        return parts.joined(separator: ":")
    }

    private func decode<T: Decodable>(_ body: [UInt8], as type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            let type = String(describing: T.self)
            let name = type.hasSuffix("Request") ? String(type.dropLast("Request".count)) : type
            let shown =
                body.count > 200
                ? String(decoding: body.prefix(200), as: UTF8.self) + "…"
                : String(decoding: body, as: UTF8.self)
            throw NetleaseError.badRequest("the body of \(name) is not the JSON object Docker sends: '\(shown)'")
        }
    }

    static func status(of code: ErrorCode) -> Int {
        switch code {
        case .badRequest: 400
        case .forbidden: 403
        case .notFound, .unknownNetwork: 404
        case .conflict: 409
        case .unavailable, .overloaded: 503
        default: 500
        }
    }

    private func success(_ value: some Encodable) -> Reply {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain structs cannot fail; an empty object is the safe fallback all the same.
        return Reply(status: 200, body: Array((try? encoder.encode(value)) ?? Data("{}".utf8)))
    }

    private func failure(_ status: Int, _ message: String) -> Reply {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body =
            (try? encoder.encode(DockerPluginAPI.ErrorResponse(err: "netlease: " + message)))
            ?? Data(#"{"Err":"netlease: internal error"}"#.utf8)
        return Reply(status: status, body: Array(body))
    }
}
