/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudorandom function for short inputs, built for exactly the
/// case of names chosen by others (hash flooding). Used for container link names, where an owner id comes from
/// whoever may call the agent. Pure Swift: `Hasher` is SipHash too, but seeded per process without a way to give it
/// a key, and names must stay the same across restarts.
enum SipHash24 {
    /// The 64-bit SipHash-2-4 of `message` under the 128-bit `key` (16 bytes, read little-endian as two words).
    static func hash(_ message: [UInt8], key: [UInt8]) -> UInt64 {
        precondition(key.count == 16, "SipHash takes a 16-byte key")
        let k0 = littleEndianWord(key, at: 0, count: 8)
        let k1 = littleEndianWord(key, at: 8, count: 8)
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ k0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ k1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ k0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ k1

        func round() {
            v0 &+= v1
            v1 = rotate(v1, 13)
            v1 ^= v0
            v0 = rotate(v0, 32)
            v2 &+= v3
            v3 = rotate(v3, 16)
            v3 ^= v2
            v0 &+= v3
            v3 = rotate(v3, 21)
            v3 ^= v0
            v2 &+= v1
            v1 = rotate(v1, 17)
            v1 ^= v2
            v2 = rotate(v2, 32)
        }

        let whole = message.count / 8 * 8
        var offset = 0
        while offset < whole {
            let m = littleEndianWord(message, at: offset, count: 8)
            v3 ^= m
            round()
            round()
            v0 ^= m
            offset += 8
        }
        let last =
            UInt64(truncatingIfNeeded: message.count) << 56
            | littleEndianWord(message, at: whole, count: message.count - whole)
        v3 ^= last
        round()
        round()
        v0 ^= last
        v2 ^= 0xff
        for _ in 0..<4 { round() }
        return v0 ^ v1 ^ v2 ^ v3
    }

    private static func rotate(_ value: UInt64, _ bits: UInt64) -> UInt64 { value << bits | value >> (64 - bits) }

    private static func littleEndianWord(_ bytes: [UInt8], at offset: Int, count: Int) -> UInt64 {
        var word: UInt64 = 0
        for index in 0..<count { word |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        return word
    }
}
