import Foundation
import Testing
import YishiKafka
import YishiTestSupport

/// librdkafka's transactional contract, one error class at a time, with errors and delays
/// injected into the mock cluster's InitProducerId / AddOffsetsToTxn / TxnOffsetCommit / EndTxn
/// responses (docs/kafka-layer.md "Transactions: error classes").
@Suite("Transaction error classes on the librdkafka mock cluster", .serialized)
struct TransactionErrorTests {
    /// One mock cluster with an input topic of `inputs` records, a consumer assigned to it, and the
    /// transaction and group coordinators pinned to broker 1 (where faults are injected).
    final class Rig: @unchecked Sendable {
        let cluster: MockCluster
        let consumer: KafkaConsumer
        let transactionalId = uniqueName("txn")
        let group = uniqueName("group")
        let events = Recorder<TransactionEvent>()
        let config: KafkaConfig
        static let input = "in"
        static let output = "out"

        init(inputs: Int = 20) throws {
            cluster = try MockCluster(brokers: 3)
            try cluster.createTopic(Self.input, partitions: 2, replicationFactor: 1)
            try cluster.createTopic(Self.output, partitions: 2, replicationFactor: 1)
            // transaction.timeout.ms bounds every commit/abort call (librdkafka's -1 timeout).
            config = cluster.clientConfig(["log_level": "0", "transaction.timeout.ms": "4000", "retry.backoff.ms": "50"])
            try cluster.setTransactionCoordinator(transactionalId, broker: 1)
            try cluster.setGroupCoordinator(group, broker: 1)
            let plain = try KafkaProducer(config: config)
            for i in 0..<inputs { try plain.enqueue(ProducerRecord(topic: Self.input, key: "k\(i)", value: Data("\(i)".utf8))) }
            try plain.flush()
            consumer = try KafkaConsumer(config: config, groupId: group)
            try consumer.assign([TopicPartitionOffset(Self.input, 0, TopicPartitionOffset.stored),
                                 TopicPartitionOffset(Self.input, 1, TopicPartitionOffset.stored)])
        }

        static let policy = TransactionPolicy(resumeWindow: .seconds(30), outageLimit: .seconds(60), backoff: .milliseconds(50), callTimeout: .seconds(2))

        func producer(_ policy: TransactionPolicy = Rig.policy,
                      onEvent: (@Sendable (TransactionEvent) -> Void)? = nil) throws -> TransactionalProducer {
            try TransactionalProducer(config: config, transactionalId: transactionalId, policy: policy) { [events] event in
                events.append(event)
                onEvent?(event)
            }
        }

        /// Polls up to `count` input records.
        func poll(_ count: Int) throws -> [KafkaMessage] {
            var messages: [KafkaMessage] = []
            let deadline = ContinuousClock.now + .seconds(10)
            while messages.count < count, ContinuousClock.now < deadline {
                messages += try consumer.poll(maxMessages: count - messages.count, timeout: .milliseconds(100))
            }
            return messages
        }

        /// The records a batch writes for `messages`.
        func outputs(_ messages: [KafkaMessage]) -> [ProducerRecord] {
            messages.map { ProducerRecord(topic: Self.output, key: $0.keyString, value: $0.value) }
        }

        /// Input records read so far, as "partition:offset".
        private var seen: Set<String> = []
        /// Whether the last batch read input again (the consumer was rewound). The mock cluster
        /// keeps no transactional offsets (its TxnOffsetCommit stores nothing), so a rewind goes
        /// back to the beginning; on a real broker it goes back to the committed offsets.
        private(set) var reread = false

        /// One batch of `count` records: poll, transform, commitBatch.
        func batch(_ producer: TransactionalProducer, _ count: Int) throws -> (BatchOutcome, Int) {
            let messages = try poll(count)
            let ids = Set(messages.map { "\($0.partition):\($0.offset)" })
            reread = !ids.isDisjoint(with: seen)
            seen.formUnion(ids)
            return (try producer.commitBatch(outputs(messages), consumed: messages, consumer: consumer), messages.count)
        }
    }

