import CRdKafka
import Foundation
import Synchronization

/// A Kafka producer: idempotent by default, optionally transactional.
///
/// Delivery reports are served by a dedicated poll thread. `send` awaits the
/// report of one record; `enqueue` hands a record to librdkafka and reports
/// through an optional callback (the fast path for bulk producing).
public final class KafkaProducer: Sendable {
    private let handle: ClientHandle
    private let context: ProducerContext
    private let pollThread: PollThread
    private let topics: TopicHandles
    public let isTransactional: Bool

    /// - Parameters:
    ///   - transactionalId: enables the transaction API (`initTransactions` etc.).
    public init(config: KafkaConfig, transactionalId: String? = nil) throws(KafkaError) {
        var config = config.withDefaults(["enable.idempotence": "true", "linger.ms": "5"])
        if let transactionalId { config["transactional.id"] = transactionalId }
        isTransactional = transactionalId != nil
        let conf = try config.makeNative()
        let context = ProducerContext(security: SecurityLatch(config))
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue().delivered(message.pointee)
        }
        rd_kafka_conf_set_error_cb(conf) { _, code, reason, opaque in
            guard let opaque else { return }
            let error = KafkaError(code: rd_kafka_resp_err_t(code), operation: "producer",
                                   message: reason.map { String(cString: $0) })
            Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue().clientError(error)
        }
        handle = try ClientHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        self.context = context
        topics = TopicHandles(handle.rk)
        let rk = handle.rk
        pollThread = PollThread(name: "yishi.producer.poll") { _ = rd_kafka_poll(rk.pointer, 100) }
    }

    deinit {
        pollThread.stop()
        topics.destroyAll()
        // `handle` destroys the rd_kafka_t after this; `context` must outlive it.
        withExtendedLifetime(context) {}
    }

    /// Number of records delivered (acknowledged) and failed since creation.
    public var deliveryCounts: (delivered: Int, failed: Int) {
        (context.delivered.load(ordering: .relaxed), context.failed.load(ordering: .relaxed))
    }

    /// The broker's refusal of this producer's credentials or TLS handshake, once reported
    /// (`KafkaError.Kind.authentication`); librdkafka keeps retrying, the hub must not.
    public var securityFailure: KafkaError? { context.security.current }

    /// Errors reported by librdkafka outside any call (broker down, fatal errors); SASL and
    /// TLS refusals arrive as `.authentication` errors naming the broker, mechanism and user.
    public func onClientError(_ handler: @escaping @Sendable (KafkaError) -> Void) {
        context.errorHandler.withLock { $0 = handler }
    }

    /// Produces one record and waits for its delivery report.
    public func send(_ record: ProducerRecord) async throws -> DeliveryReport {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<DeliveryReport, Error>) in
            do {
                try enqueue(record) { continuation.resume(with: $0.mapError { $0 as Error }) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Hands a record to librdkafka (copied) and returns at once. `onDelivery`
    /// is called on the poll thread with the outcome. When librdkafka's queue
    /// is full this waits for room (blocking the caller briefly).
    public func enqueue(_ record: ProducerRecord,
                        onDelivery: (@Sendable (Result<DeliveryReport, KafkaError>) -> Void)? = nil) throws(KafkaError) {
        let rkt = topics.handle(for: record.topic)
        let opaque = onDelivery.map { Unmanaged.passRetained(DeliveryCallback($0)).toOpaque() }
        while true {
            guard let error = produce(rkt: rkt, record: record, opaque: opaque) else { return }
            if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_error_destroy(error)
                rd_kafka_poll(handle.rk.pointer, 5)
                continue
            }
            if let opaque { Unmanaged<DeliveryCallback>.fromOpaque(opaque).release() }
            // Keeps librdkafka's classes: producing in a failed transaction is abortable, on a dead instance fatal.
            throw KafkaError(consuming: error, operation: "produce to \(record.topic)")
        }
    }

    /// `rd_kafka_produceva`: nil on success, else the error object (the caller destroys it).
    private func produce(rkt: OpaquePointer, record: ProducerRecord, opaque: UnsafeMutableRawPointer?) -> OpaquePointer? {
        var headers: OpaquePointer? = nil
        if !record.headers.isEmpty {
            headers = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    value.withUnsafeBytes { _ = rd_kafka_header_add(headers, header.name, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(headers, header.name, -1, nil, 0)
                }
            }
        }
        let error = withOptionalBytes(record.key) { key in
            withOptionalBytes(record.value) { value in
                // Stack-allocated argument list: no heap allocation per record.
                withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 7) { vus in
                    vus.initialize(repeating: rd_kafka_vu_t())
                    vus[0].vtype = RD_KAFKA_VTYPE_RKT
                    vus[0].u.rkt = rkt
                    vus[1].vtype = RD_KAFKA_VTYPE_PARTITION
                    vus[1].u.i32 = record.partition ?? RD_KAFKA_PARTITION_UA
                    vus[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    vus[2].u.i = RD_KAFKA_MSG_F_COPY
                    vus[3].vtype = RD_KAFKA_VTYPE_VALUE
                    vus[3].u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                    vus[3].u.mem.size = value.count
                    vus[4].vtype = RD_KAFKA_VTYPE_KEY
                    vus[4].u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
                    vus[4].u.mem.size = key.count
                    vus[5].vtype = RD_KAFKA_VTYPE_OPAQUE
                    vus[5].u.ptr = opaque
                    var count = 6
                    if let headers {
                        vus[6].vtype = RD_KAFKA_VTYPE_HEADERS
                        vus[6].u.headers = headers
                        count = 7
                    }
                    return rd_kafka_produceva(handle.rk.pointer, vus.baseAddress, count)
                }
            }
        }
        // On success librdkafka owns the headers; on failure they are still ours.
        if error != nil, let headers { rd_kafka_headers_destroy(headers) }
        return error
    }

    /// Waits until every enqueued record has its delivery report.
    public func flush(timeout: Duration = .seconds(30)) throws(KafkaError) {
        try check(rd_kafka_flush(handle.rk.pointer, timeout.milliseconds), "flush")
    }

    /// Purges every record not yet delivered (`rd_kafka_purge`, queued and in flight) and waits
    /// up to `timeout` for their delivery callbacks, which report `_PURGE_QUEUE` /
    /// `_PURGE_INFLIGHT`: the owner can hand them to a new instance instead of losing them.
    public func purgeUndelivered(timeout: Duration = .seconds(1)) {
        _ = rd_kafka_purge(handle.rk.pointer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        _ = rd_kafka_flush(handle.rk.pointer, timeout.milliseconds)
    }

    // MARK: Transactions
    //
    // Each call below is librdkafka's call of the same name; what to do on each error class
    // (`KafkaError.kind`) is librdkafka's contract (rdkafka.h, "Transactional producer API"),
    // which `TransactionalProducer` follows: see docs/kafka-layer.md "Transactions: error classes".
    // `timeout: nil` passes -1, librdkafka's recommended value (for `initTransactions`
    // 2 × `transaction.timeout.ms`; in librdkafka 2.8 no limit for commit and abort).

    /// Registers the transactional id with the coordinator, fencing older producers with the same
    /// id and completing (or aborting) their last transaction. Call once before the first
    /// transaction. Retriable errors (`_TIMED_OUT`, `COORDINATOR_NOT_AVAILABLE`,
    /// `CONCURRENT_TRANSACTIONS`) resume the same operation when called again.
    ///
    /// Waits in slices of at most 500 ms (a timed-out call may be repeated, rdkafka.h), so that a
    /// SASL or TLS refusal ends the wait at once with `.authentication`; `timeout: nil` waits
    /// until the call completes or fails.
    public func initTransactions(timeout: Duration? = nil) throws(KafkaError) {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            try context.security.check()
            let left = deadline.map { $0 - .now } ?? .milliseconds(500)
            let slice = min(max(left, .milliseconds(1)), .milliseconds(500))
            guard let error = rd_kafka_init_transactions(handle.rk.pointer, slice.milliseconds) else { return }
            let failure = KafkaError(consuming: error, operation: "initTransactions")
            guard failure.code == RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, deadline.map({ ContinuousClock.now < $0 }) ?? true else {
                try context.security.check()
                throw failure
            }
        }
    }

    /// Starts a transaction. Fails with `_STATE` while another transaction (or a transactional
    /// call that timed out and was not resumed) is in progress, or after a fatal error.
    public func beginTransaction() throws(KafkaError) {
        try check(rd_kafka_begin_transaction(handle.rk.pointer), "beginTransaction")
    }

    /// Adds the consumer's positions (the next offset to read, per partition) to the transaction,
    /// so that they commit (or abort) together with the records produced in it. Retriable but not
    /// resumable: retry with the same `offsets` and consumer. Abortable → abort; fatal → recreate.
    public func sendOffsetsToTransaction(_ offsets: [TopicPartitionOffset], consumer: KafkaConsumer,
                                         timeout: Duration = .seconds(30)) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = PartitionList(offsets)
        let metadata = consumer.groupMetadata()
        defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
        try check(rd_kafka_send_offsets_to_transaction(handle.rk.pointer, list.pointer, metadata, timeout.milliseconds),
                  "sendOffsetsToTransaction")
    }

    /// Flushes and commits. `.retriable` (e.g. `_TIMED_OUT`: the commit goes on in the
    /// background) → call `commitTransaction` again, which resumes it; `.abortable` → call
    /// `abortTransaction`; `.fatal` or any other error → recreate the producer.
    public func commitTransaction(timeout: Duration? = nil) throws(KafkaError) {
        try check(rd_kafka_commit_transaction(handle.rk.pointer, timeout?.milliseconds ?? -1), "commitTransaction")
    }

    /// Aborts the transaction (purging records not yet sent). `.retriable` → call again (resumes);
    /// `.fatal` or any other error → recreate the producer.
    public func abortTransaction(timeout: Duration? = nil) throws(KafkaError) {
        try check(rd_kafka_abort_transaction(handle.rk.pointer, timeout?.milliseconds ?? -1), "abortTransaction")
    }

    /// The fatal error that made this producer unusable, if any.
    public var fatalError: KafkaError? { handle.fatalError(operation: "producer") }
}

