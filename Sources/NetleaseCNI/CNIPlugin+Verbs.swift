import Foundation
import NetleaseCore

extension CNIPlugin {
    /// One command with its configuration, environment and agent.
    struct Call: Sendable {
        let config: CNIConfig
        let environment: [String: String]
        let agent: any CNIAgent

        var network: String { config.ipam.network }

        /// The verb's stdout on success (empty where the spec wants no output).
        func run(_ verb: Verb) async throws -> Data {
            switch verb {
            case .add: return try await add()
            case .del: try await del()
            case .check: try await check()
            case .gc: try await gc()
            case .status: try await status()
            }
            return Data()
        }

        private func attachment() throws -> CNIAttachment {
            try CNIAttachment(network: config.name, environment: environment)
        }

        /// CNI_NETNS: required for ADD and CHECK by the spec, though an IPAM plugin does not enter it.
        private func requireNamespace() throws {
            _ = try CNIAttachment.variable("CNI_NETNS", environment)
        }

        /// ADD: lease (a requested address if any) and answer with the address, this host's bridge address as the
        /// gateway, and the configured routes — no route the administrator did not configure. A requested prefix
        /// is checked against the network's before anything is leased: ADD is idempotent, so a lease handed back
        /// may be an earlier ADD's (a live container's), and a refused ADD must not release it.
        func add() async throws -> Data {
            let attachment = try attachment()
            try requireNamespace()
            let requested = try CNIAddressRequest.from(config: config, environment: environment)
            if let requested, let prefix = requested.prefix {
                let subnet = try await agent.network(network).subnet
                try Self.checkPrefix(prefix, of: requested.address, network: network, networkPrefix: subnet.prefix)
            }
            let handout = try await agent.acquire(
                network: network,
                owner: attachment.owner,
                ifname: attachment.ifname,
                address: requested?.address
            )
            if let prefix = requested?.prefix {
                // Only when the network was replaced between the two questions. The lease stays either way (it may
                // be an earlier ADD's); the runtime's DEL of the failed attachment gives back one this call made.
                try Self.checkPrefix(prefix, of: handout.address, network: network, networkPrefix: handout.prefix)
            }
            let legacy = !config.cniVersion.hasPrefix("1.")
            let ip = CNIResult.IP(
                version: legacy ? "4" : nil,
                address: "\(handout.address)/\(handout.prefix)",
                gateway: handout.gateway?.description
            )
            return try CNIResult(cniVersion: config.cniVersion, ips: [ip], routes: config.ipam.routes).rendered()
        }

        private static func checkPrefix(
            _ prefix: Int,
            of address: IPv4Address,
            network: String,
            networkPrefix: Int
        ) throws {
            guard prefix != networkPrefix else { return }
            throw CNIError(
                code: CNIError.Code.invalidConfig,
                message: "requested \(address)/\(prefix), but network '\(network)' is a /\(networkPrefix); ask for the "
                    + "address without a prefix or with /\(networkPrefix)"
            )
        }

        /// DEL is best effort (SPEC.md): success when there is nothing to release. The agent answering
        /// `bad-request` or `unknown-network` means nothing could have been leased under this name. While the agent
        /// cannot be reached, its `leases.json` (`ipam.stateDir`) says whether the lease is gone (success) or may
        /// still be held (code 11, so the runtime retries instead of leaking it); without that file, `prevResult`
        /// decides: no address in it means no ADD is known to have succeeded.
        func del() async throws {
            let attachment = try attachment()
            do {
                try await agent.release(network: network, owner: attachment.owner)
            } catch let error as NetleaseError where error.code == .badRequest || error.code == .unknownNetwork {
                return
            } catch let error as CNIAgentUnreachable {
                let recorded = config.ipam.stateDir.flatMap {
                    AgentLeaseRecord.holds(owner: attachment.owner, network: network, in: $0)
                }
                if let recorded {
                    if !recorded { return }
                } else if config.prevResult?.ipv4Addresses.isEmpty ?? true {
                    return
                }
                throw error
            }
        }

        /// CHECK: `prevResult` must name the address this attachment holds, and the agent must hold it.
        func check() async throws {
            let attachment = try attachment()
            try requireNamespace()
            guard let previous = config.prevResult else {
                throw CNIError(
                    code: CNIError.Code.invalidConfig,
                    message: "CHECK needs prevResult in the configuration"
                )
            }
            let held = try await agent.leases(network: network).first {
                $0.owner == attachment.owner && $0.state == .active
            }
            guard let held else {
                throw CNIError(
                    code: CNIError.Code.agentRefused,
                    message: "no active lease for \(attachment.owner) in network '\(network)'"
                )
            }
            let expected = "\(held.address)/\(held.prefix)"
            guard previous.ips.contains(where: { $0.address == expected }) else {
                let named = previous.ips.map(\.address).joined(separator: ", ")
                throw CNIError(
                    code: CNIError.Code.agentRefused,
                    message: "prevResult names \(named.isEmpty ? "no address" : named), but \(attachment.owner) "
                        + "holds \(expected)"
                )
            }
        }

        /// GC: releases this CNI network's leases on this host whose attachment the runtime no longer lists.
        /// Leases of other CNI networks, of `netlease attach` and of Docker have other owners and are never
        /// touched. Continues past a failed release and reports every failure.
        func gc() async throws {
            guard let valid = config.validAttachments else {
                throw CNIError(
                    code: CNIError.Code.invalidConfig,
                    message: "GC needs cni.dev/valid-attachments in the configuration"
                )
            }
            let keep = Set(
                valid.map { CNIAttachment(network: config.name, containerID: $0.containerID, ifname: $0.ifname) }
            )
            let stale = try await agent.leases(network: network).compactMap { lease -> CNIAttachment? in
                guard lease.state == .active, let attachment = CNIAttachment(owner: lease.owner, network: config.name)
                else { return nil }
                return keep.contains(attachment) ? nil : attachment
            }
            var failures: [String] = []
            for attachment in stale {
                do {
                    try await agent.release(network: network, owner: attachment.owner)
                } catch {
                    failures.append("\(attachment.owner): \(error)")
                }
            }
            guard failures.isEmpty else {
                throw CNIError(
                    code: CNIError.Code.tryAgainLater,
                    message: "GC released \(stale.count - failures.count) of \(stale.count) stale leases",
                    details: failures.joined(separator: "; ")
                )
            }
        }

        /// STATUS: 0 when an ADD can be served; 50 when the network has no free address or the agent does not
        /// serve it; 51 when the agent is unreachable or has no coordinator session (it also keeps the tunnel mesh
        /// current, so containers may not reach hosts that joined since).
        func status() async throws {
            let facts: CNINetworkFacts
            do {
                facts = try await agent.network(network)
            } catch let error as CNIAgentUnreachable {
                throw CNIError(
                    code: CNIError.Code.notAvailableLimitedConnectivity,
                    message: error.description,
                    details: error.reason
                )
            } catch let error as NetleaseError where error.code == .unavailable {
                throw CNIError(
                    code: CNIError.Code.notAvailableLimitedConnectivity,
                    message: "netlease agent not ready: \(error.message)"
                )
            } catch let error as NetleaseError {
                throw CNIError(code: CNIError.Code.notAvailable, message: "\(error.code.rawValue): \(error.message)")
            }
            guard facts.free > 0 else {
                throw CNIError(
                    code: CNIError.Code.notAvailable,
                    message: "network '\(network)' has no free address (see 'netlease network show \(network)')"
                )
            }
        }
    }
}
