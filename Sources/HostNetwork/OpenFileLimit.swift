#if canImport(Glibc)
import Glibc
#endif

/// This process's limit on open descriptors (`RLIMIT_NOFILE`), for code that holds thousands of connections
/// (the bench, load tests).
public enum OpenFileLimit {
    /// Raises the soft limit to `wanted`, at most to the hard limit, if it is lower. Returns the soft limit now in
    /// force (unchanged when it cannot be read or raised).
    @discardableResult
    public static func raise(to wanted: Int = .max) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let target = min(rlim_t(clamping: wanted), limit.rlim_max)
        if limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
