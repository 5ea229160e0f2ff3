import Foundation

/// The hub's one implementation of its cryptographic hash functions: SHA-256 (FIPS 180-4) for
/// bundle fingerprints and, with SM3 (GB/T 32905-2016, the national standard hash expected of
/// government systems), for the audit trail's hash chain. Foundation has no digest on Linux and
/// the engine takes no package dependency, so both standards' algorithms are written out here.
public enum HashAlgorithm: String, Codable, Sendable, CaseIterable {
    /// SM3 (GB/T 32905-2016): 256-bit digest.
    case sm3
    /// SHA-256 (FIPS 180-4): 256-bit digest.
    case sha256 = "sha-256"

    /// The 32-byte digest of `data`.
    public func digest(_ data: some Collection<UInt8>) -> [UInt8] {
        switch self {
        case .sm3: return SM3.digest(data)
        case .sha256: return SHA256.digest(data)
        }
    }

    /// The digest of `data` as 64 lowercase hex digits.
    public func hex(_ data: some Collection<UInt8>) -> String { Hex.encode(digest(data)) }

    /// Parses a name as written in headers and options (`sm3`, `sha-256`, also `sha256`).
    public init?(name: String) {
        switch name.lowercased() {
        case "sm3": self = .sm3
        case "sha-256", "sha256": self = .sha256
        default: return nil
        }
    }
}

/// Lowercase hexadecimal text of bytes, and back.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0f)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text` (an even number of hex digits, either case); nil for anything else.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// Merkle–Damgård padding shared by SHA-256 and SM3: a 1 bit, zeros up to 448 mod 512 bits,
/// then the message length in bits as a 64-bit big-endian integer.
private func padded(_ data: some Collection<UInt8>) -> [UInt8] {
    var message = [UInt8](data)
    let bitLength = UInt64(message.count) &* 8
    message.append(0x80)
    while message.count % 64 != 56 { message.append(0) }
    for i in (0..<8).reversed() { message.append(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8))) }
    return message
}

@inline(__always) private func word(_ m: [UInt8], _ b: Int) -> UInt32 {
    UInt32(m[b]) << 24 | UInt32(m[b + 1]) << 16 | UInt32(m[b + 2]) << 8 | UInt32(m[b + 3])
}

private func bigEndianBytes(_ words: [UInt32]) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(words.count * 4)
    for w in words { out += [UInt8(w >> 24), UInt8(truncatingIfNeeded: w >> 16), UInt8(truncatingIfNeeded: w >> 8), UInt8(truncatingIfNeeded: w)] }
    return out
}

/// SHA-256 (FIPS 180-4, section 6.2).
public enum SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    /// The digest of `data` as 64 lowercase hex digits.
    public static func hex(_ data: Data) -> String { Hex.encode(digest(data)) }

    /// The 32-byte digest of `data`.
    public static func digest(_ data: some Collection<UInt8>) -> [UInt8] {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        let message = padded(data)
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: message.count, by: 64) {
            for i in 0..<16 { w[i] = word(message, chunk + i * 4) }
            for i in 16..<64 {
                let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
        return bigEndianBytes(h)
    }

    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }
}

/// SM3 (GB/T 32905-2016, sections 4–5): the same padding as SHA-256, a 68+64-word message
/// expansion and 64 rounds of the compression function CF.
public enum SM3 {
    private static let iv: [UInt32] = [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e]
    /// T_j rotated left by j mod 32, precomputed for the 64 rounds.
    private static let tRotated: [UInt32] = (0..<64).map { j in rotl(j < 16 ? 0x79cc4519 : 0x7a879d8a, UInt32(j % 32)) }

    /// The digest of `data` as 64 lowercase hex digits.
    public static func hex(_ data: Data) -> String { Hex.encode(digest(data)) }

    /// The 32-byte digest of `data`.
    public static func digest(_ data: some Collection<UInt8>) -> [UInt8] {
        var v = iv
        let message = padded(data)
        var w = [UInt32](repeating: 0, count: 68)
        var w1 = [UInt32](repeating: 0, count: 64)
        for block in stride(from: 0, to: message.count, by: 64) {
            // Message expansion (5.3.2).
            for j in 0..<16 { w[j] = word(message, block + j * 4) }
            for j in 16..<68 {
                w[j] = p1(w[j - 16] ^ w[j - 9] ^ rotl(w[j - 3], 15)) ^ rotl(w[j - 13], 7) ^ w[j - 6]
            }
            for j in 0..<64 { w1[j] = w[j] ^ w[j + 4] }
            // Compression function CF (5.3.3).
            var (a, b, c, d, e, f, g, h) = (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
            for j in 0..<64 {
                let a12 = rotl(a, 12)
                let ss1 = rotl(a12 &+ e &+ tRotated[j], 7)
                let ss2 = ss1 ^ a12
                let ff = j < 16 ? a ^ b ^ c : (a & b) | (a & c) | (b & c)
                let gg = j < 16 ? e ^ f ^ g : (e & f) | (~e & g)
                let tt1 = ff &+ d &+ ss2 &+ w1[j]
                let tt2 = gg &+ h &+ ss1 &+ w[j]
                d = c
                c = rotl(b, 9)
                b = a
                a = tt1
                h = g
                g = rotl(f, 19)
                f = e
                e = p0(tt2)
            }
            v[0] ^= a; v[1] ^= b; v[2] ^= c; v[3] ^= d; v[4] ^= e; v[5] ^= f; v[6] ^= g; v[7] ^= h
        }
        return bigEndianBytes(v)
    }

    @inline(__always) private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { n == 0 ? x : x << n | x >> (32 - n) }
    @inline(__always) private static func p0(_ x: UInt32) -> UInt32 { x ^ rotl(x, 9) ^ rotl(x, 17) }
    @inline(__always) private static func p1(_ x: UInt32) -> UInt32 { x ^ rotl(x, 15) ^ rotl(x, 23) }
}
