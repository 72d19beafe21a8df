import Foundation
import Logging
import NetleaseAgent
import NetleaseCore
import XCTest

/// A backend that leases from a counter and records what the plugin asked for.
private final class FakeDockerBackend: DockerIPAMBackend, @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.
    private let lock = NSLock()
    let servedNetworks = ["demo", "other"]
    private var ready: Bool
    private var owners: [IPv4Address: String] = [:]
    private var next: UInt32 = 10
    private var releaseError: NetleaseError?
    private var hanging = false
    private(set) var calls: [String] = []

    init(ready: Bool = true) { self.ready = ready }

    func setReady(_ value: Bool) { lock.withLock { ready = value } }
    func failReleases(with error: NetleaseError?) { lock.withLock { releaseError = error } }
    /// Every acquire and release waits for a minute (until cancelled), as on a link gone silent.
    func hang(_ value: Bool) { lock.withLock { hanging = value } }

    private func waitIfHanging() async throws {
        if lock.withLock({ hanging }) { try await Task.sleep(for: .seconds(60)) }
    }
    func setOwner(_ owner: String, of address: IPv4Address) { lock.withLock { owners[address] = owner } }
    var recorded: [String] { lock.withLock { calls } }

    func dockerNetwork(_ name: String) throws -> DockerNetworkFacts {
        guard servedNetworks.contains(name) else { throw NetleaseError(.unknownNetwork, "not served: \(name)") }
        guard lock.withLock({ ready }) else { throw NetleaseError(.unavailable, "the agent is not ready") }
        return DockerNetworkFacts(subnet: IPv4Subnet("172.30.0.0/16")!, gateway: IPv4Address(172, 30, 0, 1))
    }

    func dockerAcquire(network: String, owner: String, address: IPv4Address?) async throws -> IPv4Address {
        try await waitIfHanging()
        return try lock.withLock {
            calls.append("acquire \(network) \(owner) \(address?.description ?? "-")")
            if let held = owners.first(where: { $0.value == owner })?.key {
                if let address, address != held { throw NetleaseError.conflict("owner holds \(held)") }
                return held
            }
            if let address, let other = owners[address] { throw NetleaseError.conflict("held by '\(other)'") }
            let chosen = address ?? IPv4Address(IPv4Address(172, 30, 0, 0).value + next)
            next += 1
            owners[chosen] = owner
            return chosen
        }
    }

    func dockerRelease(network: String, owner: String) async throws {
        try await waitIfHanging()
        try lock.withLock {
            calls.append("release \(network) \(owner)")
            if let releaseError { throw releaseError }
            owners = owners.filter { $0.value != owner }
        }
    }

    func deferRelease(network: String, owner: String, address: IPv4Address) throws {
        lock.withLock {
            calls.append("defer \(network) \(owner) \(address)")
            owners[address] = nil
        }
    }

    func localOwner(network: String, address: IPv4Address) -> String? { lock.withLock { owners[address] } }
}

/// The plugin with its refusals logged only when they matter: the tables refuse on purpose.
private func makePlugin(_ backend: FakeDockerBackend) -> DockerIPAMPlugin {
    var logger = Logger(label: "test.docker")
    logger.logLevel = .error
    return DockerIPAMPlugin(backend: backend, logger: logger)
}

final class DockerIPAMPluginTests: XCTestCase {
    private let macOption = #""com.docker.network.endpoint.macaddress""#

    private func call(
        _ plugin: DockerIPAMPlugin,
        _ path: String,
        _ body: String = "",
        method: String = "POST"
    )
        async -> DockerIPAMPlugin.Reply
    {
        await plugin.handle(method: method, path: path, body: Array(body.utf8))
    }

