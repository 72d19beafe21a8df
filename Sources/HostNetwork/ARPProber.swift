import NetleaseCore

/// How long and how often to probe.
public struct ARPProbeOptions: Sendable, Equatable {
    /// Probes sent, `interval` apart.
    public var probes: Int
    public var interval: Duration
    /// Total time to listen for an answer, from the first probe (extended to cover the last probe).
    public var timeout: Duration

    public init(probes: Int = 2, interval: Duration = .milliseconds(100), timeout: Duration = .milliseconds(300)) {
        self.probes = max(1, probes)
        self.interval = interval
        self.timeout = timeout
    }
}

/// Asks the link whether anyone already uses an address (RFC 5227 ARP probe) before it is handed to a container.
public protocol ARPProber: Sendable {
    /// Probes for `address` on `interface` (the network's bridge). Returns the MAC address of whatever answered,
    /// as lowercase `aa:bb:cc:dd:ee:ff`, or nil when nothing did within the probe time.
    func probe(_ address: IPv4Address, on interface: String) async throws -> String?
}
