import Foundation

/// Percentiles of latency samples, in milliseconds: nearest rank over every sample kept, none estimated.
struct LatencySummary: Sendable, Encodable {
    var count: Int
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double
    var mean: Double

    enum CodingKeys: String, CodingKey {
        case count, p50, p90, p99
        case p999 = "p99_9"
        case max, mean
    }

    /// Milliseconds, from nanosecond samples (sorted here).
    init(nanoseconds samples: [UInt64]) {
        let sorted = samples.sorted()
        count = sorted.count
        func pick(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let rank = Swift.max(1, Int((q * Double(sorted.count)).rounded(.up)))
            return Double(sorted[Swift.min(sorted.count, rank) - 1]) / 1e6
        }
        p50 = pick(0.50)
        p90 = pick(0.90)
        p99 = pick(0.99)
        p999 = pick(0.999)
        max = Double(sorted.last ?? 0) / 1e6
        mean = sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count) / 1e6
    }

    var text: String {
        String(format: "p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms", p50, p90, p99, p999, max)
            + "  (n=\(count))"
    }
}
