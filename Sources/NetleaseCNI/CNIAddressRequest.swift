import NetleaseCore

/// The one address a runtime asks for, if any: from `runtimeConfig.ips` (the `ips` capability), `args.cni.ips`, or
/// `CNI_ARGS` `IP=` (CONVENTIONS.md). The conventions make `args` win over `CNI_ARGS`; between the capability and
/// `args` the spec says nothing, so both count, and they must agree.
public struct CNIAddressRequest: Sendable, Equatable {
    public var address: IPv4Address
    /// The prefix the runtime wrote, if it wrote one: it must be the network's.
    public var prefix: Int?

    public init(address: IPv4Address, prefix: Int?) {
        self.address = address
        self.prefix = prefix
    }

    /// nil when nothing is asked for; code 7 for an address that is not IPv4 or several different addresses (one
    /// attachment gets one lease), code 4 for a `CNI_ARGS` that is not `KEY=VALUE` pairs.
    public static func from(config: CNIConfig, environment: [String: String]) throws -> CNIAddressRequest? {
        var texts: [(source: String, text: String)] = []
        for text in config.runtimeConfig?.ips ?? [] { texts.append(("runtimeConfig.ips", text)) }
        let argsIPs = config.args?.cni?.ips ?? []
        for text in argsIPs { texts.append(("args.cni.ips", text)) }
        if argsIPs.isEmpty, let ip = try cniArgs(environment)["IP"] { texts.append(("CNI_ARGS IP", ip)) }
        var requests: [CNIAddressRequest] = []
        for (source, text) in texts {
            guard let request = parse(text) else {
                throw CNIError(
                    code: CNIError.Code.invalidConfig,
                    message: "\(source): '\(text.prefix(60))' is not an IPv4 address (netlease leases IPv4 only)"
                )
            }
            if !requests.contains(request) { requests.append(request) }
        }
        guard requests.count <= 1 else {
            throw CNIError(
                code: CNIError.Code.invalidConfig,
                message: "several addresses asked for (\(texts.map(\.text).joined(separator: ", "))); "
                    + "netlease leases one address per attachment"
            )
        }
        return requests.first
    }

    /// `A.B.C.D` or `A.B.C.D/P`.
    static func parse(_ text: String) -> CNIAddressRequest? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPv4Address(parts[0]) else { return nil }
        guard parts.count == 2 else { return CNIAddressRequest(address: address, prefix: nil) }
        guard let prefix = Int(parts[1]), (0...32).contains(prefix), parts[1].allSatisfy(\.isASCII) else {
            return nil
        }
        return CNIAddressRequest(address: address, prefix: prefix)
    }

    /// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;` (keys this plugin does not know are ignored).
    static func cniArgs(_ environment: [String: String]) throws -> [String: String] {
        guard let text = environment["CNI_ARGS"], !text.isEmpty else { return [:] }
        var pairs: [String: String] = [:]
        for pair in text.split(separator: ";") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw CNIError(
                    code: CNIError.Code.invalidEnvironment,
                    message: "CNI_ARGS: '\(pair.prefix(60))' is not KEY=VALUE"
                )
            }
            pairs[String(parts[0])] = String(parts[1])
        }
        return pairs
    }
}
