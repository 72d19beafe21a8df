import NetleaseCore
import NetleaseLab
import Synchronization
import XCTest

@testable import HostNetwork

/// `PacketSocketARPProber` against neighbours that answer late, on a real bridge in a lab namespace.
final class RootARPProbeTests: NamespaceTestCase {
    /// A bridge `br0` in a fresh namespace with one port leading to a second namespace's `eth0`; returns both.
    private func bridgeWithNeighbour() async throws -> (host: String, neighbour: String) {
        let host = try await lab.addNamespace(role: "h1")
        let neighbour = try await lab.addNamespace(role: "nb")
        try await lab.run(host, ["ip", "link", "add", "br0", "type", "bridge"])
        try await lab.run(host, ["ip", "link", "set", "br0", "up"])
        try await lab.run(
            host,
            ["ip", "link", "add", "p0", "type", "veth", "peer", "name", "eth0", "netns", neighbour]
        )
        try await lab.run(host, ["ip", "link", "set", "p0", "master", "br0", "up"])
        try await lab.run(neighbour, ["ip", "link", "set", "eth0", "up"])
        let up = await eventually {
            let near = try? await self.lab.links(in: host)["p0"]?["operstate"] as? String
            let far = try? await self.lab.links(in: neighbour)["eth0"]?["operstate"] as? String
            return near == "UP" && far == "UP"
        }
        XCTAssertTrue(up, "veth never came up")
        return (host, neighbour)
    }

    func testTheDefaultProbeHearsNeighboursThatAnswerLate() async throws {
        let (host, neighbour) = try await bridgeWithNeighbour()
        let soon = IPv4Address(172, 30, 0, 50)
        let late = IPv4Address(172, 30, 0, 51)
        let responder = try LabARPResponder.start(
            in: neighbour,
            interface: "eth0",
            answering: [soon: .milliseconds(400), late: .milliseconds(1200)],
            lab: lab
        )
        let prober = PacketSocketARPProber(namespace: .named(host))
        let first = try await prober.probe(soon, on: "br0")
        XCTAssertEqual(first, responder.mac, "an answer 0.4 s after the probe was missed")
        let second = try await prober.probe(late, on: "br0")
        XCTAssertEqual(second, responder.mac, "an answer 1.2 s after the probe was missed")
        let free = try await prober.probe(IPv4Address(172, 30, 0, 52), on: "br0")
        XCTAssertNil(free)
    }

    /// Just under the bound the defaults guarantee whatever the random intervals: an answer less than `wait` (2 s)
    /// after a probe — even after the last one — is heard. (An answer to the first probe is heard up to the end of
    /// the whole window, 4-6 s.)
    func testTheDefaultProbeHearsAnAnswerJustUnderTwoSecondsLate() async throws {
        let (host, neighbour) = try await bridgeWithNeighbour()
        let address = IPv4Address(172, 30, 0, 53)
        let responder = try LabARPResponder.start(
            in: neighbour,
            interface: "eth0",
            answering: [address: .milliseconds(1900)],
            lab: lab
        )
        let heard = try await PacketSocketARPProber(namespace: .named(host)).probe(address, on: "br0")
        XCTAssertEqual(heard, responder.mac)
    }
}

extension RootARPProbeTests {
    func testAnswersFromIgnoredMACsDoNotCount() async throws {
        let (host, neighbour) = try await bridgeWithNeighbour()
        let address = IPv4Address(172, 30, 0, 50)
        let responder = try LabARPResponder.start(
            in: neighbour,
            interface: "eth0",
            answering: [address: .milliseconds(50)],
            lab: lab
        )
        let prober = PacketSocketARPProber(namespace: .named(host))
        let short = ARPProbeOptions(
            probes: 2,
            interval: .milliseconds(100)...(.milliseconds(100)),
            wait: .milliseconds(400)
        )
        let ignored = try await prober.probe(address, on: "br0", options: short, ignoring: [responder.mac])
        XCTAssertNil(ignored, "this host's own container counted as a conflict")
        XCTAssertGreaterThan(responder.counts.answers, 0, "the neighbour never answered")
        let heard = try await prober.probe(address, on: "br0", options: short, ignoring: ["02:00:00:00:00:01"])
        XCTAssertEqual(heard, responder.mac)
    }

    func testTheWatchReportsAddressesClaimedOnTheBridge() async throws {
        let (host, neighbour) = try await bridgeWithNeighbour()
        let links = try await lab.links(in: neighbour)
        let mac = try XCTUnwrap(links["eth0"]?["address"] as? String)
        let prober = PacketSocketARPProber(namespace: .named(host))
        let seen = Mutex<ARPClaim?>(nil)
        let watching = Task {
            for try await claim in prober.watch("br0") where claim.address == IPv4Address(172, 30, 0, 60) {
                seen.withLock { $0 = claim }
                return
            }
        }
        defer { watching.cancel() }
        // The neighbour takes .60 and asks for .61: each ARP request claims .60. Asked until the watch has seen one
        // (it may open after the first).
        try await lab.run(neighbour, ["ip", "addr", "add", "172.30.0.60/24", "dev", "eth0"])
        let heard = await eventually {
            _ = try? await self.lab.run(neighbour, ["ping", "-c", "1", "-W", "1", "172.30.0.61"])
            return seen.withLock { $0 != nil }
        }
        XCTAssertTrue(heard, "the watch saw no claim")
        XCTAssertEqual(seen.withLock { $0 }, ARPClaim(address: IPv4Address(172, 30, 0, 60), mac: mac))
    }
}
