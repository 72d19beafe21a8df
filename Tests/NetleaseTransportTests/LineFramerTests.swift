import NIOCore
import NIOEmbedded
import NetleaseTransport
import XCTest

/// The server's framing handler on an embedded channel: a virtual clock makes the deadlines exact.
final class LineFramerTests: XCTestCase {
    var loop: EmbeddedEventLoop!
    var channel: EmbeddedChannel!

    override func setUp() async throws {
        loop = EmbeddedEventLoop()
        channel = EmbeddedChannel(
            handler: LineFramer(maxLength: 16, idleTimeout: .seconds(10), lineTimeout: .seconds(1)),
            loop: loop
        )
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
    }

    override func tearDown() async throws {
        _ = try? channel.finish()
    }

    private func send(_ text: String) throws { try channel.writeInbound(ByteBuffer(string: text)) }

    private func frames() throws -> [LineFrame] {
        var frames: [LineFrame] = []
        while let frame = try channel.readInbound(as: LineFrame.self) { frames.append(frame) }
        return frames
    }

    func testSplitsLinesAcrossReadsDropsCRAndCapsTheLength() throws {
        try send("PING\r\nACQ")
        try send("UIRE a\n\nx\n")
        XCTAssertEqual(try frames(), [.line("PING"), .line("ACQUIRE a"), .line(""), .line("x")])
        try send(String(repeating: "a", count: 16) + "\r\n")  // exactly the limit, with a CR
        XCTAssertEqual(try frames(), [.line(String(repeating: "a", count: 16))])
        try send(String(repeating: "b", count: 18))
        try send("\nPING\n")
        XCTAssertEqual(try frames(), [.tooLong], "nothing is decoded after an oversized line")
    }

    func testTheLineDeadlineIsPerLineSoAPipeliningClientIsNeverCutOff() throws {
        try send("PING\nPA")
        loop.advanceTime(by: .milliseconds(600))
        try send("RT\nXY")  // completes the started line and starts a new one
        loop.advanceTime(by: .milliseconds(600))
        XCTAssertTrue(channel.isActive, "1.2 s of partial lines, but no single line took 1 s")
        loop.advanceTime(by: .milliseconds(500))
        XCTAssertFalse(channel.isActive, "a line unfinished for 1.1 s closes the connection")
        XCTAssertEqual(try frames(), [.line("PING"), .line("PART")])
    }

    func testAnIdleConnectionClosesAfterTheIdleTimeoutCountedFromTheLastRead() throws {
        loop.advanceTime(by: .seconds(9))
        try send("PING\n")
        loop.advanceTime(by: .seconds(9))
        XCTAssertTrue(channel.isActive, "a read restarts the idle time")
        loop.advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive)
    }

    func testLiftedIdleTimeoutKeepsAQuietConnectionOpen() throws {
        try channel.pipeline.syncOperations.handler(type: LineFramer.self).liftIdleTimeout()
        loop.advanceTime(by: .seconds(3600))
        XCTAssertTrue(channel.isActive)
    }

    func testAFinalLineWithoutLFIsDiscardedWhenTheInputEnds() throws {
        try send("PING\nHALF")
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(try frames(), [.line("PING")])
        loop.advanceTime(by: .seconds(2))
        XCTAssertTrue(channel.isActive, "no line deadline once the input ended: the replies may still be written")
    }
}
