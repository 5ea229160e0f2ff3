import CRdKafka
import Foundation
import Synchronization

/// How a transactional loop bounds its reactions to librdkafka's error classes.
/// Every retry loop is bounded in time; past its bound the producer is rebuilt, and past
/// `outageLimit` without a working producer the call throws (the process exits and its
/// supervisor restarts it). docs/kafka-layer.md "Transactions: error classes".
public struct TransactionPolicy: Sendable {
    /// How long a retriable error of one call (`commitTransaction`, `sendOffsetsToTransaction`) is
    /// answered by calling it again before the producer is rebuilt instead.
    public var resumeWindow: Duration
    /// How long the service may go without a working producer (rebuilds, `initTransactions`
    /// retries, batches that do not commit) before the call throws.
    public var outageLimit: Duration
    /// Pause before calling a call again after a retriable error (librdkafka: "preferably after
    /// a shorter grace period, to avoid busy-looping").
    public var backoff: Duration
    /// Timeout of one call (`initTransactions`, `sendOffsetsToTransaction`, `commitTransaction`,
    /// `abortTransaction`). librdkafka recommends -1, but in 2.8 -1 lets a commit or abort wait
    /// without limit while the coordinator does not answer; a finite timeout returns a retriable
    /// `_TIMED_OUT` and the call is made again, which resumes it (rdkafka.h: "On timeout the
    /// application may call the function again").
    public var callTimeout: Duration

    public init(resumeWindow: Duration = .seconds(60), outageLimit: Duration = .seconds(300), backoff: Duration = .milliseconds(200),
                callTimeout: Duration = .seconds(10)) {
        self.resumeWindow = resumeWindow
        self.outageLimit = outageLimit
        self.backoff = backoff
        self.callTimeout = callTimeout
    }
}

/// Counts of a `TransactionalProducer`'s reactions, for the services' stats.
public struct TransactionCounts: Sendable, Equatable {
    /// Transactions committed.
    public var commits = 0
    /// Transactions aborted (an abortable error, or a record that could not be produced): the batch is read again.
    public var aborts = 0
    /// Retriable errors answered by calling the same call again (a timed-out commit resumed, …).
    public var retries = 0
    /// Producer instances replaced by a new one with the same transactional id (fatal or
    /// unclassified error, an abort that did not complete, a commit whose retries ran out).
    public var rebuilds = 0
    /// Batches whose commit outcome was open when the producer was rebuilt.
    public var unknownOutcomes = 0

    public init() {}
}

/// What became of one batch.
public enum BatchOutcome: Sendable, Equatable {
    /// Records and consumed offsets are committed.
    case committed
    /// Nothing of the batch is visible (aborted, or never begun); the consumer is back at its
    /// committed offsets, so the same input is read again.
    case aborted
    /// The commit's outcome was open when the producer had to be rebuilt. The new instance's
    /// `initTransactions` made the coordinator finish it (committed if its EndTxn had been
    /// accepted, else aborted), and the consumer is back at its committed offsets, which show
    /// it for the input. State the caller derived from the batch must be re-read from Kafka.
    case unknown
}

/// One reaction of a `TransactionalProducer`, for a warn line in the service's log.
public struct TransactionEvent: Sendable, CustomStringConvertible {
    /// `retry`, `abort`, `rebuild` or `exit`.
    public let action: String
    /// The librdkafka call that failed, e.g. `commitTransaction`.
    public let call: String
    public let error: KafkaError?
    public let detail: String

    public var description: String { "\(call): \(action) (\(detail))" + (error.map { ": \($0)" } ?? "") }

    /// Fields for a structured log line: action, call, detail, and the error's name, class and message.
    public var logFields: [String: String] {
        var fields = ["action": action, "call": call, "detail": detail]
        if let error {
            fields["error"] = error.name
            fields["class"] = "\(error.kind)"
            fields["message"] = error.message
        }
        return fields
    }
}

/// Kafka's consume-transform-produce step, shared by every hub service that reads and writes in
/// one transaction (orchestrator, adapters), following librdkafka's contract for each
/// transactional call (rdkafka.h "Transactional producer API", INTRODUCTION.md "Transactional
/// Producer"):
///
/// | class | reaction |
/// | --- | --- |
/// | retriable | call the same call again (commit and abort resume what runs in the background; send-offsets with the same offsets), within `resumeWindow` |
/// | abortable | `abortTransaction`, rewind the consumer, `.aborted` (the caller redoes the batch) |
/// | fatal, or neither flag (librdkafka: "treat as fatal") | rebuild: a new producer instance with the same transactional id, `initTransactions` (it fences the old instance and finishes its transaction) |
/// | fenced (`PRODUCER_FENCED`, `INVALID_PRODUCER_EPOCH`, `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`) | thrown: another instance owns the id; exit |
///
/// An abort that does not complete in one call (e.g. a broker that refuses the epoch bump,
/// KIP-360, which an abort after a timed-out produce needs) also rebuilds the producer.
/// Not thread-safe: one loop thread uses it.
public final class TransactionalProducer: @unchecked Sendable {
    // @unchecked: `producer` and `troubleSince` are touched by the loop thread only.
    public let transactionalId: String
    public let policy: TransactionPolicy
    let config: KafkaConfig
    private let onEvent: @Sendable (TransactionEvent) -> Void
    private let countsLock = Mutex(TransactionCounts())
    /// The current instance (replaced by a rebuild).
    public private(set) var producer: KafkaProducer
    /// When batches stopped committing (nil while they commit).
    private var troubleSince: ContinuousClock.Instant?

