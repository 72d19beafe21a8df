import HostNetwork
import Synchronization

/// A `CommandRunner` that runs nothing: it records every argument vector in order and answers from scripted
/// replies. Unscripted commands succeed with empty output.
///
/// Replies are matched by exact argument vector first, then by the longest matching prefix; among equal matches the
/// most recently scripted wins, so a test can override an earlier reply. A reply scripted with `times:` is used that
/// many times and then forgotten.
public final class RecordingCommandRunner: CommandRunner {
    /// What a scripted command does.
    public enum Reply: Sendable, Equatable {
        /// Exit 0 with this stdout.
        case output(String)
        /// Exit non-zero with this stderr: `run` throws `HostNetworkError.commandFailed`.
        case failure(status: Int32, stderr: String)
    }

    private struct Rule: Sendable {
        var argv: [String]
        var isPrefix: Bool
        var reply: Reply
        var remaining: Int?
        var order: Int
    }

    private struct State: Sendable {
        var commands: [[String]] = []
        var rules: [Rule] = []
        var nextOrder = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Every command run so far, in order.
    public var commands: [[String]] { state.withLock { $0.commands } }

    /// Forgets the recorded commands (scripted replies stay).
    public func clearCommands() { state.withLock { $0.commands.removeAll() } }

    /// Scripts the reply to exactly `argv`.
    public func on(_ argv: [String], reply: Reply, times: Int? = nil) {
        add(Rule(argv: argv, isPrefix: false, reply: reply, remaining: times, order: 0))
    }

    /// Scripts the reply to every command that starts with `prefix`.
    public func on(prefix: [String], reply: Reply, times: Int? = nil) {
        add(Rule(argv: prefix, isPrefix: true, reply: reply, remaining: times, order: 0))
    }

    private func add(_ rule: Rule) {
        state.withLock { state in
            var rule = rule
            rule.order = state.nextOrder
            state.nextOrder += 1
            state.rules.append(rule)
        }
    }

    public func run(_ argv: [String]) async throws -> CommandResult {
        let reply: Reply? = state.withLock { state in
            state.commands.append(argv)
            var best: Int?
            for (index, rule) in state.rules.enumerated() {
                let matches = rule.isPrefix ? argv.starts(with: rule.argv) : argv == rule.argv
                guard matches else { continue }
                if let current = best {
                    let other = state.rules[current]
                    let better =
                        (!rule.isPrefix && other.isPrefix)
                        || (rule.isPrefix == other.isPrefix && rule.argv.count > other.argv.count)
                        || (rule.isPrefix == other.isPrefix && rule.argv.count == other.argv.count
                            && rule.order > other.order)
                    if !better { continue }
                }
                best = index
            }
            guard let index = best else { return nil }
            let reply = state.rules[index].reply
            if let remaining = state.rules[index].remaining {
                if remaining <= 1 {
                    state.rules.remove(at: index)
                } else {
                    state.rules[index].remaining = remaining - 1
                }
            }
            return reply
        }
        switch reply {
        case nil:
            return .success
        case .output(let stdout)?:
            return CommandResult(stdout: stdout)
        case .failure(let status, let stderr)?:
            throw HostNetworkError.commandFailed(argv, status: status, stderr: stderr)
        }
    }
}
