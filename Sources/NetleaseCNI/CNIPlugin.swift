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
public enum CNIPlugin {
    public static let supportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]

    /// What the plugin prints on stdout (and, for people, on stderr) and the exit status the runtime sees.
    public struct Outcome: Sendable, Equatable {
        public var stdout: Data
        public var exitStatus: Int32
        public var stderr = Data()
    }

    /// The answer to a person rather than a runtime, or nil when this is a CNI call (then stdin is the network
    /// configuration and `run` answers). `--version` prints the plugin's own release on stdout. Without
    /// `CNI_COMMAND` it prints, like the reference plugins, what it is and the CNI versions it speaks on stderr and
    /// exits 0; the `VERSION` command's result stays exactly the spec's object, which has no field for a release.
    public static func informational(arguments: [String], environment: [String: String]) -> Outcome? {
        if arguments.dropFirst().contains("--version") {
            return Outcome(stdout: Data("netlease-cni \(NetleaseVersion.current)\n".utf8), exitStatus: 0)
        }
        guard (environment["CNI_COMMAND"] ?? "").isEmpty else { return nil }
        let text = """
            CNI netlease-cni plugin \(NetleaseVersion.current): IPAM from the local netlease agent
            CNI protocol versions supported: \(supportedVersions.joined(separator: ", "))

            """
        return Outcome(stdout: Data(), exitStatus: 0, stderr: Data(text.utf8))
    }

    /// Runs one CNI command: `environment` holds the `CNI_*` variables, `input` is the network configuration read
    /// from stdin. Never throws: every failure becomes the CNI error object on stdout with exit status 1.
    public static func run(environment: [String: String], input: Data) async -> Outcome {
        var version = "1.0.0"
        do {
            let command = environment["CNI_COMMAND"] ?? ""
            if command == "VERSION" {
                return Outcome(
                    stdout: try render(["cniVersion": "1.0.0", "supportedVersions": supportedVersions]),
                    exitStatus: 0
                )
            }
            let config = try CNIConfig(data: input)
            version = config.cniVersion
            guard supportedVersions.contains(version) else {
                throw CNIError(
                    code: 1,
                    message: "incompatible CNI version \(version)",
                    details: "supported: \(supportedVersions.joined(separator: ", "))"
                )
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
                return Outcome(
                    stdout: try render([
                        "cniVersion": version, "ips": [ip],
                        "routes": [["dst": "0.0.0.0/0", "gw": gateway]], "dns": [String: Any](),
                    ]),
                    exitStatus: 0
                )
            case "DEL":
                // Releasing nothing is success (DEL must be idempotent); an unreachable agent is an error (code 11)
                // so the runtime retries instead of leaking the lease.
                _ = try await ask(config, .release(network: config.network, owner: owner))
                return Outcome(stdout: Data(), exitStatus: 0)
            case "CHECK":
                let reply = try await ask(config, .leaseList(network: config.network))
                guard
                    try reply.records.map(WireCodec.lease).contains(where: { $0.owner == owner && $0.state == .active })
                else { throw CNIError(code: 999, message: "no active lease for \(owner) in \(config.network)") }
                return Outcome(stdout: Data(), exitStatus: 0)
            default:
                throw CNIError(code: 4, message: "unknown CNI_COMMAND '\(command)'")
            }
        } catch let error as CNIError {
            return failure(error, version: version)
        } catch let error as NetleaseError {
            let code = error.code == .unavailable ? 11 : 999
            return failure(CNIError(code: code, message: "\(error.code.rawValue): \(error.message)"), version: version)
        } catch {
            return failure(CNIError(code: 999, message: "\(error)"), version: version)
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

    static func render(_ object: [String: Any]) throws -> Data {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        data.append(contentsOf: Array("\n".utf8))
        return data
    }

    static func failure(_ error: CNIError, version: String) -> Outcome {
        var object: [String: Any] = ["cniVersion": version, "code": error.code, "msg": error.message]
        if !error.details.isEmpty { object["details"] = error.details }
        return Outcome(stdout: (try? render(object)) ?? Data(), exitStatus: 1)
    }
}
