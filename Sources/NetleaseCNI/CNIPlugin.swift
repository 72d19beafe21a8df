import Foundation
import NetleaseCore

/// The CNI IPAM plugin: a runtime's `bridge` plugin (or any main plugin) calls it by type `netlease-cni`; it asks
/// the host's agent for an address (ARP-probed, cluster-unique) and answers with the CNI result.
///
/// Configuration (the `ipam` object of the network configuration on stdin; docs/CNI.md has every key):
/// ```json
/// "ipam": { "type": "netlease-cni", "socket": "/run/netlease/agent.sock", "network": "prod",
///           "routes": [{ "dst": "0.0.0.0/0" }] }
/// ```
/// Every lease is owned by `cni:<CNI network name>/<CNI_CONTAINERID>/<CNI_IFNAME>` (`CNIAttachment`), so ADD is
/// idempotent per attachment, DEL releases exactly that lease, and GC finds this network's CNI leases and no one
/// else's.
public enum CNIPlugin {
    public static let supportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    /// The version VERSION answers in when stdin names none.
    public static let latestVersion = "1.1.0"

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
    /// - Parameter agent: the agent to ask; by default the one at the configuration's `ipam.socket`.
    public static func run(
        environment: [String: String],
        input: Data,
        agent: (@Sendable (CNIConfig) -> any CNIAgent)? = nil
    ) async -> Outcome {
        let command = environment["CNI_COMMAND"] ?? ""
        if command == "VERSION" { return version(input) }
        // Errors answer in the version stdin names, even when the rest does not decode.
        var version =
            ((try? JSONSerialization.jsonObject(with: input)) as? [String: Any])?["cniVersion"] as? String
            ?? latestVersion
        do {
            guard let verb = Verb(rawValue: command) else {
                throw CNIError(
                    code: CNIError.Code.invalidEnvironment,
                    message: "CNI_COMMAND '\(command.prefix(40))' is not ADD, DEL, CHECK, GC, STATUS or VERSION"
                )
            }
            let config = try CNIConfig(data: input)
            version = config.cniVersion
            try check(version: version, for: verb)
            let call = Call(
                config: config,
                environment: environment,
                agent: agent?(config) ?? SocketCNIAgent(socket: config.ipam.socket)
            )
            return Outcome(stdout: try await call.run(verb), exitStatus: 0)
        } catch let error as CNIError {
            return failure(error, version: version)
        } catch let error as CNIAgentUnreachable {
            let wrapped = CNIError(
                code: CNIError.Code.tryAgainLater,
                message: error.description,
                details: error.reason
            )
            return failure(wrapped, version: version)
        } catch let error as NetleaseError {
            return failure(agentError(error), version: version)
        } catch {
            return failure(CNIError(code: CNIError.Code.agentRefused, message: "\(error)"), version: version)
        }
    }

    public enum Verb: String, Sendable {
        case add = "ADD"
        case del = "DEL"
        case check = "CHECK"
        case gc = "GC"
        case status = "STATUS"

        /// The first spec version that has the verb.
        var since: String {
            switch self {
            case .add, .del: return "0.3.0"
            case .check: return "0.4.0"
            case .gc, .status: return "1.1.0"
            }
        }
    }

    /// The version must be one this plugin speaks (code 1), and one that has the verb (code 1, as the reference
    /// plugins answer CHECK under 0.3.x).
    static func check(version: String, for verb: Verb) throws {
        guard supportedVersions.contains(version) else {
            throw CNIError(
                code: CNIError.Code.incompatibleVersion,
                message: "incompatible CNI version \(version.prefix(40))",
                details: "supported: \(supportedVersions.joined(separator: ", "))"
            )
        }
        guard let index = supportedVersions.firstIndex(of: version),
            let since = supportedVersions.firstIndex(of: verb.since), index >= since
        else {
            throw CNIError(
                code: CNIError.Code.incompatibleVersion,
                message: "config version \(version) does not allow \(verb.rawValue) (needs \(verb.since) or later)"
            )
        }
    }

    /// VERSION answers in the version stdin names (the spec: "the value of cniVersion specified on input"), or
    /// the latest when stdin names none.
    static func version(_ input: Data) -> Outcome {
        let object = (try? JSONSerialization.jsonObject(with: input)) as? [String: Any]
        let asked = object?["cniVersion"] as? String ?? latestVersion
        return Outcome(stdout: render(["cniVersion": asked, "supportedVersions": supportedVersions]), exitStatus: 0)
    }

    /// An agent's refusal: transient ones (no coordinator session, no free address right now) are code 11, a
    /// network the agent does not serve is a configuration error (7), the rest the plugin's own code 100.
    static func agentError(_ error: NetleaseError) -> CNIError {
        let text = "\(error.code.rawValue): \(error.message)"
        switch error.code {
        case .unavailable, .poolExhausted, .storage, .notLeader, .overloaded, .staleEpoch:
            return CNIError(code: CNIError.Code.tryAgainLater, message: text)
        case .unknownNetwork:
            return CNIError(code: CNIError.Code.invalidConfig, message: text)
        default:
            return CNIError(code: CNIError.Code.agentRefused, message: text)
        }
    }

    static func render(_ object: [String: Any]) -> Data {
        var data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return data
    }

    static func failure(_ error: CNIError, version: String) -> Outcome {
        var object: [String: Any] = ["cniVersion": version, "code": error.code, "msg": error.message]
        if !error.details.isEmpty { object["details"] = error.details }
        return Outcome(stdout: render(object), exitStatus: 1)
    }
}
