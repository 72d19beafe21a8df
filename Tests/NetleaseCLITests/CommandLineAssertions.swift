import ArgumentParser
import XCTest

@testable import netlease

/// Parses `argv` as the `netlease` executable would (its root command, option groups and `validate()` included)
/// and returns the command it selected, failing when that is not a `Command`.
func parse<Command: ParsableCommand>(
    _ argv: [String],
    as type: Command.Type,
    file: StaticString = #filePath,
    line: UInt = #line
) throws -> Command {
    let parsed: ParsableCommand
    do {
        parsed = try Netlease.parseAsRoot(argv)
    } catch {
        XCTFail("\(argv) was refused: \(Netlease.message(for: error))", file: file, line: line)
        throw error
    }
    return try XCTUnwrap(parsed as? Command, "\(argv) parsed as \(Swift.type(of: parsed))", file: file, line: line)
}

/// Asserts that `argv` is refused as a usage error (exit status 64) with exactly `message`, the text users read
/// after `Error: `.
func assertRefused(
    _ argv: [String],
    _ message: String,
    file: StaticString = #filePath,
    line: UInt = #line
) {
    do {
        let parsed = try Netlease.parseAsRoot(argv)
        XCTFail("\(argv) was accepted as \(type(of: parsed))", file: file, line: line)
    } catch {
        XCTAssertEqual(Netlease.message(for: error), message, "\(argv)", file: file, line: line)
        XCTAssertEqual(Netlease.exitCode(for: error), .validationFailure, "\(argv)", file: file, line: line)
    }
}
