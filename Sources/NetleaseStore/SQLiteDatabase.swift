import CSQLite
import NetleaseCore

/// A thin owner of one SQLite connection: open, pragmas, cached prepared statements, transactions.
///
/// Not thread-safe by itself: `SQLiteLeaseStore` uses it from its writer queue only (and from `init` before the
/// queue exists). SQLite is opened with SQLITE_OPEN_NOMUTEX accordingly.
final class SQLiteDatabase {
    private var handle: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]
    let path: String

    init(path: String) throws {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: "cannot open \(path): \(message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 0)
    }

    deinit { close() }

    func close() {
        for statement in statements.values { statement.finalize() }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    var errorMessage: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "database closed" }

    func execute(_ sql: String) throws {
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "database closed") }
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? errorMessage
            sqlite3_free(error)
            throw SQLiteError(code: rc, message: message)
        }
    }

    /// A prepared statement, cached by its SQL text for the life of the connection.
    func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "database closed") }
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else { throw SQLiteError(code: rc, message: "\(errorMessage) in: \(sql)") }
        let statement = SQLiteStatement(raw, database: self)
        statements[sql] = statement
        return statement
    }

    /// Runs a statement that returns no rows.
    func run(_ sql: String, _ values: [SQLiteValue] = []) throws {
        let statement = try self.statement(sql)
        try statement.bind(values)
        while try statement.step() {}
        statement.reset()
    }

    /// Runs a query and maps every row.
    func query<T>(_ sql: String, _ values: [SQLiteValue] = [], _ map: (SQLiteStatement) throws -> T) throws -> [T] {
        let statement = try self.statement(sql)
        try statement.bind(values)
        var rows: [T] = []
        while try statement.step() { rows.append(try map(statement)) }
        statement.reset()
        return rows
    }

    func scalarText(_ sql: String) throws -> String? {
        try query(sql) { try $0.text(0) }.first
    }

    func scalarInt(_ sql: String) throws -> Int64? {
        try query(sql) { $0.int(0) }.first
    }

    /// `BEGIN IMMEDIATE` … `COMMIT`; rolls back when `body` throws or the commit fails.
    /// The three statements are prepared once and reused (a batch commit is on every write's path).
    func transaction(_ body: () throws -> Void) throws {
        try run("BEGIN IMMEDIATE")
        do {
            try body()
            try run("COMMIT")
        } catch {
            try? run("ROLLBACK")
            throw error
        }
    }

    var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }

    /// Copies the whole database into a new file at `path` with SQLite's online backup API: a consistent snapshot,
    /// taken between transactions of this connection.
    func backup(to path: String) throws {
        guard let handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "database closed") }
        let destination = try SQLiteDatabase(path: path)
        defer { destination.close() }
        guard let target = destination.handle, let backup = sqlite3_backup_init(target, "main", handle, "main") else {
            throw SQLiteError(code: SQLITE_ERROR, message: "cannot start backup: \(destination.errorMessage)")
        }
        let rc = sqlite3_backup_step(backup, -1)
        let finish = sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE, finish == SQLITE_OK else {
            throw SQLiteError(code: rc == SQLITE_DONE ? finish : rc, message: destination.errorMessage)
        }
        // A backup is a plain rollback-journal file: it opens anywhere without its WAL.
        try destination.execute("PRAGMA journal_mode=DELETE")
    }
}

enum SQLiteValue {
    case int(Int64)
    case text(String)
}

/// SQLITE_TRANSIENT: SQLite copies bound text before the call returns.
private let transientDestructor = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

final class SQLiteStatement {
    private var raw: OpaquePointer?
    private unowned let database: SQLiteDatabase

    init(_ raw: OpaquePointer, database: SQLiteDatabase) {
        self.raw = raw
        self.database = database
    }

    func finalize() {
        sqlite3_finalize(raw)
        raw = nil
    }

    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    func bind(_ values: [SQLiteValue]) throws {
        for (index, value) in values.enumerated() {
            let position = Int32(index + 1)
            let rc: Int32
            switch value {
            case .int(let v): rc = sqlite3_bind_int64(raw, position, v)
            case .text(let v): rc = Self.bindText(raw, position, v)
            }
            guard rc == SQLITE_OK else { throw SQLiteError(code: rc, message: database.errorMessage) }
        }
    }

    /// Binds `text` with its UTF-8 byte count. A length of -1 would make SQLite stop at the first NUL, so a value
    /// with an embedded NUL would be stored shorter than the one the ledger holds (invariant 10).
    private static func bindText(_ statement: OpaquePointer?, _ position: Int32, _ text: String) -> Int32 {
        var text = text
        return text.withUTF8 { bytes in
            // SQLite binds NULL for a null pointer, which NOT NULL columns refuse: "" needs a real (empty) string.
            guard let base = bytes.baseAddress else {
                return sqlite3_bind_text(statement, position, "", 0, transientDestructor)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                sqlite3_bind_text(statement, position, $0, Int32(bytes.count), transientDestructor)
            }
        }
    }

    /// Steps once: true when a row is available, false when done.
    func step() throws -> Bool {
        let rc = sqlite3_step(raw)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = SQLiteError(code: rc, message: database.errorMessage)
            sqlite3_reset(raw)
            throw error
        }
    }

    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(raw, column) }

    /// The column's text with exactly its stored bytes (`sqlite3_column_bytes`, not up to the first NUL). Text that
    /// is not valid UTF-8 is an error rather than a repaired string, which would be a key the file does not hold.
    func text(_ column: Int32) throws -> String {
        guard let pointer = sqlite3_column_text(raw, column) else { return "" }
        let count = Int(sqlite3_column_bytes(raw, column))
        let bytes = UnsafeBufferPointer(start: pointer, count: count)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw SQLiteError(code: SQLITE_MISMATCH, message: "column \(column) holds text that is not valid UTF-8")
        }
        return text
    }
}

struct SQLiteError: Error, CustomStringConvertible {
    var code: Int32
    var message: String

    var description: String { "sqlite error \(code): \(message)" }

    /// Primary result code (extended codes carry extra bits above the low byte).
    var primary: Int32 { code & 0xFF }
    var isConstraint: Bool { primary == SQLITE_CONSTRAINT }
    var isFull: Bool { primary == SQLITE_FULL }
    var isBusy: Bool { primary == SQLITE_BUSY || primary == SQLITE_LOCKED }
}
