import XCTest
final class PNetleaseWireTests: XCTestCase {}
