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

    /// The words that run a command inside the namespace.
    ///
    /// `ip -n NAME` accepts only names under /var/run/netns, while `ip link set … netns X` opens X as a file when it
    /// contains '/'. `nsenter --net=FILE` takes any namespace file, so every command inside a container goes through
    /// it, for names and paths alike.
    var enterPrefix: [String] { ["nsenter", "--net=" + path] }

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
    private typealias SetnsFunction = @convention(c) (Int32, Int32) -> Int32
    private static let cloneNewNet: Int32 = 0x4000_0000

    /// Moves the calling thread into this namespace with setns(2). Only for a dedicated, short-lived thread that
    /// ends with the work it does there: namespace membership is per thread, and Swift's cooperative threads are
    /// shared, so they must never change namespace. setns is looked up with dlsym because Glibc's Swift module does
    /// not export it; it needs CAP_SYS_ADMIN.
    func enterOnThisThread() throws {
        guard let symbol = dlsym(nil, "setns") else {
            throw HostNetworkError(.socket, "this C library has no setns()")
        }
        let setns = unsafeBitCast(symbol, to: SetnsFunction.self)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw HostNetworkError(.socket, "open \(path): \(String(cString: strerror(code))) (errno \(code))")
        }
        defer { close(fd) }
        guard setns(fd, Self.cloneNewNet) == 0 else {
            let code = errno
            throw HostNetworkError(.socket, "setns \(self): \(String(cString: strerror(code))) (errno \(code))")
        }
    }
}
