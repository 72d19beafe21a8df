import Foundation
import XCTest

/// An Open vSwitch instance of its own for one test: ovsdb-server and ovs-vswitchd started inside a test namespace
/// with their database, sockets, pid files and logs in a temporary directory, so it neither needs nor touches a
/// system OVS. Commands reach it through `OVS_RUNDIR`. Stopped (by pid) and removed by the testbed's cleanup.
///
/// This is what CI needs from the host: the Debian package `openvswitch-switch` installed. No kernel module is
/// needed: netlease's OVS bridges use the userspace datapath.
struct PrivateOpenVSwitch {
    static let requireVariable = "NETLEASE_REQUIRE_OVS"
    static let schema = "/usr/share/openvswitch/vswitch.ovsschema"

    let directory: String
    var environment: [String: String] { ["OVS_RUNDIR": directory, "OVS_DBDIR": directory, "OVS_LOGDIR": directory] }

    /// Starts OVS inside `namespace`, or skips (fails when NETLEASE_REQUIRE_OVS=1) when it is not installed.
    static func start(in namespace: String, bed: NetnsTestbed, file: StaticString = #filePath, line: UInt = #line)
        throws -> PrivateOpenVSwitch
    {
        let tools = ["ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"]
        let missing = tools.filter { !TestShell.succeeds(["sh", "-c", "command -v \($0)"]) }
        if !missing.isEmpty || !FileManager.default.fileExists(atPath: schema) {
            let what = missing.isEmpty ? schema : missing.joined(separator: ", ")
            let why = "Open vSwitch is not installed (missing \(what))"
            if ProcessInfo.processInfo.environment[requireVariable] == "1" {
                XCTFail("\(requireVariable)=1 but \(why)", file: file, line: line)
                throw NetnsTestbed.Unavailable(description: why)
            }
            throw XCTSkip(why)
        }
        let directory = NSTemporaryDirectory() + "\(namespace)-ovs"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ovs = PrivateOpenVSwitch(directory: directory)
        bed.onCleanup("remove \(directory)") { try? FileManager.default.removeItem(atPath: directory) }
        try TestShell.run(["ovsdb-tool", "create", directory + "/conf.db", schema])
        try ovs.startDaemon(namespace, bed: bed, [
            "ovsdb-server", directory + "/conf.db", "--remote=punix:" + directory + "/db.sock",
        ], name: "ovsdb-server")
        try TestShell.run(["ovs-vsctl", "--no-wait", "init"], environment: ovs.environment)
        try ovs.startDaemon(namespace, bed: bed, ["ovs-vswitchd", "unix:" + directory + "/db.sock"],
                            name: "ovs-vswitchd")
        return ovs
    }

    /// Starts a daemon detached (it double-forks; the command returns once it is ready) and registers its stop.
    private func startDaemon(_ namespace: String, bed: NetnsTestbed, _ argv: [String], name: String) throws {
        let pidFile = "\(directory)/\(name).pid"
        bed.onCleanup("stop \(name)") {
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { return }
            // Ask it to exit through its control socket. SIGTERM is no use: the daemon inherits the signal mask of
            // the thread that started it, a Swift concurrency thread (async test), which blocks SIGTERM. SIGKILL is
            // the fallback.
            _ = try? TestShell.run(["ovs-appctl", "-t", "\(self.directory)/\(name).ctl", "exit"])
            if !TestShell.eventually(timeout: .seconds(5), { kill(pid, 0) != 0 }) {
                kill(pid, SIGKILL)
                _ = TestShell.eventually(timeout: .seconds(5)) { kill(pid, 0) != 0 }
            }
        }
        // Foundation's Process learns that a child exited when a socket it passes to the child reaches EOF; a
        // daemon that inherits that socket would keep `run` waiting for as long as the daemon lives. So the daemon
        // is started by a shell that first closes every descriptor above stderr.
        let closeInherited = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; "#
            + #"exec "$@""#
        try TestShell.run(["bash", "-c", closeInherited, name, "ip", "netns", "exec", namespace] + argv + [
            "--pidfile=" + pidFile, "--detach", "--no-chdir", "--log-file=\(directory)/\(name).log",
            "--unixctl=\(directory)/\(name).ctl",
        ], environment: environment)
    }

    /// What operators do for GRE with the userspace datapath: put the underlay NIC into an OVS bridge `br-phy` and
    /// move the underlay address onto that bridge, so OVS can route and ARP for tunnel traffic itself.
    func moveUnderlayToPhysicalBridge(namespace: String, nic: String, cidr: String) throws {
        _ = try vsctl(["--may-exist", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev"])
        _ = try vsctl(["--may-exist", "add-port", "br-phy", nic])
        try TestShell.run(["ip", "-n", namespace, "addr", "del", cidr, "dev", nic])
        try TestShell.run(["ip", "-n", namespace, "addr", "add", cidr, "dev", "br-phy"])
        try TestShell.run(["ip", "-n", namespace, "link", "set", "br-phy", "up"])
    }

    func vsctl(_ arguments: [String]) throws -> String {
        try TestShell.run(["ovs-vsctl", "--timeout=10"] + arguments, environment: environment)
    }
}
