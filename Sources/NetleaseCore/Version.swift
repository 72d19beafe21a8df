/// The version of every netlease program — coordinator, agent, CLI and CNI plugin — written in this one place, so
/// `netlease --version`, `netlease-cni --version` and the coordinator's `STATS` field `version` always agree.
public enum NetleaseVersion {
    /// This build's version (semantic versioning).
    public static let current = "0.1.0"
}
