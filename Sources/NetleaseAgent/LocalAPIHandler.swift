import NetleaseClient
import NetleaseCore
import NetleaseTransport
import NetleaseWire

/// Speaks the local API on one connection of the agent's unix socket.
struct LocalAPIHandler: Sendable {
    let agent: Agent

    func serve(_ connection: LineConnection) async throws {
        try await connection.write(Greeting(authRequired: false).line + "\n")
        while let frame = try await connection.next() {
            guard case .line(let text) = frame else {
                let error = NetleaseError.badRequest("line longer than \(WireLimits.maxLineBytes) bytes; closing")
                try await connection.write(Reply.error(error).rendered)
                return
            }
            if text.isEmpty { continue }
            var quit = false
            let reply: Reply
            do {
                let request = try LocalRequest(line: Substring(text))
                if request == .quit { quit = true }
                reply = try await respond(to: request)
            } catch let error as NetleaseError {
                reply = .error(error)
            } catch {
                reply = .error(NetleaseError(.internalError, "\(error)"))
            }
            try await connection.write(reply.rendered)
            if quit { return }
        }
    }

    func respond(to request: LocalRequest) async throws -> Reply {
        switch request {
        case .ping:
            return .ok(["pong": "1"])
        case .quit:
            return .ok(["bye": "1"])
        case .acquire(let network, let owner, let ifname, let address):
            return .ok(
                fields(
                    try await agent.countingAttach {
                        try await agent.acquire(network: network, owner: owner, ifname: ifname, address: address)
                    }
                )
            )
        case .release(let network, let owner):
            try await agent.release(network: network, owner: owner)
            return .ok(["released": owner])
        case .attach(let network, let owner, let netns, let ifname):
            return .ok(
                fields(
                    try await agent.countingAttach {
                        try await agent.attach(network: network, owner: owner, netns: netns, ifname: ifname)
                    }
                )
            )
        case .detach(let network, let owner):
            try await agent.detach(network: network, owner: owner)
            return .ok(["detached": owner])
        case .leaseList(let network):
            return .list(
                header: Fields(),
                tag: WireCodec.leaseTag,
                records: try await agent.hostLeases(network: network).map(WireCodec.fields(lease:))
            )
        case .network(let name):
            return .ok(try await networkFacts(name))
        case .doctor:
            let checks = await agent.doctor()
            return .list(
                header: ["failed": String(checks.filter { !$0.ok }.count)],
                tag: DoctorCheck.tag,
                records: checks.map(\.fields)
            )
        }
    }

    /// NETWORK: what a CNI configuration or a readiness check needs to know of a served network on this host.
    private func networkFacts(_ name: String) async throws -> Fields {
        guard agent.configuration.networks.contains(name) else {
            throw NetleaseError(.unknownNetwork, "this agent does not serve network '\(name)'")
        }
        guard let session = agent.state.withLock({ $0.session }), let context = session.networks[name] else {
            throw NetleaseError(
                .unavailable,
                "the agent is not connected to a coordinator right now, or network '\(name)' is not built and "
                    + "verified yet; retry shortly"
            )
        }
        let summary = try await session.connection.network(name)
        return [
            "network": name, "subnet": context.spec.subnet.description, "bridge": context.config.bridge,
            "mtu": String(context.mtu), "gateway": context.bridgeAddress.description,
            "free": String(summary.counts.free), "state-dir": agent.configuration.stateDirectory,
        ]
    }

    private func fields(_ handout: Agent.Handout) -> Fields {
        var f = WireCodec.fields(lease: handout.lease)
        f.append("gateway", handout.gateway.description)
        f.append("mtu", String(handout.mtu))
        f.append("bridge", handout.bridge)
        return f
    }
}
