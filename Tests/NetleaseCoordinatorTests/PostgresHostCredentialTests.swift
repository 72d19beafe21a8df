import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// Host credentials on several coordinators sharing one PostgreSQL database (the real executable): a standby
/// refuses host credentials with `not-leader` like every store-backed verb, and after a failover the new leader
/// honours and refuses exactly what the old one issued and revoked (a removed host's credential included).
final class PostgresHostCredentialTests: PostgresCoordinatorTestCase {
    func testANewLeaderHonoursAndRefusesWhatTheOldOneIssuedAndRevoked() async throws {
        let url = try makeDatabase()
        let first = try await start(makeDirectory(), ["--store", url])
        let admin = try first.secret
        try await waitUntilLeading(first.endpoint, secret: admin)
        let second = try await start(makeDirectory(), ["--store", url])
        var credentials: [String: HostCredential] = [:]
        try await first.connect { connection in
            _ = try await connection.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            for host in ["h1", "h2", "h3"] {
                let credential = try HostCredential.generate(for: host)
                credentials[host] = credential
                try await connection.setHostCredential(host: host, hash: SecretHash(hashing: credential.text).stored)
            }
            try await connection.revokeHostCredential(host: "h2")
        }
        // A removed host's credential goes with it, in the shared database.
        try await NetleaseConnection.connect(to: first.endpoint, secret: credentials["h3"]!.text) { connection in
            _ = try await connection.join(host: "h3", underlay: IPv4Address(10, 0, 0, 3), networks: ["prod"])
        }
        let removal = try await first.connect { try await $0.removeHost("h3") }
        XCTAssertEqual(removal, HostRemoval(released: 1, revoked: true, closed: 0))
        await expectNetleaseError(.notLeader, "a host credential on the standby") {
            try await NetleaseConnection.connect(to: second.endpoint, secret: credentials["h1"]!.text) { _ in }
        }

        first.kill9()
        try await waitUntilLeading(second.endpoint, secret: admin)
        try await NetleaseConnection.connect(to: second.endpoint, secret: credentials["h1"]!.text) { connection in
            let joined = try await connection.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1), networks: ["prod"])
            _ = try await connection.acquire(
                AcquireRequest(network: "prod", owner: "c1", claim: HostClaim(host: "h1", epoch: joined.epoch))
            )
            await expectNetleaseError(.forbidden, "a network created with a host credential") {
                try await connection.createNetwork(NetworkSpec(name: "dev", subnet: IPv4Subnet("172.31.0.0/24")!))
            }
        }
        await expectNetleaseError(.authFailed, "the credential revoked on the old leader") {
            try await NetleaseConnection.connect(to: second.endpoint, secret: credentials["h2"]!.text) { _ in }
        }
        await expectNetleaseError(.authFailed, "the credential of the host removed on the old leader") {
            try await NetleaseConnection.connect(to: second.endpoint, secret: credentials["h3"]!.text) { _ in }
        }
        let hosts = try await NetleaseConnection.connect(to: second.endpoint, secret: admin) { try await $0.hosts() }
        XCTAssertEqual(hosts.map(\.name), ["h1"])
    }
}
