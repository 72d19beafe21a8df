import Foundation
import NetleaseLab
import XCTest

/// `--listen 127.0.0.1:PORT` binds an IPv4 socket on every host. On a host whose only IPv4 address is loopback but
/// which has an IPv6 address (a namespace here), glibc's `getaddrinfo` with its default flags (AI_ADDRCONFIG,
/// AI_V4MAPPED) answers `127.0.0.1` with the IPv6 address `::ffff:127.0.0.1`; a listener that resolved its literal
/// bound an IPv6 socket and announced `listening on ::ffff:127.0.0.1:PORT`, which scripts waiting for the address they
/// asked for never recognise.
final class ListenAddressTests: LabTestCase {
    func testAnIPv4LiteralIsBoundAsWrittenOnAHostWithOnlyIPv6Configured() async throws {
        let host = try await lab.addNamespace(role: "v6only")
        try await lab.run(host, ["ip", "link", "add", "v6a", "type", "veth", "peer", "name", "v6b"])
        // nodad: the address is usable (not tentative) at once, as a long-configured host's is.
        try await lab.run(host, ["ip", "addr", "add", "fd00:6::1/64", "dev", "v6a", "nodad"])
        try await lab.run(host, ["ip", "link", "set", "v6a", "up"])
        try await lab.run(host, ["ip", "link", "set", "v6b", "up"])

        let data = (lab.directory as NSString).appendingPathComponent("v6only-data")
        let coordinator = try lab.spawn(
            host,
            [cluster.binary, "coordinator", "--listen", "127.0.0.1:0", "--data", data, "--log-level", "warning"],
            name: "v6only-coordinator"
        )
        let announced = await coordinator.line(containing: "listening on", timeout: .seconds(60))
        let line = try XCTUnwrap(announced, "no listening line: \(coordinator.log)")
        XCTAssertTrue(line.contains("listening on 127.0.0.1:"), line)
        let port = try XCTUnwrap(line.split(separator: ":").last.map(String.init), line)

        // It serves there: the admin CLI, in the same namespace, reaches it by the address it announced.
        let secretFile = (data as NSString).appendingPathComponent("cluster-secret")
        let listed = try await lab.run(
            host,
            [
                cluster.binary, "network", "list", "--json", "--coordinator", "127.0.0.1:\(port)", "--secret-file",
                secretFile,
            ]
        )
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertTrue(listed.stdout.hasPrefix("["), listed.stdout)
    }
}
