import HostNetwork
import NetleaseCore
import Synchronization

/// An `ARPProber` for tests: answers from a table (address → MAC) and records every probe.
public final class ScriptedARPProber: ARPProber {
    /// One probe the code under test asked for.
    public struct Probe: Sendable, Equatable {
        public var address: IPv4Address
        public var interface: String

        public init(address: IPv4Address, interface: String) {
            self.address = address
            self.interface = interface
        }
    }

    private struct State: Sendable {
        var answers: [IPv4Address: String]
        var probes: [Probe] = []
        var duration: Duration = .zero
    }

    private let state: Mutex<State>

    /// - Parameter answers: address → MAC of the device that "answers" for it.
    public init(answers: [IPv4Address: String] = [:]) {
        state = Mutex(State(answers: answers))
    }

    /// Makes `address` answered by `mac`, or unanswered when `mac` is nil.
    public func setAnswer(_ mac: String?, for address: IPv4Address) {
        state.withLock { $0.answers[address] = mac }
    }

    /// How long each probe takes from now on, as a real one listens (default: no time at all).
    public func setDuration(_ duration: Duration) {
        state.withLock { $0.duration = duration }
    }

    /// Every probe so far, in order.
    public var probes: [Probe] { state.withLock { $0.probes } }

    public func probe(_ address: IPv4Address, on interface: String) async throws -> String? {
        let duration = state.withLock { state in
            state.probes.append(Probe(address: address, interface: interface))
            return state.duration
        }
        if duration > .zero { try await Task.sleep(for: duration) }
        return state.withLock { $0.answers[address] }
    }
}
