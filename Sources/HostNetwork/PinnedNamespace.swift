import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A container's namespace file, opened once and checked on that descriptor (`NamespaceGuard.pin`); every later
/// step enters it through the descriptor, never through the caller's path again.
///
/// The caller's path can lead elsewhere a moment later: the directory `/run/user/UID/netns` belongs to that user,
/// who may rename it or make it a symbolic link; `/proc/PID/ns/net` of a process that exits names whatever process
/// gets the PID next. Child processes (`ip`, `nsenter`) reach the descriptor as `/proc/AGENT_PID/fd/N`, which leads
/// to the open file itself for as long as it stays open: `ip link add … netns /proc/PID/fd/N` and
/// `nsenter --net=/proc/PID/fd/N` both accept it (iproute2 6.1, util-linux 2.38.1).
public final class PinnedNamespace: Sendable, CustomStringConvertible {
    /// The namespace as the caller named it (for messages).
    public let namespace: NetworkNamespace
    /// What child processes open: `/proc/PID/fd/N` of this process.
    public let path: String
    /// Nil when the kernel cannot tell (before Linux 5.14).
    public let identity: NamespaceIdentity?
    private let descriptor: Mutex<Int32>

    /// Holds `descriptor` (closed by `close()`); children use `/proc/PID/fd/N`.
    init(namespace: NetworkNamespace, descriptor: Int32, identity: NamespaceIdentity?) {
        self.namespace = namespace
        self.path = "/proc/\(getpid())/fd/\(descriptor)"
        self.identity = identity
        self.descriptor = Mutex(descriptor)
    }

    /// A namespace of a test of command sequences: no descriptor, `path` as given.
    init(namespace: NetworkNamespace, path: String, identity: NamespaceIdentity?) {
        self.namespace = namespace
        self.path = path
        self.identity = identity
        self.descriptor = Mutex(-1)
    }

    /// The words that run a command inside the namespace.
    var enterPrefix: [String] { Self.enterPrefix(path) }

    /// The words that run a command inside the namespace file `path`. `ip -n NAME` accepts only names under
    /// /var/run/netns; `nsenter --net=FILE` takes any namespace file, so every command inside a container goes
    /// through it.
    static func enterPrefix(_ path: String) -> [String] { ["nsenter", "--net=" + path] }

    public var description: String { namespace.description }

    /// Closes the descriptor; `path` leads nowhere (or to another file) afterwards. Idempotent.
    public func close() {
        descriptor.withLock { fd in
            if fd >= 0 { _ = Glibc.close(fd) }
            fd = -1
        }
    }

    deinit { close() }
}
