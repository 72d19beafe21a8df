import Foundation

/// The parts of the network configuration this plugin reads.
public struct CNIConfig: Sendable, Equatable {
    public var cniVersion: String
    public var socket: String
    public var network: String

    public init(data: Data) throws {
        guard !data.isEmpty,
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
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
