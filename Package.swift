// swift-tools-version: 6.1
import PackageDescription

// Modules and who may import whom: arrows point down only (executables → services → {Client, Store, HostNetwork,
// Wire, Transport} → Core). NetleaseTesting is linked by tests and the bench only; NetleaseLab by the demo and tests.
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "netlease",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "netlease", targets: ["netlease"]),
        .executable(name: "netlease-cni", targets: ["netlease-cni"]),
        .executable(name: "netlease-chaos", targets: ["netlease-chaos"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Already in the graph through postgres-nio; the stores keep secrets and host credentials as its hashes.
        .package(url: "https://github.com/apple/swift-crypto", "3.9.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `netlease tls init`: the cluster's CA and certificates, made without openssl by hand.
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // Pure domain: addresses, subnets, the ledger and its allocator, mesh planning, errors. Foundation only.
        .target(name: "NetleaseCore"),
        // The line protocol: typed requests, replies and events; parse and render. Pure.
        .target(name: "NetleaseWire", dependencies: ["NetleaseCore"]),
        // What client and server share: line framing, the line server, TLS settings, endpoints, secret files.
        .target(
            name: "NetleaseTransport",
            dependencies: [
                "NetleaseCore", "NetleaseWire", nioCore, nioPosix, nioHTTP1, logging, lifecycle,
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        // What every daemon's metrics share: the /metrics, /healthz and /readyz routes, scrape-time gauges,
        // lock-free histograms for hot paths. Each coordinator and agent owns its registry (no global bootstrap).
        .target(name: "NetleaseMetrics", dependencies: ["NetleaseTransport", nioCore, logging, prometheus]),
        // The protocol client: NetleaseConnection and its verbs.
        .target(name: "NetleaseClient", dependencies: ["NetleaseCore", "NetleaseWire", "NetleaseTransport", nioCore]),
        // System SQLite (Debian libsqlite3-dev). Imported by NetleaseStore only.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "NetleaseStore",
            dependencies: ["NetleaseCore", "CSQLite", logging, .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The PostgreSQL store (several coordinators on one database). Imported only by those choosing it.
        .target(
            name: "NetleasePostgresStore",
            dependencies: [
                "NetleaseCore", "NetleaseStore", logging, nioCore, nioPosix,
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The coordinator: its assembly, connections, one dispatch path, auth, event hub, reclaimer.
        .target(
            name: "NetleaseCoordinator",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseStore", "NetleaseTransport", "NetleaseMetrics", nioCore,
                nioPosix, logging, lifecycle, prometheus,
            ]
        ),
        // Every OS side effect (ip, bridge, ovs-vsctl, raw ARP sockets, child processes) behind protocols.
        .target(name: "HostNetwork", dependencies: ["NetleaseCore", logging]),
        // The agent: join, build the host network, then lease addresses to local consumers.
        .target(
            name: "NetleaseAgent",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseTransport", "NetleaseClient", "HostNetwork", "NetleaseMetrics",
                nioCore, nioHTTP1, logging, lifecycle, prometheus,
            ]
        ),
        // CNI types and logic, called by the netlease-cni executable.
        .target(name: "NetleaseCNI", dependencies: ["NetleaseCore", "NetleaseWire", "NetleaseClient"]),
        // Network-namespace lab (hosts, underlay, private Open vSwitch): used by `netlease demo` and the tests.
        .target(name: "NetleaseLab", dependencies: ["NetleaseCore", "HostNetwork", logging]),
        // Recording/scripted fakes, a manual clock and an in-process coordinator: tests and the bench only.
        .target(
            name: "NetleaseTesting",
            dependencies: [
                "NetleaseCore", "NetleaseStore", "NetleaseCoordinator", "NetleaseTransport", "NetleaseClient",
                "HostNetwork", logging, nioCore, nioPosix, nioHTTP1, lifecycle,
            ]
        ),
        // The load generator over the real protocol.
        .target(
            name: "NetleaseBench",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseTransport", "NetleaseClient", "NetleaseAgent",
                "HostNetwork", "NetleaseTesting", nioCore, nioPosix, logging, lifecycle,
            ]
        ),
        // The fault harness: SIGKILL a real coordinator under load, restart, check every acknowledgement.
        .target(
            name: "NetleaseChaos",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseTransport", "NetleaseClient", "HostNetwork", "NetleaseLab",
            ]
        ),
        // Executables: parse options, call a library.
        .executableTarget(
            name: "netlease",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseTransport", "NetleaseStore", "NetleasePostgresStore",
                "NetleaseCoordinator",
                "NetleaseClient", "NetleaseAgent", "NetleaseCNI", "HostNetwork", "NetleaseBench", "NetleaseLab",
                argumentParser, logging, lifecycle, .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .executableTarget(name: "netlease-cni", dependencies: ["NetleaseCNI"]),
        .executableTarget(name: "netlease-chaos", dependencies: ["NetleaseChaos", argumentParser]),

        .testTarget(name: "NetleaseCoreTests", dependencies: ["NetleaseCore"]),
        .testTarget(name: "NetleaseWireTests", dependencies: ["NetleaseWire"]),
        .testTarget(name: "HostNetworkTests", dependencies: ["HostNetwork", "NetleaseLab", "NetleaseTesting"]),
        .testTarget(name: "NetleaseStoreTests", dependencies: ["NetleaseStore", "NetleaseTesting", "NetleaseLab"]),
        .testTarget(
            name: "NetleasePostgresStoreTests",
            dependencies: [
                "NetleasePostgresStore", "NetleaseStore", "NetleaseCore", "NetleaseTesting", "NetleaseStoreTests",
                "HostNetwork", logging,
            ]
        ),
        // Also the netlease-cni executable, run as a CNI runtime runs it.
        .testTarget(
            name: "NetleaseCNITests",
            dependencies: ["NetleaseCNI", "netlease-cni", "NetleaseTesting", "NetleaseLab"]
        ),
        .testTarget(
            name: "NetleaseBenchTests",
            dependencies: [
                "NetleaseBench", "NetleaseCore", "NetleaseWire", "NetleaseTransport", "NetleaseClient",
                "NetleaseTesting", nioCore, .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "NetleaseTransportTests",
            dependencies: [
                "NetleaseTransport", nioCore, nioPosix, nioHTTP1, .product(name: "NIOEmbedded", package: "swift-nio"),
                // SystemdNotifyTests: a recording notify socket, the notify service in a real ServiceGroup.
                "NetleaseTesting", logging, lifecycle,
            ]
        ),
        .testTarget(
            name: "NetleaseMetricsTests",
            dependencies: ["NetleaseMetrics", "NetleaseTransport", "NetleaseTesting", prometheus, logging, lifecycle]
        ),
        .testTarget(
            name: "NetleaseClientTests",
            dependencies: [
                "NetleaseClient", "NetleaseTransport", "NetleaseTesting", "NetleaseCore", "NetleaseWire", nioCore,
                nioPosix,
            ]
        ),
        .testTarget(
            name: "NetleaseCoordinatorTests",
            dependencies: [
                "NetleaseCoordinator", "NetleaseClient", "NetleaseStore", "NetleaseWire", "NetleaseTransport",
                "NetleaseTesting", "NetleaseChaos", "NetleaseLab",
                // The crash tests run the real executable as a child process (HostNetwork's ChildProcess).
                "netlease", "HostNetwork",
                // The TLS tests speak raw TLS to the coordinator, e.g. a client presenting no certificate.
                nioCore, nioPosix, .product(name: "NIOSSL", package: "swift-nio-ssl"), logging, lifecycle,
            ]
        ),
        .testTarget(
            name: "NetleaseAgentTests",
            dependencies: [
                "NetleaseAgent", "NetleaseCoordinator", "NetleaseStore", "NetleaseClient", "HostNetwork",
                "NetleaseTesting", "NetleaseWire", "NetleaseTransport", logging, lifecycle,
            ]
        ),
        // The command line: argv parsed by the executable's own command types; defaults and every validate() error.
        // Where output matters, the built executables run as child processes against a coordinator: exit codes,
        // stderr, secret files.
        .testTarget(
            name: "NetleaseCLITests",
            dependencies: [
                "netlease", "NetleaseBench", argumentParser, "NetleaseCore", "NetleaseTesting", "NetleaseStore",
                "HostNetwork", "NetleaseLab", "NetleaseClient", "NetleaseTransport", "NetleaseWire",
            ]
        ),
        // Root only: hosts and containers as network namespaces, driving the real executables.
        .testTarget(
            name: "MultiHostTests",
            dependencies: ["HostNetwork", "NetleaseCore", "NetleaseLab", "NetleaseTesting", "netlease", "netlease-cni"]
        ),
    ]
)