    /// The issue's example: EndTxn answered after the commit call's timeout. librdkafka says the
    /// commit goes on in the background and calling commit again resumes it; aborting instead
    /// (the old `commitBatch`) left the producer stuck, every later `beginTransaction` failing.
    @Test("a commit that timed out is resumed, not aborted, and the producer goes on", .timeLimit(.minutes(1)))
    func commitTimeoutResumes() throws {
        let rig = try Rig()
        let producer = try rig.producer()
        // EndTxn answered after 3.5 s, past the 2 s commit call (the issue's 30 s, scaled down).
        try rig.cluster.delayNextRequests(.endTxn, broker: 1, [(.none, 3500)])
        let (outcome, count) = try rig.batch(producer, 10)
        #expect(count == 10)
        #expect(outcome == .committed)
        let counts = producer.counts
        #expect(counts.retries >= 1, "the timed-out commit was not called again: \(rig.events.all)")
        #expect(counts.aborts == 0 && counts.rebuilds == 0, "\(counts)")
        #expect(rig.events.all.contains { $0.call == "commitTransaction" && $0.action == "retry" && $0.error?.name == "_TIMED_OUT" })
        // The next transaction begins and commits on the same instance, with new input (not rewound).
        let (next, nextCount) = try rig.batch(producer, 10)
        #expect(next == .committed && nextCount == 10)
        #expect(!rig.reread)
        #expect(producer.counts.rebuilds == 0)
    }

    /// What the old code did, on the raw API: abort after the commit's timeout. The abort does not
    /// undo a commit in progress, and the producer refuses every new transaction. This is why
    /// `TransactionalProducer` resumes the commit instead.
    @Test("librdkafka: aborting a commit that timed out leaves the producer unable to begin", .timeLimit(.minutes(1)))
    func abortAfterCommitTimeoutIsStuck() throws {
        let rig = try Rig()
        let producer = try KafkaProducer(config: rig.config, transactionalId: rig.transactionalId)
        try producer.initTransactions()
        try rig.cluster.delayNextRequests(.endTxn, broker: 1, [(.none, 3500)])
        let messages = try rig.poll(10)
        try producer.beginTransaction()
        for record in rig.outputs(messages) { try producer.enqueue(record) }
        try producer.sendOffsetsToTransaction(KafkaMessage.offsets(after: messages), consumer: rig.consumer)
        var commitError: KafkaError?
        do { try producer.commitTransaction(timeout: .seconds(2)) } catch { commitError = error }
        #expect(commitError?.isRetriable == true, "commit error: \(String(describing: commitError))")
        #expect(commitError?.name == "_TIMED_OUT")
        #expect(throws: KafkaError.self, "abort while the commit is in progress") { try producer.abortTransaction(timeout: .seconds(1)) }
        Thread.sleep(forTimeInterval: 3)  // the coordinator completes the commit meanwhile
        var beginError: KafkaError?
        do { try producer.beginTransaction() } catch { beginError = error }
        // The issue's symptom: a retriable _CONFLICT ("retry call to resume" the commit), at once, on every batch.
        #expect(beginError?.name == "_CONFLICT" && beginError?.isRetriable == true, "begin: \(String(describing: beginError))")
    }

    @Test("an abortable AddOffsetsToTxn error aborts the transaction and the batch is redone", .timeLimit(.minutes(1)))
    func abortableAddOffsets() throws {
        let rig = try Rig()
        let producer = try rig.producer()
        try rig.cluster.delayNextRequests(.addOffsetsToTxn, broker: 1, [(.groupAuthorizationFailed, 0)])
        let (first, count) = try rig.batch(producer, 10)
        #expect(count == 10)
        #expect(first == .aborted)
        #expect(producer.counts.aborts == 1 && producer.counts.rebuilds == 0, "\(producer.counts)")
        #expect(rig.events.all.contains { $0.call == "sendOffsetsToTransaction" && $0.action == "abort" && $0.error?.requiresAbort == true })
        // Rewound: the same 10 records come again and commit.
        let (second, again) = try rig.batch(producer, 10)
        #expect(second == .committed && again == 10)
        #expect(rig.reread, "the aborted batch's input was not read again")
    }

    /// librdkafka retries a TxnOffsetCommit itself (request timeout, coordinator errors); what
    /// reaches the application is an abortable error (here GROUP_AUTHORIZATION_FAILED).
    @Test("a TxnOffsetCommit answered late still commits without abort; an abortable one aborts and the batch is redone", .timeLimit(.minutes(1)))
    func txnOffsetCommit() throws {
        let rig = try Rig()
        let producer = try rig.producer()
        try rig.cluster.delayNextRequests(.txnOffsetCommit, broker: 1, [(.none, 3000)])
        let (first, count) = try rig.batch(producer, 10)
        #expect(count == 10 && first == .committed)
        #expect(producer.counts.aborts == 0 && producer.counts.rebuilds == 0, "\(producer.counts) \(rig.events.all)")

        try rig.cluster.delayNextRequests(.txnOffsetCommit, broker: 1, [(.groupAuthorizationFailed, 0)])
        let (second, _) = try rig.batch(producer, 10)
        #expect(second == .aborted)
        #expect(!rig.reread)
        #expect(producer.counts.aborts == 1, "\(producer.counts) \(rig.events.all)")
        let (third, thirdCount) = try rig.batch(producer, 10)
        #expect(third == .committed && thirdCount == 10)
        #expect(rig.reread, "the aborted batch's input was not read again")
    }

