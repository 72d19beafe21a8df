import XCTest
final class PNetleaseCoreTests: XCTestCase {}
