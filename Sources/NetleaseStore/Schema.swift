import Foundation
import NetleaseCore

/// Tables, migrations and the mapping between rows and domain values.
///
/// Invariant 1 lives here as much as in the ledger: `PRIMARY KEY (network, address)` makes a second record for an
/// address impossible, and `leases_active_owner` makes a second active lease of one owner in a network impossible.
enum Schema {
    /// Each entry moves the schema from version `index` to `index + 1`. Never edit a shipped entry; append.
    static let migrations: [String] = [
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE networks (
            name TEXT PRIMARY KEY,
            subnet TEXT NOT NULL,
            tunnel TEXT NOT NULL,
            vni INTEGER NOT NULL,
            bridge TEXT NOT NULL,
            mtu INTEGER NOT NULL,
            lease_ttl INTEGER NOT NULL,
            cooldown INTEGER NOT NULL,
            excluded TEXT NOT NULL,
            created INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE hosts (
            name TEXT PRIMARY KEY,
            underlay TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('up', 'lost')),
            networks TEXT NOT NULL,
            joined INTEGER NOT NULL,
            last_heartbeat INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE leases (
            network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
            address INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'reserved', 'conflict', 'cooldown')),
            host TEXT NOT NULL,
            owner TEXT NOT NULL,
            ifname TEXT NOT NULL,
            note TEXT NOT NULL,
            mac TEXT NOT NULL,
            static INTEGER NOT NULL,
            created INTEGER NOT NULL,
            renewed INTEGER NOT NULL,
            until INTEGER NOT NULL,
            PRIMARY KEY (network, address)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX leases_active_owner ON leases (network, owner) WHERE state = 'active';
        """,
        // Counts commits that changed something; with the store id it tells agents when a coordinator was
        // restored from an older backup.
        """
        INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
        """,
        // Host credentials: the salted hash of each host's secret, never the secret (HostCredentialStore).
        """
        CREATE TABLE host_credentials (
            host TEXT PRIMARY KEY,
            hash TEXT NOT NULL,
            issued INTEGER NOT NULL
        ) WITHOUT ROWID;
        """,
        // The same leases table with its state check as an OR chain: for `IN` with more than two values SQLite
        // builds and drops an ephemeral table on every insert and update of a lease (≈ 12 allocations, 9–12 % of
        // the coordinator's CPU at 32 × 16; PERFORMANCE.md). Same columns, key, foreign key, index and meaning.
        """
        CREATE TABLE leases_rebuilt (
            network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
            address INTEGER NOT NULL,
            state TEXT NOT NULL
                CHECK (state = 'active' OR state = 'reserved' OR state = 'conflict' OR state = 'cooldown'),
            host TEXT NOT NULL,
            owner TEXT NOT NULL,
            ifname TEXT NOT NULL,
            note TEXT NOT NULL,
            mac TEXT NOT NULL,
            static INTEGER NOT NULL,
            created INTEGER NOT NULL,
            renewed INTEGER NOT NULL,
            until INTEGER NOT NULL,
            PRIMARY KEY (network, address)
        ) WITHOUT ROWID;
        INSERT INTO leases_rebuilt
            (network, address, state, host, owner, ifname, note, mac, static, created, renewed, until)
            SELECT network, address, state, host, owner, ifname, note, mac, static, created, renewed, until
            FROM leases;
        DROP TABLE leases;
        ALTER TABLE leases_rebuilt RENAME TO leases;
        CREATE UNIQUE INDEX leases_active_owner ON leases (network, owner) WHERE state = 'active';
        """,
    ]

    static func migrate(_ db: SQLiteDatabase) throws {
        let version = Int(try db.scalarInt("PRAGMA user_version") ?? 0)
        guard version <= migrations.count else {
            throw NetleaseError(
                .storage,
                "\(db.path) has schema version \(version), newer than this netlease (\(migrations.count)); "
                    + "upgrade netlease"
            )
        }
        guard version < migrations.count else { return }
        try db.transaction {
            for index in version..<migrations.count { try db.execute(migrations[index]) }
            if version == 0 {
                try db.execute("PRAGMA application_id = \(SQLiteLeaseStore.applicationID)")
                try db.run(
                    "INSERT INTO meta (key, value) VALUES ('store-id', ?)",
                    [.text(UUID().uuidString.lowercased())]
                )
            }
            try db.execute("PRAGMA user_version = \(migrations.count)")
        }
    }

    /// Gives every network whose VNI is outside 1…16,777,215 the lowest free one, in one transaction; returns what
    /// it changed. Automatic VNIs once ran past 24 bits: no VXLAN device accepts such a VNI (the network never worked
    /// with `vxlan`; `gre` and `ovs-gre` do not use it), and every client refuses the NETWORK records carrying it,
    /// so NETWORK-LIST failed for everyone.
    static func repairVNIs(_ db: SQLiteDatabase) throws -> [(network: String, from: Int64, to: UInt32)] {
        let rows = try db.query("SELECT name, vni FROM networks ORDER BY name") { try ($0.text(0), $0.int(1)) }
        let valid = Ledger.vniRange
        let inRange = { (vni: Int64) in Int64(valid.lowerBound) <= vni && vni <= Int64(valid.upperBound) }
        let bad = rows.filter { !inRange($0.1) }
        guard !bad.isEmpty else { return [] }
        var used = Set(rows.filter { inRange($0.1) }.map { UInt32($0.1) })
        var repaired: [(network: String, from: Int64, to: UInt32)] = []
        try db.transaction {
            for (name, vni) in bad {
                guard let free = valid.first(where: { !used.contains($0) }) else {
                    throw NetleaseError(.storage, "network '\(name)' has VNI \(vni) and no VNI is free to repair it")
                }
                used.insert(free)
                try db.run("UPDATE networks SET vni = ? WHERE name = ?", [.int(Int64(free)), .text(name)])
                repaired.append((name, vni, free))
            }
        }
        return repaired
    }

    // MARK: writing

    static func bumpGeneration(_ db: SQLiteDatabase) throws {
        try db.run("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    }

    static func generation(_ db: SQLiteDatabase) throws -> Int64 {
        Int64(try db.scalarText("SELECT value FROM meta WHERE key = 'generation'") ?? "0") ?? 0
    }

    static func write(_ change: LedgerChange, to db: SQLiteDatabase) throws {
        switch change {
        case .insertNetwork(let spec):
            try db.run(
                """
                INSERT INTO networks (name, subnet, tunnel, vni, bridge, mtu, lease_ttl, cooldown, excluded, created)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(spec.name), .text(spec.subnet.description), .text(spec.tunnel.rawValue),
                    .int(Int64(spec.vni)),
                    .text(spec.bridge), .int(Int64(spec.mtu)), .int(Int64(spec.leaseTTL)), .int(Int64(spec.cooldown)),
                    .text(spec.excluded.map(\.description).joined(separator: ",")), .int(spec.created),
                ]
            )
        case .deleteNetwork(let name):
            try db.run("DELETE FROM leases WHERE network = ?", [.text(name)])
            try db.run("DELETE FROM networks WHERE name = ?", [.text(name)])
        case .upsertHost(let host):
            try db.run(
                """
                INSERT INTO hosts (name, underlay, epoch, state, networks, joined, last_heartbeat)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET underlay = excluded.underlay, epoch = excluded.epoch,
                    state = excluded.state, networks = excluded.networks, joined = excluded.joined,
                    last_heartbeat = excluded.last_heartbeat
                """,
                [
                    .text(host.name), .text(host.underlay.description), .int(host.epoch), .text(host.state.rawValue),
                    .text(host.networks.joined(separator: ",")), .int(host.joined), .int(host.lastHeartbeat),
                ]
            )
        case .deleteHost(let name):
            try db.run("DELETE FROM hosts WHERE name = ?", [.text(name)])
        case .insertLease(let lease):
            try db.run(
                """
                INSERT INTO leases (network, address, state, host, owner, ifname, note, mac, static, created, renewed,
                    until)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                values(lease)
            )
        case .updateLease(let lease):
            try db.run(
                """
                UPDATE leases SET state = ?3, host = ?4, owner = ?5, ifname = ?6, note = ?7, mac = ?8, static = ?9,
                    created = ?10, renewed = ?11, until = ?12
                WHERE network = ?1 AND address = ?2
                """,
                values(lease)
            )
            guard db.changes == 1 else {
                throw NetleaseError(.internalError, "update of \(lease.network) \(lease.address) found no row")
            }
        case .recordEpoch(let epoch):
            try db.run(
                """
                INSERT INTO meta (key, value) VALUES ('last-epoch', ?)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """,
                [.text(String(epoch))]
            )
        case .deleteLease(let network, let address):
            try db.run(
                "DELETE FROM leases WHERE network = ? AND address = ?",
                [.text(network), .int(Int64(address.value))]
            )
        }
    }

    private static func values(_ lease: Lease) -> [SQLiteValue] {
        [
            .text(lease.network), .int(Int64(lease.address.value)), .text(lease.state.rawValue), .text(lease.host),
            .text(lease.owner), .text(lease.ifname), .text(lease.note), .text(lease.mac), .int(lease.isStatic ? 1 : 0),
            .int(lease.created), .int(lease.renewed), .int(lease.until),
        ]
    }

    // MARK: reading

    static func networks(_ db: SQLiteDatabase) throws -> [NetworkSpec] {
        try db.query(
            "SELECT name, subnet, tunnel, vni, bridge, mtu, lease_ttl, cooldown, excluded, created FROM networks"
        ) { row in
            let name = try row.text(0)
            guard let subnet = try IPv4Subnet(row.text(1)), let tunnel = try TunnelKind(rawValue: row.text(2)) else {
                throw NetleaseError(.storage, "stored network '\(name)' is unreadable")
            }
            let excluded = try row.text(8).split(separator: ",").map { text -> IPv4Range in
                guard let range = IPv4Range(text) else {
                    throw NetleaseError(.storage, "stored network '\(name)' has unreadable exclusion '\(text)'")
                }
                return range
            }
            return try NetworkSpec(
                name: name,
                subnet: subnet,
                tunnel: tunnel,
                vni: UInt32(truncatingIfNeeded: row.int(3)),
                bridge: row.text(4),
                mtu: Int(row.int(5)),
                leaseTTL: Int(row.int(6)),
                cooldown: Int(row.int(7)),
                excluded: excluded,
                created: row.int(9)
            )
        }
    }

    static func hosts(_ db: SQLiteDatabase) throws -> [HostRecord] {
        try db.query("SELECT name, underlay, epoch, state, networks, joined, last_heartbeat FROM hosts") { row in
            let name = try row.text(0)
            guard let underlay = try IPv4Address(row.text(1)), let state = try HostState(rawValue: row.text(3)) else {
                throw NetleaseError(.storage, "stored host '\(name)' is unreadable")
            }
            return try HostRecord(
                name: name,
                underlay: underlay,
                epoch: row.int(2),
                state: state,
                networks: row.text(4).split(separator: ",").map(String.init),
                joined: row.int(5),
                lastHeartbeat: row.int(6)
            )
        }
    }

    static func leases(_ db: SQLiteDatabase, prefixes: [String: Int]) throws -> [Lease] {
        try db.query(
            """
            SELECT network, address, state, host, owner, ifname, note, mac, static, created, renewed, until
            FROM leases ORDER BY network, address
            """
        ) { row in
            let network = try row.text(0)
            guard let prefix = prefixes[network], let state = try LeaseState(rawValue: row.text(2)) else {
                throw NetleaseError(.storage, "stored lease in '\(network)' is unreadable")
            }
            return try Lease(
                network: network,
                address: IPv4Address(UInt32(truncatingIfNeeded: row.int(1))),
                prefix: prefix,
                state: state,
                host: row.text(3),
                owner: row.text(4),
                ifname: row.text(5),
                note: row.text(6),
                mac: row.text(7),
                isStatic: row.int(8) != 0,
                created: row.int(9),
                renewed: row.int(10),
                until: row.int(11)
            )
        }
    }
}
