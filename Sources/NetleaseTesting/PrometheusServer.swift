import Foundation
import HostNetwork

#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus server for tests, the metrics' actual consumer: it scrapes loopback targets every second from a
/// temporary directory and answers PromQL over its HTTP API. `stop()` ends the process and removes the directory;
/// a failed `start` leaves neither behind.
public final class PrometheusServer: Sendable {
    public let port: Int
    public let directory: URL
    private let process: ChildProcess

    private init(port: Int, directory: URL, process: ChildProcess) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    /// Starts `executable` scraping `targets` (`host:port`) as job `netlease`, and waits until it is ready. Prometheus
    /// needs a concrete listen port: a free loopback port is picked, and another one if that was taken meanwhile.
    public static func start(
        executable: String,
        targets: [String],
        timeout: Duration = .seconds(30)
    ) async throws
        -> PrometheusServer
    {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("netlease-prometheus-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let config = directory.appendingPathComponent("prometheus.yml")
            let quoted = targets.map { "'\($0)'" }.joined(separator: ", ")
            try Data(
                """
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                  evaluation_interval: 1s
                scrape_configs:
                  - job_name: netlease
                    static_configs:
                      - targets: [\(quoted)]

                """.utf8
            ).write(to: config)
            var lastProblem = "not started"
            for _ in 0..<3 {
                let port = try LoopbackPort.free()
                let process = try ChildProcess(
                    executable: executable,
                    arguments: [
                        "--config.file=\(config.path)",
                        "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
                        "--web.listen-address=127.0.0.1:\(port)",
                    ],
                    stdout: .file(directory.appendingPathComponent("prometheus.log").path, append: true),
                    stderr: .file(directory.appendingPathComponent("prometheus.log").path, append: true)
                )
                let server = PrometheusServer(port: port, directory: directory, process: process)
                if let problem = await server.waitUntilReady(timeout: timeout) {
                    process.stop(grace: .seconds(5))
                    lastProblem = problem
                    continue
                }
                return server
            }
            throw TestToolError(description: "prometheus did not become ready: \(lastProblem)")
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// nil once `/-/ready` answers 200; else why not (the process ended, or the time ran out).
    private func waitUntilReady(timeout: Duration) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let ended = process.termination {
                return "it ended (\(ended)): \(log.suffix(2000))"
            }
            if let response = try? await HTTPProbe.get("/-/ready", port: port), response.status == 200 { return nil }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return "not ready within \(timeout): \(log.suffix(2000))"
    }

    /// What the server logged so far.
    public var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("prometheus.log"), encoding: .utf8)) ?? ""
    }

    /// One instant-vector query: each series' labels and value.
    public func query(_ promql: String) async throws -> [(labels: [String: String], value: Double)] {
        let encoded = promql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? promql
        let response = try await HTTPProbe.get("/api/v1/query?query=\(encoded)", port: port)
        guard response.status == 200,
            let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
            object["status"] as? String == "success",
            let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]]
        else {
            throw TestToolError(description: "query \(promql) failed: \(response.status) \(response.body)")
        }
        return try result.map { series in
            guard let labels = series["metric"] as? [String: String], let value = series["value"] as? [Any],
                value.count == 2, let text = value[1] as? String, let number = Double(text)
            else {
                throw TestToolError(description: "unexpected series in the answer to \(promql): \(series)")
            }
            return (labels, number)
        }
    }

    /// Ends the server (SIGTERM, then SIGKILL after 10 s) and removes its directory.
    public func stop() {
        process.stop(grace: .seconds(10))
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A test tool that failed, with what it said.
public struct TestToolError: Error, CustomStringConvertible {
    public var description: String
}
