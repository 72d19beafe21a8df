import Foundation
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// A real Prometheus server scrapes a coordinator on loopback every second; what its query API answers must equal
/// what the coordinator lists.
final class PrometheusScrapeTests: XCTestCase {
    func testPrometheusScrapesTheCoordinatorAndItsQueriesMatchTheListings() async throws {
        guard let executable = PrometheusTools.find("prometheus") else {
            let message = "prometheus not found: install the Debian package '\(PrometheusTools.package)'"
            if PrometheusTools.required { XCTFail("NETLEASE_REQUIRE_NETNS=1 but \(message)") }
            throw XCTSkip(message)
        }
        let harness = try await withDeadline(.seconds(30), "the coordinator's start") {
            try await CoordinatorHarness.start(metrics: true)
        }
        addTeardownBlock { await harness.stop() }
        let listed = try await withDeadline(.seconds(30), "populating and listing") {
            try await harness.connect { admin in
                _ = try await admin.createNetwork(NetworkSpec(name: "prod", subnet: IPv4Subnet("172.30.0.0/24")!))
                _ = try await admin.createNetwork(NetworkSpec(name: "dev", subnet: IPv4Subnet("10.77.0.0/28")!))
                for index in 0..<4 { _ = try await admin.acquire(AcquireRequest(network: "prod", owner: "p\(index)")) }
                _ = try await admin.acquire(AcquireRequest(network: "dev", owner: "d0"))
                _ = try await admin.release(ReleaseRequest(network: "prod", owner: "p0"))
                _ = try await admin.reserve(network: "dev", address: IPv4Address(10, 77, 0, 9), note: "router")
                let leases = try await admin.leases() + admin.leases(.init(state: .cooldown))
                var counts: [String: Double] = [:]
                for network in ["prod", "dev"] {
                    for state in LeaseState.allCases {
                        counts["\(network)/\(state.rawValue)"] = Double(
                            leases.filter { $0.network == network && $0.state == state }.count
                        )
                    }
                }
                return counts
            }
        }
        XCTAssertEqual(listed["prod/active"], 3)
        XCTAssertEqual(listed["prod/cooldown"], 1)
        XCTAssertEqual(listed["dev/reserved"], 1)

        let metricsPort = try XCTUnwrap(harness.metricsPort)
        let prometheus = try await PrometheusServer.start(
            executable: executable,
            targets: ["127.0.0.1:\(metricsPort)"]
        )
        addTeardownBlock { prometheus.stop() }

        // The first scrape lands within about a second; allow a loaded machine much longer.
        var scraped: [String: Double] = [:]
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            scraped = [:]
            for series in try await prometheus.query("netlease_leases") {
                scraped["\(series.labels["network"] ?? "?")/\(series.labels["state"] ?? "?")"] = series.value
            }
            if scraped == listed { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTAssertEqual(scraped, listed, "Prometheus's log:\n\(prometheus.log.suffix(3000))")
        let up = try await prometheus.query(#"up{job="netlease"}"#)
        XCTAssertEqual(up.map(\.value), [1], "the target is up")
        let acquires = try await prometheus.query(#"netlease_requests_total{verb="ACQUIRE",result="ok"}"#)
        XCTAssertEqual(acquires.map(\.value), [5])
    }
}
