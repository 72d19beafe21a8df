import Foundation
import NetleaseCore
import NetleaseTesting
import NetleaseWire
import XCTest

/// Hostile input from a client holding the admin secret: the fuzzer's seed corpus, its crash corpus and seeded
/// mutations of both, sent after `AUTH` to a real coordinator. Lines the parser refuses must be answered with
/// `ERR bad-request` (or a closed connection for an over-long line) and change nothing; lines it accepts may act,
/// but only with `OK` or a stable error code. Afterwards the coordinator still serves, no address is listed twice,
/// and nothing a refused line named has changed.
final class AuthenticatedHostileInputTests: XCTestCase {
    var harness: CoordinatorHarness!

    override func setUp() async throws {
        harness = try await CoordinatorHarness.start()
    }

    override func tearDown() async throws {
        await harness?.stop()
        harness = nil
    }

    static var fuzzDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz")
    }

    static func corpusLines() throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for folder in ["seeds", "crashes"] {
            let directory = fuzzDirectory.appendingPathComponent(folder)
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            for name in names where name != "README.md" {
                let data = try Data(contentsOf: directory.appendingPathComponent(name))
                lines += data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map { Array($0) }
            }
        }
        return lines
    }

    func testCorpusAndSeededMutationsAfterAuthChangeNothingWhenRefused() throws {
        let corpus = try Self.corpusLines()
        XCTAssertGreaterThan(corpus.count, 50, "the fuzz corpus was not found at \(Self.fuzzDirectory.path)")
        let seed = UInt64.random(in: 0...UInt64.max)
        print("hostile input: seed \(seed)")
        var generator = SplitMixGenerator(seed: seed)
        var lines = corpus
        for _ in 0..<2_000 {
            var line = corpus.randomElement(using: &generator)!
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0...line.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0 where position < line.count: line[position] = UInt8.random(in: 0...255, using: &generator)
                case 1: line.insert(UInt8.random(in: 0...255, using: &generator), at: position)
                case 2 where position < line.count: line.remove(at: position)
                default: line.insert(contentsOf: Array("%00=%C3%A9 ".utf8), at: position)
                }
            }
            lines.append(line.filter { $0 != UInt8(ascii: "\n") })
        }
        let admin = try authenticated()
        XCTAssertTrue(try reply(admin, "NETWORK-CREATE name=base subnet=172.30.0.0/24").hasPrefix("OK"))
        XCTAssertTrue(try reply(admin, "ACQUIRE network=base owner=keep").hasPrefix("OK"))
        var before = try state()
        var client = try authenticated()
        var refused = 0
        var accepted = 0
        for line in lines {
            // The server takes CR LF as LF; a blank line gets no reply at all.
            let text = String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...], as: UTF8.self)
            guard !text.isEmpty else { continue }
            let request = try? Request(line: Substring(text))
            let parses = request != nil
            if case .auth = request { continue }  // failed AUTHs close a connection by design; covered elsewhere
            if case .quit = request { continue }
            try client.send(line + [UInt8(ascii: "\n")])
            guard let answer = try? client.readLine() else {
                XCTFail("the connection closed after: \(text.prefix(80))")
                client = try authenticated()
                continue
            }
            if text.utf8.count > WireLimits.maxLineBytes {
                // An over-long line is refused and the connection closed, as documented (HostileClientTests checks
                // the close itself); carry on with a new one.
                XCTAssertTrue(answer.hasPrefix("ERR bad-request line longer than"), answer)
                client = try authenticated()
                refused += 1
                continue
            }
            if answer.hasPrefix("OK count="), let count = Int(answer.dropFirst(9).prefix { $0.isNumber }) {
                _ = try client.readLines(count)
            }
            if parses {
                accepted += 1
                let code = answer.hasPrefix("ERR ") ? String(answer.dropFirst(4).prefix { $0 != " " }) : nil
                XCTAssertTrue(answer.hasPrefix("OK") || ErrorCode(rawValue: code ?? "") != nil, answer)
                XCTAssertNotEqual(code, ErrorCode.internalError.rawValue, "\(text.prefix(120)) -> \(answer)")
                XCTAssertNotEqual(code, ErrorCode.storage.rawValue, "\(text.prefix(120)) -> \(answer)")
                if case .watch = request, answer.hasPrefix("OK") {
                    client = try authenticated()  // the connection now carries events
                }
                before = try state()  // an accepted line may change state; refused ones after it may not
            } else {
                refused += 1
                XCTAssertTrue(answer.hasPrefix("ERR bad-request"), "\(text.prefix(120)) -> \(answer)")
                XCTAssertEqual(try state(), before, "a refused line changed state: \(text.prefix(120))")
            }
        }
        print("hostile input: \(refused) refused, \(accepted) accepted")
        XCTAssertGreaterThan(refused, 1_000)
        let listing = try state().filter { $0.hasPrefix("LEASE") }
        let addresses = listing.compactMap { $0.split(separator: " ").first { $0.hasPrefix("address=") } }
        XCTAssertEqual(addresses.count, Set(addresses).count, "an address is listed twice")
        XCTAssertEqual(try reply(try authenticated(), "PING"), "OK pong=1")
    }

    // MARK: helpers

    private func authenticated() throws -> RawLineClient {
        let client = try RawLineClient(port: harness.endpoint.port)
        _ = try client.readLine()
        try client.send("AUTH secret=test-secret\n")
        XCTAssertEqual(try client.readLine(), "OK role=admin")
        return client
    }

    private func reply(_ client: RawLineClient, _ line: String) throws -> String {
        try client.send(line + "\n")
        return try XCTUnwrap(try client.readLine())
    }

    /// Networks, hosts and leases (every state), without times that move by themselves.
    private func state() throws -> [String] {
        let admin = try authenticated()
        var lines: [String] = []
        for verb in ["NETWORK-LIST", "HOST-LIST", "LEASE-LIST", "LEASE-LIST state=cooldown"] {
            try admin.send(verb + "\n")
            let head = try XCTUnwrap(try admin.readLine())
            let count = Int(head.dropFirst(9).prefix { $0.isNumber }) ?? 0
            lines += try admin.readLines(count).map { line in
                line.split(separator: " ").filter { !$0.hasPrefix("last-heartbeat=") && !$0.hasPrefix("renewed=") }
                    .joined(separator: " ")
            }
        }
        return lines
    }
}

/// Seeded randomness for the test (the seed is printed), so a failure can be replayed.
struct SplitMixGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
