import ArgumentParser
import HostNetwork
import NetleaseBench
import NetleaseCore

extension Netlease {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load-test a coordinator over the wire protocol (loopback only) and verify what it acknowledged.",
            discussion: """
                Acquire mode (default): N connections keep D ACQUIRE requests each in flight for --duration seconds \
                (closed loop), or offer --rate acquires/s in total on a fixed schedule (open loop). With --release \
                every acknowledged lease is released at once (RELEASE), so the pool's fill level stays constant. \
                --prefill fills the pool to a percentage first. At the end every acknowledged lease is checked \
                against LEASE-LIST (present, same owner, addresses unique); unless --keep, the leases made by the \
                bench are released again and a network the bench created is deleted.

                Without --release the run is bounded by the pool: once the free addresses counted at the start are \
                used up, no more acquires are sent and the run ends early (the report says so).

                Agents mode (--agents N): N connections JOIN as hosts, acquire --agent-leases host-bound leases \
                each, heartbeat every --heartbeat seconds, and N more connections WATCH; everything is held for \
                --duration seconds. With --coordinator-pid the coordinator's VmRSS/VmHWM are sampled meanwhile.

                Agent start mode (--agent-start-peers P): P hosts JOIN the network (they exist only at the \
                coordinator), then --runs agents start one after the other in this process, each as a new host, with \
                the recording host network (every bridge, tunnel and FDB step for the P peers is planned, no command \
                runs); each is timed from start to its socket being ready. The joined hosts are removed at the end. \
                `netlease demo` times real agents in network namespaces.
                """
        )

        @OptionGroup var client: ClientOptions

        @Option(help: "Connections (load mode).") var connections = BenchOptions.defaults.connections
        @Option(help: "Requests in flight per connection (closed loop).") var pipeline = BenchOptions.defaults.pipeline
        @Option(help: ArgumentHelp("Measured time in seconds.", valueName: "seconds"))
        var duration: Double = BenchOptions.defaults.duration
        @Option(
            help: ArgumentHelp(
                "Offered acquires/s over all connections (open loop); 0 = flat out.",
                valueName: "r"
            )
        )
        var rate: Double = BenchOptions.defaults.rate
        @Option(help: "Network to use; created when missing.") var network = BenchOptions.defaults.network
        @Option(help: "Subnet for a network the bench creates (cooldown 0).") var subnet = BenchOptions.defaults.subnet
        @Option(help: ArgumentHelp("Fill the pool to this percentage before measuring.", valueName: "percent"))
        var prefill: Double = BenchOptions.defaults.prefill
        @Flag(help: "Release every acknowledged lease at once (measures releases/s too).")
        var release = BenchOptions.defaults.release
        @Option(help: "Client: lean (NIO handler, default) or standard (NetleaseConnection).")
        var clientKind = BenchOptions.defaults.clientKind
        @Option(help: "Event-loop threads of the lean client.") var threads = BenchOptions.defaults.threads
        @Flag(help: "Keep the leases (and a created network) at the end instead of releasing them.")
        var keep = BenchOptions.defaults.keep
        @Option(help: "Agents mode: this many hosts JOIN (plus as many WATCH connections).")
        var agents = BenchOptions.defaults.agents
        @Option(help: "Agents mode: host-bound leases each agent acquires.")
        var agentLeases = BenchOptions.defaults.agentLeases
        @Option(help: ArgumentHelp("Agents mode: heartbeat interval.", valueName: "seconds"))
        var heartbeat: Double = BenchOptions.defaults.heartbeat
        @Option(
            help: ArgumentHelp(
                "Agent start mode: join this many peer hosts, then time an agent (in this process, recording host network) "
                    + "from start to ready.",
                valueName: "peers"
            )
        )
        var agentStartPeers: Int?
        @Option(help: "Agent start mode: agents to time, one after the other.") var runs = BenchOptions.defaults.runs
        @Option(help: "PID of the coordinator, to sample its VmRSS/VmHWM (from /proc) during the run.")
        var coordinatorPid: Int32?
        @Flag(help: "Print the report as JSON.") var json = BenchOptions.defaults.json

        func validate() throws {
            guard (1...4000).contains(connections) else { throw ValidationError("--connections must be 1-4000") }
            guard (1...1024).contains(pipeline) else { throw ValidationError("--pipeline must be 1-1024") }
            guard duration > 0, duration <= 3600 else { throw ValidationError("--duration must be in (0, 3600]") }
            guard rate >= 0, rate <= 1_000_000 else { throw ValidationError("--rate must be 0-1000000") }
            guard (0...100).contains(prefill) else { throw ValidationError("--prefill must be 0-100") }
            guard ["lean", "standard"].contains(clientKind) else {
                throw ValidationError("--client-kind must be lean or standard")
            }
            guard (1...16).contains(threads) else { throw ValidationError("--threads must be 1-16") }
            guard (0...4000).contains(agents) else { throw ValidationError("--agents must be 0-4000") }
            guard (0...1000).contains(agentLeases) else { throw ValidationError("--agent-leases must be 0-1000") }
            guard heartbeat >= 0.1 else { throw ValidationError("--heartbeat must be at least 0.1") }
            if let agentStartPeers, !(0...1000).contains(agentStartPeers) {
                throw ValidationError("--agent-start-peers must be 0-1000")
            }
            guard (1...100).contains(runs) else { throw ValidationError("--runs must be 1-100") }
            guard IPv4Subnet(subnet) != nil else { throw ValidationError("--subnet '\(subnet)' is not A.B.C.D/P") }
        }

        var options: BenchOptions {
            var o = BenchOptions()
            o.connections = connections
            o.pipeline = pipeline
            o.duration = duration
            o.rate = rate
            o.network = network
            o.subnet = subnet
            o.prefill = prefill
            o.release = release
            o.clientKind = clientKind
            o.threads = threads
            o.keep = keep
            o.agents = agents
            o.agentLeases = agentLeases
            o.heartbeat = heartbeat
            o.agentStartPeers = agentStartPeers
            o.runs = runs
            o.coordinatorPid = coordinatorPid
            o.json = json
            return o
        }

        func run() async throws {
            try await reportingErrors(json: json) {
                let endpoint = try client.endpoint()
                guard BenchOptions.isLoopback(endpoint.host) else {
                    throw NetleaseError.badRequest(
                        "bench only targets loopback (127.0.0.0/8, ::1, localhost); got \(endpoint.host)"
                    )
                }
                OpenFileLimit.raise()
                let secret = try client.secret()
                do {
                    try await BenchRunner(options: options, endpoint: endpoint, secret: secret).run()
                } catch is BenchVerificationFailed {
                    throw ExitCode(2)
                }
            }
        }
    }
}
