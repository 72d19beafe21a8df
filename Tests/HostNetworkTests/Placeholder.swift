import XCTest
final class PHostNetworkTests: XCTestCase {}
