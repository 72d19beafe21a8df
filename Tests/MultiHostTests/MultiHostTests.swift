import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import XCTest

final class MultiHostTests: LabTestCase {
    func testThreeHostsOverVXLANEveryContainerReachesEveryOther() async throws {
        try await cluster.startCoordinator()
        for host in 1...3 { try await cluster.startAgent(host) }
        var containers: [(namespace: String, address: IPv4Address)] = []
        for host in 1...3 {
            for number in 1...2 {
                let address = try await cluster.attachContainer(host: host, number)
                containers.append((cluster.containerNamespace(host: host, number), address))
            }
        }
        XCTAssertEqual(Set(containers.map(\.address)).count, containers.count, "an address was handed out twice")
        for (namespace, address) in containers {
            let others = containers.filter { $0.address != address }.map(\.address)
            let failed = await unreachable(from: namespace, others)
            XCTAssertEqual(failed, [], "\(namespace) (\(address)) cannot reach \(failed)")
        }
        for host in 1...3 {
            let doctor = try await lab.run(
                lab.hostNamespace(host),
                [
                    cluster.binary, "doctor", "--socket", cluster.socket(host: host), "--json",
                ]
            )
            XCTAssertFalse(doctor.stdout.contains("\"ok\" : false"), "doctor on host\(host): \(doctor.stdout)")
        }
    }

    func testTwentyConcurrentAttachesOnEachOfThreeHostsAreUniqueAndReachable() async throws {
        try await cluster.startCoordinator()
        for host in 1...3 { try await cluster.startAgent(host) }
        let cluster = self.cluster!
        let results = try await withThrowingTaskGroup(of: (host: Int, owner: String, address: IPv4Address).self) {
            group in
            for host in 1...3 {
                for number in 1...20 {
                    group.addTask {
                        (host, "h\(host)-c\(number)", try await cluster.attachContainer(host: host, number))
                    }
                }
            }
            var all: [(host: Int, owner: String, address: IPv4Address)] = []
            for try await result in group { all.append(result) }
            return all
        }
        XCTAssertEqual(results.count, 60)
        XCTAssertEqual(Set(results.map(\.address)).count, 60, "an address was handed out twice")
        let leased = try await leaseAddresses()
        for result in results {
            XCTAssertEqual(
                leased[result.owner],
                result.address.description,
                "coordinator disagrees for \(result.owner)"
            )
        }
        // One pinger per host reaches every container on the other hosts.
        for host in 1...3 {
            let pinger = cluster.containerNamespace(host: host, 1)
            let targets = results.filter { $0.host != host }.map(\.address)
            let failed = await unreachable(from: pinger, targets)
            XCTAssertEqual(failed, [], "from host\(host): unreachable \(failed)")
        }
    }

    func testAnAddressConfiguredByHandIsQuarantinedAndNeverHandedOut() async throws {
        try await cluster.startCoordinator()
        // No pools: the attaches below lease and probe in order, so the next address is known.
        for host in 1...2 { try await cluster.startAgent(host, extraArguments: ["--pool-size", "0"]) }
        // Bridges hold .1 and .2, so the coordinator's next address is .3: someone took it by hand on host1's bridge.
        let squatted = IPv4Address(172, 30, 0, 3)
        let rogue = "nl\(lab.id)-rogue"
        try await lab.addNamespace(rogue)
        let hostNamespace = lab.hostNamespace(1)
        try await lab.run(
            hostNamespace,
            [
                "ip", "link", "add", "rogue0", "type", "veth", "peer", "name", "eth0",
                "netns", rogue,
            ]
        )
        try await lab.run(hostNamespace, ["ip", "link", "set", "rogue0", "master", "nl-demo", "up"])
        try await lab.run(rogue, ["ip", "addr", "add", "\(squatted)/16", "dev", "eth0"])
        try await lab.run(rogue, ["ip", "link", "set", "eth0", "up"])
        let linkJSON = try await lab.run(rogue, ["ip", "-j", "link", "show", "eth0"]).stdout
        let mac = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(linkJSON.utf8)) as? [[String: Any]])?.first?["address"]
                as? String
        )

        let given = try await cluster.attachContainer(host: 1, 1)
        XCTAssertNotEqual(given, squatted, "an address in use on the bridge was handed to a container")
        let conflicts = try await cluster.leasesJSON(["--state", "conflict"])
        XCTAssertEqual(conflicts.count, 1)
        XCTAssertEqual(conflicts.first?["address"] as? String, squatted.description)
        XCTAssertEqual(conflicts.first?["mac"] as? String, mac)
        let table = try await cluster.admin(["leases", "--network", "demo", "--state", "conflict"])
        XCTAssertTrue(table.contains("mac=\(mac)"), table)
        // The next containers never get it either.
        let next = try await cluster.attachContainer(host: 2, 1)
        XCTAssertNotEqual(next, squatted)
    }

    func testAHostThatJoinsLaterIsAddedToEveryMesh() async throws {
        try await cluster.startCoordinator()
        for host in 1...2 { try await cluster.startAgent(host) }
        let first = try await cluster.attachContainer(host: 1, 1)
        let second = try await cluster.attachContainer(host: 2, 1)
        try await cluster.startAgent(3)
        let third = try await cluster.attachContainer(host: 3, 1)
        let fromNew = await unreachable(from: cluster.containerNamespace(host: 3, 1), [first, second])
        XCTAssertEqual(fromNew, [])
        let fromOld1 = await unreachable(from: cluster.containerNamespace(host: 1, 1), [third])
        let fromOld2 = await unreachable(from: cluster.containerNamespace(host: 2, 1), [third])
        XCTAssertEqual(fromOld1 + fromOld2, [], "existing hosts' meshes did not gain the new host")
        for host in 1...2 {
            let doctor = try await lab.run(
                lab.hostNamespace(host),
                [
                    cluster.binary, "doctor", "--socket", cluster.socket(host: host),
                ]
            )
            XCTAssertTrue(doctor.stdout.contains("matches 2 peer(s)"), doctor.stdout)
        }
    }

    func testARestartedAgentKeepsItsContainersConnectedAndTheirAddresses() async throws {
        try await cluster.startCoordinator()
        for host in 1...2 { try await cluster.startAgent(host) }
        let local = try await cluster.attachContainer(host: 1, 1)
        let remote = try await cluster.attachContainer(host: 2, 1)
        let before = try await leaseAddresses()

        XCTAssertEqual(cluster.stopAgent(1), 0, "agent did not stop cleanly")
        let whileDown = await unreachable(from: cluster.containerNamespace(host: 1, 1), [remote])
        XCTAssertEqual(whileDown, [], "containers lost connectivity while their agent was stopped")

        try await cluster.startAgent(1, createHost: false)
        let again = try await cluster.attachContainer(host: 1, 1, createNamespace: false)
        XCTAssertEqual(again, local, "the same owner got a different address after the restart")
        let after = try await leaseAddresses()
        XCTAssertEqual(after, before)
        let afterRestart = await unreachable(from: cluster.containerNamespace(host: 2, 1), [local])
        XCTAssertEqual(afterRestart, [])
    }
}
