import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// mTLS host binding with real certificates (TestPKI): a client certificate authenticates only the host it names
/// (subject CN or DNS subjectAltName), the cluster secret needs a certificate named by `tlsAdminSubjects`, and a
/// refused AUTH changes neither the connection's role nor any state.
final class HostCertificateTests: XCTestCase {
    var pki: TestPKI!
    var harness: CoordinatorHarness!
    var credentials: [String: HostCredential] = [:]

    override func setUp() async throws {
        pki = try TestPKI.make()
        harness = try await CoordinatorHarness.start(tls: pki.coordinator, tlsAdminSubjects: ["admin"])
        try await harness.connect(tls: pki.admin) { admin in
            _ = try await admin.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
            for host in ["h1", "h2"] {
                let credential = try HostCredential.generate(for: host)
                credentials[host] = credential
                try await admin.setHostCredential(host: host, hash: SecretHash(hashing: credential.text).stored)
            }
        }
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
        pki?.remove()
        pki = nil
    }

    func testACertificateAuthenticatesOnlyTheHostItNames() async throws {
        // By CN, and by DNS subjectAltName (h2's certificate has another CN).
        for (host, certificate) in [("h1", pki.host1), ("h2", pki.host2)] {
            let epoch = try await connect(certificate, secret: credentials[host]!.text) { connection in
                try await connection.join(host: host, underlay: IPv4Address(host == "h1" ? "10.9.0.1" : "10.9.0.2")!)
                    .epoch
            }
            XCTAssertGreaterThan(epoch, 0)
        }
        let before = try await state()
        for (certificate, secret, what) in [
            (pki.host1, credentials["h2"]!.text, "h1's certificate with h2's credential"),
            (pki.host2, credentials["h1"]!.text, "h2's certificate with h1's credential"),
            (pki.host1, harness.secret!.text, "a host certificate with the cluster secret"),
            (pki.agent, harness.secret!.text, "a certificate no --tls-admin-subject names, with the cluster secret"),
            (pki.agent, credentials["h1"]!.text, "a certificate naming no host, with h1's credential"),
        ] {
            do {
                try await connect(certificate, secret: secret) { _ in XCTFail("\(what) was authenticated") }
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .forbidden, "\(what): \(error)")
            }
            let after = try await state()
            XCTAssertEqual(after, before, "state changed after \(what)")
        }
    }

    func testAFailedBindingLeavesTheConnectionUnauthenticated() async throws {
        try await connect(pki.host1, secret: nil) { connection in
            await expectNetleaseError(.forbidden) {
                try await connection.send(.auth(secret: self.credentials["h2"]!.text))
            }
            await expectNetleaseError(.authRequired, "a refused AUTH authenticated the connection") {
                try await connection.send(.join(host: "h2", underlay: IPv4Address("10.9.0.2")!, networks: []))
            }
        }
    }

    func testTheAdminCertificateMayUseEveryCredentialAndAnyCertificateTheReaderSecret() async throws {
        try await connect(pki.admin, secret: harness.secret!.text) { admin in
            _ = try await admin.createNetwork(NetworkSpec(name: "dev", subnet: IPv4Subnet("172.31.0.0/24")!))
        }
        try await connect(pki.admin, secret: credentials["h1"]!.text) { connection in
            _ = try await connection.join(host: "h1", underlay: IPv4Address("10.9.0.1")!)
        }
        try await connect(pki.host2, secret: harness.readerSecret.text) { reader in
            let networks = try await reader.networks()
            XCTAssertEqual(networks.map(\.spec.name), ["dev", "prod"])
        }
    }

    // MARK: helpers

    private func connect<T: Sendable>(
        _ certificate: TLSSettings,
        secret: String?,
        _ body: (NetleaseConnection) async throws -> T
    ) async throws -> T {
        try await NetleaseConnection.connect(to: harness.endpoint, secret: secret, tls: certificate, body)
    }

    /// Networks, hosts and leases as the admin lists them.
    private func state() async throws -> [String] {
        try await connect(pki.admin, secret: harness.secret!.text) { admin in
            let networks = try await admin.networks().map { "\($0.spec.name) \($0.counts)" }
            let hosts = try await admin.hosts().map { "\($0.name) \($0.epoch) \($0.state)" }
            let leases = try await admin.leases().map { "\($0.network) \($0.address) \($0.owner) \($0.host)" }
            return networks + hosts + leases
        }
    }
}
