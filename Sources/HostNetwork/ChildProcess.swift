import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, without Foundation's `Process`.
///
/// Design notes:
/// - Foundation's `Process` on Linux lists `/proc/self/fd` on every launch and adds one close action per open
///   descriptor, keeps a socket pair and a run-loop source per child, and polls a run loop in `waitUntilExit`.
///   Under many concurrent launches in a process with thousands of descriptors (an agent test starts 60 attaches
///   at once) it crashed in that code. This type does one `posix_spawn` with a fixed set of file actions.
/// - The child gets exactly stdin/stdout/stderr: every other descriptor is closed in the child
///   (`posix_spawn_file_actions_addclosefrom_np`, glibc ≥ 2.34), and the pipes are created close-on-exec so a
///   concurrent spawn on another thread never inherits them either.
/// - The child starts with an empty signal mask and every signal at its default disposition, whichever thread
///   spawns it: Swift concurrency threads block nearly every signal and the runtime ignores SIGPIPE, and a child
///   would otherwise inherit both (a tool that cannot be stopped with SIGTERM, or that ignores a closed pipe).
/// - The child leads a new process group, so a timeout can kill it together with anything it started.
/// - Exit is observed with `waitid(WNOWAIT)` and reaped under the lock that guards signalling, so a signal is
///   never sent to a pid the kernel may already have given to another process.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `status` is guarded by `lock`; everything else is immutable after init.

    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        /// /dev/null.
        case null
        /// A pipe whose other end the parent holds (`stdinDescriptor` etc.).
        case pipe
        /// A file, created if missing; truncated when `append` is false.
        case file(String, append: Bool)
        /// The parent's own descriptor for that stream.
        case inherit
    }

    /// How a child ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)

        /// The status a shell would report: the exit code, or 128 + the signal number.
        public var shellStatus: Int32 {
            switch self {
            case .exited(let code): return code
            case .signalled(let signal): return 128 + signal
            }
        }
    }

    public let pid: pid_t
    /// The parent's ends of the pipes asked for, or -1. They belong to this object: read or write them, but close
    /// them only with `closeStreams()` (or let deinit do it). Closing a pipe the child still writes to would kill
    /// it with SIGPIPE.
    public let stdinDescriptor: Int32
    public let stdoutDescriptor: Int32
    public let stderrDescriptor: Int32

    private let lock = NSLock()
    private var status: Termination?
    private var streamsClosed = false

    /// Starts `executable` (an absolute path) with `arguments`.
    /// - Parameter environment: the child's environment; nil passes this process's environment.
    /// - Throws: `HostNetworkError` `.toolNotFound` when the executable cannot be started (the errno says why).
    public init(
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        stdin: Stream = .null,
        stdout: Stream = .null,
        stderr: Stream = .null
    ) throws {
        var parentEnds: [Int32] = [-1, -1, -1]
        // Descriptors this call opened for the child (never the parent's own 0/1/2 of an inherited stream).
        var childEnds: [Int32] = [-1, -1, -1]
        func closeAll() {
            for fd in parentEnds + childEnds where fd >= 0 { close(fd) }
        }
        for (index, stream) in [stdin, stdout, stderr].enumerated() {
            switch stream {
            case .null:
                childEnds[index] = Self.aboveStandard(open("/dev/null", O_RDWR | O_CLOEXEC))
            case .pipe:
                var ends: [Int32] = [-1, -1]
                guard Self.pipe2(&ends, O_CLOEXEC) == 0 else {
                    let code = errno
                    closeAll()
                    throw HostNetworkError(.commandFailed, "cannot create a pipe: \(String(cString: strerror(code)))")
                }
                let (read, write) = (Self.aboveStandard(ends[0]), Self.aboveStandard(ends[1]))
                // stdin: the child reads; stdout/stderr: the child writes.
                parentEnds[index] = index == 0 ? write : read
                childEnds[index] = index == 0 ? read : write
                if read < 0 || write < 0 {
                    let code = errno
                    closeAll()
                    throw HostNetworkError(.commandFailed, "cannot create a pipe: \(String(cString: strerror(code)))")
                }
            case .file(let path, let append):
                let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
                childEnds[index] = Self.aboveStandard(open(path, flags, 0o644))
            case .inherit:
                continue
            }
            if childEnds[index] < 0 {
                let code = errno
                closeAll()
                throw HostNetworkError(
                    .commandFailed,
                    "cannot open the child's stream \(index): \(String(cString: strerror(code)))"
                )
            }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Every descriptor opened here is ≥ 3 (`aboveStandard`), so each dup2 really moves it; an inherited stream is
        // the parent's own 0/1/2, which has no close-on-exec flag, and is left as it is.
        for index in 0..<3 where childEnds[index] >= 0 {
            posix_spawn_file_actions_adddup2(&actions, childEnds[index], Int32(index))
        }
        guard let closeFrom = Self.addCloseFrom else {
            closeAll()
            throw HostNetworkError(
                .toolNotFound,
                "cannot start '\(executable)': this C library lacks "
                    + "posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later is needed)",
                command: [executable] + arguments
            )
        }
        _ = closeFrom(&actions, 3)  // fails only with EINVAL (a negative start) or ENOMEM

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)
        )

        let argv = ([executable] + arguments).map { strdup($0) }
        let environmentLines =
            (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv + environmentLines { free(pointer) }
        }
        var child = pid_t()
        let result = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (environmentLines + [nil]).withUnsafeBufferPointer { environmentBuffer in
                posix_spawn(
                    &child,
                    executable,
                    &actions,
                    &attributes,
                    UnsafeMutablePointer(mutating: argvBuffer.baseAddress!),
                    UnsafeMutablePointer(mutating: environmentBuffer.baseAddress!)
                )
            }
        }
        for fd in childEnds where fd >= 0 { close(fd) }
        guard result == 0 else {
            for fd in parentEnds where fd >= 0 { close(fd) }
            throw HostNetworkError(
                .toolNotFound,
                "cannot start '\(executable)': \(String(cString: strerror(result)))",
                command: [executable] + arguments
            )
        }
        pid = child
        stdinDescriptor = parentEnds[0]
        stdoutDescriptor = parentEnds[1]
        stderrDescriptor = parentEnds[2]
    }

    deinit {
        closeStreams()
    }

    /// Closes the parent's ends of the pipes (once; later calls do nothing).
    public func closeStreams() {
        lock.withLock {
            guard !streamsClosed else { return }
            streamsClosed = true
            for fd in [stdinDescriptor, stdoutDescriptor, stderrDescriptor] where fd >= 0 { close(fd) }
        }
    }

    /// How the child ended, or nil while it runs. Never blocks.
    public var termination: Termination? {
        lock.withLock {
            if status == nil { reapLocked(options: WNOHANG) }
            return status
        }
    }

    public var isRunning: Bool { termination == nil }

    /// Blocks the calling thread until the child ends (never call it on Swift's cooperative pool).
    @discardableResult
    public func wait() -> Termination {
        if let status = lock.withLock({ status }) { return status }
        // Wait without reaping, so the pid stays ours until `reapLocked` runs under the lock.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        return lock.withLock {
            if status == nil { reapLocked(options: 0) }
            return status ?? .exited(-1)
        }
    }

    /// Blocks until the child ends or `deadline` passes; nil when it is still running then.
    public func wait(until deadline: ContinuousClock.Instant) -> Termination? {
        while true {
            if let termination { return termination }
            if ContinuousClock.now >= deadline { return nil }
            // No portable way to wait for a child with a timeout short of a pidfd; a child that closed its
            // streams and keeps running is rare, so a short sleep between checks is enough.
            usleep(5_000)
        }
    }

    /// Sends `signal` to the child if it has not been reaped yet.
    public func signal(_ signal: Int32) {
        lock.withLock {
            if status == nil { kill(pid, signal) }
        }
    }

    /// Sends `signal` to the child's process group (the child and whatever it started) if not reaped yet.
    public func signalGroup(_ signal: Int32) {
        lock.withLock {
            if status == nil { kill(-pid, signal) }
        }
    }

    /// SIGTERM, up to `grace` for the child to end, then SIGKILL. Blocks; returns how it ended.
    @discardableResult
    public func stop(grace: Duration) -> Termination {
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if isRunning { signal(SIGKILL) }
        return wait()
    }

    /// `fd` moved to a number ≥ 3 (close-on-exec), so it can never be taken for one of the parent's standard streams
    /// that happened to be closed; -1 stays -1.
    private static func aboveStandard(_ fd: Int32) -> Int32 {
        guard fd >= 0 && fd < 3 else { return fd }
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        let code = errno
        close(fd)
        errno = code
        return moved
    }

    // Both are GNU extensions the Glibc module does not import (it is built without _GNU_SOURCE).
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
        unsafeBitCast($0, to: AddCloseFrom.self)
    }
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    private static let pipe2: Pipe2 = unsafeBitCast(dlsym(nil, "pipe2")!, to: Pipe2.self)

    private func reapLocked(options: Int32) {
        var raw: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &raw, options) } while result < 0 && errno == EINTR
        if result == pid {
            // WIFSIGNALED/WTERMSIG/WEXITSTATUS are macros Swift does not import.
            let signal = raw & 0x7f
            status = signal == 0 ? .exited((raw >> 8) & 0xff) : .signalled(signal)
        } else if result < 0 {
            // ECHILD: reaped elsewhere (nothing in netlease does that); report it rather than wait forever.
            status = .exited(-1)
        }
    }
}

