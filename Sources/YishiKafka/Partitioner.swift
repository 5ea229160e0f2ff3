import Foundation

/// The Java client's default partitioner for keyed records, which librdkafka calls
/// `murmur2_random` (the hub's producers use it): `(murmur2(key) & 0x7fffffff) % partitions`.
/// Lets a reader go straight to the one partition that holds a key.
public enum KafkaPartitioner {
    /// Kafka's `Utils.murmur2` (seed 0x9747b28c), as a signed 32-bit value like Java's.
    public static func murmur2(_ data: some Collection<UInt8>) -> Int32 {
        let bytes = Array(data)
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: bytes.count)
        let whole = bytes.count / 4
        for i in 0..<whole {
            let j = i * 4
            var k = UInt32(bytes[j]) | UInt32(bytes[j + 1]) << 8 | UInt32(bytes[j + 2]) << 16 | UInt32(bytes[j + 3]) << 24
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = whole * 4
        switch bytes.count % 4 {
        case 3:
            h ^= UInt32(bytes[tail + 2]) << 16
            fallthrough
        case 2:
            h ^= UInt32(bytes[tail + 1]) << 8
            fallthrough
        case 1:
            h ^= UInt32(bytes[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// The partition a keyed record lands on with `murmur2_random` (Java's default).
    public static func partition(forKey key: some Collection<UInt8>, partitions: Int32) -> Int32 {
        precondition(partitions > 0, "a topic has at least one partition")
        return (murmur2(key) & 0x7fff_ffff) % partitions
    }

    public static func partition(forKey key: String, partitions: Int32) -> Int32 {
        partition(forKey: Array(key.utf8), partitions: partitions)
    }
}
