import NetleaseCore
import NetleaseWire
import XCTest

/// TTLs, cooldowns and heartbeats are measured by the coordinator's clock alone: nothing an agent or admin sends
/// carries a time, so a client's wrong wall clock cannot move them.
final class ClientTimeTests: XCTestCase {
    /// Field names that would carry a client's notion of time.
    static let timeFields: Set<String> = [
        "created", "renewed", "until", "time", "now", "heartbeat", "joined", "expires",
    ]

    func testNoRequestAClientCanSendCarriesATime() throws {
        let claim = HostClaim(host: "h1", epoch: 3)
        let requests: [Request] = [
            .join(host: "h1", underlay: IPv4Address(10, 0, 0, 1), networks: ["prod"]),
            .heartbeat(host: "h1", epoch: 3),
            .acquire(
                AcquireRequest(
                    network: "prod",
                    owner: "c",
                    claim: claim,
                    address: IPv4Address(10, 0, 0, 9),
                    ifname: "eth0"
                )
            ),
            .release(ReleaseRequest(network: "prod", owner: "c", claim: claim)),
            .reconcile(ReconcileRequest(network: "prod", owner: "c", address: IPv4Address(10, 0, 0, 9), claim: claim)),
            .reportConflict(network: "prod", address: IPv4Address(10, 0, 0, 9), mac: "02:00:00:00:00:01", claim: claim),
            .networkCreate(NetworkSpec(name: "prod", subnet: IPv4Subnet("10.0.0.0/24")!, created: 1_700_000_000_000)),
            .reserve(network: "prod", address: IPv4Address(10, 0, 0, 9), note: "n"),
        ]
        for request in requests {
            let keys = Set(request.line.fields.keys)
            XCTAssertTrue(keys.isDisjoint(with: Self.timeFields), "\(request.verb.rawValue) sends \(keys)")
        }
        // And the parser refuses a time smuggled into any request an agent sends.
        for line in [
            "HEARTBEAT host=h1 epoch=3 now=1", "JOIN host=h1 underlay=10.0.0.1 joined=1",
            "ACQUIRE network=prod owner=c renewed=1", "NETWORK-CREATE name=x subnet=10.0.0.0/24 created=1",
        ] {
            XCTAssertThrowsError(try Request(line: Substring(line)), line)
        }
    }
}
