import Foundation
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Transactions on Tansu", .serialized)
struct TransactionTests {
    /// consume → transform → produce, with the consumed offsets in the same
    /// transaction. The first attempt is aborted, the second committed.
    @Test("aborted output is never seen by read_committed; committed output appears exactly once", .timeLimit(.minutes(2)))
    func consumeTransformProduce() async throws {
        let input = uniqueName("txn-in")
        let output = uniqueName("txn-out")
        let group = uniqueName("txn-g")
        let n = 50
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(input, partitions: 2), TopicSpec(output, partitions: 2)])
        let plain = try KafkaProducer(config: try Broker.config())
        for i in 0..<n { try plain.enqueue(ProducerRecord(topic: input, key: "s\(i)", value: Data("\(i)".utf8))) }
        try plain.flush()

        let consumer = try KafkaConsumer(config: try Broker.config(), groupId: group)
        try consumer.assign([TopicPartitionOffset(input, 0, TopicPartitionOffset.stored),
                             TopicPartitionOffset(input, 1, TopicPartitionOffset.stored)])
        let producer = try KafkaProducer(config: try Broker.config(), transactionalId: uniqueName("txn-id"))
        try producer.initTransactions()

        func transform(attempt: String, commit: Bool) async throws {
            let batch = try await offloadPoll(consumer, until: n)
            #expect(batch.count == n)
            try producer.beginTransaction()
            for message in batch {
                let value = "\(attempt):" + String(decoding: message.value!, as: UTF8.self)
                try producer.enqueue(ProducerRecord(topic: output, key: message.key, value: Data(value.utf8)))
            }
            let next = Dictionary(grouping: batch, by: \.partition).map { TopicPartitionOffset(input, $0.key, $0.value.map(\.offset).max()! + 1) }
            try producer.sendOffsetsToTransaction(next, consumer: consumer)
            if commit { try producer.commitTransaction() } else { try producer.abortTransaction() }
        }

        try await transform(attempt: "aborted", commit: false)
        // After an abort the consumer rewinds to the last committed position.
        let committed = try consumer.committed([TopicPartition(input, 0), TopicPartition(input, 1)])
        #expect(committed.allSatisfy { $0.offset < 0 }, "aborted transaction committed offsets: \(committed)")
        try consumer.seek([TopicPartitionOffset(input, 0, TopicPartitionOffset.beginning),
                           TopicPartitionOffset(input, 1, TopicPartitionOffset.beginning)])
        try await transform(attempt: "committed", commit: true)

        let readCommitted = try await readAll(output, partitions: 2, expecting: n, config: try Broker.config())
        let values = readCommitted.map { String(decoding: $0.value!, as: UTF8.self) }
        #expect(values.count == n, "read_committed saw \(values.count) records")
        #expect(Set(values) == Set((0..<n).map { "committed:\($0)" }))
        #expect(!values.contains { $0.hasPrefix("aborted:") })

        let offsets = try consumer.committed([TopicPartition(input, 0), TopicPartition(input, 1)])
        #expect(offsets.reduce(0) { $0 + $1.offset } == Int64(n), "committed offsets \(offsets)")
        try consumer.close()
    }

    /// Tansu 0.6.0 keeps records of an open transaction from read_committed
    /// consumers (last stable offset), but once a transaction whose records the
    /// broker acknowledged is aborted, read_committed consumers get them; Kafka
    /// filters them out. Recorded as a known issue, so this test tells us the
    /// day Tansu implements it. Until then the hub's consumers dedupe by
    /// message identity (docs/kafka-layer.md).
    @Test("read_committed hides open transactions, and aborted ones the broker acknowledged (known Tansu gap)")
    func acknowledgedThenAborted() async throws {
        let topic = uniqueName("txn-acked")
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(topic, partitions: 1)])
        let producer = try KafkaProducer(config: try Broker.config(), transactionalId: uniqueName("acked-id"))
        try producer.initTransactions()
        try producer.beginTransaction()
        for i in 0..<10 { try producer.enqueue(ProducerRecord(topic: topic, value: Data("aborted:\(i)".utf8))) }
        try producer.flush()
        #expect(producer.deliveryCounts.delivered == 10, "the broker acknowledged the records before the abort")
        try producer.abortTransaction()
        try producer.beginTransaction()
        for i in 0..<10 { try producer.enqueue(ProducerRecord(topic: topic, value: Data("open:\(i)".utf8))) }
        try producer.flush()
        let visible = try await readAll(topic, partitions: 1, expecting: 20, config: try Broker.config(), timeout: .seconds(3))
        let values = visible.map { String(decoding: $0.value!, as: UTF8.self) }
        withKnownIssue("Tansu 0.6.0 does not filter aborted transactions for read_committed consumers") {
            #expect(!values.contains { $0.hasPrefix("aborted:") }, "read_committed saw aborted records")
        }
        #expect(!values.contains { $0.hasPrefix("open:") }, "read_committed saw records of an open transaction")
        try producer.commitTransaction()
    }

    @Test("a second producer with the same transactional id fences the first")
    func fencing() async throws {
        let topic = uniqueName("fence")
        let admin = try KafkaAdmin(config: try Broker.config())
        try await admin.ensureTopics([TopicSpec(topic, partitions: 1)])
        let id = uniqueName("fence-id")
        let log = BrokerLog()
        let old = try KafkaProducer(config: try Broker.config(), transactionalId: id)
        try old.initTransactions()
        try old.beginTransaction()
        try old.enqueue(ProducerRecord(topic: topic, value: Data("old".utf8)))
        let new = try KafkaProducer(config: try Broker.config(), transactionalId: id)
        try new.initTransactions()
        // librdkafka's contract: a retriable error (e.g. `_TIMED_OUT` while the broker is slow to
        // answer the old epoch's requests) means "call again to resume"; the fenced producer must
        // then end in a fatal or abortable error, never a commit.
        var outcome: KafkaError?
        for _ in 0..<3 {
            do {
                try old.commitTransaction(timeout: .seconds(10))
                Issue.record("the fenced producer committed")
                return
            } catch {
                outcome = error
                if !error.isRetriable { break }
                // Seen under load here: Tansu 0.6.0 fails the old epoch's Produce at the connection
                // ("tansu_service::stream … ProducerFenced" in its log) instead of answering it with
                // PRODUCER_FENCED, and librdkafka resends it for as long as one waits. The producer
                // still never commits; with that evidence in the broker's log it is the broker's
                // known defect, without it the test fails below.
                let fencedAtStream = log.linesSinceStart.filter { $0.contains("tansu_service::stream") && $0.contains("ProducerFenced") }
                if !fencedAtStream.isEmpty {
                    withKnownIssue("Tansu 0.6.0 drops a fenced producer's Produce with a stream error instead of answering PRODUCER_FENCED") {
                        Issue.record("commit of the fenced producer: \(error); broker log: \(fencedAtStream.prefix(2))")
                    }
                    return
                }
            }
        }
        #expect(outcome?.isFatal == true || outcome?.requiresAbort == true, "unexpected class for \(String(describing: outcome))")
    }
}
