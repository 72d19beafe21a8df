/// Whether a daemon is ready to do its job, and if not, why: what `/readyz` answers.
public struct Readiness: Sendable, Equatable {
    /// What is not ready yet, one line each, for people; empty when ready.
    public var unmet: [String]

    public init(unmet: [String] = []) { self.unmet = unmet }

    public var isReady: Bool { unmet.isEmpty }
}