    public var counts: TransactionCounts { countsLock.withLock { $0 } }
    /// Wall time of the last `commitBatch`'s phases: beginning and enqueueing the records,
    /// sending the consumed offsets, committing (zero for a phase it did not reach).
    public private(set) var lastPhases: (produce: Duration, sendOffsets: Duration, commit: Duration) = (.zero, .zero, .zero)

    /// Creates the producer and initialises transactions (retriable errors resumed within
    /// `policy.outageLimit`). Throws `KafkaError` when librdkafka rejects the configuration or
    /// `initTransactions` fails with a non-retriable error or keeps failing past the limit.
    public init(config: KafkaConfig, transactionalId: String, policy: TransactionPolicy = TransactionPolicy(),
                onEvent: @escaping @Sendable (TransactionEvent) -> Void = { _ in }) throws(KafkaError) {
        self.config = config
        self.transactionalId = transactionalId
        self.policy = policy
        self.onEvent = onEvent
        producer = try KafkaProducer(config: config, transactionalId: transactionalId)
        try initialise(producer, until: .now + policy.outageLimit)
    }

    /// Writes `records` and the offsets after `consumed` in one transaction.
    /// - Returns: `.committed`; `.aborted` or `.unknown` with the consumer rewound to its
    ///   committed offsets (the same input is read again).
    /// - Throws: `KafkaError` when another instance fenced this transactional id, when a record
    ///   cannot be produced for a reason of its own (`.other`, e.g. `MSG_SIZE_TOO_LARGE`: the
    ///   transaction is aborted and the consumer rewound first), or when no batch committed
    ///   for `policy.outageLimit`.
    public func commitBatch(_ records: [ProducerRecord], consumed: [KafkaMessage], consumer: KafkaConsumer) throws(KafkaError) -> BatchOutcome {
        let outcome = try attempt(records, consumed: consumed, consumer: consumer)
        if outcome == .committed {
            troubleSince = nil
            countsLock.withLock { $0.commits += 1 }
        } else {
            let since = troubleSince ?? .now
            troubleSince = since
            if ContinuousClock.now - since > policy.outageLimit {
                let error = KafkaError(kind: .other, code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, name: "_TIMED_OUT",
                                       message: "no transaction committed for \(Int(policy.outageLimit.seconds)) s", operation: "commitBatch")
                report("exit", "commitBatch", error, "giving up; the supervisor restarts the process")
                throw error
            }
        }
        return outcome
    }

    private func attempt(_ records: [ProducerRecord], consumed: [KafkaMessage], consumer: KafkaConsumer) throws(KafkaError) -> BatchOutcome {
        var phaseStart = ContinuousClock.now
        lastPhases = (.zero, .zero, .zero)
        do {
            try producer.beginTransaction()
        } catch {
            // begin has no retriable or abortable class: this instance is dead or stuck in an earlier call.
            try checkFenced(error, "beginTransaction")
            try rebuild(after: error, "beginTransaction", consumer: consumer)
            return .aborted
        }
        do {
            for record in records { try producer.enqueue(record) }
        } catch {
            try checkFenced(error, "produce")
            if error.isFatal {
                try rebuild(after: error, "produce", consumer: consumer)
                return .aborted
            }
            try abort(after: error, "produce", consumer: consumer)
            if error.requiresAbort || error.name == "_STATE" { return .aborted }
            throw error  // the record itself is at fault: the caller decides (the producer is usable again)
        }
        lastPhases.produce = ContinuousClock.now - phaseStart
        phaseStart = .now
        let offsets = KafkaMessage.offsets(after: consumed)
        var deadline = ContinuousClock.now + policy.resumeWindow
        while true {
            do {
                try producer.sendOffsetsToTransaction(offsets, consumer: consumer, timeout: policy.callTimeout)
                break
            } catch {
                try checkFenced(error, "sendOffsetsToTransaction")
                if error.requiresAbort {
                    try abort(after: error, "sendOffsetsToTransaction", consumer: consumer)
                    return .aborted
                }
                if error.isRetriable && ContinuousClock.now < deadline {
                    retry(error, "sendOffsetsToTransaction", "calling again with the same offsets")
                    continue
                }
                // Nothing was committed: the new instance's initTransactions aborts this transaction.
                try rebuild(after: error, "sendOffsetsToTransaction", consumer: consumer)
                return .aborted
            }
        }
        lastPhases.sendOffsets = ContinuousClock.now - phaseStart
        phaseStart = .now
        deadline = ContinuousClock.now + policy.resumeWindow
        while true {
            do {
                try producer.commitTransaction(timeout: policy.callTimeout)
                lastPhases.commit = ContinuousClock.now - phaseStart
                return .committed
            } catch {
                try checkFenced(error, "commitTransaction")
                if error.requiresAbort {
                    try abort(after: error, "commitTransaction", consumer: consumer)
                    return .aborted
                }
                if error.isRetriable && ContinuousClock.now < deadline {
                    retry(error, "commitTransaction", "resuming the commit that goes on in the background")
                    continue
                }
                countsLock.withLock { $0.unknownOutcomes += 1 }
                try rebuild(after: error, "commitTransaction", consumer: consumer)
                return .unknown
            }
        }
    }

