import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The service-manager side of a daemon's life that is not tied to one milestone: `WATCHDOG=1` every
/// `notifier.watchdogInterval` while the daemon is healthy, and `STOPPING=1` as soon as a graceful stop begins.
///
/// Put it last in the daemon's `ServiceGroup`: the group stops services in reverse order, so this one hears of the
/// stop first and systemd learns of it before the other services start closing. (`READY=1` is sent by the daemon
/// itself at the moment it serves; only it knows when that is.)
///
/// A ping proves more than a running timer: before each one `isHealthy` must answer within half the interval. The
/// default asks a NIO event loop to run an empty task — a loop blocked by a stuck handler misses its pings, and
/// systemd restarts the daemon (`WatchdogSec=`, `Restart=on-failure`).
public struct SystemdNotifyService: Service {
    let notifier: SystemdNotifier
    let isHealthy: @Sendable () async -> Bool
    let stoppingStatus: String

    public init(
        notifier: SystemdNotifier,
        stoppingStatus: String = "stopping",
        isHealthy: @escaping @Sendable () async -> Bool = SystemdNotifyService.eventLoopAnswers
    ) {
        self.notifier = notifier
        self.stoppingStatus = stoppingStatus
        self.isHealthy = isHealthy
    }

    public func run() async throws {
        let notifier = self.notifier
        let stoppingStatus = self.stoppingStatus
        await withGracefulShutdownHandler {
            // Cancelled by the stop (or the group): its sleeps end with CancellationError, which is the way out.
            try? await cancelWhenGracefulShutdown {
                guard let interval = notifier.watchdogInterval else {
                    // No watchdog: wait for the stop (sleeping until cancelled).
                    while true { try await Task.sleep(for: .seconds(3600)) }
                }
                while true {
                    if await Self.answers(within: interval / 2, isHealthy) { notifier.watchdog() }
                    try await Task.sleep(for: interval)
                }
            }
        } onGracefulShutdown: {
            notifier.stopping(status: stoppingStatus)
        }
    }

    /// Whether `check` returns true within `limit`. The check runs in a task of its own that is not awaited: a
    /// check stuck for good (a blocked event loop does not heed cancellation) must not hold up the watchdog loop or
    /// the stop. Whichever of the check and the deadline comes first answers.
    static func answers(within limit: Duration, _ check: @escaping @Sendable () async -> Bool) async -> Bool {
        let pending = Mutex<CheckedContinuation<Bool, Never>?>(nil)
        return await withCheckedContinuation { continuation in
            pending.withLock { $0 = continuation }
            let finish: @Sendable (Bool) -> Void = { answer in
                pending.withLock { $0.take() }?.resume(returning: answer)
            }
            Task { finish(await check()) }
            Task {
                try? await Task.sleep(for: limit)
                finish(false)
            }
        }
    }

    /// Runs an empty task on one of the process's NIO event loops.
    public static let eventLoopAnswers: @Sendable () async -> Bool = {
        (try? await MultiThreadedEventLoopGroup.singleton.next().submit {}.get()) != nil
    }
}
