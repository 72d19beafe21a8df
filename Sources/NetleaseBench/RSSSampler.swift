import Foundation
import Synchronization

/// Samples a process's memory every 250 ms on a background thread.
final class RSSSampler: Sendable {
    struct Samples: Sendable, Encodable {
        var maxRSS: Int
        var lastRSS: Int
        var hwm: Int
    }

    let pid: Int32?
    private let state = Mutex<(running: Bool, samples: Samples?)>((false, nil))

    init(pid: Int32?) { self.pid = pid }

    func snapshot() -> (rss: Int, hwm: Int)? { pid.flatMap(ProcessUsage.memory(of:)) }

    func start() {
        guard let pid else { return }
        state.withLock { $0.running = true }
        let thread = Thread { [self] in
            while state.withLock({ $0.running }) {
                if let m = ProcessUsage.memory(of: pid) {
                    state.withLock { s in
                        var samples = s.samples ?? Samples(maxRSS: 0, lastRSS: 0, hwm: 0)
                        samples.maxRSS = max(samples.maxRSS, m.rss)
                        samples.lastRSS = m.rss
                        samples.hwm = max(samples.hwm, m.hwm)
                        s.samples = samples
                    }
                }
                Thread.sleep(forTimeInterval: 0.25)
            }
        }
        thread.start()
    }

    func stop() -> Samples? {
        state.withLock { s in
            s.running = false
            return s.samples
        }
    }
}
