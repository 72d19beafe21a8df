import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the coordinator's heap small: hands freed memory back to the system on a fixed interval, and (called
/// once at start) limits the allocator to two arenas.
///
/// glibc's allocator returns memory only from the top of its heaps. A coordinator's transient buffers (a
/// `WATCH` snapshot or `LEASE-LIST` of thousands of records, a burst of joins) are freed between long-lived
/// objects (connections, ledger records), and the holes they leave stay resident. `malloc_trim(0)` releases
/// every free page, wherever it is; measured with 1,000 agents, 65,000 leases and 1,000 watchers it took the
/// coordinator's anonymous memory from 65 to 49 MiB. It costs well under a millisecond at that size.
public struct MemoryTrimmer: Service {
    let interval: Duration

    public init(interval: Duration = .seconds(10)) {
        self.interval = interval
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                Self.trim()
            }
        }
    }

    /// Releases free heap pages now. Returns whether any memory was released (false where the C library has no
    /// `malloc_trim`).
    @discardableResult
    public static func trim() -> Bool {
        guard let mallocTrim else { return false }
        return mallocTrim(0) == 1
    }

    /// Limits glibc to `count` malloc arenas. By default every thread that allocates may get its own arena (up to
    /// 8 per core), and each keeps its own partly used pages: measured with 1,000 agents, 65,000 leases and 1,000
    /// watchers, two arenas took the coordinator from 68.6 to 59.9 MiB resident. Call before starting threads.
    public static func limitArenas(to count: Int) {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        let arenaMax: Int32 = -8  // M_ARENA_MAX in <malloc.h>
        _ = mallopt(arenaMax, Int32(count))
        #endif
    }

    /// glibc's `malloc_trim`, looked up at run time (`<malloc.h>` is not part of the Glibc module).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()
}
