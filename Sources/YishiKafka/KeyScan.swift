import CRdKafka
import Foundation

extension KafkaConsumer {
    /// Like `poll`, but only records whose key is exactly `key` are copied out of librdkafka
    /// and returned; the others are released unread (for scanning a partition for one key).
    /// End-of-partition reports still reach `onPartitionEnd`. For assigned partitions only
    /// (no rebalance hooks).
    public func poll(key: [UInt8], maxMessages: Int = 1000, timeout: Duration = .milliseconds(100)) throws(KafkaError) -> [KafkaMessage] {
        try pollRaw(maxMessages: maxMessages, timeout: timeout) { m in
            guard m.key_len == key.count else { return false }
            guard let k = m.key else { return key.isEmpty }
            return key.withUnsafeBytes { memcmp(k, $0.baseAddress!, key.count) == 0 }
        }
    }
}
