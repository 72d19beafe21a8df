import ArgumentParser
import Foundation
import NetleaseCore
import NetleaseTransport

#if canImport(Glibc)
import Glibc
#endif

/// Every value `netlease agent` is given is checked before anything runs: a bad one is a usage error (exit 64) that
/// names the option — or the settings file's key, when the value came from `--config` — and the value. Found later,
/// a bad underlay or coordinator address was a runtime error (exit 1), and a bad host or network name or socket path
/// only showed after the agent had joined and built its networks. A socket group this host lacks is its state, not
/// a bad value: refused with exit 1 when the agent starts, before it contacts anyone.
extension Netlease.AgentCommand {
    /// Longest path a unix socket can be bound to (`sun_path` holds 108 bytes with the terminating NUL).
    static let maximumSocketPathBytes = 107

    func checkValues(_ settings: Settings) throws {
        func named(_ option: String, _ key: String, onCommandLine: Bool) -> String {
            guard !onCommandLine, let config else { return option }
            return "\(key) in \(config)"
        }
        let coordinatorOption = named("--coordinator", "NETLEASE_COORDINATORS", onCommandLine: coordinator != nil)
        do {
            _ = try Endpoint.list(settings.coordinators)
        } catch let error as NetleaseError {
            throw ValidationError("\(coordinatorOption) '\(settings.coordinators)': \(error.message)")
        }
        try Self.checkName(settings.host, named("--host", "NETLEASE_HOST", onCommandLine: host != nil), kind: "host")
        let networkOption = named("--network", "NETLEASE_NETWORKS", onCommandLine: !network.isEmpty)
        for (index, name) in settings.networks.enumerated() {
            try Self.checkName(name, networkOption, kind: "network")
            guard !settings.networks[..<index].contains(name) else {
                throw ValidationError("\(networkOption) '\(name)' is given twice")
            }
        }
        let underlayOption = named("--underlay", "NETLEASE_UNDERLAY", onCommandLine: underlay != nil)
        guard let address = IPv4Address(settings.underlay) else {
            throw ValidationError("\(underlayOption) '\(settings.underlay)' is not an IPv4 address")
        }
        guard address.isUnicastDestination else {
            throw ValidationError(
                "\(underlayOption) '\(settings.underlay)' is not a unicast address peers can send to (not in "
                    + "0.0.0.0/8, 224.0.0.0/4 or 240.0.0.0/4)"
            )
        }
        try Self.checkSocketPath(socket, "--socket")
        if let dockerPlugin {
            try Self.checkSocketPath(dockerPlugin, "--docker-plugin")
            guard dockerPlugin != socket else {
                throw ValidationError("--docker-plugin '\(dockerPlugin)' is the --socket path: give another one")
            }
        }
        // Whether the group exists is the host's state, checked when the agent starts (`checkSocketGroup`).
        if let socketGroup, socketGroup.isEmpty || socketGroup.contains(where: { $0 == ":" || $0.isWhitespace }) {
            throw ValidationError("--socket-group '\(socketGroup)' is not a group name")
        }
        guard !stateDir.isEmpty else { throw ValidationError("--state-dir '' is not a directory path") }
    }

    /// Refuses a socket group this host does not have, before the agent joins and builds its networks: the socket
    /// is created only after that, and its group used to be found missing only then.
    func checkSocketGroup() throws {
        guard let socketGroup, getgrnam(socketGroup) == nil else { return }
        throw NetleaseError.badRequest("--socket-group '\(socketGroup)' is not a group on this host")
    }

    /// A network or host name (`Names.isValid`).
    static func checkName(_ name: String, _ option: String, kind: String) throws {
        guard !Names.isValid(name) else { return }
        throw ValidationError(
            "\(option) '\(name)' is not a \(kind) name: 1-\(Names.maxNameBytes) ASCII letters, digits, '-', '_' or "
                + "'.', starting with a letter or digit"
        )
    }

    /// A path a unix socket can be created at.
    static func checkSocketPath(_ path: String, _ option: String) throws {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw ValidationError("\(option) '\(path)' is not a socket path")
        }
        guard path.utf8.count <= maximumSocketPathBytes else {
            throw ValidationError(
                "\(option) '\(path)' is \(path.utf8.count) bytes long; a unix socket path has at most "
                    + "\(maximumSocketPathBytes)"
            )
        }
        guard !path.utf8.contains(0) else { throw ValidationError("\(option) holds a NUL byte") }
    }
}
