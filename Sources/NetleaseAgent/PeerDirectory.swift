import NetleaseCore
import NetleaseWire

/// The cluster's hosts as this agent last heard of them, and the peers each network's mesh should reach. Pure:
/// events in, peer maps out.
public struct PeerDirectory: Sendable, Equatable {
    public private(set) var hosts: [String: HostRecord] = [:]
    public let me: String

    public init(me: String, hosts: [HostRecord] = []) {
        self.me = me
        for host in hosts { self.hosts[host.name] = host }
    }

    /// Applies an event; returns whether the set of hosts or their addresses or states changed.
    @discardableResult
    public mutating func apply(_ event: Event) -> Bool {
        switch event {
        case .host(let host):
            let before = hosts[host.name]
            hosts[host.name] = host
            return before?.underlay != host.underlay || before?.state != host.state || before?.networks != host.networks
        case .hostRemoved(let name):
            return hosts.removeValue(forKey: name) != nil
        case .network, .networkDeleted, .keepalive:
            return false
        }
    }

    /// Hosts that are up and serve `network`, other than this one: host name → underlay address.
    public func peers(of network: String) -> [String: IPv4Address] {
        var peers: [String: IPv4Address] = [:]
        for host in hosts.values where host.name != me && host.state == .up && host.networks.contains(network) {
            peers[host.name] = host.underlay
        }
        return peers
    }
}
