/// The messages of Docker's plugin protocol that the agent's IPAM driver speaks: JSON bodies POSTed to
/// `/Plugin.Activate` and `/IpamDriver.<Method>` over HTTP/1.1 on a unix socket. Field names are Go's (capitalised);
/// every request field is optional because libnetwork leaves out or nulls what it has no value for.
///
/// Two things the documentation does not say, read from libnetwork's remote IPAM driver (Docker 20.10):
/// - A failure must be a non-200 status with `{"Err": "…"}`: the plugin client reads `Err` only from error statuses,
///   and the IPAM driver's own 200 response struct has a field `Error`, not `Err` — a 200 carrying `Err` is taken as
///   success with empty fields.
/// - `GetCapabilities` and `GetDefaultAddressSpaces` are asked once, when the plugin is activated. A failed
///   `GetCapabilities` registers the driver without capabilities (no MAC addresses, no replay) for the daemon's life,
///   so both answer at once, ready or not.
public enum DockerPluginAPI {
    /// The option libnetwork sets on the gateway's RequestAddress.
    public static let addressTypeOption = "RequestAddressType"
    public static let gatewayAddressType = "com.docker.network.gateway"
    /// The option carrying the endpoint's MAC address when the driver requires it.
    public static let macAddressOption = "com.docker.network.endpoint.macaddress"
    /// The `--ipam-opt` that names the netlease network.
    public static let networkOption = "network"
    /// What plugin responses are labelled with.
    public static let contentType = "application/vnd.docker.plugins.v1.2+json"

    public struct ActivateResponse: Codable, Equatable, Sendable {
        public var implements: [String]
        enum CodingKeys: String, CodingKey { case implements = "Implements" }

        public init(implements: [String]) { self.implements = implements }
    }

    public struct CapabilitiesResponse: Codable, Equatable, Sendable {
        public var requiresMACAddress: Bool
        public var requiresRequestReplay: Bool
        enum CodingKeys: String, CodingKey {
            case requiresMACAddress = "RequiresMACAddress"
            case requiresRequestReplay = "RequiresRequestReplay"
        }

        public init(requiresMACAddress: Bool, requiresRequestReplay: Bool) {
            self.requiresMACAddress = requiresMACAddress
            self.requiresRequestReplay = requiresRequestReplay
        }
    }

    public struct AddressSpacesResponse: Codable, Equatable, Sendable {
        public var local: String
        public var global: String
        enum CodingKeys: String, CodingKey {
            case local = "LocalDefaultAddressSpace"
            case global = "GlobalDefaultAddressSpace"
        }

        public init(local: String, global: String) {
            self.local = local
            self.global = global
        }
    }

    public struct RequestPoolRequest: Codable, Equatable, Sendable {
        public var addressSpace: String?
        public var pool: String?
        public var subPool: String?
        public var options: [String: String]?
        public var v6: Bool?
        enum CodingKeys: String, CodingKey {
            case addressSpace = "AddressSpace"
            case pool = "Pool"
            case subPool = "SubPool"
            case options = "Options"
            case v6 = "V6"
        }

        public init(
            addressSpace: String? = nil,
            pool: String? = nil,
            subPool: String? = nil,
            options: [String: String]? = nil,
            v6: Bool? = nil
        ) {
            self.addressSpace = addressSpace
            self.pool = pool
            self.subPool = subPool
            self.options = options
            self.v6 = v6
        }
    }

    public struct RequestPoolResponse: Codable, Equatable, Sendable {
        public var poolID: String
        public var pool: String
        public var data: [String: String]
        enum CodingKeys: String, CodingKey {
            case poolID = "PoolID"
            case pool = "Pool"
            case data = "Data"
        }

        public init(poolID: String, pool: String, data: [String: String]) {
            self.poolID = poolID
            self.pool = pool
            self.data = data
        }
    }

    public struct ReleasePoolRequest: Codable, Equatable, Sendable {
        public var poolID: String?
        enum CodingKeys: String, CodingKey { case poolID = "PoolID" }

        public init(poolID: String?) { self.poolID = poolID }
    }

    public struct RequestAddressRequest: Codable, Equatable, Sendable {
        public var poolID: String?
        /// Empty or absent: any address; otherwise the one wanted (A.B.C.D).
        public var address: String?
        public var options: [String: String]?
        enum CodingKeys: String, CodingKey {
            case poolID = "PoolID"
            case address = "Address"
            case options = "Options"
        }

        public init(poolID: String?, address: String? = nil, options: [String: String]? = nil) {
            self.poolID = poolID
            self.address = address
            self.options = options
        }
    }

    public struct RequestAddressResponse: Codable, Equatable, Sendable {
        /// CIDR form, A.B.C.D/prefix.
        public var address: String
        public var data: [String: String]
        enum CodingKeys: String, CodingKey {
            case address = "Address"
            case data = "Data"
        }

        public init(address: String, data: [String: String]) {
            self.address = address
            self.data = data
        }
    }

    public struct ReleaseAddressRequest: Codable, Equatable, Sendable {
        public var poolID: String?
        public var address: String?
        enum CodingKeys: String, CodingKey {
            case poolID = "PoolID"
            case address = "Address"
        }

        public init(poolID: String?, address: String?) {
            self.poolID = poolID
            self.address = address
        }
    }

    /// The body of every failure, sent with a non-200 status.
    public struct ErrorResponse: Codable, Equatable, Sendable {
        public var err: String
        enum CodingKeys: String, CodingKey { case err = "Err" }

        public init(err: String) { self.err = err }
    }

    /// The body of calls that succeed with nothing to say (ReleasePool, ReleaseAddress).
    public struct EmptyResponse: Codable, Equatable, Sendable {
        public init() {}
    }
}
