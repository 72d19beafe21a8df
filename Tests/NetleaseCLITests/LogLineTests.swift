import Foundation
import Logging
import XCTest

@testable import netlease

/// The daemons' log lines: one event, one line, metadata as fields, in each format.
final class LogLineTests: XCTestCase {
    /// 2026-01-02T03:04:05.678Z
    let time = Date(timeIntervalSince1970: 1_767_323_045.678)

    func line(
        _ level: Logger.Level = .warning,
        _ message: String = "coordinator session ended",
        _ metadata: Logger.Metadata = ["network": "prod", "error": "unavailable: refused", "epoch": "7"]
    )
        -> LogLine
    {
        LogLine(time: time, level: level, label: "netlease.agent", message: message, metadata: metadata)
    }

    func testText() {
        XCTAssertEqual(
            line().rendered(.text),
            #"2026-01-02T03:04:05.678Z warning netlease.agent: coordinator session ended epoch=7 "#
                + #"error="unavailable: refused" network=prod"#
        )
    }

    func testJournalHasThePriorityPrefixAndNoTime() {
        XCTAssertEqual(
            line().rendered(.journal),
            #"<4>netlease.agent: coordinator session ended epoch=7 error="unavailable: refused" "#
                + "network=prod"
        )
        let priorities = Logger.Level.allCases.map { line($0).rendered(.journal).prefix(3) }
        XCTAssertEqual(priorities, ["<7>", "<7>", "<6>", "<5>", "<4>", "<3>", "<2>"])
    }

    func testJSONHasOneKeyPerField() throws {
        let text = line().rendered(.json)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        XCTAssertEqual(
            object,
            [
                "time": "2026-01-02T03:04:05.678Z", "level": "warning", "logger": "netlease.agent",
                "message": "coordinator session ended", "network": "prod", "error": "unavailable: refused",
                "epoch": "7",
            ]
        )
        XCTAssertTrue(text.hasPrefix(#"{"time":"2026-01-02T03:04:05.678Z","level":"warning","logger":"#), text)
    }

    func testAFieldNamedLikeAJSONKeyKeepsBoth() throws {
        let text = line(.info, "m", ["message": "field", "level": "x"]).rendered(.json)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        XCTAssertEqual(object["message"], "m")
        XCTAssertEqual(object["field.message"], "field")
        XCTAssertEqual(object["field.level"], "x")
    }

    func testEveryEventIsOneLine() throws {
        let hostile = line(.error, "two\nlines", ["detail": "a\nb \"quoted\" c=d", "empty": ""])
        for format in LogFormat.allCases {
            XCTAssertFalse(hostile.rendered(format).contains("\n"), "\(format)")
        }
        XCTAssertEqual(
            hostile.rendered(.journal),
            #"<3>netlease.agent: two\nlines detail="a\nb \"quoted\" c=d" empty="""#
        )
        let object = try JSONSerialization.jsonObject(with: Data(hostile.rendered(.json).utf8)) as? [String: String]
        XCTAssertEqual(object?["detail"], "a\nb \"quoted\" c=d")
        XCTAssertEqual(object?["message"], "two\nlines")
    }

    func testNestedMetadataInJSON() throws {
        let text = line(.info, "m", ["peers": .array(["h1", "h2"]), "counts": .dictionary(["up": "2"])])
            .rendered(.json)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["peers"] as? [String], ["h1", "h2"])
        XCTAssertEqual(object["counts"] as? [String: String], ["up": "2"])
    }

    func testJournalOnlyWhenJournalStreamNamesStderr() {
        let stderr: (device: UInt64, inode: UInt64) = (64, 12345)
        XCTAssertEqual(LogFormat.detected(environment: [:], stderrIdentity: stderr), .text)
        XCTAssertEqual(
            LogFormat.detected(environment: ["JOURNAL_STREAM": "64:12345"], stderrIdentity: stderr),
            .journal
        )
        // Inherited, but stderr was redirected elsewhere.
        XCTAssertEqual(LogFormat.detected(environment: ["JOURNAL_STREAM": "64:999"], stderrIdentity: stderr), .text)
        XCTAssertEqual(LogFormat.detected(environment: ["JOURNAL_STREAM": "garbage"], stderrIdentity: stderr), .text)
    }

    func testTheSinkRedactsRegisteredSecrets() {
        let sink = StandardErrorSink()
        sink.redact("short")  // too short to redact without shredding every line
        sink.redact("0123456789abcdef")
        XCTAssertEqual(sink.redacted("AUTH secret=0123456789abcdef short"), "AUTH secret=[redacted] short")
    }

    func testLogFormatOption() throws {
        let coordinator = try parse(["coordinator", "--log-format", "json"], as: Netlease.Coordinator.self)
        XCTAssertEqual(coordinator.logFormat, .json)
        XCTAssertNil(try parse(["coordinator"], as: Netlease.Coordinator.self).logFormat)
        let agent = try parse(AgentCommandTests.required + ["--log-format", "journal"], as: Netlease.AgentCommand.self)
        XCTAssertEqual(agent.logFormat, .journal)
        assertRefused(
            ["coordinator", "--log-format", "xml"],
            "The value 'xml' is invalid for '--log-format <format>'. Please provide one of 'text', 'json' "
                + "or 'journal'."
        )
    }
}
