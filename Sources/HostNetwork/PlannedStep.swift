/// One difference between the host and what it should be, and the command that removes it.
///
/// `ensureNetwork` runs the commands of a plan in order; `verify` reports the same plan as failed checks. One
/// planner for both means verify can never accept what ensure would change.
struct PlannedStep: Sendable, Equatable {
    var check: VerifyCheck
    /// What is wrong, for people.
    var problem: String
    /// The fix; nil when netlease cannot fix it (e.g. no interface holds the underlay address).
    var argv: [String]?
    /// Whether nothing of the plan may run while this problem stands (e.g. a non-bridge link has the bridge's name).
    var blocking = false
    var creates: CreatedResource?
    var removes: CreatedResource?

    init(
        _ check: VerifyCheck,
        _ problem: String,
        _ argv: [String]?,
        blocking: Bool = false,
        creates: CreatedResource? = nil,
        removes: CreatedResource? = nil
    ) {
        self.check = check
        self.problem = problem
        self.argv = argv
        self.blocking = blocking
        self.creates = creates
        self.removes = removes
    }

    var failure: VerifyFailure { VerifyFailure(check: check, detail: problem) }
}
