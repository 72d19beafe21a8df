import Foundation
import HostNetwork

#if canImport(Glibc)
import Glibc
#endif

/// A private Open vSwitch for one host namespace of a `NamespaceLab`: its own ovsdb-server and ovs-vswitchd
/// (userspace datapath, no kernel module), database, sockets and logs in the lab's directory. Commands — the
/// agent's `ovs-vsctl` calls included — reach it through `environment` (OVS_RUNDIR and friends).
///
/// Design notes:
/// - Daemons are started detached by a shell that first closes every inherited descriptor above stderr, with
///   stdout/stderr sent to files: a daemon holding an inherited pipe would keep the starter waiting for ever.
/// - They are stopped through their control sockets (`ovs-appctl exit`), with SIGKILL by pid file as fallback: a
///   daemon started from a Swift concurrency thread inherits a signal mask that blocks SIGTERM.
public struct LabOpenVSwitch: Sendable {
    public static let schema = "/usr/share/openvswitch/vswitch.ovsschema"
    public let namespace: String
    public let directory: String

    public var environment: [String: String] {
        ["OVS_RUNDIR": directory, "OVS_DBDIR": directory, "OVS_LOGDIR": directory]
    }

    /// The `env K=V …` words that point a command at this instance.
    public var environmentWords: [String] { ["env"] + environment.keys.sorted().map { "\($0)=\(environment[$0]!)" } }

    /// Why OVS cannot run here, or nil.
    public static func unavailableReason() -> String? {
        let tools = ["ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl"]
        let runner = ProcessCommandRunner()
        let missing = tools.filter { (try? runner.resolve($0)) == nil }
        if !missing.isEmpty { return "Open vSwitch is not installed (missing \(missing.joined(separator: ", ")))" }
        if !FileManager.default.fileExists(atPath: schema) { return "Open vSwitch schema \(schema) is missing" }
        if (try? runner.resolve("ethtool")) == nil {
            return "ethtool is not installed (moveUnderlay switches off checksum offload with it)"
        }
        return nil
    }

    /// Starts OVS in `namespace`; `lab.destroy()` stops it.
    public static func start(in namespace: String, lab: NamespaceLab) async throws -> LabOpenVSwitch {
        let directory = (lab.directory as NSString).appendingPathComponent("\(namespace)-ovs")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ovs = LabOpenVSwitch(namespace: namespace, directory: directory)
        try ovs.shell(["ovsdb-tool", "create", directory + "/conf.db", schema])
        lab.onDestroy { ovs.stop() }
        try ovs.startDaemon(
            ["ovsdb-server", directory + "/conf.db", "--remote=punix:" + directory + "/db.sock"],
            name: "ovsdb-server"
        )
        try ovs.shell(ovs.environmentWords + ["ovs-vsctl", "--no-wait", "init"])
        try ovs.startDaemon(["ovs-vswitchd", "unix:" + directory + "/db.sock"], name: "ovs-vswitchd")
        return ovs
    }

    /// The operators' layout for GRE with the userspace datapath: the underlay NIC joins an OVS bridge `br-phy`
    /// that takes over the underlay address, so OVS can route and ARP for tunnel traffic.
    ///
    /// `peer` is the other end of the lab's veth underlay: checksum offload is switched off on both ends, because the
    /// userspace datapath forwards veth frames whose TCP checksums were left for hardware to fill in, and the
    /// receiver drops them (ICMP still passes; TCP to the coordinator times out). Real NICs do not need this.
    public func moveUnderlay(nic: String, cidr: String, peer: (namespace: String, link: String)? = nil) throws {
        try shell(["ip", "netns", "exec", namespace, "ethtool", "-K", nic, "tx", "off"])
        if let peer { try shell(["ip", "netns", "exec", peer.namespace, "ethtool", "-K", peer.link, "tx", "off"]) }
        try vsctl(["--may-exist", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev"])
        try vsctl(["--may-exist", "add-port", "br-phy", nic])
        try shell(["ip", "netns", "exec", namespace, "ip", "addr", "del", cidr, "dev", nic])
        try shell(["ip", "netns", "exec", namespace, "ip", "addr", "add", cidr, "dev", "br-phy"])
        try shell(["ip", "netns", "exec", namespace, "ip", "link", "set", "br-phy", "up"])
    }

    @discardableResult
    public func vsctl(_ arguments: [String]) throws -> String {
        try shell(environmentWords + ["ip", "netns", "exec", namespace, "ovs-vsctl", "--timeout=10"] + arguments)
    }

    private func startDaemon(_ argv: [String], name: String) throws {
        let closeInherited =
            #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; "#
            + #"exec "$@""#
        try shell(
            ["bash", "-c", closeInherited, name] + environmentWords + ["ip", "netns", "exec", namespace] + argv
                + [
                    "--pidfile=\(directory)/\(name).pid", "--detach", "--no-chdir",
                    "--log-file=\(directory)/\(name).log", "--unixctl=\(directory)/\(name).ctl",
                ]
        )
    }

    func stop() {
        for name in ["ovs-vswitchd", "ovsdb-server"] {
            _ = try? shell(["ovs-appctl", "-t", "\(directory)/\(name).ctl", "exit"])
            guard let text = try? String(contentsOfFile: "\(directory)/\(name).pid", encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { continue }
            let deadline = ContinuousClock.now + .seconds(5)
            while kill(pid, 0) == 0 && ContinuousClock.now < deadline { usleep(20_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
    }

    /// Runs a command to completion with its output in files (never pipes a detached daemon could inherit).
    @discardableResult
    func shell(_ argv: [String]) throws -> String {
        var variables = ProcessInfo.processInfo.environment
        variables["PATH"] = (variables["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/usr/bin:/sbin:/bin"
        let base = (directory as NSString).appendingPathComponent("cmd-\(UInt32.random(in: 0...UInt32.max))")
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let child = try ChildProcess(
            executable: "/usr/bin/env",
            arguments: argv,
            environment: variables,
            stdout: .file(base + ".out", append: false),
            stderr: .file(base + ".err", append: false)
        )
        guard let status = child.wait(until: .now + .seconds(60))?.shellStatus else {
            child.signalGroup(SIGKILL)
            child.wait()
            throw HostNetworkError(
                .commandFailed,
                "`\(ShellQuote.join(argv))` did not finish within 60 s and was killed",
                command: argv
            )
        }
        let out = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw HostNetworkError.commandFailed(argv, status: status, stderr: err)
        }
        return out
    }
}
