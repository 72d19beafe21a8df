import NetleaseCore
import NetleaseTransport
import XCTest

@testable import NetleaseAgent

/// Where the agent goes after a session ends, and how long it waits first: a standby's `not-leader` hint is
/// followed at once (a bounded number of times in a row), other failures back off — never for as long as a third of
/// the shortest lease TTL the agent serves.
final class CoordinatorRotationTests: XCTestCase {
    let a = Endpoint(host: "127.0.0.1", port: 7001)
    let b = Endpoint(host: "127.0.0.1", port: 7002)
    let c = Endpoint(host: "127.0.0.1", port: 7003)

    func notLeader(_ leader: Endpoint?) -> NetleaseError {
        NetleaseError(.notLeader, leader.map { "leader=\($0) this coordinator stands by" } ?? "no leader known")
    }

    func testANamedLeaderIsAskedNextWithoutAPause() {
        var rotation = CoordinatorRotation(coordinators: [a, b, c], delay: .seconds(5)...(.seconds(10)))
        XCTAssertEqual(rotation.current, a)
        XCTAssertEqual(rotation.next(after: notLeader(c)), .zero)
        XCTAssertEqual(rotation.current, c)
        // A leader outside the list (an advertised address) is asked too; when it fails, the list goes on after
        // the address that named it.
        let advertised = Endpoint(host: "10.0.0.9", port: 7420)
        XCTAssertEqual(rotation.next(after: notLeader(advertised)), .zero)
        XCTAssertEqual(rotation.current, advertised)
        XCTAssertGreaterThan(rotation.next(after: NetleaseError(.unavailable, "connection refused")), .zero)
        XCTAssertEqual(rotation.current, a)
    }

    func testNotLeaderWithoutAUsefulHintMovesOnWithoutAPause() {
        var rotation = CoordinatorRotation(coordinators: [a, b, c], delay: .seconds(5)...(.seconds(10)))
        XCTAssertEqual(rotation.next(after: notLeader(nil)), .zero)
        XCTAssertEqual(rotation.current, b)
        // A hint naming the coordinator that sent it is no hint.
        XCTAssertEqual(rotation.next(after: notLeader(b)), .zero)
        XCTAssertEqual(rotation.current, c)
    }

    func testHopsInARowAreBoundedThenBackOff() {
        var rotation = CoordinatorRotation(coordinators: [a, b], delay: .seconds(5)...(.seconds(10)))
        // Two standbys naming each other (a takeover in progress): a few hops, then a pause.
        for hop in 0..<rotation.maximumHops {
            let other = rotation.current == a ? b : a
            XCTAssertEqual(rotation.next(after: notLeader(other)), .zero, "hop \(hop)")
        }
        XCTAssertGreaterThanOrEqual(rotation.next(after: notLeader(a)), .milliseconds(2500))
        // A session that got ready allows the next hops without a pause again.
        rotation.connected(servingLeaseTTL: .seconds(120))
        XCTAssertEqual(rotation.next(after: notLeader(b)), .zero)
    }

    func testBackoffStaysBelowAThirdOfTheShortestServedTTL() {
        var rotation = CoordinatorRotation(
            coordinators: [a, b],
            delay: AgentConfiguration.defaultReconnectDelay
        )
        let unreachable = NetleaseError(.unavailable, "connection refused")
        // Before any session: the configured backoff, up to its 10 s.
        let unbounded = (0..<20).map { _ in rotation.next(after: unreachable) }
        XCTAssertGreaterThan(unbounded.max()!, .seconds(1))
        // Serving a network with the minimum TTL (3 s): every pause stays below 1 s, however many failures.
        rotation.connected(servingLeaseTTL: .seconds(3))
        let bounded = (0..<40).map { _ in rotation.next(after: unreachable) }
        XCTAssertLessThan(bounded.max()!, .seconds(1), "\(bounded)")
        XCTAssertGreaterThan(bounded.min()!, .zero)
        // A TTL so short that a third is below the configured minimum: the minimum gives way.
        rotation.connected(servingLeaseTTL: .milliseconds(300))
        let tiny = (0..<20).map { _ in rotation.next(after: unreachable) }
        XCTAssertLessThan(tiny.max()!, .milliseconds(100), "\(tiny)")
    }
}
