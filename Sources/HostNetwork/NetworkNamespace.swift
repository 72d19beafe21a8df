import Glibc

/// A network namespace to put a container's interface into.
public enum NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    /// A namespace created with `ip netns add NAME`, i.e. the file /var/run/netns/NAME.
    case named(String)
    /// Any namespace file, e.g. /proc/PID/ns/net or a runtime's bind mount.
    case path(String)

    /// A namespace as users give it: a path when it contains '/', otherwise a name under /var/run/netns.
    public init(argument: String) {
        self = argument.contains("/") ? .path(argument) : .named(argument)
    }

    /// The namespace file.
    public var path: String {
        switch self {
        case .named(let name): return "/var/run/netns/" + name
        case .path(let path): return path
        }
    }

    public var description: String {
        switch self {
        case .named(let name): return "netns \(name)"
        case .path(let path): return "netns \(path)"
        }
    }

    func validate() throws {
        switch self {
        case .named(let name):
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw HostNetworkError(.invalidConfiguration, "'\(name)' is not a network namespace name")
            }
        case .path(let path):
            guard path.hasPrefix("/"), !path.contains("\0") else {
                throw HostNetworkError(.invalidConfiguration, "'\(path)' is not an absolute namespace path")
            }
        }
    }
}

extension NetworkNamespace {
    fileprivate typealias SetnsFunction = @convention(c) (Int32, Int32) -> Int32
    fileprivate static let cloneNewNet: Int32 = 0x4000_0000

    /// Moves the calling thread into this namespace with setns(2) and returns the way back. Only for a dedicated
    /// thread: namespace membership is per thread, and Swift's cooperative threads are shared, so they must never
    /// change namespace. The thread must go back (`NamespaceReturn.restore()`) before it resumes a continuation,
    /// yields to a stream or starts a thread: a thread the runtime creates from it (a new worker of the cooperative
    /// pool, started to run the resumed task) inherits its namespace and keeps it, and every socket later made on
    /// that worker — a listener, a connection, a child process spawned from it — would be in this namespace instead
    /// of the process's. A socket stays in the namespace it was made in, so going back right after making it is
    /// enough. setns is looked up with dlsym because Glibc's Swift module does not export it; it needs
    /// CAP_SYS_ADMIN.
    public func enterOnThisThread() throws -> NamespaceReturn {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw HostNetworkError(.socket, "open \(path): \(String(cString: strerror(code))) (errno \(code))")
        }
        defer { close(fd) }
        return try Self.enterOnThisThread(descriptor: fd, name: description)
    }

    /// `enterOnThisThread()` for a namespace file that is already open.
    static func enterOnThisThread(descriptor fd: Int32, name: String) throws -> NamespaceReturn {
        let setns = try Self.setnsFunction()
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else {
            let code = errno
            throw HostNetworkError(.socket, "open /proc/thread-self/ns/net: \(String(cString: strerror(code)))")
        }
        guard setns(fd, Self.cloneNewNet) == 0 else {
            let code = errno
            close(original)
            throw HostNetworkError(.socket, "setns \(name): \(String(cString: strerror(code))) (errno \(code))")
        }
        return NamespaceReturn(descriptor: original)
    }

    /// The cookie (`SO_NETNS_COOKIE`) of the network namespace `fd` refers to; nil when the kernel has none (before
    /// Linux 5.14). Enters the namespace on the calling thread to make a socket there and goes back at once: only
    /// for a dedicated thread (see `enterOnThisThread()`).
    static func cookie(descriptor fd: Int32, name: String) throws -> UInt64? {
        let socketFD: Int32
        do {
            let back = try enterOnThisThread(descriptor: fd, name: name)
            defer { back.restore() }
            socketFD = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard socketFD >= 0 else {
            let code = errno
            throw HostNetworkError(.socket, "socket in \(name): \(String(cString: strerror(code))) (errno \(code))")
        }
        defer { close(socketFD) }
        var cookie: UInt64 = 0
        var length = socklen_t(MemoryLayout<UInt64>.size)
        guard getsockopt(socketFD, SOL_SOCKET, soNetnsCookie, &cookie, &length) == 0 else {
            let code = errno
            if code == ENOPROTOOPT { return nil }
            throw HostNetworkError(
                .socket,
                "SO_NETNS_COOKIE in \(name): \(String(cString: strerror(code))) (errno \(code))"
            )
        }
        return cookie
    }

    /// <asm-generic/socket.h>; Glibc's Swift module does not export it.
    fileprivate static let soNetnsCookie: Int32 = 71

    fileprivate static func setnsFunction() throws -> SetnsFunction {
        guard let symbol = dlsym(nil, "setns") else {
            throw HostNetworkError(.socket, "this C library has no setns()")
        }
        return unsafeBitCast(symbol, to: SetnsFunction.self)
    }
}

/// The network namespace a dedicated thread left with `NetworkNamespace.enterOnThisThread()`.
public final class NamespaceReturn {
    private var descriptor: Int32

    fileprivate init(descriptor: Int32) { self.descriptor = descriptor }

    /// Moves the thread back. Going back to the namespace it came from cannot fail for a thread that could leave it;
    /// if it did, the thread would pass its namespace on to the threads the runtime starts from it, so that ends the
    /// process rather than let it make sockets in the wrong namespace.
    public func restore() {
        guard descriptor >= 0 else { return }
        defer {
            close(descriptor)
            descriptor = -1
        }
        guard let setns = try? NetworkNamespace.setnsFunction(), setns(descriptor, NetworkNamespace.cloneNewNet) == 0
        else {
            fatalError("cannot return this thread to its network namespace (errno \(errno))")
        }
    }

    deinit { restore() }
}
