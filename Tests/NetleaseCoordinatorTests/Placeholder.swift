import XCTest
final class PNetleaseCoordinatorTests: XCTestCase {}
