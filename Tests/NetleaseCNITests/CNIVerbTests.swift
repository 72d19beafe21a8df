import Foundation
import NetleaseCNI
import NetleaseCore
import XCTest

/// An agent in memory: the leases it holds for one network and the answers a test scripts. The real agent is
/// proven in MultiHostTests (CNIConformanceTests); here the plugin's own decisions are pinned.
final class MemoryCNIAgent: CNIAgent, @unchecked Sendable {
    // @unchecked: every field is touched under `lock`.
    private let lock = NSLock()
    private var held: [String: Lease] = [:]
    private var next: UInt32 = 10
    var releaseError: (@Sendable (String) -> Error?)?
    var acquireError: Error?
    var networkAnswer: Result<CNINetworkFacts, Error> = .success(.prod)
    private(set) var requests: [String] = []

    func hold(_ owner: String, _ address: String, state: LeaseState = .active) {
        lock.withLock {
            held[owner] = Lease(
                network: "prod",
                address: IPv4Address(address)!,
                prefix: 16,
                state: state,
                host: "h1",
                owner: owner,
                created: 0,
                renewed: 0
            )
        }
    }

    var owners: [String] { lock.withLock { held.keys.sorted() } }

    func acquire(network: String, owner: String, ifname: String, address: IPv4Address?) async throws -> CNIHandout {
        try lock.withLock {
            requests.append("ACQUIRE \(network) \(owner) \(ifname) \(address?.description ?? "-")")
            if let acquireError { throw acquireError }
            if held[owner] == nil {
                next += 1
                let lease = Lease(
                    network: network,
                    address: address ?? IPv4Address(172, 30, 0, UInt8(next)),
                    prefix: 16,
                    state: .active,
                    owner: owner,
                    created: 0,
                    renewed: 0
                )
                held[owner] = lease
            }
            let lease = held[owner]!
            return CNIHandout(address: lease.address, prefix: lease.prefix, gateway: IPv4Address("172.30.0.1"))
        }
    }

    func release(network: String, owner: String) async throws {
        try lock.withLock {
            requests.append("RELEASE \(network) \(owner)")
            if let error = releaseError?(owner) { throw error }
            held[owner] = nil
        }
    }

    func leases(network: String) async throws -> [Lease] {
        lock.withLock {
            requests.append("LEASE-LIST \(network)")
            return held.values.sorted { $0.owner < $1.owner }
        }
    }

    func network(_ name: String) async throws -> CNINetworkFacts {
        try lock.withLock {
            requests.append("NETWORK \(name)")
            return try networkAnswer.get()
        }
    }
}

extension CNINetworkFacts {
    /// Network `prod` as an agent with 100 free addresses reports it.
    static let prod = CNINetworkFacts(
        network: "prod",
        subnet: IPv4Subnet("172.30.0.0/16")!,
        bridge: "nl-prod",
        mtu: 1450,
        gateway: IPv4Address("172.30.0.1")!,
        free: 100,
        stateDirectory: "/var/lib/netlease-agent"
    )
}

final class CNIVerbTests: XCTestCase {
    private let agent = MemoryCNIAgent()
    private let attachment = ["CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_NETNS": "/run/netns/c1"]

    private func run(
        _ command: String,
        version: String = "1.1.0",
        ipam: String = #""network":"prod""#,
        extra: String = "",
        environment: [String: String]? = nil
    ) async -> CNIPlugin.Outcome {
        let input = #"{"cniVersion":"\#(version)","name":"podnet","ipam":{\#(ipam)}\#(extra)}"#
        let agent = self.agent
        return await CNIPlugin.run(
            environment: (environment ?? attachment).merging(["CNI_COMMAND": command]) { $1 },
            input: Data(input.utf8),
            agent: { _ in agent }
        )
    }

