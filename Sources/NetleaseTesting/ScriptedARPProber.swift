import HostNetwork
import NetleaseCore
import Synchronization

/// An `ARPProber` for tests: answers from a table (address → MAC), records every probe, and lets a test announce
/// ARP claims to whoever watches an interface.
public final class ScriptedARPProber: ARPProber {
    /// One probe the code under test asked for.
    public struct Probe: Sendable, Equatable {
        public var address: IPv4Address
        public var interface: String
        public var options: ARPProbeOptions
        public var ignoring: Set<String>

        public init(
            address: IPv4Address,
            interface: String,
            options: ARPProbeOptions = ARPProbeOptions(),
            ignoring: Set<String> = []
        ) {
            self.address = address
            self.interface = interface
            self.options = options
            self.ignoring = ignoring
        }
    }

    private struct State: Sendable {
        var answers: [IPv4Address: String]
        var probes: [Probe] = []
        var duration: Duration = .zero
        var watchers: [String: [Int: AsyncThrowingStream<ARPClaim, any Error>.Continuation]] = [:]
        var nextWatcher = 0
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

    /// How many watches of `interface` are open.
    public func watchers(of interface: String) -> Int { state.withLock { $0.watchers[interface]?.count ?? 0 } }

    /// Hands `claim` to every watcher of `interface`, as if the frame had just been seen there.
    public func announce(_ claim: ARPClaim, on interface: String) {
        for watcher in state.withLock({ $0.watchers[interface]?.values.map { $0 } ?? [] }) { watcher.yield(claim) }
    }

    public func probe(
        _ address: IPv4Address,
        on interface: String,
        options: ARPProbeOptions,
        ignoring: Set<String>
    )
        async throws -> String?
    {
        let duration = state.withLock { state in
            state.probes.append(Probe(address: address, interface: interface, options: options, ignoring: ignoring))
            return state.duration
        }
        if duration > .zero { try await Task.sleep(for: duration) }
        return state.withLock { state in state.answers[address].flatMap { ignoring.contains($0) ? nil : $0 } }
    }

    public func watch(_ interface: String) -> AsyncThrowingStream<ARPClaim, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ARPClaim.self)
        let id = state.withLock { state -> Int in
            defer { state.nextWatcher += 1 }
            state.watchers[interface, default: [:]][state.nextWatcher] = continuation
            return state.nextWatcher
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.watchers[interface]?.removeValue(forKey: id) }
        }
        return stream
    }
}
