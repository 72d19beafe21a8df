import Foundation
import NetleaseCore

/// The ADD result (SPEC.md section 5), abbreviated as an IPAM plugin returns it: no `interfaces`, no `interface`
/// index. Decodes the `prevResult` a runtime passes back, whatever plugin wrote it (unknown keys are ignored).
public struct CNIResult: Sendable, Equatable, Codable {
    public var cniVersion: String?
    public var ips: [IP]
    public var routes: [Route]?

    public init(cniVersion: String, ips: [IP], routes: [Route]) {
        self.cniVersion = cniVersion
        self.ips = ips
        self.routes = routes
    }

    enum CodingKeys: String, CodingKey { case cniVersion, ips, routes }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cniVersion = try c.decodeIfPresent(String.self, forKey: .cniVersion)
        ips = try c.decodeIfPresent([IP].self, forKey: .ips) ?? []
        routes = try c.decodeIfPresent([Route].self, forKey: .routes)
    }

    public struct IP: Sendable, Equatable, Codable {
        /// `"4"` in results of versions before 1.0.0, absent from 1.0.0 on.
        public var version: String?
        /// Address and prefix, `172.30.0.5/16`.
        public var address: String
        public var gateway: String?
        /// Index into the main plugin's `interfaces` (absent in an IPAM result).
        public var interface: Int?

        public init(version: String? = nil, address: String, gateway: String?, interface: Int? = nil) {
            self.version = version
            self.address = address
            self.gateway = gateway
            self.interface = interface
        }
    }

    /// A route as the spec's result has it; `gw` unset means the `gateway` of `ips`.
    public struct Route: Sendable, Equatable, Codable {
        public var dst: String
        public var gw: String?
        public var mtu: Int?
        public var advmss: Int?
        public var priority: Int?
        public var table: Int?
        public var scope: Int?

        public init(dst: String, gw: String? = nil) {
            self.dst = dst
            self.gw = gw
        }

        /// IPv4 only: netlease leases IPv4 addresses, and the main plugin would install what it gets.
        func validate() throws {
            guard IPv4Subnet(dst) != nil else {
                throw CNIError(
                    code: CNIError.Code.invalidConfig,
                    message: "ipam.routes: dst '\(dst.prefix(60))' is not an IPv4 network in CIDR notation"
                )
            }
            if let gw, IPv4Address(gw) == nil {
                throw CNIError(
                    code: CNIError.Code.invalidConfig,
                    message: "ipam.routes: gw '\(gw.prefix(60))' is not an IPv4 address"
                )
            }
        }
    }

    /// The IPv4 addresses (without prefix) this result names.
    var ipv4Addresses: [IPv4Address] {
        ips.compactMap { $0.address.split(separator: "/").first.flatMap { IPv4Address($0) } }
    }

    /// The JSON the runtime reads: keys sorted, one trailing newline.
    func rendered() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