    private func json(_ reply: DockerIPAMPlugin.Reply) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any], reply.text)
    }

    private func error(_ reply: DockerIPAMPlugin.Reply) throws -> String {
        XCTAssertNotEqual(reply.status, 200, reply.text)
        let body = try json(reply)
        XCTAssertEqual(Array(body.keys), ["Err"], reply.text)
        return try XCTUnwrap(body["Err"] as? String)
    }

    func testHandshakeAnswersAtOnceEvenBeforeTheAgentIsReady() async throws {
        // A failed GetCapabilities would register the driver without MAC addresses and replay for dockerd's life.
        let plugin = makePlugin(FakeDockerBackend(ready: false))
        let table: [(String, String)] = [
            ("/Plugin.Activate", #"{"Implements":["IpamDriver"]}"#),
            ("/IpamDriver.GetCapabilities", #"{"RequiresMACAddress":true,"RequiresRequestReplay":true}"#),
            (
                "/IpamDriver.GetDefaultAddressSpaces",
                #"{"GlobalDefaultAddressSpace":"netlease-global","LocalDefaultAddressSpace":"netlease-local"}"#
            ),
            ("/IpamDriver.DiscoverNew", "{}"),
            ("/IpamDriver.DiscoverDelete", "{}"),
        ]
        for (path, expected) in table {
            let reply = await call(plugin, path)
            XCTAssertEqual(reply.status, 200, path)
            XCTAssertEqual(reply.text, expected, path)
        }
    }

    func testEveryPoolAndAddressCallFailsClearlyBeforeTheAgentIsReady() async throws {
        let plugin = makePlugin(FakeDockerBackend(ready: false))
        let table: [(String, String)] = [
            ("/IpamDriver.RequestPool", #"{"Pool":"172.30.0.0/16","Options":{"network":"demo"}}"#),
            ("/IpamDriver.ReleasePool", #"{"PoolID":"netlease/demo"}"#),
            (
                "/IpamDriver.RequestAddress",
                #"{"PoolID":"netlease/demo","Options":{\#(macOption):"02:42:ac:1e:00:05"}}"#
            ),
        ]
        for (path, body) in table {
            let reply = await call(plugin, path, body)
            XCTAssertEqual(reply.status, 503, path)
            XCTAssertEqual(try error(reply), "netlease: the agent is not ready", path)
        }
    }

    func testRequestPoolTable() async throws {
        let plugin = makePlugin(FakeDockerBackend())
        // (body, status, expected PoolID or a fragment of the error)
        let table: [(String, Int, String)] = [
            (
                #"{"AddressSpace":"netlease-local","Pool":"172.30.0.0/16","SubPool":"","Options":{"network":"demo"},"#
                    + #""V6":false}"#,
                200, "netlease/demo"
            ),
            (#"{"Pool":"172.30.0.0/16","Options":{"network":"other"}}"#, 200, "netlease/other"),
            (
                #"{"Pool":"172.31.0.0/16","Options":{"network":"demo"}}"#, 400,
                "netlease network 'demo' is 172.30.0.0/16, not 172.31.0.0/16: create the Docker network with "
                    + "--subnet 172.30.0.0/16"
            ),
            (#"{"Pool":"172.30.0.0/24","Options":{"network":"demo"}}"#, 400, "--subnet 172.30.0.0/16"),
            (
                #"{"Pool":"","Options":{"network":"demo"}}"#, 400,
                "give the subnet of netlease network 'demo': --subnet 172.30.0.0/16"
            ),
            (#"{"Pool":"172.30.0.0/16"}"#, 400, "--ipam-opt network=NAME (this agent serves: demo, other)"),
            (#"{"Pool":"172.30.0.0/16","Options":null}"#, 400, "--ipam-opt network=NAME"),
            (
                #"{"Pool":"172.30.0.0/16","Options":{"network":"elsewhere"}}"#, 404,
                "does not serve network 'elsewhere' (it serves: demo, other); start the agent with --network elsewhere"
            ),
            (#"{"Pool":"","Options":{"network":"demo"},"V6":true}"#, 400, "IPv4 addresses only"),
            (
                #"{"Pool":"172.30.0.0/16","SubPool":"172.30.1.0/24","Options":{"network":"demo"}}"#, 400,
                "--ip-range is not supported"
            ),
            ("{not json", 400, "the body of RequestPool is not the JSON object Docker sends: '{not json'"),
            ("", 400, "the body of RequestPool is not the JSON object"),
            (#"{"Pool":7}"#, 400, "not the JSON object"),
        ]
        for (body, status, expected) in table {
            let reply = await call(plugin, "/IpamDriver.RequestPool", body)
            XCTAssertEqual(reply.status, status, body)
            if status == 200 {
                let answer = try json(reply)
                XCTAssertEqual(answer["PoolID"] as? String, expected, body)
                XCTAssertEqual(answer["Pool"] as? String, "172.30.0.0/16", body)
                XCTAssertEqual(answer["Data"] as? [String: String], [:], body)
            } else {
                let message = try error(reply)
                XCTAssertTrue(message.contains(expected), "\(body): \(message)")
            }
        }
    }

    func testReleasePoolTable() async throws {
        let plugin = makePlugin(FakeDockerBackend())
        let table: [(String, Int, String)] = [
            (#"{"PoolID":"netlease/demo"}"#, 200, "{}"),
            (#"{"PoolID":"netlease/nope"}"#, 404, "does not serve network 'nope'"),
            (#"{"PoolID":"172.30.0.0/16"}"#, 404, "unknown pool '172.30.0.0/16'"),
            (#"{}"#, 404, "unknown pool ''"),
            ("[]", 400, "the body of ReleasePool"),
        ]
        for (body, status, expected) in table {
            let reply = await call(plugin, "/IpamDriver.ReleasePool", body)
            XCTAssertEqual(reply.status, status, body)
            if status == 200 {
                XCTAssertEqual(reply.text, expected)
            } else {
                let message = try error(reply)
                XCTAssertTrue(message.contains(expected), "\(body): \(message)")
            }
        }
    }

    func testRequestAddressTable() async throws {
        let backend = FakeDockerBackend()
        backend.setOwner("docker/02:42:ac:1e:00:99", of: IPv4Address(172, 30, 0, 99))
        backend.setOwner("cni-container-7", of: IPv4Address(172, 30, 0, 98))
        let plugin = makePlugin(backend)
        let gateway = #""RequestAddressType":"com.docker.network.gateway""#
        // (body, status, expected Address or a fragment of the error)
        let table: [(String, Int, String)] = [
            (#"{"PoolID":"netlease/demo","Address":"","Options":{\#(gateway)}}"#, 200, "172.30.0.1/16"),
            (#"{"PoolID":"netlease/demo","Address":"172.30.0.1","Options":{\#(gateway)}}"#, 200, "172.30.0.1/16"),
            (
                #"{"PoolID":"netlease/demo","Address":"172.30.0.254","Options":{\#(gateway)}}"#, 400,
                "is its bridge address 172.30.0.1, not 172.30.0.254; create the Docker network without --gateway"
            ),
            (#"{"PoolID":"netlease/demo","Options":{\#(macOption):"02:42:AC:1E:00:05"}}"#, 200, "172.30.0.10/16"),
            // The same endpoint again (a retry): the same address.
            (#"{"PoolID":"netlease/demo","Options":{\#(macOption):"02:42:ac:1e:00:05"}}"#, 200, "172.30.0.10/16"),
            (#"{"PoolID":"netlease/demo","Options":{\#(macOption):"02:42:ac:1e:00:06"}}"#, 200, "172.30.0.11/16"),
            // A specific address (docker run --ip) is honoured when free, refused when held.
            (
                #"{"PoolID":"netlease/demo","Address":"172.30.5.5","Options":{\#(macOption):"02:42:ac:1e:00:07"}}"#,
                200, "172.30.5.5/16"
            ),
            (
                #"{"PoolID":"netlease/demo","Address":"172.30.0.10","Options":{\#(macOption):"02:42:ac:1e:00:08"}}"#,
                409, "held by 'docker/02:42:ac:1e:00:05'"
            ),
            (
                #"{"PoolID":"netlease/demo","Address":"10.0.0.1","Options":{\#(macOption):"02:42:ac:1e:00:08"}}"#,
                400, "10.0.0.1 is not in netlease network 'demo' (172.30.0.0/16)"
            ),
            (
                #"{"PoolID":"netlease/demo","Address":"banana","Options":{\#(macOption):"02:42:ac:1e:00:08"}}"#,
                400, "'banana' is not an IPv4 address"
            ),
            (
                #"{"PoolID":"netlease/demo","Options":{\#(macOption):"02:42:ac:1e:00"}}"#, 400,
                "'02:42:ac:1e:00' is not a MAC address"
            ),
            // Docker's restart replay: an address and no MAC. Known to this host: confirmed for its owner.
            (#"{"PoolID":"netlease/demo","Address":"172.30.0.99","Options":null}"#, 200, "172.30.0.99/16"),
            (
                #"{"PoolID":"netlease/demo","Address":"172.30.0.77"}"#, 409,
                "172.30.0.77 is not leased to a Docker endpoint on this host"
            ),
            (
                #"{"PoolID":"netlease/demo","Address":"172.30.0.98"}"#, 409,
                "172.30.0.98 is not leased to a Docker endpoint on this host"
            ),
            (#"{"PoolID":"netlease/demo"}"#, 400, "Docker sent no endpoint MAC address"),
            (
                #"{"PoolID":"netlease/nope","Options":{\#(macOption):"02:42:ac:1e:00:05"}}"#, 404,
                "does not serve network 'nope'"
            ),
            (
                #"{"PoolID":"demo","Options":{\#(macOption):"02:42:ac:1e:00:05"}}"#, 404,
                "unknown pool 'demo': netlease pools are named netlease/NETWORK"
            ),
            ("{", 400, "the body of RequestAddress is not the JSON object Docker sends"),
        ]
        for (body, status, expected) in table {
            let reply = await call(plugin, "/IpamDriver.RequestAddress", body)
            XCTAssertEqual(reply.status, status, body)
            if status == 200 {
                let answer = try json(reply)
                XCTAssertEqual(answer["Address"] as? String, expected, body)
            } else {
                let message = try error(reply)
                XCTAssertTrue(message.contains(expected), "\(body): \(message)")
            }
        }
        XCTAssertEqual(
            backend.recorded,
            [
                "acquire demo docker/02:42:ac:1e:00:05 -",
                "acquire demo docker/02:42:ac:1e:00:05 -",
                "acquire demo docker/02:42:ac:1e:00:06 -",
                "acquire demo docker/02:42:ac:1e:00:07 172.30.5.5",
                "acquire demo docker/02:42:ac:1e:00:08 172.30.0.10",
                "acquire demo docker/02:42:ac:1e:00:99 172.30.0.99",
            ]
        )
    }

    func testReleaseAddressReleasesTheOwnerDockerLeasedFor() async throws {
        let backend = FakeDockerBackend()
        backend.setOwner("cni-container-7", of: IPv4Address(172, 30, 0, 98))
        let plugin = makePlugin(backend)
        let leased = await call(
            plugin,
            "/IpamDriver.RequestAddress",
            #"{"PoolID":"netlease/demo","Options":{\#(macOption):"02:42:ac:1e:00:05"}}"#
        )
        XCTAssertEqual(try json(leased)["Address"] as? String, "172.30.0.10/16")
        let table: [(String, Int, String)] = [
            (#"{"PoolID":"netlease/demo","Address":"172.30.0.10"}"#, 200, "{}"),
            // Repeated: nothing left to release, still a success.
            (#"{"PoolID":"netlease/demo","Address":"172.30.0.10"}"#, 200, "{}"),
            // The gateway is the bridge's: released with the Docker network, never leased.
            (#"{"PoolID":"netlease/demo","Address":"172.30.0.1"}"#, 200, "{}"),
            (
                #"{"PoolID":"netlease/demo","Address":"172.30.0.98"}"#, 409,
                "172.30.0.98 was not leased to a Docker endpoint (its owner is 'cni-container-7'); not released"
            ),
            (#"{"PoolID":"netlease/demo"}"#, 400, "ReleaseAddress needs an Address"),
            (#"{"PoolID":"netlease/demo","Address":"192.168.1.1"}"#, 400, "is not in netlease network 'demo'"),
            (#"{"PoolID":"x","Address":"172.30.0.10"}"#, 404, "unknown pool 'x'"),
            ("null", 400, "the body of ReleaseAddress"),
        ]
        for (body, status, expected) in table {
            let reply = await call(plugin, "/IpamDriver.ReleaseAddress", body)
            XCTAssertEqual(reply.status, status, body)
            if status == 200 {
                XCTAssertEqual(reply.text, expected, body)
            } else {
                let message = try error(reply)
                XCTAssertTrue(message.contains(expected), "\(body): \(message)")
            }
        }
        XCTAssertEqual(
            backend.recorded,
            [
                "acquire demo docker/02:42:ac:1e:00:05 -", "release demo docker/02:42:ac:1e:00:05",
            ]
        )
        XCTAssertEqual(backend.localOwner(network: "demo", address: IPv4Address(172, 30, 0, 98)), "cni-container-7")
    }

    /// Docker never repeats a failed ReleaseAddress: one the coordinator cannot take now is deferred, not refused.
    func testAReleaseThatCannotReachTheCoordinatorIsDeferred() async throws {
        let backend = FakeDockerBackend(ready: false)
        backend.setOwner("docker/02:42:ac:1e:00:05", of: IPv4Address(172, 30, 0, 10))
        backend.setOwner("docker/02:42:ac:1e:00:06", of: IPv4Address(172, 30, 0, 11))
        let plugin = makePlugin(backend)
        let table: [(ready: Bool, error: NetleaseError?, body: String, status: Int)] = [
            // Not ready: deferred.
            (false, nil, #"{"PoolID":"netlease/demo","Address":"172.30.0.10"}"#, 200),
            // Not ready, an address this host never leased: nothing to do.
            (false, nil, #"{"PoolID":"netlease/demo","Address":"172.30.0.77"}"#, 200),
            (false, nil, #"{"PoolID":"netlease/demo","Address":"nope"}"#, 400),
            // Ready, but the session is lost mid-call: deferred.
            (
                true, NetleaseError(.unavailable, "not connected"),
                #"{"PoolID":"netlease/demo","Address":"172.30.0.11"}"#, 200
            ),
        ]
        for row in table {
            backend.setReady(row.ready)
            backend.failReleases(with: row.error)
            let reply = await call(plugin, "/IpamDriver.ReleaseAddress", row.body)
            XCTAssertEqual(reply.status, row.status, "\(row.body): \(reply.text)")
        }
        XCTAssertEqual(
            backend.recorded,
            [
                "defer demo docker/02:42:ac:1e:00:05 172.30.0.10",
                "release demo docker/02:42:ac:1e:00:06", "defer demo docker/02:42:ac:1e:00:06 172.30.0.11",
            ]
        )
        // A refusal that repeating cannot change is reported, not deferred.
        backend.setOwner("docker/02:42:ac:1e:00:07", of: IPv4Address(172, 30, 0, 12))
        backend.failReleases(with: NetleaseError(.forbidden, "not your lease"))
        let refused = await call(
            plugin,
            "/IpamDriver.ReleaseAddress",
            #"{"PoolID":"netlease/demo","Address":"172.30.0.12"}"#
        )
        XCTAssertEqual(refused.status, 403, refused.text)
        XCTAssertEqual(try error(refused), "netlease: not your lease")
        XCTAssertTrue(DockerIPAMPlugin.isWorthRetrying(NetleaseError(.unavailable, "x")))
        XCTAssertTrue(DockerIPAMPlugin.isWorthRetrying(CancellationError()))
        XCTAssertFalse(DockerIPAMPlugin.isWorthRetrying(NetleaseError(.forbidden, "x")))
    }

    /// Docker's plugin client waits without limit: a coordinator that does not answer must not hold `docker run`.
    func testACallTheCoordinatorDoesNotAnswerEndsAtItsDeadline() async throws {
        let backend = FakeDockerBackend()
        backend.setOwner("docker/02:42:ac:1e:00:05", of: IPv4Address(172, 30, 0, 10))
        backend.hang(true)
        var logger = Logger(label: "test.docker")
        logger.logLevel = .error
        let plugin = DockerIPAMPlugin(
            backend: backend,
            logger: logger,
            acquireTimeout: .milliseconds(200),
            releaseTimeout: .milliseconds(200)
        )
        let clock = ContinuousClock()
        var started = clock.now
        let acquire = await call(
            plugin,
            "/IpamDriver.RequestAddress",
            #"{"PoolID":"netlease/demo","Options":{\#(macOption):"02:42:ac:1e:00:06"}}"#
        )
        let acquireTook = clock.now - started
        XCTAssertEqual(acquire.status, 503)
        XCTAssertEqual(
            try error(acquire),
            "netlease: leasing an address took longer than 0.2 seconds: the coordinator does not answer; "
                + "retry shortly"
        )
        started = clock.now
        let release = await call(
            plugin,
            "/IpamDriver.ReleaseAddress",
            #"{"PoolID":"netlease/demo","Address":"172.30.0.10"}"#
        )
        let releaseTook = clock.now - started
        XCTAssertEqual(release.status, 200, release.text)
        XCTAssertLessThan(acquireTook, Duration.seconds(5))
        XCTAssertLessThan(releaseTook, Duration.seconds(5))
        XCTAssertEqual(backend.recorded, ["defer demo docker/02:42:ac:1e:00:05 172.30.0.10"])
    }

    /// A whole Docker network's life through the Codable message types: what is encoded is what Docker's Go structs
    /// carry, and every answer decodes into the type Docker reads it as.
    func testANetworkLifeThroughTheMessageTypes() async throws {
        let backend = FakeDockerBackend()
        let plugin = makePlugin(backend)
        func send<Request: Encodable, Response: Decodable>(
            _ path: String,
            _ request: Request,
            as: Response.Type
        ) async throws -> Response {
            let body = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
            let reply = await call(plugin, path, body)
            XCTAssertEqual(reply.status, 200, "\(path): \(reply.text)")
            return try JSONDecoder().decode(Response.self, from: Data(reply.body))
        }
        let activate = try await send("/Plugin.Activate", [String: String](), as: DockerPluginAPI.ActivateResponse.self)
        XCTAssertEqual(activate.implements, ["IpamDriver"])
        let capabilities = try await send(
            "/IpamDriver.GetCapabilities",
            [String: String](),
            as: DockerPluginAPI.CapabilitiesResponse.self
        )
        XCTAssertEqual(capabilities, .init(requiresMACAddress: true, requiresRequestReplay: true))
        let spaces = try await send(
            "/IpamDriver.GetDefaultAddressSpaces",
            [String: String](),
            as: DockerPluginAPI.AddressSpacesResponse.self
        )
        let pool = try await send(
            "/IpamDriver.RequestPool",
            DockerPluginAPI.RequestPoolRequest(
                addressSpace: spaces.local,
                pool: "172.30.0.0/16",
                subPool: "",
                options: ["network": "demo"],
                v6: false
            ),
            as: DockerPluginAPI.RequestPoolResponse.self
        )
        XCTAssertEqual(pool, .init(poolID: "netlease/demo", pool: "172.30.0.0/16", data: [:]))
        let gateway = try await send(
            "/IpamDriver.RequestAddress",
            DockerPluginAPI.RequestAddressRequest(
                poolID: pool.poolID,
                address: "",
                options: [DockerPluginAPI.addressTypeOption: DockerPluginAPI.gatewayAddressType]
            ),
            as: DockerPluginAPI.RequestAddressResponse.self
        )
        XCTAssertEqual(gateway, .init(address: "172.30.0.1/16", data: [:]))
        let endpoint = try await send(
            "/IpamDriver.RequestAddress",
            DockerPluginAPI.RequestAddressRequest(
                poolID: pool.poolID,
                address: "",
                options: [DockerPluginAPI.macAddressOption: "02:42:ac:1e:00:05"]
            ),
            as: DockerPluginAPI.RequestAddressResponse.self
        )
        XCTAssertEqual(endpoint, .init(address: "172.30.0.10/16", data: [:]))
        for address in ["172.30.0.10", "172.30.0.1"] {
            _ = try await send(
                "/IpamDriver.ReleaseAddress",
                DockerPluginAPI.ReleaseAddressRequest(
                    poolID: pool.poolID,
                    address: address
                ),
                as: DockerPluginAPI.EmptyResponse.self
            )
        }
        _ = try await send(
            "/IpamDriver.ReleasePool",
            DockerPluginAPI.ReleasePoolRequest(poolID: pool.poolID),
            as: DockerPluginAPI.EmptyResponse.self
        )
        XCTAssertEqual(
            backend.recorded,
            [
                "acquire demo docker/02:42:ac:1e:00:05 -", "release demo docker/02:42:ac:1e:00:05",
            ]
        )
        let refused = await call(plugin, "/IpamDriver.RequestPool", "{}")
        let error = try JSONDecoder().decode(DockerPluginAPI.ErrorResponse.self, from: Data(refused.body))
        XCTAssertTrue(
            error.err.hasPrefix("netlease: name the netlease network with --ipam-opt network=NAME"),
            error.err
        )
    }

    func testUnknownCallsAndMethodsAreRefusedWithAnErrBody() async throws {
        let plugin = makePlugin(FakeDockerBackend())
        let notFound = await call(plugin, "/NetworkDriver.CreateNetwork", "{}")
        XCTAssertEqual(notFound.status, 404)
        XCTAssertEqual(
            try error(notFound),
            "netlease: netlease implements Docker's IpamDriver only; there is no call "
                + "/NetworkDriver.CreateNetwork"
        )
        let get = await call(plugin, "/Plugin.Activate", method: "GET")
        XCTAssertEqual(get.status, 405)
        XCTAssertTrue(try error(get).contains("POST"))
    }

    func testCanonicalMAC() {
        XCTAssertEqual(DockerIPAMPlugin.canonicalMAC("02:42:AC:1e:00:05"), "02:42:ac:1e:00:05")
        for bad in [
            "", "02:42:ac:1e:00", "02:42:ac:1e:00:05:06", "02-42-ac-1e-00-05", "0g:42:ac:1e:00:05",
            "2:42:ac:1e:00:05", "02:42:ac:1e:00:٠٥",
        ] {
            XCTAssertNil(DockerIPAMPlugin.canonicalMAC(bad), bad)
        }
    }
}

final class DockerNetworkCommandLineTests: XCTestCase {
    func testTheCreateLineNamesDriverNetworkSubnetAndBridge() {
        XCTAssertEqual(
            DockerIPAMPlugin.createNetworkCommand(
                network: "demo",
                subnet: IPv4Subnet("172.30.0.0/16")!,
                bridge: "nl-demo"
            ),
            "docker network create --driver bridge --ipam-driver netlease --ipam-opt network=demo "
                + "--subnet 172.30.0.0/16 -o com.docker.network.bridge.name=nl-demo demo"
        )
    }

    /// With the bridge's MTU the line grows by one option before the name; the rest stays word for word.
    func testTheCreateLineCarriesTheBridgeMTU() {
        XCTAssertEqual(
            DockerIPAMPlugin.createNetworkCommand(
                network: "demo",
                subnet: IPv4Subnet("172.30.0.0/16")!,
                bridge: "nl-demo",
                mtu: 1450
            ),
            "docker network create --driver bridge --ipam-driver netlease --ipam-opt network=demo "
                + "--subnet 172.30.0.0/16 -o com.docker.network.bridge.name=nl-demo "
                + "-o com.docker.network.driver.mtu=1450 demo"
        )
    }
}
