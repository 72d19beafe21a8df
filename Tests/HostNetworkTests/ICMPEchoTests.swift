import Foundation
import HostNetwork
import NetleaseCore
import XCTest

@testable import HostNetwork

/// The echo packets, byte for byte: no socket needed.
final class ICMPEchoPacketTests: XCTestCase {
    func testChecksumOfAKnownRequest() {
        // type 8, code 0, id 0x1234, seq 1, payload "abcd": the words sum to 0x0800 + 0x1234 + 0x0001 + 0x6162 +
        // 0x6364 = 0xDEFB, whose complement is 0x2104.
        let packet = ICMPEcho.request(identifier: 0x1234, sequence: 1, payload: Array("abcd".utf8))
        XCTAssertEqual(packet, [8, 0, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64])
        // A packet with its checksum in place sums to zero.
        XCTAssertEqual(ICMPEcho.checksum(packet), 0)
        XCTAssertEqual(ICMPEcho.checksum(ICMPEcho.request(identifier: 7, sequence: 9, payload: [1, 2, 3])), 0)
    }

    private func reply(
        from source: [UInt8],
        identifier: UInt16,
        type: UInt8 = 0,
        headerWords: UInt8 = 5
    )
        -> [UInt8]
    {
        var header = [0x40 | headerWords, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0] + source + [10, 0, 0, 1]
        header += [UInt8](repeating: 0, count: Int(headerWords - 5) * 4)
        return header + [type, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF), 0, 1]
    }

    func testOnlyAnEchoReplyFromTheTargetWithOurIdentifierCounts() {
        let target = IPv4Address(10, 0, 0, 2)
        XCTAssertTrue(ICMPEcho.isReply(reply(from: [10, 0, 0, 2], identifier: 77)[...], from: target, identifier: 77))
        XCTAssertTrue(
            ICMPEcho.isReply(
                reply(from: [10, 0, 0, 2], identifier: 77, headerWords: 6)[...],
                from: target,
                identifier: 77
            ),
            "IP options move the ICMP header"
        )
        XCTAssertFalse(ICMPEcho.isReply(reply(from: [10, 0, 0, 3], identifier: 77)[...], from: target, identifier: 77))
        XCTAssertFalse(ICMPEcho.isReply(reply(from: [10, 0, 0, 2], identifier: 78)[...], from: target, identifier: 77))
        XCTAssertFalse(
            ICMPEcho.isReply(
                reply(from: [10, 0, 0, 2], identifier: 77, type: 8)[...],
                from: target,
                identifier: 77
            )
        )
        XCTAssertFalse(ICMPEcho.isReply([0x45, 0, 0][...], from: target, identifier: 77))
    }
}

/// Echo over real links between namespaces (root).
final class ICMPEchoTests: NamespaceTestCase {
    func testEchoAcrossAVethPairAndSilenceFromANonexistentHost() async throws {
        let a = try await lab.addNamespace(role: "ea")
        let b = try await lab.addNamespace(role: "eb")
        try await lab.connect(a, "10.99.0.1/24", b, "10.99.0.2/24")
        let echo = ICMPEcho(namespace: .named(a))
        let answered = try await echo.answers(IPv4Address(10, 99, 0, 2), within: .seconds(10))
        XCTAssertTrue(answered)
        let started = ContinuousClock.now
        let silent = try await echo.answers(IPv4Address(10, 99, 0, 77), within: .milliseconds(600))
        XCTAssertFalse(silent)
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(600))
        // The namespace's loopback answers too: the socket really lives in the namespace.
        let loopback = try await echo.answers(IPv4Address(127, 0, 0, 1), within: .seconds(5))
        XCTAssertTrue(loopback)
        // The lab's reachability check is this echo.
        let fromB = await lab.ping(from: b, to: IPv4Address(10, 99, 0, 1))
        XCTAssertTrue(fromB)
    }

    func testANamespaceThatDoesNotExistIsAnErrorNotSilence() async throws {
        let echo = ICMPEcho(namespace: .named("nl-absent-\(UInt32.random(in: 1...UInt32.max))"))
        do {
            _ = try await echo.answers(IPv4Address(127, 0, 0, 1), within: .milliseconds(200))
            XCTFail("an echo from a missing namespace succeeded")
        } catch let error as HostNetworkError {
            XCTAssertEqual(error.code, .socket)
        }
    }
}
