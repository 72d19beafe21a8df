import Foundation
import HostNetwork
import NetleaseCore

#if canImport(Glibc)
import Glibc
#endif

/// What `netlease demo` needs from a fresh machine, checked before anything is built, each problem naming the Debian
/// package, kernel module or capability that is missing. The demo needs nothing beyond `ip`: reachability is a
/// native ICMP echo, not `ping`.
///
/// The kernel features are tried for real, in a throwaway namespace that is deleted again: a network namespace, a
/// veth pair, a bridge, a VXLAN device, and a raw ICMP socket inside the namespace. Asking is the only reliable test:
/// a module may be built in, loadable on demand, or missing, and a container may lack the capability even as root.
public struct LabPrerequisites: Sendable {
    /// Runs `ip`.
    public var runner: any CommandRunner
    /// Whether this process runs as root.
    public var isRoot: Bool
    /// The path of an executable on PATH, or nil.
    public var findTool: @Sendable (String) -> String?
    /// A problem with sending ICMP echo from inside `namespace`, or nil when it works.
    public var echoProblem: @Sendable (NetworkNamespace) async -> String?
    /// The throwaway namespace's name.
    public var probeNamespace: String

    /// Tools the demo runs, with the Debian package that has them. `ip` and `bridge` build the network; `nsenter`
    /// runs commands in a container's namespace (util-linux is essential in Debian, but slim images may lack it).
    public static let tools: [(tool: String, package: String)] = [
        ("ip", "iproute2"), ("bridge", "iproute2"), ("nsenter", "util-linux"),
    ]

    public init(
        runner: any CommandRunner = ProcessCommandRunner(),
        isRoot: Bool = geteuid() == 0,
        findTool: @escaping @Sendable (String) -> String? = LabPrerequisites.onPath,
        echoProblem: @escaping @Sendable (NetworkNamespace) async -> String? = LabPrerequisites.loopbackEchoProblem,
        probeNamespace: String = "nlcheck\(String(UInt32.random(in: 0x1000_0000...0xFFFF_FFFF), radix: 16))"
    ) {
        self.runner = runner
        self.isRoot = isRoot
        self.findTool = findTool
        self.echoProblem = echoProblem
        self.probeNamespace = probeNamespace
    }

    /// Every reason the demo cannot run here; empty when it can.
    public func problems() async -> [String] {
        var problems: [String] = []
        if !isRoot {
            problems.append(
                "root is needed (CAP_NET_ADMIN for links, CAP_SYS_ADMIN for namespaces, CAP_NET_RAW for "
                    + "ARP and ICMP): run sudo netlease demo"
            )
        }
        for (tool, package) in Self.tools where findTool(tool) == nil {
            problems.append("`\(tool)` is not installed: apt-get install \(package)")
        }
        // The kernel can only be asked as root and through `ip`.
        guard isRoot, findTool("ip") != nil else { return problems }
        return problems + (await kernelProblems())
    }

    private func kernelProblems() async -> [String] {
        let namespace = probeNamespace
        do {
            _ = try await runner.run(["ip", "netns", "add", namespace])
        } catch {
            return [
                "network namespaces cannot be created (\(Self.said(error))): the kernel needs CONFIG_NET_NS, "
                    + "and a container needs CAP_SYS_ADMIN"
            ]
        }
        var problems: [String] = []
        let devices: [(what: String, argv: [String], module: String)] = [
            ("veth pairs", ["link", "add", "nlc0", "type", "veth", "peer", "name", "nlc1"], "veth"),
            ("bridges", ["link", "add", "nlcb", "type", "bridge"], "bridge"),
            ("VXLAN devices", ["link", "add", "nlcx", "type", "vxlan", "id", "42", "dstport", "4789"], "vxlan"),
        ]
        for device in devices {
            do {
                _ = try await runner.run(["ip", "-n", namespace] + device.argv)
            } catch {
                problems.append(
                    "the kernel cannot make \(device.what) (\(Self.said(error))): modprobe \(device.module) "
                        + "(kernel option CONFIG_\(device.module.uppercased())); in a container, load it on the host"
                )
            }
        }
        do {
            _ = try await runner.run(["ip", "-n", namespace, "link", "set", "lo", "up"])
            if let problem = await echoProblem(.named(namespace)) { problems.append(problem) }
        } catch {
            problems.append("cannot bring up loopback in a namespace (\(Self.said(error)))")
        }
        _ = try? await runner.run(["ip", "netns", "del", namespace])
        return problems
    }

    /// What a failed command said, or the error.
    private static func said(_ error: any Error) -> String {
        if let error = error as? HostNetworkError, !error.stderr.isEmpty { return error.stderr }
        return "\(error)"
    }

    /// Looks `tool` up in PATH (or the usual directories when PATH is unset), as the runner will.
    public static let onPath: @Sendable (String) -> String? = { tool in
        let path =
            ProcessInfo.processInfo.environment["PATH"]
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Sends ICMP echo to 127.0.0.1 inside `namespace`: a raw socket there must open and be answered.
    public static let loopbackEchoProblem: @Sendable (NetworkNamespace) async -> String? = { namespace in
        do {
            if try await ICMPEcho(namespace: namespace).answers(IPv4Address(127, 0, 0, 1), within: .seconds(2)) {
                return nil
            }
            return "ICMP echo to 127.0.0.1 inside a namespace got no answer (a firewall dropping ICMP?)"
        } catch {
            return "raw ICMP sockets cannot be opened in a namespace (\(error)): CAP_NET_RAW is needed"
        }
    }
}
