import NetleaseCore

/// Tables, migrations and the batch-commit function of the PostgreSQL store.
///
/// The same guarantees as the SQLite schema: `PRIMARY KEY (network, address)` makes a second record for an address
/// impossible; `leases_active_owner` makes a second active lease of one owner in a network impossible; the epoch
/// counter (`store_state.last_epoch`) only grows; cooldown ends (`until`), reservations and conflict quarantines
/// are rows like any other. On top: the `leadership` row, whose `term` only grows (a trigger refuses anything
/// else), and the hashes of the cluster's secrets.
///
/// Design notes:
/// - A batch is one call of `netlease_commit` inside `BEGIN … COMMIT`: one round trip for any number of changes,
///   applied in the ledger's order (the order matters: a release and a new acquire of one owner in one batch would
///   trip the unique index if swapped). The changes travel as parallel arrays, text bound as text.
/// - `netlease_commit` first locks the leadership row (`FOR SHARE`) and checks the caller's term. A takeover
///   (`UPDATE leadership`) waits for a batch that already holds the lock and commits after it; every later batch of
///   the old term finds the new term and fails with SQLSTATE `NL001`. So a deposed leader can never commit.
/// - Migrations run under an advisory lock, so coordinators starting together on an empty database create the
///   schema once.
enum PostgresSchema {
    /// Key of the advisory lock held while migrating ("NLSE").
    static let migrationLock: Int64 = 0x4E4C_5345
    /// SQLSTATE raised by `netlease_commit` when the caller's term is no longer the leader's.
    static let deposedState = "NL001"
    /// SQLSTATE raised when an update finds no row (the ledger and the database disagree).
    static let missingRowState = "NL002"

    /// Each entry moves the schema from version `index` to `index + 1`; each statement is sent on its own. Never
    /// edit a shipped entry; append.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE netlease_schema (version integer NOT NULL)",
            "INSERT INTO netlease_schema (version) VALUES (0)",
            """
            CREATE TABLE store_state (
                id smallint PRIMARY KEY CHECK (id = 1),
                store_id text NOT NULL,
                generation bigint NOT NULL CHECK (generation >= 0),
                last_epoch bigint NOT NULL CHECK (last_epoch >= 0)
            )
            """,
            """
            CREATE TABLE leadership (
                id smallint PRIMARY KEY CHECK (id = 1),
                term bigint NOT NULL CHECK (term >= 0),
                leader text NOT NULL,
                beat bigint NOT NULL,
                changed timestamptz NOT NULL DEFAULT now()
            )
            """,
            "INSERT INTO leadership (id, term, leader, beat) VALUES (1, 0, '', 0)",
            """
            CREATE FUNCTION netlease_term_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.term < OLD.term THEN
                    RAISE EXCEPTION 'leadership term may only grow (% -> %)', OLD.term, NEW.term;
                END IF;
                RETURN NEW;
            END
            $$
            """,
            """
            CREATE TRIGGER leadership_term_only_grows BEFORE UPDATE ON leadership
                FOR EACH ROW EXECUTE FUNCTION netlease_term_only_grows()
            """,
            "CREATE TABLE secrets (role text PRIMARY KEY, hash text NOT NULL)",
            """
            CREATE TABLE networks (
                name text PRIMARY KEY,
                subnet text NOT NULL,
                tunnel text NOT NULL,
                vni bigint NOT NULL,
                bridge text NOT NULL,
                mtu integer NOT NULL,
                lease_ttl integer NOT NULL,
                cooldown integer NOT NULL,
                excluded text NOT NULL,
                created bigint NOT NULL
            )
            """,
            """
            CREATE TABLE hosts (
                name text PRIMARY KEY,
                underlay text NOT NULL,
                epoch bigint NOT NULL,
                state text NOT NULL CHECK (state IN ('up', 'lost')),
                networks text NOT NULL,
                joined bigint NOT NULL,
                last_heartbeat bigint NOT NULL
            )
            """,
            """
            CREATE TABLE leases (
                network text NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
                address bigint NOT NULL CHECK (address BETWEEN 0 AND 4294967295),
                state text NOT NULL CHECK (state IN ('active', 'reserved', 'conflict', 'cooldown')),
                host text NOT NULL,
                owner text NOT NULL,
                ifname text NOT NULL,
                note text NOT NULL,
                mac text NOT NULL,
                static boolean NOT NULL,
                created bigint NOT NULL,
                renewed bigint NOT NULL,
                until bigint NOT NULL,
                PRIMARY KEY (network, address)
            )
            """,
            "CREATE UNIQUE INDEX leases_active_owner ON leases (network, owner) WHERE state = 'active'",
            // k: change kind; t1…t7 text and i1…i5 bigint columns, meaning per kind (see `ChangeColumns`).
            """
            CREATE FUNCTION netlease_commit(
                p_term bigint, k smallint[], t1 text[], t2 text[], t3 text[], t4 text[], t5 text[], t6 text[],
                t7 text[], i1 bigint[], i2 bigint[], i3 bigint[], i4 bigint[], i5 bigint[]
            ) RETURNS bigint LANGUAGE plpgsql AS $$
            DECLARE
                x integer;
                n integer;
                g bigint;
            BEGIN
                PERFORM 1 FROM leadership WHERE id = 1 AND term = p_term FOR SHARE;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'term % no longer leads this database', p_term USING ERRCODE = 'NL001';
                END IF;
                FOR x IN 1 .. coalesce(array_length(k, 1), 0) LOOP
                    CASE k[x]
                    WHEN 1 THEN
                        INSERT INTO networks (name, subnet, tunnel, bridge, excluded, vni, mtu, lease_ttl, cooldown,
                                              created)
                        VALUES (t1[x], t2[x], t3[x], t4[x], t5[x], i1[x], i2[x], i3[x], i4[x], i5[x]);
                    WHEN 2 THEN
                        DELETE FROM leases WHERE network = t1[x];
                        DELETE FROM networks WHERE name = t1[x];
                    WHEN 3 THEN
                        INSERT INTO hosts (name, underlay, state, networks, epoch, joined, last_heartbeat)
                        VALUES (t1[x], t2[x], t3[x], t4[x], i1[x], i2[x], i3[x])
                        ON CONFLICT (name) DO UPDATE SET underlay = excluded.underlay, state = excluded.state,
                            networks = excluded.networks, epoch = excluded.epoch, joined = excluded.joined,
                            last_heartbeat = excluded.last_heartbeat;
                    WHEN 4 THEN
                        DELETE FROM hosts WHERE name = t1[x];
                    WHEN 5 THEN
                        INSERT INTO leases (network, state, host, owner, ifname, note, mac, address, static, created,
                                            renewed, until)
                        VALUES (t1[x], t2[x], t3[x], t4[x], t5[x], t6[x], t7[x], i1[x], i2[x] <> 0, i3[x], i4[x],
                                i5[x]);
                    WHEN 6 THEN
                        UPDATE leases SET state = t2[x], host = t3[x], owner = t4[x], ifname = t5[x], note = t6[x],
                            mac = t7[x], static = i2[x] <> 0, created = i3[x], renewed = i4[x], until = i5[x]
                        WHERE network = t1[x] AND address = i1[x];
                        GET DIAGNOSTICS n = ROW_COUNT;
                        IF n <> 1 THEN
                            RAISE EXCEPTION 'update of % % found no row', t1[x], i1[x] USING ERRCODE = 'NL002';
                        END IF;
                    WHEN 7 THEN
                        DELETE FROM leases WHERE network = t1[x] AND address = i1[x];
                    WHEN 8 THEN
                        UPDATE store_state SET last_epoch = greatest(last_epoch, i1[x]) WHERE id = 1;
                    ELSE
                        RAISE EXCEPTION 'unknown change kind %', k[x];
                    END CASE;
                END LOOP;
                UPDATE store_state SET generation = generation + 1 WHERE id = 1 RETURNING generation INTO g;
                RETURN g;
            END
            $$
            """,
        ],
        // Host credentials: the salted hash of each host's secret, never the secret (HostCredentialStore).
        ["CREATE TABLE host_credentials (host text PRIMARY KEY, hash text NOT NULL, issued bigint NOT NULL)"],
    ]

    static let commitSQL =
        "SELECT netlease_commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
}