    private func retry(_ error: KafkaError, _ call: String, _ detail: String) {
        countsLock.withLock { $0.retries += 1 }
        report("retry", call, error, detail)
        Thread.sleep(forTimeInterval: policy.backoff.seconds)
    }

    /// Aborts after an abortable (or record) error and rewinds. An abort that does not complete
    /// in one call (`policy.callTimeout`) is not called again: the producer is rebuilt, whose
    /// `initTransactions` aborts the transaction for it.
    private func abort(after error: KafkaError, _ call: String, consumer: KafkaConsumer) throws(KafkaError) {
        countsLock.withLock { $0.aborts += 1 }
        report("abort", call, error, "aborting the transaction; the batch is read again")
        do {
            try producer.abortTransaction(timeout: policy.callTimeout)
        } catch let abortError {
            try checkFenced(abortError, "abortTransaction")
            try rebuild(after: abortError, "abortTransaction", consumer: consumer)
            return
        }
        try rewind(consumer)
    }

    /// Replaces the producer: a new instance with the same transactional id whose
    /// `initTransactions` fences the old one and finishes its open transaction; then rewinds.
    private func rebuild(after error: KafkaError, _ call: String, consumer: KafkaConsumer) throws(KafkaError) {
        countsLock.withLock { $0.rebuilds += 1 }
        report("rebuild", call, error, "replacing the producer (same transactional id)")
        let until = (troubleSince ?? .now) + policy.outageLimit
        // The old instance is destroyed when the new one replaces it; the new one's
        // initTransactions fences it in any case.
        producer = try KafkaProducer(config: config, transactionalId: transactionalId)
        try initialise(producer, until: until)
        try rewind(consumer)
    }

    private func initialise(_ producer: KafkaProducer, until: ContinuousClock.Instant) throws(KafkaError) {
        while true {
            do {
                try producer.initTransactions(timeout: policy.callTimeout)
                return
            } catch {
                guard error.isRetriable, ContinuousClock.now < until else {
                    report("exit", "initTransactions", error, "no working producer; the supervisor restarts the process")
                    throw error
                }
                retry(error, "initTransactions", "resuming")
            }
        }
    }

    /// Seeks the consumer back to its committed offsets, retrying while the group coordinator
    /// does not answer (or the offsets of a transaction being finished are not yet stable).
    private func rewind(_ consumer: KafkaConsumer) throws(KafkaError) {
        let until = ContinuousClock.now + policy.outageLimit
        while true {
            do {
                try consumer.rewindToCommitted()
                return
            } catch {
                guard ContinuousClock.now < until, !error.isFatal else { throw error }
                retry(error, "committed", "reading the committed offsets again")
            }
        }
    }

    private func checkFenced(_ error: KafkaError, _ call: String) throws(KafkaError) {
        // After a fatal error later calls return `_FATAL`; the instance keeps the original code.
        guard error.isFenced || (error.code == RD_KAFKA_RESP_ERR__FATAL.rawValue && producer.fatalError?.isFenced == true) else { return }
        report("exit", call, error, "another instance owns transactional id \(transactionalId)")
        throw error
    }

    private func report(_ action: String, _ call: String, _ error: KafkaError?, _ detail: String) {
        onEvent(TransactionEvent(action: action, call: call, error: error, detail: detail))
    }
}

extension KafkaError {
    /// Another producer instance with the same transactional id took over (or the id is not
    /// ours to use): rebuilding would fence it in turn, so the process must stop instead.
    public var isFenced: Bool {
        [RD_KAFKA_RESP_ERR__FENCED, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
         RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED].contains { $0.rawValue == code }
    }
}

extension KafkaConsumer {
    /// Seeks every assigned partition back to its committed offset (the beginning when none).
    public func rewindToCommitted() throws(KafkaError) {
        let committed = try committed(try assignment())
        try seek(committed.map { TopicPartitionOffset($0.topic, $0.partition, $0.offset < 0 ? TopicPartitionOffset.beginning : $0.offset) })
    }
}

extension KafkaMessage {
    /// Per partition, the offset after the last of `messages`: what to commit once they are processed.
    public static func offsets(after messages: [KafkaMessage]) -> [TopicPartitionOffset] {
        var next: [TopicPartition: Int64] = [:]
        for m in messages { next[m.topicPartition] = max(next[m.topicPartition] ?? 0, m.offset + 1) }
        return next.map { TopicPartitionOffset($0.key.topic, $0.key.partition, $0.value) }
    }
}