/// Per-producer state reached from librdkafka's callbacks.
final class ProducerContext: Sendable {
    let security: SecurityLatch
    let delivered = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let errorHandler = Mutex<(@Sendable (KafkaError) -> Void)?>(nil)

    init(security: SecurityLatch) { self.security = security }

    func delivered(_ message: rd_kafka_message_t) {
        let result: Result<DeliveryReport, KafkaError>
        if message.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            delivered.add(1, ordering: .relaxed)
            guard message._private != nil else { return }
            result = .success(DeliveryReport(topic: String(cString: rd_kafka_topic_name(message.rkt)),
                                             partition: message.partition, offset: message.offset))
        } else {
            failed.add(1, ordering: .relaxed)
            let topic = String(cString: rd_kafka_topic_name(message.rkt))
            result = .failure(KafkaError(code: message.err, operation: "deliver to \(topic)"))
            if message._private == nil, let handler = errorHandler.withLock({ $0 }) { handler(result.failureValue!) }
        }
        if let opaque = message._private {
            Unmanaged<DeliveryCallback>.fromOpaque(opaque).takeRetainedValue().callback(result)
        }
    }

    func clientError(_ error: KafkaError) {
        let error = security.observe(error)
        errorHandler.withLock { $0 }?(error)
    }
}

