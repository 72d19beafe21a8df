import XCTest

@testable import NetleaseCore

/// The book's compact record storage gives back exactly the leases put in.
final class AddressBookStorageTests: XCTestCase {
    let spec = NetworkSpec(name: "big", subnet: IPv4Subnet("10.8.0.0/15")!)

    func testEveryFieldSurvivesStorageIncludingNotesMacsAndRareInterfaceNames() {
        var book = AddressBook(spec: spec)
        var put: [UInt32: Lease] = [:]
        // More distinct interface names than the compact interface table holds: the rest go to the record's extra.
        let count = Int(StoredRecord.ifnameInExtra) + 50
        var address = spec.subnet.firstHost.value
        for i in 0..<count {
            let lease = Lease(
                network: "big",
                address: IPv4Address(address),
                prefix: 15,
                state: [LeaseState.active, .reserved, .conflict, .cooldown][i % 4],
                host: i % 3 == 0 ? "" : "host-\(i % 7)",
                owner: i % 4 == 0 ? "container-\(i)" : "",
                ifname: "if\(i)",
                note: i % 5 == 0 ? "note \(i)" : "",
                mac: i % 4 == 2 ? "02:00:00:00:00:\(String(i % 256, radix: 16))" : "",
                isStatic: i % 2 == 0,
                created: Millis(i),
                renewed: Millis(i + 1),
                until: i % 4 == 3 ? Millis(i + 2) : 0
            )
            book.put(lease)
            put[address] = lease
            address += 1
        }
        XCTAssertEqual(book.recordCount, count)
        XCTAssertEqual(book.records, put)
        let last = IPv4Address(address - 1)
        XCTAssertEqual(book.record(last)?.ifname, "if\(count - 1)", "an interface name past the table is kept whole")
        XCTAssertEqual(book.activeLease(owner: "container-0"), put[spec.subnet.firstHost.value])
    }

    func testARecordIsAThirdOfALease() {
        XCTAssertLessThanOrEqual(MemoryLayout<StoredRecord>.stride, 56, "records are what the book holds per lease")
        XCTAssertGreaterThan(MemoryLayout<Lease>.stride, 3 * 48)
    }

    func testShardedTableCountsAndListsExactlyWhatADictionaryWould() {
        var table = ShardedTable<UInt32, Int> { Int($0) }
        var shadow: [UInt32: Int] = [:]
        var rng = SeededGenerator(seed: 0x7AB1E)  // fixed: a failure repeats on every run
        for step in 0..<5_000 {
            let key = UInt32.random(in: 0..<700, using: &rng)
            switch step % 4 {
            case 0, 1:
                table[key] = step
                shadow[key] = step
            case 2:
                table[key] = nil
                shadow[key] = nil
            default: XCTAssertEqual(table.removeValue(forKey: key), shadow.removeValue(forKey: key))
            }
            XCTAssertEqual(table.count, shadow.count, "after step \(step)")
            XCTAssertEqual(table[key], shadow[key])
        }
        XCTAssertEqual(table.dictionary, shadow)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: table.map { ($0.key, $0.value) }), shadow)
    }
}