    @Test("a fatal EndTxn error rebuilds the producer (same transactional id) and the loop goes on", .timeLimit(.minutes(1)))
    func fatalEndTxnRebuilds() throws {
        let rig = try Rig()
        let producer = try rig.producer()
        try rig.cluster.delayNextRequests(.endTxn, broker: 1, [(.invalidTxnState, 0)])
        let (first, _) = try rig.batch(producer, 10)
        #expect(first == .unknown, "\(rig.events.all)")
        #expect(producer.counts.rebuilds == 1 && producer.counts.unknownOutcomes == 1, "\(producer.counts)")
        #expect(rig.events.all.contains { $0.call == "commitTransaction" && $0.action == "rebuild" })
        let (second, count) = try rig.batch(producer, 10)
        #expect(second == .committed && count == 10, "the rewound batch commits on the new instance")
        #expect(rig.reread)
    }

    @Test("fenced by another instance of the same transactional id: thrown, never rebuilt", .timeLimit(.minutes(1)))
    func fencedThrows() throws {
        let rig = try Rig()
        let producer = try rig.producer()
        try rig.cluster.delayNextRequests(.endTxn, broker: 1, [(.producerFenced, 0)])
        do {
            _ = try rig.batch(producer, 10)
            Issue.record("a fenced commit did not throw")
        } catch let error as KafkaError {
            #expect(error.isFenced, "\(error)")
        }
        #expect(producer.counts.rebuilds == 0)
        #expect(rig.events.all.contains { $0.action == "exit" })
    }

    /// An abortable error that needs an epoch bump (KIP-360), and a coordinator that keeps
    /// refusing InitProducerId meanwhile (Tansu refuses the bump): the abort cannot complete;
    /// the producer is rebuilt instead of aborting forever.
    @Test("an abort that cannot complete (epoch bump refused) rebuilds the producer", .timeLimit(.minutes(1)))
    func refusedEpochBumpRebuilds() throws {
        let rig = try Rig()
        let cluster = rig.cluster
        let producer = try rig.producer { event in
            // The refusal ends for the fresh InitProducerId of the new instance.
            if event.action == "rebuild" { cluster.clearRequestErrors(.initProducerId) }
        }
        cluster.failNextRequests(.initProducerId, with: Array(repeating: .unknownServerError, count: 500))
        // UNKNOWN_PRODUCER_ID on AddPartitionsToTxn: abortable, and the abort must bump the epoch.
        try cluster.delayNextRequests(.addPartitionsToTxn, broker: 1, [(.unknownProducerId, 0)])
        let start = ContinuousClock.now
        let (first, _) = try rig.batch(producer, 10)
        #expect(first == .aborted)
        #expect(producer.counts.aborts == 1 && producer.counts.rebuilds == 1, "\(producer.counts) \(rig.events.all)")
        #expect(rig.events.all.contains { $0.call == "abortTransaction" && $0.action == "rebuild" })
        #expect(ContinuousClock.now - start < .seconds(15), "recovered in \(ContinuousClock.now - start)")
        let (second, count) = try rig.batch(producer, 10)
        #expect(second == .committed && count == 10)
        #expect(rig.reread)
    }

    @Test("a coordinator that never answers: bounded retries, then thrown for the supervisor", .timeLimit(.minutes(1)))
    func outageLimitThrows() throws {
        let rig = try Rig()
        let producer = try rig.producer(TransactionPolicy(resumeWindow: .seconds(2), outageLimit: .seconds(6), backoff: .milliseconds(50), callTimeout: .seconds(2)))
        rig.cluster.failNextRequests(.initProducerId, with: Array(repeating: .unknownServerError, count: 5000))
        try rig.cluster.delayNextRequests(.endTxn, broker: 1, [(.invalidTxnState, 0)])
        let start = ContinuousClock.now
        #expect(throws: KafkaError.self) {
            for _ in 0..<20 { _ = try rig.batch(producer, 10) }
        }
        #expect(ContinuousClock.now - start < .seconds(40))
        #expect(rig.events.all.contains { $0.action == "exit" }, "\(rig.events.all)")
    }
}
