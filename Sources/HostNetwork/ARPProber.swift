import NetleaseCore

/// How long and how often to probe.
///
/// The defaults are RFC 5227's: PROBE_NUM 3 probes, PROBE_MIN..PROBE_MAX 1-2 s apart (a random time each), and
/// ANNOUNCE_WAIT 2 s of listening after the last: about 4-6 s in all. The former 2 probes 100 ms apart with a 300 ms
/// window missed a neighbour that answered 0.4 s late (a loaded host, a slow userspace stack, a path through a
/// tunnel). That length is why the agent probes ahead of demand (its address pool) and gives a container an
/// address it probed earlier, re-checked briefly (`recheck`).
public struct ARPProbeOptions: Sendable, Equatable {
    /// Probes sent (at least 1).
    public var probes: Int
    /// Time between two probes: a random value in this range each time.
    public var interval: ClosedRange<Duration>
    /// Listening after the last probe.
    public var wait: Duration

    public init(
        probes: Int = 3,
        interval: ClosedRange<Duration> = .seconds(1)...(.seconds(2)),
        wait: Duration = .seconds(2)
    ) {
        self.probes = max(1, probes)
        self.interval = max(.zero, interval.lowerBound)...max(.zero, interval.upperBound)
        self.wait = max(.zero, wait)
    }

    /// The brief re-check of an address probed in full earlier (and watched since), right before it is handed out:
    /// one probe and 300 ms of listening. It catches a device configured since that answers promptly; the full
    /// probe and the watch of the bridge caught the slow ones.
    public static let recheck = ARPProbeOptions(probes: 1, interval: .zero...(.zero), wait: .milliseconds(300))

    /// The longest a probe with these options listens, from the first probe.
    public var longest: Duration { interval.upperBound * (probes - 1) + wait }
}

/// An ARP packet on a watched link that claims an address: its sender IP and sender MAC.
public struct ARPClaim: Sendable, Equatable {
    public var address: IPv4Address
    /// Lowercase `aa:bb:cc:dd:ee:ff`.
    public var mac: String

    public init(address: IPv4Address, mac: String) {
        self.address = address
        self.mac = mac
    }
}

/// Asks the link whether anyone already uses an address (RFC 5227 ARP probe) before it is handed to a container,
/// and watches it for addresses claimed afterwards (RFC 5227 ongoing conflict detection).
public protocol ARPProber: Sendable {
    /// Probes for `address` on `interface` (the network's bridge). Returns the MAC address of whatever answered,
    /// as lowercase `aa:bb:cc:dd:ee:ff`, or nil when nothing did within the probe time. Answers from a MAC in
    /// `ignoring` (this host's own container for the address) do not count, and the probe goes on listening.
    func probe(
        _ address: IPv4Address,
        on interface: String,
        options: ARPProbeOptions,
        ignoring: Set<String>
    )
        async throws -> String?

    /// Every ARP request or reply seen on `interface` whose sender claims an address (sender IP not 0.0.0.0),
    /// except the interface's own, until the consumer stops iterating. Ends with an error when the link cannot be
    /// watched (it disappeared, the socket failed).
    func watch(_ interface: String) -> AsyncThrowingStream<ARPClaim, any Error>
}

extension ARPProber {
    /// A probe with RFC 5227's timing that counts every answer.
    public func probe(_ address: IPv4Address, on interface: String) async throws -> String? {
        try await probe(address, on: interface, options: ARPProbeOptions(), ignoring: [])
    }
}
