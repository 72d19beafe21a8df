import Foundation

/// The request configuration a runtime (or the main plugin, delegating IPAM) passes on stdin: the parts this plugin
/// reads. Unknown keys are ignored, as the spec asks of plugins.
public struct CNIConfig: Sendable, Equatable, Decodable {
    public var cniVersion: String
    /// The CNI network's name: part of every lease owner, so several CNI networks never collide.
    public var name: String
    public var ipam: IPAM
    /// The result of the previous ADD (CHECK, DEL) or of the previous plugin in the chain.
    public var prevResult: CNIResult?
    public var args: Args?
    public var runtimeConfig: RuntimeConfig?
    /// GC: the attachments the runtime still has on this network.
    public var validAttachments: [Attachment]?

    /// The `ipam` object: which agent, which netlease network, which routes to return.
    public struct IPAM: Sendable, Equatable, Decodable {
        public var type: String?
        /// The netlease network to lease from.
        public var network: String
        /// The agent's local API socket.
        public var socket: String
        /// Routes returned in the result; none unless configured.
        public var routes: [CNIResult.Route]
        /// The agent's state directory: DEL reads its `leases.json` while the agent is down.
        public var stateDir: String?

        enum CodingKeys: String, CodingKey { case type, network, socket, routes, stateDir }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decodeIfPresent(String.self, forKey: .type)
            network = try c.decode(String.self, forKey: .network)
            socket = try c.decodeIfPresent(String.self, forKey: .socket) ?? CNIConfig.defaultSocket
            routes = try c.decodeIfPresent([CNIResult.Route].self, forKey: .routes) ?? []
            stateDir = try c.decodeIfPresent(String.self, forKey: .stateDir)
        }
    }

    /// `args.cni.ips` (CONVENTIONS.md): addresses the runtime asks for.
    public struct Args: Sendable, Equatable, Decodable {
        public var cni: CNIArgs?
        public struct CNIArgs: Sendable, Equatable, Decodable {
            public var ips: [String]?
        }
    }

    /// `runtimeConfig.ips`: the `ips` capability.
    public struct RuntimeConfig: Sendable, Equatable, Decodable {
        public var ips: [String]?
    }

    /// One entry of `cni.dev/valid-attachments`.
    public struct Attachment: Sendable, Hashable, Decodable {
        public var containerID: String
        public var ifname: String

        public init(containerID: String, ifname: String) {
            self.containerID = containerID
            self.ifname = ifname
        }
    }

    public static let defaultSocket = "/run/netlease/agent.sock"

    enum CodingKeys: String, CodingKey {
        case cniVersion, name, ipam, prevResult, args, runtimeConfig
        case validAttachments = "cni.dev/valid-attachments"
    }

    /// Decodes stdin: content that is not JSON is code 6, JSON of the wrong shape (a missing or mistyped key, a
    /// non-string `cniVersion`) code 7, each naming the key.
    public init(data: Data) throws {
        guard (try? JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed)) != nil else {
            throw CNIError(code: CNIError.Code.undecodable, message: "network configuration on stdin is not JSON")
        }
        do {
            self = try JSONDecoder().decode(CNIConfig.self, from: data)
        } catch let error as DecodingError {
            throw CNIError(code: CNIError.Code.invalidConfig, message: Self.describe(error))
        }
        try validate()
    }

    private func validate() throws {
        guard Self.isValidName(name) else {
            throw CNIError(
                code: CNIError.Code.invalidConfig,
                message: "name '\(name.prefix(80))' is not a valid CNI network name",
                details: "1-\(Self.maxNameBytes) bytes: a letter or digit, then letters, digits, '_', '.' or '-'"
            )
        }
        guard !ipam.network.isEmpty else {
            throw CNIError(code: CNIError.Code.invalidConfig, message: Self.missingNetwork)
        }
        guard ipam.socket.hasPrefix("/") else {
            throw CNIError(
                code: CNIError.Code.invalidConfig,
                message: "ipam.socket '\(ipam.socket)' is not an absolute path to the agent's socket"
            )
        }
        if let directory = ipam.stateDir, !directory.hasPrefix("/") {
            throw CNIError(
                code: CNIError.Code.invalidConfig,
                message: "ipam.stateDir '\(directory)' is not an absolute path to the agent's state directory"
            )
        }
        for route in ipam.routes { try route.validate() }
    }

    public static let maxNameBytes = 64
    static let missingNetwork = "ipam.network is missing: name the netlease network to lease from"

    /// The spec's rule for network names and container ids: a letter or digit, then letters, digits, `_.-`.
    static func isPlainIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCIIAlphanumeric else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || "_.-".unicodeScalars.contains($0) }
    }

    static func isValidName(_ name: String) -> Bool {
        name.utf8.count <= maxNameBytes && isPlainIdentifier(name)
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (key.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }
                .description
        }
        switch error {
        case .keyNotFound(let key, let context):
            let name = path(context, key)
            if name == "ipam.network" { return missingNetwork }
            if name == "ipam" { return "network configuration has no 'ipam' object" }
            return "network configuration: '\(name)' is missing"
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty { return "network configuration on stdin is not a JSON object" }
            return "network configuration: '\(path(context))' is not \(Self.article(type))"
        case .valueNotFound(let type, let context):
            return "network configuration: '\(path(context))' is null, expected \(Self.article(type))"
        case .dataCorrupted(let context):
            let name = path(context)
            return name.isEmpty
                ? "network configuration on stdin is not a JSON object"
                : "network configuration: '\(name)': \(context.debugDescription)"
        @unknown default:
            return "network configuration: \(error)"
        }
    }

    private static func article(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is UInt.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}
