import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseWire

/// The CNI IPAM plugin: a CNI runtime's `bridge` plugin (or any main plugin) calls it by type `netlease-cni`; it
/// asks the host's agent for an address (ARP-probed, cluster-unique) and answers with the CNI result.
///
/// Configuration (the `ipam` object of the network configuration on stdin):
/// ```json
/// "ipam": { "type": "netlease-cni", "socket": "/run/netlease/agent.sock", "network": "prod" }
/// ```
/// The lease owner is `<CNI_CONTAINERID>/<CNI_IFNAME>`, so ADD is idempotent per container interface and DEL
/// releases exactly that lease (and succeeds when there is nothing to release, as CNI requires).
@main
struct NetleaseCNI {
    static let supportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

    static func main() async {
        let environment = ProcessInfo.processInfo.environment
        let input = FileHandle.standardInput.readDataToEndOfFile()
        var version = "1.0.0"
        do {
            let command = environment["CNI_COMMAND"] ?? ""
            if command == "VERSION" {
                try write(["cniVersion": "1.0.0", "supportedVersions": supportedVersions])
                return
            }
            let config = try CNIConfig(data: input)
            version = config.cniVersion
            guard supportedVersions.contains(version) else {
                throw CNIError(code: 1, message: "incompatible CNI version \(version)",
                               details: "supported: \(supportedVersions.joined(separator: ", "))")
            }
            let containerID = try require(environment, "CNI_CONTAINERID")
            let ifname = try require(environment, "CNI_IFNAME")
            let owner = "\(containerID)/\(ifname)"
            switch command {
            case "ADD":
                let reply = try await ask(config, .acquire(network: config.network, owner: owner, ifname: ifname))
                let lease = try WireCodec.lease(from: reply.fields)
                let gateway = reply.fields["gateway"] ?? ""
                var ip: [String: Any] = ["address": "\(lease.address)/\(lease.prefix)", "gateway": gateway]
                if version.hasPrefix("0.") { ip["version"] = "4" }
                try write([
                    "cniVersion": version, "ips": [ip],
                    "routes": [["dst": "0.0.0.0/0", "gw": gateway]], "dns": [String: Any](),
                ])
            case "DEL":
                // Releasing nothing is success (DEL must be idempotent); an unreachable agent is an error (code 11)
                // so the runtime retries instead of leaking the lease.
                _ = try await ask(config, .release(network: config.network, owner: owner))
            case "CHECK":
                let reply = try await ask(config, .leaseList(network: config.network))
                guard try reply.records.map(WireCodec.lease).contains(where: { $0.owner == owner && $0.state == .active })
                else { throw CNIError(code: 999, message: "no active lease for \(owner) in \(config.network)") }
            default:
                throw CNIError(code: 4, message: "unknown CNI_COMMAND '\(command)'")
            }
        } catch let error as CNIError {
            fail(error, version: version)
        } catch let error as NetleaseError {
            let code = error.code == .unavailable ? 11 : 999
            fail(CNIError(code: code, message: "\(error.code.rawValue): \(error.message)"), version: version)
        } catch {
            fail(CNIError(code: 999, message: "\(error)"), version: version)
        }
    }

    static func ask(_ config: CNIConfig, _ request: LocalRequest) async throws -> ReplyData {
        do {
            return try await NetleaseConnection.connect(socketPath: config.socket) { try await $0.send(request) }
        } catch let error as NetleaseError where error.code == .unavailable {
            throw CNIError(code: 11, message: "netlease agent unavailable at \(config.socket)", details: error.message)
        }
    }

    static func require(_ environment: [String: String], _ key: String) throws -> String {
        guard let value = environment[key], !value.isEmpty else {
            throw CNIError(code: 4, message: "\(key) is not set")
        }
        return value
    }

    static func write(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    static func fail(_ error: CNIError, version: String) -> Never {
        var object: [String: Any] = ["cniVersion": version, "code": error.code, "msg": error.message]
        if !error.details.isEmpty { object["details"] = error.details }
        try? write(object)
        exit(1)
    }
}

/// A CNI error: code 4 invalid environment, 7 invalid configuration, 11 try again later, 999 other.
struct CNIError: Error {
    var code: Int
    var message: String
    var details: String = ""
}

/// The parts of the network configuration this plugin reads.
struct CNIConfig {
    var cniVersion: String
    var socket: String
    var network: String

    init(data: Data) throws {
        guard !data.isEmpty,
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CNIError(code: 7, message: "network configuration on stdin is not a JSON object")
        }
        cniVersion = object["cniVersion"] as? String ?? "1.0.0"
        guard let ipam = object["ipam"] as? [String: Any] else {
            throw CNIError(code: 7, message: "network configuration has no 'ipam' object")
        }
        socket = ipam["socket"] as? String ?? "/run/netlease/agent.sock"
        guard let network = ipam["network"] as? String, !network.isEmpty else {
            throw CNIError(code: 7, message: "ipam.network is missing: name the netlease network to lease from")
        }
        self.network = network
    }
}
