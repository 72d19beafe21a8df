import Foundation
import HostNetwork
import NetleaseClient
import NetleaseCore
import NetleaseStore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// `netlease tls init` as an operator runs it: the built executable writes the files, and those files carry a real
/// mutual-TLS coordinator and its clients (the admin CLI and the protocol client), with names checked; `openssl
/// verify` accepts the chains.
final class TLSInitCommandTests: XCTestCase {
    var directory: URL!

    override func setUp() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("netlease-tls-init-\(UUID())")
    }

    override func tearDown() async throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func initialize(_ extra: [String] = []) async throws -> ExecutableRun {
        try await BuiltExecutable.run(
            "netlease",
            [
                "tls", "init", "--out", directory.path, "--coordinator-address", "127.0.0.1",
                "--coordinator-name", "coordinator.netlease.test", "--host", "host1", "--host", "admin-alice",
            ] + extra
        )
    }

    private func settings(_ name: String, serverName: String? = nil) -> TLSSettings {
        TLSSettings(
            certificateChainFile: path("\(name).pem"),
            privateKeyFile: path("\(name).key"),
            trustedCAFile: path("ca.pem"),
            serverName: serverName
        )
    }

    /// Whether a connection with `tls` fails (at the handshake, on either side) instead of being served.
    private static func isRefused(_ harness: CoordinatorHarness, _ tls: TLSSettings) async throws -> Bool {
        do {
            try await withDeadline(.seconds(30), "a connection that should be refused") {
                try await harness.connect(tls: tls) { _ = try await $0.hosts() }
            }
            return false
        } catch let error as DeadlineExceeded {
            throw error
        } catch {
            return true
        }
    }

    func testFilesCarryAMutualTLSCoordinatorAndItsClients() async throws {
        let run = try await initialize()
        XCTAssertEqual(run.status, 0, run.stderr)

        let harness = try await CoordinatorHarness.start(
            tls: settings("coordinator"),
            tlsAdminSubjects: ["admin-alice"]
        )
        do {
            // The admin CLI with the admin's certificate, checking the coordinator's IP subjectAltName.
            let secretFile = path("admin-secret")
            try XCTUnwrap(harness.secret?.text).write(toFile: secretFile, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile)
            let create = try await BuiltExecutable.run(
                "netlease",
                [
                    "network", "create", "prod", "--subnet", "172.30.0.0/16", "--coordinator",
                    harness.endpoint.description, "--secret-file", secretFile, "--tls-cert", path("admin-alice.pem"),
                    "--tls-key", path("admin-alice.key"), "--tls-ca", path("ca.pem"), "--tls-server-name",
                    "127.0.0.1",
                ]
            )
            XCTAssertEqual(create.status, 0, create.stderr)

            // The admin's certificate gives host1 its credential; host1's certificate with that credential joins,
            // checking the coordinator's DNS name, and leases as host1.
            let credential = try HostCredential.generate(for: "host1")
            try await harness.connect(tls: settings("admin-alice", serverName: "127.0.0.1")) {
                try await $0.setHostCredential(host: "host1", hash: SecretHash(hashing: credential.text).stored)
            }
            let host1 = settings("host1", serverName: "coordinator.netlease.test")
            let lease = try await NetleaseConnection.connect(to: harness.endpoint, secret: credential.text, tls: host1)
            {
                let joined = try await $0.join(host: "host1", underlay: IPv4Address("192.0.2.1")!, networks: ["prod"])
                let claim = HostClaim(host: "host1", epoch: joined.epoch)
                return try await $0.acquire(AcquireRequest(network: "prod", owner: "c1", claim: claim))
            }
            let listed = try await harness.connect(tls: settings("admin-alice", serverName: "127.0.0.1")) {
                try await $0.leases(.init(network: "prod"))
            }
            XCTAssertEqual(listed.filter { $0.owner == "c1" }.map(\.address), [lease.address])

        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// A second CA whose coordinator is named by DNS only: its name is checked for real (with an IP subjectAltName,
    /// NIOSSL also accepts the certificate by the address connected to), and neither CA's clients pass the other's
    /// coordinator.
    func testNamesAreCheckedAndAnotherCAsCertificatesAreRefused() async throws {
        let first = try await initialize()
        XCTAssertEqual(first.status, 0, first.stderr)
        let other = directory.appendingPathComponent("other")
        let second = try await BuiltExecutable.run(
            "netlease",
            ["tls", "init", "--out", other.path, "--coordinator-name", "coordinator.other.test", "--host", "host1"]
        )
        XCTAssertEqual(second.status, 0, second.stderr)
        func otherSettings(_ name: String, serverName: String? = nil) -> TLSSettings {
            TLSSettings(
                certificateChainFile: other.appendingPathComponent("\(name).pem").path,
                privateKeyFile: other.appendingPathComponent("\(name).key").path,
                trustedCAFile: other.appendingPathComponent("ca.pem").path,
                serverName: serverName
            )
        }
        let harness = try await CoordinatorHarness.start(tls: settings("coordinator"))
        let otherHarness: CoordinatorHarness
        do {
            otherHarness = try await CoordinatorHarness.start(tls: otherSettings("coordinator"))
        } catch {
            await harness.stop()
            throw error
        }
        do {
            var stranger = otherSettings("host1")
            stranger.trustedCAFile = path("ca.pem")
            let strangerRefused = try await Self.isRefused(harness, stranger)
            XCTAssertTrue(strangerRefused, "a certificate signed by another CA was accepted")

            let rightName = otherSettings("host1", serverName: "coordinator.other.test")
            let hosts = try await NetleaseConnection.connect(
                to: otherHarness.endpoint,
                secret: otherHarness.readerSecret.text,
                tls: rightName
            ) { try await $0.hosts() }
            XCTAssertTrue(hosts.isEmpty)
            let wrongName = otherSettings("host1", serverName: "coordinator.netlease.test")
            let wrongNameRefused = try await Self.isRefused(otherHarness, wrongName)
            XCTAssertTrue(wrongNameRefused, "a coordinator certificate passed for a name it does not carry")

            // The rightful host is still served.
            let served = try await NetleaseConnection.connect(
                to: harness.endpoint,
                secret: harness.readerSecret.text,
                tls: settings("host1")
            ) { try await $0.hosts() }
            XCTAssertTrue(served.isEmpty)
        } catch {
            await harness.stop()
            await otherHarness.stop()
            throw error
        }
        await harness.stop()
        await otherHarness.stop()
    }

    func testOpenSSLVerifiesTheChainsAndReadsTheNames() async throws {
        let openssl = "/usr/bin/openssl"
        guard FileManager.default.isExecutableFile(atPath: openssl) else {
            try missingCapability("\(openssl) is missing: the test checks the chains with openssl verify")
        }
        let first = try await initialize()
        XCTAssertEqual(first.status, 0, first.stderr)
        let verify = try ChildProcess.run(
            executable: openssl,
            arguments: [
                "verify", "-CAfile", path("ca.pem"), "-x509_strict", path("coordinator.pem"), path("host1.pem"),
                path("admin-alice.pem"),
            ],
            timeout: .seconds(30)
        )
        let verified = String(decoding: verify.stdout, as: UTF8.self)
        XCTAssertEqual(verify.termination.shellStatus, 0, String(decoding: verify.stderr, as: UTF8.self))
        for name in ["coordinator", "host1", "admin-alice"] {
            XCTAssertTrue(verified.contains("\(path("\(name).pem")): OK"), verified)
        }
        let purpose = try ChildProcess.run(
            executable: openssl,
            arguments: ["verify", "-CAfile", path("ca.pem"), "-purpose", "sslserver", path("host1.pem")],
            timeout: .seconds(30)
        )
        XCTAssertNotEqual(purpose.termination.shellStatus, 0, "a host certificate passed as a TLS server")
        let text = try ChildProcess.run(
            executable: openssl,
            arguments: ["x509", "-in", path("coordinator.pem"), "-noout", "-ext", "subjectAltName"],
            timeout: .seconds(30)
        )
        let names = String(decoding: text.stdout, as: UTF8.self)
        XCTAssertTrue(names.contains("DNS:coordinator.netlease.test"), names)
        XCTAssertTrue(names.contains("IP Address:127.0.0.1"), names)
    }

    func testKeysAre0600AndNothingIsEverOverwritten() async throws {
        let run = try await initialize(["--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let files = try XCTUnwrap((try run.stdoutJSON() as? [String: Any])?["files"] as? [[String: String]])
        XCTAssertEqual(files.count, 8)
        var before: [String: Data] = [:]
        for name in ["ca", "coordinator", "host1", "admin-alice"] {
            for (suffix, mode) in [("pem", 0o644), ("key", 0o600)] {
                let file = path("\(name).\(suffix)")
                let attributes = try FileManager.default.attributesOfItem(atPath: file)
                XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, mode, file)
                XCTAssertTrue(files.contains { $0["path"] == file && $0["mode"] == String(mode, radix: 8) })
                before[file] = try Data(contentsOf: URL(fileURLWithPath: file))
            }
        }
        let directoryMode = try FileManager.default.attributesOfItem(atPath: directory.path)[.posixPermissions]
        XCTAssertEqual((directoryMode as? NSNumber)?.intValue, 0o700)

        // A second run with one more host stops at the first existing file and writes nothing.
        let again = try await initialize(["--host", "host2"])
        XCTAssertEqual(again.status, 1)
        XCTAssertEqual(
            again.stderr,
            "error: bad-request: \(path("ca.pem")) exists; tls init never overwrites a file (nothing written)\n"
        )
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("host2.pem")))
        for (file, contents) in before {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: file)), contents, "\(file) changed")
        }
    }

    func testBadCommandLinesAreUsageErrorsNamingTheValue() {
        let out = ["tls", "init", "--out", "/nonexistent/tls"]
        assertRefused(
            out,
            "give the coordinator's --coordinator-address or --coordinator-name (clients reach it by them)"
        )
        assertRefused(
            out + ["--coordinator-address", "10.0.0.300"],
            "--coordinator-address '10.0.0.300' is not an IPv4 or IPv6 address"
        )
        assertRefused(
            out + ["--coordinator-name", "bad_name.example"],
            "--coordinator-name 'bad_name.example' is not a DNS name (labels of letters, digits and '-', joined by '.')"
        )
        assertRefused(
            out + ["--coordinator-address", "10.0.0.1", "--host", "../etc"],
            "--host '../etc' must be 1-63 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
        assertRefused(
            out + ["--coordinator-address", "10.0.0.1", "--host", "ca"],
            "--host 'ca' would overwrite the ca's own files; choose another"
        )
        assertRefused(
            out + ["--coordinator-address", "10.0.0.1", "--host", "h1", "--host", "h1"],
            "--host 'h1' is given twice"
        )
        assertRefused(
            out + ["--coordinator-address", "10.0.0.1", "--ca-days", "10", "--days", "11"],
            "--days must be 1 to --ca-days (10): a certificate outliving its CA fails"
        )
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/nonexistent/tls"))
    }
}
