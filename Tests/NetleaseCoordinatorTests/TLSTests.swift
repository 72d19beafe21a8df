import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

/// The coordinator with `--tls-*`: only clients presenting a certificate signed by the cluster CA get a greeting;
/// everyone else is refused at the handshake while the good clients keep being served. Certificates are made at
/// test time with the `openssl` CLI in a temporary directory.
///
/// No test waits on a clock: every refused connection ends because the server closes it at the failed handshake
/// (and, failing that, the server's own handshake deadline would end it).
final class TLSTests: XCTestCase {
    var pki: TestPKI!
    var harness: CoordinatorHarness!

    override func setUp() async throws {
        pki = try TestPKI.make()
        // The CA-signed client these tests use is the admin's; HostCertificateTests binds hosts.
        harness = try await CoordinatorHarness.start(tls: pki.coordinator, tlsAdminSubjects: ["agent"])
        try await harness.connect(tls: pki.agent) { connection in
            _ = try await connection.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/16")!))
        }
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
        pki?.remove()
        pki = nil
    }

    func testCASignedClientConnectsAuthenticatesAndAcquires() async throws {
        let lease = try await harness.connect(tls: pki.agent) { connection in
            XCTAssertEqual(connection.greeting, Greeting(authRequired: true))
            return try await connection.acquire(AcquireRequest(network: "prod", owner: "c1"))
        }
        let listed = try await harness.connect(tls: pki.agent) { try await $0.leases(.init(network: "prod")) }
        XCTAssertEqual(listed.map(\.address), [lease.address])
        XCTAssertEqual(listed.map(\.owner), ["c1"])
    }

    func testTheSecretStillGatesStateChangesInsideTLS() async throws {
        try await harness.connect(authenticated: false, tls: pki.agent) { connection in
            do {
                _ = try await connection.acquire(AcquireRequest(network: "prod", owner: "sneaky"))
                XCTFail("an unauthenticated TLS client changed state")
            } catch let error as NetleaseError {
                XCTAssertEqual(error.code, .authRequired)
            }
        }
        let listed = try await harness.connect(tls: pki.agent) { try await $0.leases(.init(network: "prod")) }
        XCTAssertTrue(listed.isEmpty)
    }

    func testClientWithoutCertificateIsRefused() async throws {
        try await whileAGoodClientIsServed {
            let (received, error) = try await TestPKI.speakTLSWithoutCertificate(
                port: harness.endpoint.port,
                trusting: pki.caFile
            )
            XCTAssertFalse(received.contains(WireLimits.protocolName), "a client without a certificate was greeted")
            XCTAssertNotNil(error, "the handshake without a client certificate did not fail")
        }
    }

    func testClientWithSelfSignedCertificateIsRefused() async throws {
        try await whileAGoodClientIsServed {
            try await assertRefused(pki.selfSigned)
        }
    }

    func testPlaintextClientGetsNoGreetingAndIsDisconnected() async throws {
        try await whileAGoodClientIsServed {
            let raw = try RawLineClient(port: harness.endpoint.port)
            try raw.send("PING\n")
            var lines: [String] = []
            do {
                while let line = try raw.readLine() { lines.append(line) }
            } catch let error as POSIXError where error.code == .ECONNRESET {
                // A reset after the refusal is a disconnect as good as an orderly close.
            }
            XCTAssertFalse(lines.contains { $0.contains(WireLimits.protocolName) }, "plaintext client got \(lines)")
            XCTAssertFalse(lines.contains { $0.hasPrefix("OK") }, "plaintext client got an answer: \(lines)")
        }
    }

    /// The real client without TLS sends nothing before the greeting, so its handshake never starts: the server's
    /// handshake deadline (the line timeout, 1 s here) ends it, and the client fails.
    func testPlaintextClientWaitingForTheGreetingIsClosedAtTheHandshakeDeadline() async throws {
        let impatient = try await CoordinatorHarness.start(
            lineTimeout: .seconds(1),
            tls: pki.coordinator,
            tlsAdminSubjects: ["agent"]
        )
        do {
            try await assertRefused(nil, on: impatient)
            let greeting = try await impatient.connect(tls: pki.agent) { $0.greeting }
            XCTAssertTrue(greeting.authRequired)
        } catch {
            await impatient.stop()
            throw error
        }
        await impatient.stop()
    }

