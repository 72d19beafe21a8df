import NetleaseCore

/// What `netlease bench` was asked to do (the CLI validates the ranges).
public struct BenchOptions: Sendable {
    public var connections = 32
    public var pipeline = 1
    public var duration: Double = 10
    public var rate: Double = 0
    public var network = "bench"
    public var subnet = "10.250.0.0/16"
    public var prefill: Double = 0
    public var release = false
    public var clientKind = "lean"
    public var threads = 1
    public var keep = false
    public var agents = 0
    public var agentLeases = 0
    public var heartbeat: Double = 5
    public var agentStartPeers: Int?
    public var runs = 3
    public var coordinatorPid: Int32?
    public var json = false

    public init() {}

    public static let defaults = BenchOptions()

    /// Whether `host` names this machine (127.0.0.0/8, ::1, localhost): the only targets the bench loads.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        guard let address = IPv4Address(host) else { return false }
        return address.value >> 24 == 127
    }
}

/// The run finished but what the coordinator lists disagrees with what it acknowledged.
public struct BenchVerificationFailed: Error {}
