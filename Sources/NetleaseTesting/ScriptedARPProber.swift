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
        var holding: ARPProbeOptions?
        var held: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextHeld = 0
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

    /// Holds every probe with `options` from now on until `release()`, as a probe that is still listening: a test
    /// sees which probes run at the same time and what waits for them.
    public func hold(_ options: ARPProbeOptions) {
        state.withLock { $0.holding = options }
    }

    /// Ends every held probe and holds no more.
    public func release() {
        let held = state.withLock { state in
            defer {
                state.holding = nil
                state.held = [:]
            }
            return Array(state.held.values)
        }
        for continuation in held { continuation.resume() }
    }

    /// How many probes are held right now.
    public var heldCount: Int { state.withLock { $0.held.count } }

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
        let (duration, id) = state.withLock { state -> (Duration, Int) in
            state.probes.append(Probe(address: address, interface: interface, options: options, ignoring: ignoring))
            defer { state.nextHeld += 1 }
            return (state.duration, state.nextHeld)
        }
        if duration > .zero { try await Task.sleep(for: duration) }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let holds = state.withLock { state -> Bool in
                    guard state.holding == options, !Task.isCancelled else { return false }
                    state.held[id] = continuation
                    return true
                }
                if !holds { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.held.removeValue(forKey: id) }?.resume()
        }
        try Task.checkCancellation()
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
