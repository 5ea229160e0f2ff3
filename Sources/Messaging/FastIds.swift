import Synchronization

/// Random identifiers for record headers (CloudEvents `ce_id`, W3C span ids) without a system
/// call per record: a xoshiro256** generator (Blackman & Vigna) seeded once per process from the
/// system's generator (`SystemRandomNumberGenerator`, getrandom on Linux), shared under a lock.
/// Ids only need to be unique, not secret: 256 bits of seed and a 2^256−1 period make a repeat
/// as unlikely as with a fresh getrandom per id.
public enum FastIds {
    private struct Xoshiro256: Sendable {
        var s: (UInt64, UInt64, UInt64, UInt64)
        init() {
            var system = SystemRandomNumberGenerator()
            repeat { s = (system.next(), system.next(), system.next(), system.next()) } while s == (0, 0, 0, 0)
        }
        mutating func next() -> UInt64 {
            let result = rotl(s.1 &* 5, 7) &* 9
            let t = s.1 << 17
            s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
            s.2 ^= t
            s.3 = rotl(s.3, 45)
            return result
        }
        private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
    }

    private static let generator = Mutex(Xoshiro256())

    /// 64 random bits.
    public static func next() -> UInt64 { generator.withLock { $0.next() } }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// `value` as 16 lowercase hex digits, appended to `out`.
    static func appendHex(_ value: UInt64, digits: Int = 16, into out: inout [UInt8]) {
        var shift = (digits - 1) * 4
        while shift >= 0 {
            out.append(hex[Int((value >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }

    /// 16 lowercase hex digits of a non-zero random value (a W3C span id).
    public static func spanId() -> String {
        var v = next()
        while v == 0 { v = next() }
        return hexString(v)
    }

    /// `value` as 16 lowercase hex digits.
    public static func hexString(_ value: UInt64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        appendHex(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// A random (version 4, RFC 9562) UUID in lowercase text, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    public static func uuid() -> String {
        let a = next(), b = next()
        let hi = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        let lo = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        var out: [UInt8] = []
        out.reserveCapacity(36)
        appendHex(hi >> 32, digits: 8, into: &out)
        out.append(UInt8(ascii: "-"))
        appendHex(hi >> 16, digits: 4, into: &out)
        out.append(UInt8(ascii: "-"))
        appendHex(hi, digits: 4, into: &out)
        out.append(UInt8(ascii: "-"))
        appendHex(lo >> 48, digits: 4, into: &out)
        out.append(UInt8(ascii: "-"))
        appendHex(lo, digits: 12, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
