import NIOCore

/// The bench's time: monotonic nanoseconds on the clock NIO schedules tasks by, so a request's scheduled time and
/// an event loop's `.uptimeNanoseconds` deadline compare directly.
enum BenchClock {
    static func nowNs() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}