    private func object(_ outcome: CNIPlugin.Outcome) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: outcome.stdout) as? [String: Any])
    }

    private func errorCode(_ outcome: CNIPlugin.Outcome) throws -> Int {
        XCTAssertEqual(outcome.exitStatus, 1)
        return try XCTUnwrap(try object(outcome)["code"] as? Int)
    }

    func testAddAnswersWithTheLeaseTheGatewayAndOnlyTheConfiguredRoutes() async throws {
        let plain = await run("ADD")
        XCTAssertEqual(plain.exitStatus, 0)
        XCTAssertEqual(
            String(decoding: plain.stdout, as: UTF8.self),
            """
            {
              "cniVersion" : "1.1.0",
              "ips" : [
                {
                  "address" : "172.30.0.11/16",
                  "gateway" : "172.30.0.1"
                }
              ],
              "routes" : [

              ]
            }

            """
        )
        XCTAssertEqual(agent.requests, ["ACQUIRE prod cni:podnet/c1/eth0 eth0 -"])
        let routed = await run(
            "ADD",
            version: "0.3.1",
            ipam: #""network":"prod","routes":[{"dst":"0.0.0.0/0"}]"#,
            environment: ["CNI_CONTAINERID": "c2", "CNI_IFNAME": "eth0", "CNI_NETNS": "/run/netns/c2"]
        )
        let result = try object(routed)
        XCTAssertEqual(result["cniVersion"] as? String, "0.3.1")
        let ips = try XCTUnwrap(result["ips"] as? [[String: String]])
        XCTAssertEqual(ips, [["version": "4", "address": "172.30.0.12/16", "gateway": "172.30.0.1"]])
        XCTAssertEqual(result["routes"] as? [[String: String]], [["dst": "0.0.0.0/0"]])
    }

    func testAddLeasesTheRequestedAddressAndRefusesAnotherPrefix() async throws {
        let add = await run("ADD", extra: #","args":{"cni":{"ips":["172.30.7.7"]}}"#)
        XCTAssertEqual(add.exitStatus, 0)
        XCTAssertEqual(agent.requests, ["ACQUIRE prod cni:podnet/c1/eth0 eth0 172.30.7.7"])
        let other = await run(
            "ADD",
            extra: #","runtimeConfig":{"ips":["172.30.7.8/24"]}"#,
            environment: ["CNI_CONTAINERID": "c2", "CNI_IFNAME": "eth0", "CNI_NETNS": "/n"]
        )
        XCTAssertEqual(try errorCode(other), 7)
        XCTAssertEqual(
            try object(other)["msg"] as? String,
            "requested 172.30.7.8/24, but network 'prod' is a /16; ask for the address without a prefix or with /16"
        )
        XCTAssertEqual(agent.owners, ["cni:podnet/c1/eth0"])
        XCTAssertEqual(
            agent.requests,
            ["ACQUIRE prod cni:podnet/c1/eth0 eth0 172.30.7.7", "NETWORK prod"],
            "the refused request leased (and released) an address"
        )
    }

    /// A repeated ADD of an attachment with a wrong prefix is refused, and the lease the first ADD made stays.
    func testARepeatedAddWithAnotherPrefixLeavesTheEarlierAddsLease() async throws {
        let first = await run("ADD", extra: #","args":{"cni":{"ips":["172.30.7.7"]}}"#)
        XCTAssertEqual(first.exitStatus, 0)
        let repeated = await run("ADD", extra: #","args":{"cni":{"ips":["172.30.7.7/24"]}}"#)
        XCTAssertEqual(try errorCode(repeated), 7)
        XCTAssertEqual(agent.owners, ["cni:podnet/c1/eth0"], "the live lease of the first ADD was released")
        XCTAssertFalse(agent.requests.contains { $0.hasPrefix("RELEASE") }, "\(agent.requests)")
    }

    func testAgentRefusalsMapToSpecCodes() async throws {
        let cases: [(ErrorCode, Int)] = [
            (.unavailable, 11), (.poolExhausted, 11), (.unknownNetwork, 7), (.conflict, 100),
        ]
        for (refusal, expected) in cases {
            agent.acquireError = NetleaseError(refusal, "no")
            let outcome = await run("ADD")
            XCTAssertEqual(try errorCode(outcome), expected, refusal.rawValue)
            XCTAssertEqual(try object(outcome)["msg"] as? String, "\(refusal.rawValue): no")
        }
    }

    /// DEL twice succeeds; so does a DEL the agent refuses as never leased (`bad-request`, `unknown-network`). An
    /// agent without a coordinator session is code 11: the lease may be held.
    func testDelIsBestEffortButNeverLeaksAHeldLease() async throws {
        agent.hold("cni:podnet/c1/eth0", "172.30.0.20")
        for _ in 0..<2 {
            let del = await run("DEL")
            XCTAssertEqual(del.exitStatus, 0, String(decoding: del.stdout, as: UTF8.self))
            XCTAssertTrue(del.stdout.isEmpty)
        }
        XCTAssertEqual(agent.owners, [])
        for code in [ErrorCode.badRequest, .unknownNetwork] {
            agent.releaseError = { _ in NetleaseError(code, "never leased") }
            let del = await run("DEL")
            XCTAssertEqual(del.exitStatus, 0, code.rawValue)
        }
        agent.releaseError = { _ in NetleaseError(.unavailable, "no session") }
        let unavailable = await run("DEL")
        XCTAssertEqual(try errorCode(unavailable), 11)
    }

    /// The agent down: its leases.json decides whether the lease may still be held; without a readable one,
    /// prevResult does.
    func testDelWhileTheAgentIsDownAsksTheAgentsRecordsThenPrevResult() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cni-state-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        agent.releaseError = { _ in CNIAgentUnreachable(socket: "/run/x.sock", reason: "refused") }
        let previous = #","prevResult":{"cniVersion":"1.1.0","ips":[{"address":"172.30.0.20/16"}]}"#
        func del(stateDir: String?, prevResult: Bool) async -> CNIPlugin.Outcome {
            let ipam = #""network":"prod""# + (stateDir.map { #","stateDir":"\#($0)""# } ?? "")
            return await run("DEL", ipam: ipam, extra: prevResult ? previous : "")
        }
        let leases = directory.appendingPathComponent("leases.json")
        // No leases.json yet: the agent handed nothing out.
        let none = await del(stateDir: directory.path, prevResult: true)
        XCTAssertEqual(none.exitStatus, 0)
        try Data(#"[{"network":"prod","owner":"cni:podnet/c1/eth0","address":"172.30.0.20","prefix":16}]"#.utf8)
            .write(to: leases)
        let held = await del(stateDir: directory.path, prevResult: false)
        XCTAssertEqual(try errorCode(held), 11)
        XCTAssertEqual(try object(held)["msg"] as? String, "netlease agent unavailable at /run/x.sock")
        try Data(#"[{"network":"prod","owner":"cni:podnet/c2/eth0","address":"172.30.0.21","prefix":16}]"#.utf8)
            .write(to: leases)
        let gone = await del(stateDir: directory.path, prevResult: true)
        XCTAssertEqual(gone.exitStatus, 0, "the lease is gone from the agent's records")
        // Unreadable records: prevResult decides.
        try Data("garbage".utf8).write(to: leases)
        let unknown = await del(stateDir: directory.path, prevResult: true)
        XCTAssertEqual(try errorCode(unknown), 11)
        let unknownEmpty = await del(stateDir: directory.appendingPathComponent("absent").path, prevResult: false)
        XCTAssertEqual(unknownEmpty.exitStatus, 0)
        let noRecords = await del(stateDir: nil, prevResult: true)
        XCTAssertEqual(try errorCode(noRecords), 11)
    }

    func testCheckComparesPrevResultWithTheHeldLease() async throws {
        agent.hold("cni:podnet/c1/eth0", "172.30.0.20")
        let same = #","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"172.30.0.20/16","interface":0}]}"#
        let matching = await run("CHECK", extra: same)
        XCTAssertEqual(matching.exitStatus, 0)
        let other = await run("CHECK", extra: #","prevResult":{"ips":[{"address":"172.30.0.21/16"}]}"#)
        XCTAssertEqual(try errorCode(other), 100)
        XCTAssertEqual(
            try object(other)["msg"] as? String,
            "prevResult names 172.30.0.21/16, but cni:podnet/c1/eth0 holds 172.30.0.20/16"
        )
        let none = await run("CHECK")
        XCTAssertEqual(try errorCode(none), 7)
        XCTAssertEqual(try object(none)["msg"] as? String, "CHECK needs prevResult in the configuration")
        _ = await run("DEL")
        let gone = await run("CHECK", extra: same)
        XCTAssertEqual(try errorCode(gone), 100)
        XCTAssertEqual(try object(gone)["msg"] as? String, "no active lease for cni:podnet/c1/eth0 in network 'prod'")
    }

    /// GC releases this CNI network's leases whose attachment is not listed, and nobody else's.
    func testGCReleasesOnlyThisNetworksStaleCNILeases() async throws {
        agent.hold("cni:podnet/keep/eth0", "172.30.0.20")
        agent.hold("cni:podnet/stale/eth0", "172.30.0.21")
        agent.hold("cni:podnet/keep/eth1", "172.30.0.22")
        agent.hold("cni:othernet/stale/eth0", "172.30.0.23")
        agent.hold("h1-c1", "172.30.0.24")
        agent.hold("docker/02:42:ac:1e:00:05", "172.30.0.25")
        agent.hold("cni:podnet/quarantined/eth0", "172.30.0.26", state: .conflict)
        let valid = #","cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]"#
        let gc = await run("GC", extra: valid, environment: ["CNI_PATH": "/usr/lib/cni"])
        XCTAssertEqual(gc.exitStatus, 0, String(decoding: gc.stdout, as: UTF8.self))
        XCTAssertTrue(gc.stdout.isEmpty)
        XCTAssertEqual(
            agent.owners,
            [
                "cni:othernet/stale/eth0", "cni:podnet/keep/eth0", "cni:podnet/quarantined/eth0",
                "docker/02:42:ac:1e:00:05", "h1-c1",
            ]
        )
        let missing = await run("GC", environment: [:])
        XCTAssertEqual(try errorCode(missing), 7)
    }

    func testGCContinuesPastAFailedReleaseAndReportsIt() async throws {
        agent.hold("cni:podnet/a/eth0", "172.30.0.20")
        agent.hold("cni:podnet/b/eth0", "172.30.0.21")
        agent.releaseError = { owner in owner.contains("/a/") ? NetleaseError(.unavailable, "no session") : nil }
        let gc = await run("GC", extra: #","cni.dev/valid-attachments":[]"#, environment: [:])
        XCTAssertEqual(try errorCode(gc), 11)
        XCTAssertEqual(try object(gc)["msg"] as? String, "GC released 1 of 2 stale leases")
        XCTAssertEqual(agent.owners, ["cni:podnet/a/eth0"])
    }

    func testStatusIs50WithoutFreeAddressesAnd51WithoutACoordinatorSession() async throws {
        let ready = await run("STATUS", environment: [:])
        XCTAssertEqual(ready.exitStatus, 0)
        XCTAssertTrue(ready.stdout.isEmpty)
        var facts = try agent.networkAnswer.get()
        facts.free = 0
        agent.networkAnswer = .success(facts)
        let exhausted = await run("STATUS", environment: [:])
        XCTAssertEqual(try errorCode(exhausted), 50)
        agent.networkAnswer = .failure(NetleaseError(.unknownNetwork, "not served"))
        let unserved = await run("STATUS", environment: [:])
        XCTAssertEqual(try errorCode(unserved), 50)
        agent.networkAnswer = .failure(NetleaseError(.unavailable, "no session"))
        let disconnected = await run("STATUS", environment: [:])
        XCTAssertEqual(try errorCode(disconnected), 51)
    }
}
