// swift-tools-version: 6.1
import PackageDescription

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
    ],
    targets: [
        // Pure domain: addresses, subnets, the ledger and its allocator. Foundation only.
        .target(name: "NetleaseCore"),
        // The line protocol: typed requests and replies, parse and render. Pure.
        .target(name: "NetleaseWire", dependencies: ["NetleaseCore"]),
        // System SQLite (Debian libsqlite3-dev). Imported by NetleaseStore only.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "NetleaseStore",
            dependencies: [
                "NetleaseCore", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "NetleaseCoordinator",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseStore", "NetleaseClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "NetleaseClient",
            dependencies: [
                "NetleaseCore", "NetleaseWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Every OS side effect (ip, bridge, ovs-vsctl, raw ARP sockets) behind protocols, plus a recording fake.
        .target(
            name: "HostNetwork",
            dependencies: [
                "NetleaseCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The agent: join, build the host network, then lease addresses to local consumers.
        .target(
            name: "NetleaseAgent",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseClient", "HostNetwork",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "netlease",
            dependencies: [
                "NetleaseCore", "NetleaseWire", "NetleaseStore", "NetleaseCoordinator", "NetleaseClient",
                "NetleaseAgent", "HostNetwork",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The CNI IPAM plugin: asks the host's agent for addresses.
        .executableTarget(name: "netlease-cni", dependencies: ["NetleaseClient", "NetleaseWire", "NetleaseCore"]),
        // The fault harness: SIGKILL a real coordinator under load, restart, check every acknowledgement.
        .target(
            name: "NetleaseChaos",
            dependencies: ["NetleaseCore", "NetleaseWire", "NetleaseClient", "HostNetwork"]
        ),
        .executableTarget(
            name: "netlease-chaos",
            dependencies: [
                "NetleaseChaos", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Shared by the test targets only: an in-process coordinator on loopback with a temporary store.
        .target(
            name: "NetleaseTestSupport",
            dependencies: [
                "NetleaseCore", "NetleaseStore", "NetleaseCoordinator", "NetleaseClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "NetleaseCoreTests", dependencies: ["NetleaseCore"]),
        .testTarget(name: "NetleaseWireTests", dependencies: ["NetleaseWire"]),
        .testTarget(name: "HostNetworkTests", dependencies: ["HostNetwork"]),
        // Root only: hosts and containers as network namespaces, driving the real executable.
        .testTarget(
            name: "MultiHostTests",
            dependencies: ["HostNetwork", "NetleaseCore", "NetleaseTestSupport", "netlease", "netlease-cni"]
        ),
        .testTarget(
            name: "NetleaseAgentTests",
            dependencies: [
                "NetleaseAgent", "NetleaseCoordinator", "NetleaseStore", "NetleaseClient", "HostNetwork",
                "NetleaseTestSupport", "NetleaseWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "NetleaseStoreTests", dependencies: ["NetleaseStore"]),
        .testTarget(
            name: "NetleaseCoordinatorTests",
            dependencies: [
                "NetleaseCoordinator", "NetleaseClient", "NetleaseStore", "NetleaseWire", "NetleaseTestSupport",
                "NetleaseChaos",
                // The crash tests run the real executable as a child process (HostNetwork's ChildProcess).
                "netlease", "HostNetwork",
                // The TLS tests speak raw TLS to the coordinator, e.g. a client presenting no certificate.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The framing tests drive a handler on an embedded channel with a virtual clock.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
