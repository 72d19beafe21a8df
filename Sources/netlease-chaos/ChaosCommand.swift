import ArgumentParser
import Foundation
import NetleaseChaos

@main
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netlease-chaos",
        abstract:
            "Kill -9 and restart a real coordinator (or the leader of several on PostgreSQL) under load; check that "
            + "nothing acknowledged is lost.",
        discussion: """
            Clients acquire, release and renew, and an admin reserves addresses, reports conflicts, creates and \
            deletes networks and removes hosts, against `netlease coordinator` (on 127.0.0.1) while it is SIGKILLed \
            after a random number of acknowledgements and restarted on the same data directory. While it runs, no \
            address may be acknowledged to two owners at once and no error reply may be one a correct coordinator \
            would not send; after every restart the acknowledged state is checked. Prints \
            'seed=… cycles=… acked=… lost=0 duplicates=0 …' and exits non-zero if anything acknowledged was lost, \
            duplicated or came back; the same --seed repeats the run's random choices.

            With --coordinators N --store postgres://… it runs N coordinators on that (empty) PostgreSQL database \
            instead; the load reaches the leader through the client's leader following, each cycle SIGKILLs the \
            leader, waits for the first acquire a standby acknowledges, and starts the killed one again as a \
            standby. It then prints 'seed=… coordinators=N leader-kills=… acked=… lost=0 duplicates=0 … \
            failover-median=…ms failover-max=…ms' (kill to first acknowledged acquire). The password comes from \
            PGPASSWORD.
            """
    )

    @Option(help: "Kill/restart cycles.") var cycles = 100
    @Option(help: "Concurrent client connections.") var clients = 8
    @Option(help: ArgumentHelp("The netlease executable (default: next to this one).", valueName: "path")) var binary:
        String?
    @Option(help: "Seed of the random kill points (printed at start).") var seed: UInt64?
    @Option(help: "Coordinator processes; more than one share --store and the leader is the one killed.")
    var coordinators = 1
    @Option(help: ArgumentHelp("A PostgreSQL database for the coordinators (empty).", valueName: "postgres://…"))
    var store: String?
    @Flag(help: "Keep the data directory and logs.") var keep = false

    func validate() throws {
        guard cycles >= 1 else { throw ValidationError("--cycles must be at least 1") }
        guard clients >= 1 else { throw ValidationError("--clients must be at least 1") }
        guard coordinators >= 1 else { throw ValidationError("--coordinators must be at least 1") }
        if let store, !(store.hasPrefix("postgres://") || store.hasPrefix("postgresql://")) {
            throw ValidationError("--store must be a postgres://USER@HOST:PORT/DATABASE URL, not '\(store)'")
        }
        if coordinators > 1, store == nil {
            throw ValidationError("--coordinators \(coordinators) needs --store postgres://…: they share one database")
        }
    }

    func run() async throws {
        let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let executable =
            binary ?? ((own as NSString).deletingLastPathComponent as NSString).appendingPathComponent("netlease")
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("netlease-chaos-\(getpid())")
        let seed = self.seed ?? .random(in: 0...UInt64.max)
        let target = store == nil ? "one coordinator on SQLite" : "\(coordinators) coordinator(s) on PostgreSQL"
        print("netlease-chaos: \(cycles) cycles, \(clients) clients, \(target), seed \(seed), data in \(directory)")
        defer { if !keep { try? FileManager.default.removeItem(atPath: directory) } }
        let run = ChaosRun(
            options: .init(
                binary: executable,
                directory: directory,
                cycles: cycles,
                clients: clients,
                seed: seed,
                coordinators: coordinators,
                store: store
            )
        )
        let summary = try await run.run { line in print(line) }
        print(summary.description)
        for problem in summary.problems.prefix(20) { print("problem: \(problem)") }
        if !summary.ok { throw ExitCode(1) }
    }
}