/// One batch's changes as the parallel arrays `netlease_commit` takes: a kind per change, and per kind a fixed
/// meaning of each column (unused ones are empty or 0).
struct ChangeColumns {
    var kinds: [Int16] = []
    var texts: [[String]] = Array(repeating: [], count: 7)
    var numbers: [[Int64]] = Array(repeating: [], count: 5)

    init(capacity: Int) {
        kinds.reserveCapacity(capacity)
        for index in texts.indices { texts[index].reserveCapacity(capacity) }
        for index in numbers.indices { numbers[index].reserveCapacity(capacity) }
    }

    mutating func append(_ change: LedgerChange) {
        switch change {
        case .insertNetwork(let spec):
            add(
                1,
                [
                    spec.name, spec.subnet.description, spec.tunnel.rawValue, spec.bridge,
                    spec.excluded.map(\.description).joined(separator: ","),
                ],
                [Int64(spec.vni), Int64(spec.mtu), Int64(spec.leaseTTL), Int64(spec.cooldown), spec.created]
            )
        case .deleteNetwork(let name):
            add(2, [name], [])
        case .upsertHost(let host):
            add(
                3,
                [host.name, host.underlay.description, host.state.rawValue, host.networks.joined(separator: ",")],
                [host.epoch, host.joined, host.lastHeartbeat]
            )
        case .deleteHost(let name):
            add(4, [name], [])
        case .insertLease(let lease):
            add(5, Self.texts(lease), Self.numbers(lease))
        case .updateLease(let lease):
            add(6, Self.texts(lease), Self.numbers(lease))
        case .deleteLease(let network, let address):
            add(7, [network], [Int64(address.value)])
        case .recordEpoch(let epoch):
            add(8, [], [epoch])
        }
    }

    private mutating func add(_ kind: Int16, _ text: [String], _ number: [Int64]) {
        kinds.append(kind)
        for index in texts.indices { texts[index].append(index < text.count ? text[index] : "") }
        for index in numbers.indices { numbers[index].append(index < number.count ? number[index] : 0) }
    }

    private static func texts(_ lease: Lease) -> [String] {
        [lease.network, lease.state.rawValue, lease.host, lease.owner, lease.ifname, lease.note, lease.mac]
    }

    private static func numbers(_ lease: Lease) -> [Int64] {
        [Int64(lease.address.value), lease.isStatic ? 1 : 0, lease.created, lease.renewed, lease.until]
    }
}