    func testServerNameIsVerifiedWhenGiven() async throws {
        // The default coordinator certificate carries IP:127.0.0.1, the address connected to.
        var byAddress = pki.agent
        byAddress.serverName = "127.0.0.1"
        let greeting = try await harness.connect(tls: byAddress) { $0.greeting }
        XCTAssertTrue(greeting.authRequired)

        // A coordinator known by DNS name only: the name must match.
        let named = try await CoordinatorHarness.start(tls: pki.namedCoordinator, tlsAdminSubjects: ["agent"])
        do {
            var right = pki.agent
            right.serverName = "coordinator.netlease.test"
            let greeting = try await named.connect(tls: right) { $0.greeting }
            XCTAssertTrue(greeting.authRequired)
            var wrong = pki.agent
            wrong.serverName = "coordinator.elsewhere.test"
            try await assertRefused(wrong, on: named)
        } catch {
            await named.stop()
            throw error
        }
        await named.stop()
    }

    func testUnreadableOrBadFilesAreBadRequestsNamingTheFile() throws {
        let missing = pki.directory.appendingPathComponent("missing.pem").path
        let notPEM = pki.directory.appendingPathComponent("not.pem").path
        try Data("this is not PEM\n".utf8).write(to: URL(fileURLWithPath: notPEM))
        let cases: [(TLSSettings, String)] = [
            (
                TLSSettings(
                    certificateChainFile: missing,
                    privateKeyFile: pki.agent.privateKeyFile,
                    trustedCAFile: pki.caFile
                ), missing
            ),
            (
                TLSSettings(
                    certificateChainFile: notPEM,
                    privateKeyFile: pki.agent.privateKeyFile,
                    trustedCAFile: pki.caFile
                ), notPEM
            ),
            (
                TLSSettings(
                    certificateChainFile: pki.agent.certificateChainFile,
                    privateKeyFile: notPEM,
                    trustedCAFile: pki.caFile
                ), notPEM
            ),
            (
                TLSSettings(
                    certificateChainFile: pki.agent.certificateChainFile,
                    privateKeyFile: pki.agent.privateKeyFile,
                    trustedCAFile: pki.directory.path
                ),
                pki.directory.path
            ),
            // A key that belongs to another certificate.
            (
                TLSSettings(
                    certificateChainFile: pki.agent.certificateChainFile,
                    privateKeyFile: pki.coordinator.privateKeyFile,
                    trustedCAFile: pki.caFile
                ),
                pki.coordinator.privateKeyFile
            ),
        ]
        for (settings, file) in cases {
            for asServer in [true, false] {
                XCTAssertThrowsError(try settings.validate(asServer: asServer)) { error in
                    guard let error = error as? NetleaseError else { return XCTFail("\(error)") }
                    XCTAssertEqual(error.code, .badRequest)
                    XCTAssertTrue(error.message.contains(file), "\(error.message) does not name \(file)")
                }
            }
        }
        try pki.agent.validate(asServer: false)
        try pki.coordinator.validate(asServer: true)
    }

    // MARK: - Helpers

    /// Runs `body` while a CA-signed client holds a connection open; that connection must answer before and after,
    /// and nothing but its own leases may appear.
    private func whileAGoodClientIsServed(_ body: () async throws -> Void) async throws {
        try await harness.connect(tls: pki.agent) { good in
            _ = try await good.acquire(AcquireRequest(network: "prod", owner: "before"))
            try await body()
            _ = try await good.acquire(AcquireRequest(network: "prod", owner: "after"))
            let owners = try await good.leases(.init(network: "prod")).map(\.owner)
            XCTAssertEqual(Set(owners), ["before", "after"], "a refused client changed state")
            let hosts = try await good.hosts()
            XCTAssertTrue(hosts.isEmpty, "a refused client changed state")
        }
    }

    /// The real client with `settings` (nil: plaintext) fails to connect, and its body never runs.
    private func assertRefused(
        _ settings: TLSSettings?,
        on server: CoordinatorHarness? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        do {
            try await (server ?? harness).connect(tls: settings) { connection in
                XCTFail("a refused client was greeted", file: file, line: line)
                _ = try await connection.acquire(AcquireRequest(network: "prod", owner: "intruder"))
            }
            XCTFail("the connection succeeded", file: file, line: line)
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .unavailable, "\(error)", file: file, line: line)
        }
    }
}

