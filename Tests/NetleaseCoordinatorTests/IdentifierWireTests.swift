import Foundation
import NetleaseCore
import NetleaseTesting
import XCTest

/// Invariant 10 over a real connection: the other spelling of an owner or a network is refused naming the field,
/// and the live lease, the network and the host are untouched, also after a restart of the store.
final class IdentifierWireTests: XCTestCase {
    func testOtherSpellingsAreRefusedAndChangeNothingAcrossARestart() async throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-ids-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var harness = try await CoordinatorHarness.start(directory: directory)
        let raw = try RawLineClient(port: harness.endpoint.port)
        _ = try raw.readLine()
        let lines = [
            "AUTH secret=test-secret",
            "NETWORK-CREATE name=K8s subnet=172.30.0.0/16",
            "JOIN host=K1 underlay=192.0.2.1",
            "ACQUIRE network=K8s owner=caf%C3%A9",
            "ACQUIRE network=K8s owner=cafe%CC%81",  // the same text decomposed
            "RELEASE network=K8s owner=cafe%CC%81",
            "ACQUIRE network=K8s owner=web%00x",
            "NETWORK-DELETE name=%E2%84%AA8s",  // KELVIN SIGN
            "HOST-REMOVE host=%E2%84%AA1",
        ]
        try raw.send(lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(try raw.readLine(), "OK role=admin")
        XCTAssertTrue(try raw.readLine()?.hasPrefix("OK name=K8s ") ?? false)
        let join = try raw.readLine() ?? ""
        XCTAssertTrue(join.hasPrefix("OK count=1 host=K1 "), join)
        _ = try raw.readLines(1)
        let acquired = try raw.readLine() ?? ""
        XCTAssertTrue(acquired.contains("owner=caf%C3%A9"), acquired)
        for (line, field) in zip(lines.suffix(5), ["owner", "owner", "owner", "name", "host"]) {
            let reply = try raw.readLine() ?? ""
            XCTAssertTrue(reply.hasPrefix("ERR bad-request field '\(field)'"), "\(line) -> \(reply)")
        }

        await harness.stop(removeFiles: false)
        harness = try await CoordinatorHarness.start(directory: directory)
        let (networks, hosts, leases) = try await harness.connect { c in
            (
                try await c.networks().map(\.spec.name), try await c.hosts().map(\.name),
                try await c.leases(.init(network: "K8s"))
            )
        }
        XCTAssertEqual(networks, ["K8s"])
        XCTAssertEqual(hosts, ["K1"])
        XCTAssertEqual(leases.filter { !$0.isBridge }.map { Array($0.owner.utf8) }, [Array("caf\u{E9}".utf8)])
        await harness.stop()
    }
}
