import Foundation
import HostNetwork
import NetleaseCore
import NetleaseLab
import NetleaseTesting
import XCTest

/// Base of the namespace tests: builds a fresh lab per test and removes it on every exit path. Without root or
/// `ip netns` the tests skip — unless NETLEASE_REQUIRE_NETNS=1, which turns the missing capability into a failure.
class LabTestCase: XCTestCase {
    var cluster: LabCluster!

    var lab: NamespaceLab { cluster.lab }

    override func setUp() async throws {
        if let problem = await NamespaceLab.capabilityProblem() {
            if LabRequirement.isRequired {
                XCTFail("NETLEASE_REQUIRE_NETNS=1 but the namespace tests cannot run: \(problem)")
                throw NetleaseError(.unavailable, problem)
            }
            throw XCTSkip("namespace tests skipped: \(problem)")
        }
        // Leftovers of a crashed run go first (once per test process; never another live run's labs).
        LabSweeper.report(await LabSweeper.sweepOnce())
        // The binary first: a lab made before a failure here would leave its directory behind.
        let binary = try Self.binary()
        cluster = LabCluster(lab: try NamespaceLab(), binary: binary)
    }

    override func tearDown() async throws {
        let strays = ThreadNamespaces.strays()
        XCTAssertEqual(strays, [], "threads of the test process left in another network namespace")
        if let cluster {
            let leftover = cluster.lab.createdNamespaces
            let processes = cluster.lab.startedProcesses
            await cluster.destroy()
            for namespace in leftover {
                XCTAssertFalse(
                    FileManager.default.fileExists(atPath: "/var/run/netns/\(namespace)"),
                    "namespace \(namespace) was not removed"
                )
            }
            for process in processes where process.isRunning {
                XCTFail("process \(process.name) (pid \(process.pid)) survived the lab")
            }
        }
        cluster = nil
    }

    static func binary() throws -> String { try Executables.path() }

    /// Pings every target from `source` until it answers or `timeout` passes (a first echo over a fresh path may be
    /// lost while ARP resolves); returns the targets that never answered.
    func unreachable(
        from source: String,
        _ targets: [IPv4Address],
        timeout: Duration = .seconds(10)
    ) async
        -> [IPv4Address]
    {
        var failed: [IPv4Address] = []
        for target in targets where !(await lab.ping(from: source, to: target, within: timeout)) {
            failed.append(target)
        }
        return failed
    }

    /// A shell script for inside a container (busybox): prints each argument address that does not answer one of
    /// three pings (a fresh path may lose its first packet). For `docker exec` / `podman exec … sh -c SCRIPT sh A…`.
    static let unreachableScript = """
        for a in "$@"; do ok=; for i in 1 2 3; do ping -c 1 -W 1 "$a" >/dev/null 2>&1 && ok=1 && break; done; \
        [ -n "$ok" ] || echo "$a"; done
        """

    /// Containers' leases by owner; the agents' pooled addresses (owners `pool:…`) are left out: they come and go
    /// as the agents keep their pools full.
    func leaseAddresses(state: String = "active") async throws -> [String: String] {
        var byOwner: [String: String] = [:]
        for lease in try await cluster.leasesJSON(["--state", state]) {
            if let owner = lease["owner"] as? String, !owner.hasPrefix("pool:"),
                let address = lease["address"] as? String
            {
                byOwner[owner] = address
            }
        }
        return byOwner
    }

    /// `netlease hosts --json` by host name.
    func hosts() async throws -> [String: [String: Any]] {
        let text = try await cluster.admin(["hosts", "--json"])
        let list = (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
        return Dictionary(
            uniqueKeysWithValues: list.compactMap { entry in
                (entry["name"] as? String).map { ($0, entry) }
            }
        )
    }
}
