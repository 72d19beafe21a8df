import ArgumentParser
import NetleaseCore
import NetleaseTransport

/// The help of `--metrics` on the daemons.
let metricsOptionHelp = ArgumentHelp(
    "Serve Prometheus metrics (/metrics), /healthz and /readyz over HTTP on this address (port 0 picks one).",
    valueName: "addr:port"
)

/// The address of `--metrics`: HOST:PORT with the port given (there is no default metrics port).
func metricsAddress(_ text: String) throws -> HTTPServer.Address {
    let endpoint: Endpoint
    do {
        endpoint = try Endpoint(parsing: text, defaultPort: -1)
    } catch let error as NetleaseError {
        throw ValidationError("--metrics: \(error.message)")
    }
    guard endpoint.port >= 0 else { throw ValidationError("--metrics needs ADDR:PORT, e.g. 127.0.0.1:9420") }
    return .tcp(host: endpoint.host, port: endpoint.port)
}
