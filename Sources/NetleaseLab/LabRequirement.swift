import Foundation

/// Whether a root lab test that cannot run here (not root, no `ip netns`, no Open vSwitch, a missing tool) skips or
/// fails. CI sets NETLEASE_REQUIRE_NETNS=1: a run on a machine that lacks a capability then fails instead of going
/// green by skipping every test that matters. XCTest is not linked here; each test target turns the answer into
/// `XCTSkip` or `XCTFail`.
public enum LabRequirement {
    /// Set to 1: every missing capability of a root test is a failure.
    public static let variable = "NETLEASE_REQUIRE_NETNS"
    /// Set to 1: a missing Open vSwitch is a failure (implied by `variable`).
    public static let openVSwitchVariable = "NETLEASE_REQUIRE_OVS"

    public static var isRequired: Bool { isSet(variable) }

    /// The variable that turns this missing capability into a failure here, or nil when it is a skip.
    public static func requiringVariable(openVSwitch: Bool = false) -> String? {
        if isSet(variable) { return variable }
        if openVSwitch && isSet(openVSwitchVariable) { return openVSwitchVariable }
        return nil
    }

    private static func isSet(_ name: String) -> Bool { ProcessInfo.processInfo.environment[name] == "1" }
}
