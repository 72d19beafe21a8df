import Foundation
import NetleaseClient
import NetleaseCoordinator
import NetleaseCore
import NetleaseTesting
import NetleaseTransport
import NetleaseWire
import XCTest

final class CoordinatorServiceTests: XCTestCase {
    var harness: CoordinatorHarness!

    override func setUp() async throws {
        harness = try await CoordinatorHarness.start()
        try await harness.connect { connection in
            _ = try await connection.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/16")!))
        }
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    func testThirtyTwoConcurrentClientsGetUniqueAddresses() async throws {
        let clients = 32
        let perClient = 100
        let addresses = try await withThrowingTaskGroup(of: [IPv4Address].self) { group in
            for client in 0..<clients {
                group.addTask { [harness] in
                    try await harness!.connect { connection in
                        var got: [IPv4Address] = []
                        for index in 0..<perClient {
                            let lease = try await connection.acquire(
                                AcquireRequest(network: "prod", owner: "c\(client)-\(index)")
                            )
                            got.append(lease.address)
                        }
                        return got
                    }
                }
            }
            var all: [IPv4Address] = []
            for try await chunk in group { all += chunk }
            return all
        }
        XCTAssertEqual(addresses.count, clients * perClient)
        XCTAssertEqual(Set(addresses).count, clients * perClient, "an address was handed out twice")
        let listed = try await harness.connect { try await $0.leases(.init(network: "prod", state: .active)) }
        XCTAssertEqual(listed.count, clients * perClient)
        XCTAssertEqual(Set(listed.map(\.address)), Set(addresses))
    }

    func testConcurrentRequestsOnOneConnectionPipelineAndMatchTheirReplies() async throws {
        try await harness.connect { connection in
            let results = try await withThrowingTaskGroup(of: (String, IPv4Address).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let lease = try await connection.acquire(AcquireRequest(network: "prod", owner: "p\(index)"))
                        return ("p\(index)", lease.address)
                    }
                }
                var map: [String: IPv4Address] = [:]
                for try await (owner, address) in group { map[owner] = address }
                return map
            }
            let listed = try await connection.leases(.init(network: "prod"))
            for lease in listed {
                XCTAssertEqual(results[lease.owner], lease.address, "reply matched to the wrong request")
            }
            XCTAssertEqual(listed.count, 200)
        }
    }

    func testPipelinedLinesAreAnsweredInOrder() throws {
        let raw = try RawLineClient(port: harness.endpoint.port)
        XCTAssertEqual(try raw.readLine(), "NETLEASE version=1 auth=required")
        try raw.send(
            "AUTH secret=test-secret\nACQUIRE network=prod owner=a\nPING\nBOGUS\nACQUIRE network=prod owner=b\n"
                + "ACQUIRE network=prod owner=a\nRELEASE network=prod owner=b\nLEASE-LIST network=prod\n"
        )
        let lines = try raw.readLines(9)
        XCTAssertEqual(lines.count, 9)
        XCTAssertEqual(lines[0], "OK role=admin")
        XCTAssertTrue(lines[1].hasPrefix("OK network=prod address=172.30.0.1/16 state=active"), lines[1])
        XCTAssertEqual(lines[2], "OK pong=1")
        XCTAssertTrue(lines[3].hasPrefix("ERR bad-request unknown verb 'BOGUS'"), lines[3])
        XCTAssertTrue(lines[4].hasPrefix("OK network=prod address=172.30.0.2/16"), lines[4])
        XCTAssertTrue(
            lines[5].hasPrefix("OK network=prod address=172.30.0.1/16"),
            "retry must be idempotent: \(lines[5])"
        )
        XCTAssertTrue(lines[6].hasPrefix("OK network=prod address=172.30.0.2/16"), lines[6])
        XCTAssertTrue(lines[6].contains("released=1"), lines[6])
        XCTAssertEqual(lines[7], "OK count=1")
        XCTAssertTrue(lines[8].hasPrefix("LEASE network=prod address=172.30.0.1/16"), lines[8])
    }

    func testDeepPipelineThenHalfCloseIsAnsweredCompletelyInOrderThenClosed() throws {
        let raw = try RawLineClient(port: harness.endpoint.port)
        _ = try raw.readLine()
        // More requests than one connection may have in flight (CoordinatorConnection.maxInFlight): reading pauses
        // and resumes; a listing in the middle sees exactly the acquires before it.
        let count = 3000
        var text = "AUTH secret=test-secret\n"
        for i in 0..<count {
            text += "ACQUIRE network=prod owner=deep-\(i)\n"
            if i == 999 { text += "LEASE-LIST network=prod\n" }
        }
        text += "RELEASE network=prod owner=deep-0\nPING\n"
        let sent = raw.sendThenShutdownInBackground(text)
        XCTAssertEqual(try raw.readLine(), "OK role=admin")
        var addresses = Set<String>()
        func acquired(_ i: Int) throws {
            let line = try XCTUnwrap(try raw.readLine(), "reply \(i) missing")
            XCTAssertTrue(line.hasPrefix("OK network=prod address="), line)
            XCTAssertTrue(line.contains(" owner=deep-\(i)"), "reply out of order: expected owner deep-\(i): \(line)")
            addresses.insert(String(line.split(separator: " ")[2]))
        }
        for i in 0..<1000 { try acquired(i) }
        XCTAssertEqual(try raw.readLine(), "OK count=1000", "the listing must see exactly the acquires before it")
        for _ in 0..<1000 { _ = try raw.readLine() }  // its records
        for i in 1000..<count { try acquired(i) }
        XCTAssertEqual(addresses.count, count, "every acquire must get its own address")
        XCTAssertTrue(try XCTUnwrap(try raw.readLine()).contains("released=1"))
        XCTAssertEqual(try raw.readLine(), "OK pong=1")
        XCTAssertNil(try raw.readLine(), "after the peer's half close and the last reply, the server closes")
        sent.wait()
    }

    func testUnauthenticatedConnectionCannotChangeOrListState() async throws {
        let raw = try RawLineClient(port: harness.endpoint.port)
        _ = try raw.readLine()
        try raw.send("ACQUIRE network=prod owner=x\nLEASE-LIST\nNETWORK-DELETE name=prod\nPING\nAUTH secret=wrong\n")
        let lines = try raw.readLines(5)
        XCTAssertTrue(lines[0].hasPrefix("ERR auth-required"), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("ERR auth-required"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("ERR auth-required"), lines[2])
        XCTAssertEqual(lines[3], "OK pong=1")
        XCTAssertTrue(lines[4].hasPrefix("ERR auth-failed"), lines[4])
        let leases = try await harness.connect { try await $0.leases() }
        XCTAssertTrue(leases.isEmpty, "an unauthenticated request changed state")
        let networks = try await harness.connect { try await $0.networks() }
        XCTAssertEqual(networks.map(\.spec.name), ["prod"])
    }

    func testReadOnlyCredentialsListButCannotChangeAnything() async throws {
        _ = try await harness.connect { try await $0.acquire(AcquireRequest(network: "prod", owner: "existing")) }
        let raw = try RawLineClient(port: harness.endpoint.port)
        _ = try raw.readLine()
        try raw.send("AUTH secret=reader-secret\nLEASE-LIST network=prod\n")
        XCTAssertEqual(try raw.readLine(), "OK role=reader")
        XCTAssertEqual(try raw.readLine(), "OK count=1")
        XCTAssertTrue(try raw.readLine()?.contains("owner=existing") ?? false)
        let changes = [
            "ACQUIRE network=prod owner=x", "RELEASE network=prod owner=existing", "NETWORK-DELETE name=prod",
            "NETWORK-CREATE name=n2 subnet=10.1.0.0/16", "RESERVE network=prod address=172.30.0.9",
            "JOIN host=h underlay=10.0.0.1", "HOST-REMOVE host=h",
        ]
        try raw.send(changes.joined(separator: "\n") + "\nSTATS\n")
        for change in changes {
            let reply = try raw.readLine() ?? ""
            XCTAssertTrue(reply.hasPrefix("ERR forbidden "), "\(change) -> \(reply)")
        }
        XCTAssertTrue(try raw.readLine()?.hasPrefix("OK ") ?? false, "STATS is allowed for readers")
        let leases = try await harness.connect { try await $0.leases() }
        XCTAssertEqual(leases.map(\.owner), ["existing"])
        let networks = try await harness.connect { try await $0.networks() }
        XCTAssertEqual(networks.map(\.spec.name), ["prod"])
    }

    func testRepeatedWrongSecretsCloseTheConnection() throws {
        let raw = try RawLineClient(port: harness.endpoint.port)
        _ = try raw.readLine()
        try raw.send("AUTH secret=a\nAUTH secret=b\nAUTH secret=c\n")
        XCTAssertEqual(try raw.readLines(3).filter { $0.hasPrefix("ERR auth-failed") }.count, 3)
        XCTAssertTrue(raw.isClosedByPeer())
    }

    func testOversizedLineClosesOnlyThatConnection() async throws {
        let good = try RawLineClient(port: harness.endpoint.port)
        _ = try good.readLine()
        try good.send("AUTH secret=test-secret\n")
        XCTAssertEqual(try good.readLine(), "OK role=admin")

        let bad = try RawLineClient(port: harness.endpoint.port)
        _ = try bad.readLine()
        try bad.send("PING pad=" + String(repeating: "x", count: WireLimits.maxLineBytes + 100))
        let reply = try bad.readLine()
        XCTAssertTrue(reply?.hasPrefix("ERR bad-request line longer than 8192 bytes") ?? false, reply ?? "nil")
        XCTAssertTrue(bad.isClosedByPeer())

        try good.send("ACQUIRE network=prod owner=still-here\n")
        XCTAssertTrue(try good.readLine()?.hasPrefix("OK network=prod") ?? false)
    }

    func testALineOfExactlyTheMaximumLengthIsAccepted() throws {
        let raw = try RawLineClient(port: harness.endpoint.port)
        _ = try raw.readLine()
        let prefix = "PING pad="
        let line = prefix + String(repeating: "y", count: WireLimits.maxLineBytes - prefix.utf8.count)
        XCTAssertEqual(line.utf8.count, WireLimits.maxLineBytes)
        try raw.send(line + "\r\n")
        // PING takes no fields, so the reply is an error about the field, not about the length.
        XCTAssertEqual(try raw.readLine(), "ERR bad-request PING does not take field 'pad'")
        try raw.send("PING\n")
        XCTAssertEqual(try raw.readLine(), "OK pong=1")
    }

    func testMalformedLinesGetErrorsAndChangeNothing() async throws {
        let raw = try RawLineClient(port: harness.endpoint.port)
        _ = try raw.readLine()
        try raw.send("AUTH secret=test-secret\n")
        _ = try raw.readLine()
        let bad = [
            "ACQUIRE network=prod", "ACQUIRE network=prod owner=a owner=b", "ACQUIRE network=prod owner=%zz",
            "ACQUIRE network=nope owner=a", "ACQUIRE network=prod owner=a address=10.0.0.300",
            "ACQUIRE network=prod owner=a address=10.9.0.1", "NETWORK-CREATE name=x subnet=10.0.0.1/8",
            "RELEASE network=prod", "HEARTBEAT host=h epoch=abc", "acquire\tnetwork=prod",
            "ACQUIRE network=prod owner=a colour=blue", "=", "LEASE-LIST state=gone",
        ]
        let codes = [
            "bad-request", "bad-request", "bad-request", "unknown-network", "bad-request", "bad-request",
            "bad-request", "bad-request", "bad-request", "bad-request", "bad-request", "bad-request",
            "bad-request",
        ]
        try raw.send(bad.joined(separator: "\n") + "\n")
        let replies = try raw.readLines(bad.count)
        for (index, reply) in replies.enumerated() {
            XCTAssertTrue(reply.hasPrefix("ERR \(codes[index]) "), "\(bad[index]) -> \(reply)")
        }
        try raw.send(Array("ACQUIRE network=prod owner=\u{00e9}\n".utf8) + [0xFF, 0x0A])
        XCTAssertTrue(try raw.readLine()?.hasPrefix("ERR bad-request") ?? false)
        XCTAssertTrue(try raw.readLine()?.hasPrefix("ERR bad-request") ?? false)
        let leases = try await harness.connect { try await $0.leases() }
        XCTAssertTrue(leases.isEmpty)
    }

    func testReleaseIsIdempotentAndAcquireRetryReturnsTheSameAddress() async throws {
        let first = try await harness.connect { try await $0.acquire(AcquireRequest(network: "prod", owner: "c1")) }
        let retry = try await harness.connect { try await $0.acquire(AcquireRequest(network: "prod", owner: "c1")) }
        XCTAssertEqual(first.address, retry.address)
        let released = try await harness.connect { try await $0.release(ReleaseRequest(network: "prod", owner: "c1")) }
        XCTAssertEqual(released?.address, first.address)
        let again = try await harness.connect { try await $0.release(ReleaseRequest(network: "prod", owner: "c1")) }
        XCTAssertNil(again)
        let cooling = try await harness.connect { try await $0.leases(.init(network: "prod", state: .cooldown)) }
        XCTAssertEqual(cooling.map(\.address), [first.address])
    }

    func testErrorsCarryStableCodes() async throws {
        do {
            _ = try await harness.connect { try await $0.network("missing") }
            XCTFail("expected an error")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .unknownNetwork)
        }
        do {
            _ = try await harness.connect { try await $0.heartbeat(host: "ghost", epoch: 1) }
            XCTFail("expected an error")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .notFound)
        }
        let joined = try await harness.connect { try await $0.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1)) }
        _ = try await harness.connect { try await $0.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1)) }
        do {
            _ = try await harness.connect { try await $0.heartbeat(host: "h1", epoch: joined.epoch) }
            XCTFail("expected stale-epoch")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .staleEpoch)
        }
    }

    func testJoinAllocatesABridgeAddressThatIsNeverHandedToAContainer() async throws {
        let joined = try await harness.connect {
            try await $0.join(host: "h1", underlay: IPv4Address(10, 0, 0, 1), networks: ["prod"])
        }
        XCTAssertEqual(joined.epoch, 1)
        XCTAssertEqual(joined.bridges.count, 1)
        let bridge = joined.bridges[0]
        XCTAssertEqual(bridge.owner, "bridge:h1")
        do {
            let container = try await harness.connect {
                try await $0.acquire(AcquireRequest(network: "prod", owner: "c", address: bridge.address))
            }
            XCTFail("bridge address was handed to a container: \(container)")
        } catch let error as NetleaseError {
            XCTAssertEqual(error.code, .conflict)
        }
        let next = try await harness.connect { try await $0.acquire(AcquireRequest(network: "prod", owner: "c")) }
        XCTAssertNotEqual(next.address, bridge.address)
    }

    func testConnectionCapRefusesExtraConnectionsWithOverloaded() async throws {
        await harness.stop()
        harness = try await CoordinatorHarness.start(maxConnections: 2)
        let a = try RawLineClient(port: harness.endpoint.port)
        let b = try RawLineClient(port: harness.endpoint.port)
        XCTAssertEqual(try a.readLine(), "NETLEASE version=1 auth=required")
        XCTAssertEqual(try b.readLine(), "NETLEASE version=1 auth=required")
        let c = try RawLineClient(port: harness.endpoint.port)
        XCTAssertTrue(try c.readLine()?.hasPrefix("ERR overloaded") ?? false)
        XCTAssertTrue(c.isClosedByPeer())
        try a.send("PING\n")
        XCTAssertEqual(try a.readLine(), "OK pong=1")
    }

    func testIdleConnectionsAreClosed() async throws {
        await harness.stop()
        harness = try await CoordinatorHarness.start(idleTimeout: .seconds(1))
        let raw = try RawLineClient(port: harness.endpoint.port)
        XCTAssertEqual(try raw.readLine(), "NETLEASE version=1 auth=required")
        // The server closes an idle connection on its own; the read returns end of stream instead of timing out.
        XCTAssertTrue(raw.isClosedByPeer())
    }
}
