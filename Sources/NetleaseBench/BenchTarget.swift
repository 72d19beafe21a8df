import NetleaseTransport

/// Where a run's load goes: the coordinator, the secret it authenticates with, the network it leases in.
struct BenchTarget: Sendable {
    var endpoint: Endpoint
    var secret: String?
    var network: String
}
