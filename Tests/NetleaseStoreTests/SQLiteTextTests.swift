import Foundation
import XCTest

@testable import NetleaseStore

/// Text goes into SQLite and comes back with every byte: bound and read with explicit lengths, never as C strings
/// that end at the first NUL, and never repaired into something else.
final class SQLiteTextTests: StoreTestCase {

    func testTextColumnsKeepEveryByteIncludingNUL() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let db = try SQLiteDatabase(path: databasePath)
        defer { db.close() }
        try db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        let value = "a\u{0}b\u{E9}"
        try db.run("INSERT INTO t (k, v) VALUES (1, ?)", [.text(value)])
        XCTAssertEqual(
            try db.scalarInt("SELECT length(CAST(v AS BLOB)) FROM t WHERE k = 1"),
            5,
            "the bound text lost bytes"
        )
        // Written by SQL (not by a bind), read back through the statement's text accessor.
        try db.execute("INSERT INTO t (k, v) VALUES (2, CAST(X'6100620a' AS TEXT))")
        let read = try db.query("SELECT v FROM t ORDER BY k") { try $0.text(0) }
        XCTAssertEqual(read.map { Array($0.utf8) }, [Array(value.utf8), [0x61, 0x00, 0x62, 0x0A]])
        // A lookup by bytes finds the row, and a prefix up to the NUL does not.
        XCTAssertEqual(try db.query("SELECT k FROM t WHERE v = ?", [.text(value)]) { $0.int(0) }, [1])
        XCTAssertEqual(try db.query("SELECT k FROM t WHERE v = ?", [.text("a")]) { $0.int(0) }, [])
    }

    func testTextThatIsNotUTF8IsAnErrorNotRepaired() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let db = try SQLiteDatabase(path: databasePath)
        defer { db.close() }
        try db.execute("CREATE TABLE t (v TEXT NOT NULL)")
        try db.execute("INSERT INTO t (v) VALUES (CAST(X'61FF62' AS TEXT))")
        XCTAssertThrowsError(
            try db.query("SELECT v FROM t") { try $0.text(0) },
            "a stored text that is not UTF-8 was silently repaired"
        )
    }
}