/// A throwaway certificate authority with two coordinator certificates (subjectAltName IP 127.0.0.1 and DNS
/// localhost; DNS coordinator.netlease.test only), CA-signed client certificates (agent, h1, h2 by DNS name,
/// admin) and a self-signed one, made with the `openssl` CLI.
struct TestPKI {
    static let openssl = "/usr/bin/openssl"

    let directory: URL
    let caFile: String
    /// The coordinator's side.
    let coordinator: TLSSettings
    /// A coordinator whose certificate names it by DNS only.
    let namedCoordinator: TLSSettings
    /// A client with a certificate the CA signed.
    let agent: TLSSettings
    /// A client whose certificate (same subject as `agent`) signed itself.
    let selfSigned: TLSSettings
    /// Host h1's certificate: CN=h1.
    let host1: TLSSettings
    /// Host h2's certificate, naming it by DNS subjectAltName only (CN=node-label).
    let host2: TLSSettings
    /// An admin's certificate: CN=admin.
    let admin: TLSSettings

    static func make() throws -> TestPKI {
        guard FileManager.default.isExecutableFile(atPath: openssl) else {
            try missingCapability("\(openssl) is missing: the TLS tests make their certificates with it")
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            return try make(in: directory)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    private static func make(in directory: URL) throws -> TestPKI {
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(
            ["req", "-x509"] + ec + [
                "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=netlease test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ]
        )
        func signed(_ name: String, serial: Int, extensions: String) throws -> TLSSettings {
            try run(
                ["req", "-new"] + ec + [
                    "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)",
                ]
            )
            try Data(extensions.utf8).write(to: URL(fileURLWithPath: path("\(name).ext")))
            try run([
                "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                "-set_serial", String(serial), "-days", "2", "-out", path("\(name).pem"),
                "-extfile", path("\(name).ext"),
            ])
            return TLSSettings(
                certificateChainFile: path("\(name).pem"),
                privateKeyFile: path("\(name).key"),
                trustedCAFile: path("ca.pem")
            )
        }
        let coordinator = try signed(
            "coordinator",
            serial: 1,
            extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        )
        let namedCoordinator = try signed(
            "named-coordinator",
            serial: 2,
            extensions: "subjectAltName=DNS:coordinator.netlease.test\nextendedKeyUsage=serverAuth\n"
        )
        let agent = try signed("agent", serial: 3, extensions: "extendedKeyUsage=clientAuth\n")
        let host1 = try signed("h1", serial: 4, extensions: "extendedKeyUsage=clientAuth\n")
        let host2 = try signed(
            "node-label",
            serial: 5,
            extensions: "subjectAltName=DNS:h2\nextendedKeyUsage=clientAuth\n"
        )
        let admin = try signed("admin", serial: 6, extensions: "extendedKeyUsage=clientAuth\n")
        try run(
            ["req", "-x509"] + ec + [
                "-keyout", path("rogue.key"), "-out", path("rogue.pem"), "-days", "2", "-subj", "/CN=agent",
            ]
        )
        let selfSigned = TLSSettings(
            certificateChainFile: path("rogue.pem"),
            privateKeyFile: path("rogue.key"),
            trustedCAFile: path("ca.pem")
        )
        return TestPKI(
            directory: directory,
            caFile: path("ca.pem"),
            coordinator: coordinator,
            namedCoordinator: namedCoordinator,
            agent: agent,
            selfSigned: selfSigned,
            host1: host1,
            host2: host2,
            admin: admin
        )
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    private static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: openssl)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NetleaseError(
                .internalError,
                "openssl \(arguments.joined(separator: " ")) failed: "
                    + String(decoding: message, as: UTF8.self)
            )
        }
    }

    /// A TLS client that trusts the CA but presents no certificate: sends `PING` and collects whatever arrives until
    /// the server ends the connection or a full line came. Returns the text received and the error the stream ended
    /// with, if any.
    static func speakTLSWithoutCertificate(port: Int, trusting caFile: String) async throws -> (String, Error?) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(caFile)
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: nil)
                    )
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var received = ""
            do {
                try await outbound.write(ByteBuffer(string: "PING\n"))
                // A greeting (one full line) is enough to fail the test: do not wait for a close that would not come.
                for try await buffer in inbound {
                    received += String(buffer: buffer)
                    if received.contains("\n") { break }
                }
                return (received, nil)
            } catch {
                return (received, error)
            }
        }
    }
}
