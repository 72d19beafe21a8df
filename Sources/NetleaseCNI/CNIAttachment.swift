import NetleaseCore

/// One attachment, `(CNI_CONTAINERID, CNI_IFNAME)` on a CNI network, and the lease owner that names it.
///
/// The owner is `cni:<network name>/<container id>/<ifname>`: unique per attachment (the spec's state key), never
/// the owner of another CNI network, of `netlease attach` or of Docker, and parsed back unambiguously by GC (none
/// of the three parts may hold a `/`).
public struct CNIAttachment: Sendable, Hashable {
    public var network: String
    public var containerID: String
    public var ifname: String

    public static let ownerPrefix = "cni:"
    /// Longest `CNI_CONTAINERID` accepted: with the longest network name and interface name the owner stays within
    /// the coordinator's 256 bytes.
    public static let maxContainerIDBytes = 128

    public var owner: String { "\(Self.ownerPrefix)\(network)/\(containerID)/\(ifname)" }

    public init(network: String, containerID: String, ifname: String) {
        self.network = network
        self.containerID = containerID
        self.ifname = ifname
    }

    /// The attachment from the environment, or code 4 naming the variable that is missing or invalid.
    public init(network: String, environment: [String: String]) throws {
        let id = try Self.variable("CNI_CONTAINERID", environment)
        guard id.utf8.count <= Self.maxContainerIDBytes else {
            throw Self.invalid(
                "CNI_CONTAINERID is \(id.utf8.count) bytes; at most \(Self.maxContainerIDBytes) are accepted"
            )
        }
        guard CNIConfig.isPlainIdentifier(id) else {
            throw Self.invalid(
                "CNI_CONTAINERID '\(id.prefix(60))' is invalid: a letter or digit, then letters, digits, '_', '.' "
                    + "or '-'"
            )
        }
        let ifname = try Self.variable("CNI_IFNAME", environment)
        guard Self.isValidInterfaceName(ifname) else {
            throw Self.invalid(
                "CNI_IFNAME '\(ifname.prefix(60))' is not a Linux interface name: 1-15 bytes, not '.' or '..', "
                    + "no '/', ':', '%', space or control character"
            )
        }
        self.init(network: network, containerID: id, ifname: ifname)
    }

    /// The attachment a lease owner names on `network`, or nil for owners that are not this network's CNI leases.
    public init?(owner: String, network: String) {
        let prefix = "\(Self.ownerPrefix)\(network)/"
        guard owner.hasPrefix(prefix) else { return nil }
        let rest = owner.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 2, !rest[0].isEmpty, !rest[1].isEmpty else { return nil }
        self.init(network: network, containerID: String(rest[0]), ifname: String(rest[1]))
    }

    /// The spec's rule (must not be empty, '.' or '..', under 16 characters, no '/', ':' or whitespace), plus
    /// what a lease owner refuses (control bytes) and what the agent's interface names refuse ('%').
    static func isValidInterfaceName(_ name: String) -> Bool {
        Names.isValidInterface(name)
    }

    static func variable(_ key: String, _ environment: [String: String]) throws -> String {
        guard let value = environment[key], !value.isEmpty else { throw invalid("\(key) is not set") }
        return value
    }

    static func invalid(_ message: String) -> CNIError {
        CNIError(code: CNIError.Code.invalidEnvironment, message: message)
    }
}
