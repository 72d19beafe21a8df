import Synchronization

/// A histogram for hot paths: one atomic add per observation into its bucket and one into the sum, no lock and no
/// allocation. Buckets are counted apart and made cumulative only when read, at scrape time.
///
/// Why not swift-prometheus's `Histogram` on the request path: its `record` takes a lock (shared by every event loop
/// and the store's writer thread that complete requests) and walks every bucket. Measured in a release build on
/// this project's 2-core machine kind, 15 buckets, CPU time per observation: swift-prometheus's
/// `DurationHistogram.record` 82 ns, this type 10 ns (its `Counter.increment`, one atomic add, 4 ns, so it is used
/// directly; `ContinuousClock.now` 27 ns). Wall time with the machine loaded by a parallel build was 200–740 ns
/// against 40–130 ns. A coordinator spends 24–48 µs of CPU per acquire (docs/PERFORMANCE.md): the locked histogram
/// alone would be 0.2–0.3 % of that uncontended, below what the bench resolves, but it is a lock on the hot path
/// that grows with contention; all of a request's metrics here (two clock reads, this histogram, the counter) cost
/// 80 ns.
public final class AtomicHistogram: Sendable {
    /// Inclusive upper bounds of the buckets, ascending, in the unit recorded (nanoseconds for durations).
    public let bounds: [Int]
    /// One count per bound plus one past the last (the `+Inf` bucket); not cumulative.
    private let counts: [AtomicCell]
    private let total = Atomic<Int>(0)

    public init(bounds: [Int]) {
        precondition(
            !bounds.isEmpty && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 },
            "bounds must be ascending"
        )
        self.bounds = bounds
        counts = (0...bounds.count).map { _ in AtomicCell() }
    }

    /// Buckets for durations, given as `Duration`s.
    public convenience init(durations: [Duration]) {
        self.init(bounds: durations.map(Self.nanoseconds))
    }

    /// Counts one observation.
    @inlinable
    public func record(_ value: Int) {
        var index = 0
        while index < bounds.count && bounds[index] < value { index += 1 }
        add(value, at: index)
    }

    /// Counts one duration, in nanoseconds.
    @inlinable
    public func record(_ duration: Duration) { record(Self.nanoseconds(duration)) }

    @usableFromInline
    func add(_ value: Int, at index: Int) {
        counts[index].value.add(1, ordering: .relaxed)
        total.add(value, ordering: .relaxed)
    }

    /// The counts as Prometheus wants them: cumulative per bound, the total count and the sum. Read without
    /// stopping writers, so the sum may be a few observations ahead of or behind the counts; `count` always
    /// equals the last cumulative bucket.
    public func snapshot() -> Snapshot {
        var cumulative: [Int] = []
        cumulative.reserveCapacity(bounds.count)
        var running = 0
        for index in bounds.indices {
            running += counts[index].value.load(ordering: .relaxed)
            cumulative.append(running)
        }
        running += counts[bounds.count].value.load(ordering: .relaxed)
        return Snapshot(cumulative: cumulative, count: running, sum: total.load(ordering: .relaxed))
    }

    /// A histogram's counts at one moment.
    public struct Snapshot: Sendable, Equatable {
        /// Observations at or below each bound.
        public var cumulative: [Int]
        public var count: Int
        public var sum: Int

        public init(cumulative: [Int], count: Int, sum: Int) {
            self.cumulative = cumulative
            self.count = count
            self.sum = sum
        }
    }

    @inlinable
    static func nanoseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) &* 1_000_000_000 &+ Int(attoseconds / 1_000_000_000)
    }
}

/// One atomic integer on the heap, so that a histogram can hold an array of them.
@usableFromInline
final class AtomicCell: Sendable {
    @usableFromInline let value = Atomic<Int>(0)

    @usableFromInline init() {}
}
