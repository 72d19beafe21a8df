#if canImport(Glibc)
import Glibc
#endif

/// Raises this process's limit on open descriptors (`RLIMIT_NOFILE`) for one test and puts the previous limits
/// back in `restore()`: the limit is process-wide, so a test that leaves it raised would hide, in every later test
/// of the run, a descriptor leak the normal limit would have shown.
///
/// The soft limit is raised towards `wanted`; when the hard limit is below it, the hard limit is raised too, which
/// only root (CAP_SYS_RESOURCE) may do. Call `restore()` from `addTeardownBlock` so it runs on every exit path.
public final class OpenFileLimitChange: @unchecked Sendable {
    // @unchecked: `saved` is set in init and only read; `restored` is only touched by `restore()`, which a test
    // calls once from its teardown.
    private let saved: rlimit?
    private var restored = false

    /// The soft limit in force after the change (the old one when nothing could be changed).
    public let current: Int

    public init(raisingTo wanted: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            saved = nil
            current = 0
            return
        }
        saved = limit
        let target = rlim_t(clamping: wanted)
        if limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = target
            raised.rlim_max = max(limit.rlim_max, target)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 {
                // Not allowed to raise the hard limit: go as far as it allows.
                raised.rlim_max = limit.rlim_max
                raised.rlim_cur = min(target, limit.rlim_max)
                _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
            }
        }
        var now = rlimit()
        current = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &now) == 0 ? Int(clamping: now.rlim_cur) : 0
    }

    /// Puts back the soft and hard limits found at init. Returns false when they could not be restored.
    @discardableResult
    public func restore() -> Bool {
        guard !restored, var limit = saved else { return true }
        restored = true
        return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0
    }

    /// The soft and hard limits in force now.
    public static func limits() -> (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        return (Int(clamping: limit.rlim_cur), Int(clamping: limit.rlim_max))
    }
}