extension ChildProcess {
    /// What a finished command printed and how it ended.
    public struct Output: Sendable {
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        public var termination: Termination
        /// True when the command was killed because `timeout` passed.
        public var timedOut: Bool
    }

    /// Runs a command to completion with stdin from /dev/null, collecting stdout and stderr (both drained together,
    /// so neither pipe can fill and stall the child). After `timeout` the child's process group is killed. Blocks
    /// the calling thread.
    public static func run(
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        timeout: Duration? = nil
    ) throws -> Output {
        let child = try ChildProcess(
            executable: executable,
            arguments: arguments,
            environment: environment,
            stdout: .pipe,
            stderr: .pipe
        )
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var open: [Int32] = [child.stdoutDescriptor, child.stderrDescriptor]
        var timedOut = false
        // After a kill, output still buffered is read; a descendant that left the group and holds a pipe open is
        // not waited for beyond this.
        var drainDeadline: ContinuousClock.Instant?
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !open.isEmpty {
            // Deadlines are checked on every pass, so output that never stops cannot postpone them.
            if let drainDeadline, ContinuousClock.now >= drainDeadline { break }
            if !timedOut, let deadline, ContinuousClock.now >= deadline {
                timedOut = true
                child.signalGroup(SIGKILL)
                drainDeadline = ContinuousClock.now + .seconds(1)
            }
            var descriptors = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(
                &descriptors,
                nfds_t(descriptors.count),
                PollTimeout.milliseconds(until: drainDeadline ?? deadline)
            )
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in descriptors where entry.revents != 0 {
                let count = chunk.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    if entry.fd == child.stdoutDescriptor {
                        stdout += chunk[..<count]
                    } else {
                        stderr += chunk[..<count]
                    }
                } else if count == 0 || errno != EINTR && errno != EAGAIN {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        child.closeStreams()
        // The streams can end before the child does (it closed or redirected them): the deadline still holds.
        if !timedOut, let deadline, child.wait(until: deadline) == nil {
            timedOut = true
        }
        if timedOut { child.signalGroup(SIGKILL) }
        return Output(stdout: stdout, stderr: stderr, termination: child.wait(), timedOut: timedOut)
    }
}
