import NetleaseLab
import XCTest

/// Ends a test that needs something this machine lacks (a tool, root, a resource limit): a skip naming `why` on a
/// developer's machine, a recorded failure under CI's NETLEASE_REQUIRE_NETNS=1 (`LabRequirement`), so CI can never
/// go green by skipping.
func missingCapability(_ why: String, file: StaticString = #filePath, line: UInt = #line) throws -> Never {
    if let variable = LabRequirement.requiringVariable() {
        XCTFail("\(variable)=1 but \(why)", file: file, line: line)
        throw MissingCapability(description: why)
    }
    throw XCTSkip(why, file: file, line: line)
}

/// Thrown after the failure is recorded, so the test stops at once.
struct MissingCapability: Error, CustomStringConvertible {
    var description: String
}