final class DeliveryCallback {
    let callback: @Sendable (Result<DeliveryReport, KafkaError>) -> Void
    init(_ callback: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) { self.callback = callback }
}

extension Result {
    var failureValue: Failure? { if case .failure(let e) = self { e } else { nil } }
}

/// Cached `rd_kafka_topic_t` handles by name; looked up on every produce.
final class TopicHandles: Sendable {
    private let rk: RdKafkaPointer
    private struct State {
        var all: [String: RdKafkaPointer] = [:]
        /// The topic of the previous produce: bulk producing writes runs of records to one
        /// topic, and comparing a name (the same string storage: one pointer compare) is much
        /// cheaper than hashing it for the dictionary.
        var last: (name: String, handle: RdKafkaPointer)?
    }
    private let state = Mutex<State>(State())

    init(_ rk: RdKafkaPointer) { self.rk = rk }

    func handle(for topic: String) -> OpaquePointer {
        state.withLock { state in
            if let last = state.last, last.name == topic { return last.handle.pointer }
            let handle: RdKafkaPointer
            if let existing = state.all[topic] { handle = existing } else {
                handle = RdKafkaPointer(rd_kafka_topic_new(rk.pointer, topic, nil)!)
                state.all[topic] = handle
            }
            state.last = (topic, handle)
            return handle.pointer
        }
    }

    func destroyAll() {
        state.withLock { state in
            for handle in state.all.values { rd_kafka_topic_destroy(handle.pointer) }
            state.all.removeAll()
            state.last = nil
        }
    }
}

@inline(__always)
func withOptionalBytes<R>(_ data: Data?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let data { return data.withUnsafeBytes(body) }
    return body(UnsafeRawBufferPointer(start: nil, count: 0))
}

extension Duration {
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// As fractional seconds (for rates and log lines).
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
