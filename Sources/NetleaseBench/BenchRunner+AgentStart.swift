import Foundation
import HostNetwork
import Logging
import NetleaseAgent
import NetleaseClient
import NetleaseCore
import NetleaseTesting
import ServiceLifecycle

// `netlease bench --agent-start-peers P`: how long an agent takes from start to ready when P peers are already in
// the cluster, without namespaces. P hosts JOIN the network over the protocol (they exist only at the
// coordinator), then an agent runs in this process with the recording host network (it plans every bridge,
// tunnel and FDB step for P peers but runs no command) and a scripted ARP prober; the time from constructing it to
// its socket being ready is measured, `--runs` times, each as a new host. Everything the bench joined is removed
// at the end. What this leaves out is the cost of the `ip`/`bridge` commands themselves: `netlease demo` measures
// real agents in namespaces.

struct AgentStartReport: Codable {
    var peers: Int
    var milliseconds: [Double]
    var medianMilliseconds: Double
}

extension BenchRunner {
    func runAgentStart(peers: Int, runs: Int) async throws {
        let (_, createdNetwork) = try await ensureNetwork()
        let joined = JoinedHosts()
        do {
            let samples = try await measureAgentStart(peers: peers, runs: runs, joined: joined)
            let sorted = samples.sorted()
            let report = AgentStartReport(
                peers: peers,
                milliseconds: samples,
                medianMilliseconds: sorted[sorted.count / 2]
            )
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(
                    String(
                        format: "agent start -> ready with %d peer(s): median %.1f ms, runs %@ "
                            + "(recording host network)",
                        peers,
                        report.medianMilliseconds,
                        samples.map { String(format: "%.1f", $0) }.joined(separator: " ")
                    )
                )
            }
        } catch {
            await removeJoined(joined, deleteNetwork: createdNetwork)
            throw error
        }
        await removeJoined(joined, deleteNetwork: createdNetwork)
    }

    /// Host names the bench joined, for removing them again.
    final class JoinedHosts: @unchecked Sendable {
        // @unchecked: appended to and read by the one task that runs the measurement, never concurrently.
        var names: [String] = []
    }

    private func measureAgentStart(peers: Int, runs: Int, joined: JoinedHosts) async throws -> [Double] {
        try await admin { connection in
            for index in 0..<peers {
                let name = "bench-peer-\(runID)-\(index)"
                // Underlay addresses from 198.18.0.0/15 (benchmarking range): the recording host network sends nothing.
                let underlay = IPv4Address(198, 18, UInt8(index / 250), UInt8(index % 250 + 1))
                _ = try await connection.join(host: name, underlay: underlay, networks: [network])
                joined.names.append(name)
            }
        }
        log("\(peers) peer host(s) joined \(network)")
        var samples: [Double] = []
        for run in 1...runs {
            let host = "bench-agent-\(runID)-\(run)"
            joined.names.append(host)
            samples.append(try await timeAgent(host: host, underlay: IPv4Address(198, 19, 0, UInt8(run % 250 + 1))))
            log(String(format: "run %d: agent ready in %.1f ms with %d peer(s)", run, samples.last!, peers))
        }
        return samples
    }

    private func removeJoined(_ joined: JoinedHosts, deleteNetwork: Bool) async {
        _ = try? await admin { connection in
            for host in joined.names { _ = try? await connection.removeHost(host) }
            if deleteNetwork && !keep { try? await connection.deleteNetwork(network) }
        }
    }

    /// Starts one agent as `host`, returns milliseconds from start to ready, and stops it.
    private func timeAgent(host: String, underlay: IPv4Address) async throws -> Double {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-bench-agent-\(runID)-\(host)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "bench.agent")
        logger.logLevel = .error
        let configuration = AgentConfiguration(
            coordinators: [endpoint],
            secret: secret,
            host: host,
            underlay: underlay,
            networks: [network],
            socketPath: (directory as NSString).appendingPathComponent("agent.sock"),
            stateDirectory: (directory as NSString).appendingPathComponent("state")
        )
        let (ready, readySink) = AsyncStream.makeStream(of: Void.self)
        let started = ContinuousClock.now
        let agent = try Agent(
            configuration: configuration,
            hostNetwork: RecordingHostNetwork(),
            prober: ScriptedARPProber(),
            logger: logger
        ) { _ in readySink.yield() }
        let group = ServiceGroup(services: [agent], logger: logger)
        let running = Task { try await group.run() }
        var iterator = ready.makeAsyncIterator()
        let timeout = Task {
            try await Task.sleep(for: .seconds(30))
            readySink.finish()
        }
        let wasReady = await iterator.next() != nil
        let elapsed = ContinuousClock.now - started
        timeout.cancel()
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        guard wasReady else { throw NetleaseError(.unavailable, "agent \(host) was not ready within 30 s") }
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
