import NetleaseCore
import XCTest

/// Runs `body`, which must fail with a `NetleaseError` of `code`; anything else fails the test at the caller's line.
func expectNetleaseError<T>(
    _ code: ErrorCode,
    _ what: String = "",
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () async throws -> T
) async {
    do {
        let value = try await body()
        XCTFail("\(what): expected \(code.rawValue), got \(value)", file: file, line: line)
    } catch let error as NetleaseError {
        XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
    } catch {
        XCTFail("\(what): \(error)", file: file, line: line)
    }
}
