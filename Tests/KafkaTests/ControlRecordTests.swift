import Foundation
import Synchronization
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Transaction markers and consumer positions", .serialized)
struct ControlRecordTests {
    /// A read_committed consumer that has read every record of a transactional topic stands past
    /// the commit marker: its position is at (Tansu: beyond) the partition's reported end. So "end − position" is a lag
    /// that counts records (what `yishi_consumer_lag` uses), while "end − (last offset + 1)", the
    /// offset a service commits after its last record, counts the marker too.
    @Test func positionPassesTheCommitMarker() throws {
        let topic = uniqueName("ctrl")
        try KafkaAdmin(config: Broker.config()).ensureTopics([TopicSpec(topic, partitions: 1)])
        let producer = try KafkaProducer(config: Broker.config(), transactionalId: topic + "-tx")
        try producer.initTransactions()
        try producer.beginTransaction()
        for i in 0..<3 { try producer.enqueue(ProducerRecord(topic: topic, key: "k\(i)", value: Data("{}".utf8))) }
        try producer.commitTransaction()
        let consumer = try KafkaConsumer(config: Broker.config(["enable.partition.eof": "true"]), groupId: topic + "-g")
        defer { try? consumer.close() }
        let ended = Mutex(false)
        consumer.onPartitionEnd { _ in ended.withLock { $0 = true } }
        try consumer.assign([TopicPartitionOffset(topic, 0, 0)])
        var last: Int64 = -1
        let deadline = ContinuousClock.now + .seconds(20)
        while !ended.withLock({ $0 }) && ContinuousClock.now < deadline {
            for m in try consumer.poll(maxMessages: 100, timeout: .milliseconds(50)) { last = m.offset }
        }
        let tp = TopicPartition(topic, 0)
        let high = try consumer.watermarks(tp).high
        let position = consumer.positions([tp])[tp]
        #expect(last == 2 && high > last + 1, "3 records and the commit marker: last \(last), high \(high)")
        // Past the marker (Tansu 0.6.0 reports the position one beyond its high watermark here).
        #expect((position ?? 0) >= high && (position ?? 0) > last + 1, "position \(String(describing: position)) after reading to the end")
    }
}
