import XCTest
final class PNetleaseStoreTests: XCTestCase {}
