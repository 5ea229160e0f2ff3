import CRdKafka
import Foundation
import Synchronization

/// Called on the consumer's poll thread during a rebalance, before `poll`
/// returns any message of the new assignment.
public struct RebalanceListener: Sendable {
    /// Partitions just assigned (the consumer already owns them).
    public var onAssigned: @Sendable ([TopicPartition]) -> Void
    /// Partitions about to be taken away: finish (commit or abort) their work
    /// now. `lost` is true when the group already gave them to someone else.
    public var onRevoked: @Sendable (_ partitions: [TopicPartition], _ lost: Bool) -> Void

    public init(onAssigned: @escaping @Sendable ([TopicPartition]) -> Void = { _ in },
                onRevoked: @escaping @Sendable ([TopicPartition], Bool) -> Void = { _, _ in }) {
        self.onAssigned = onAssigned
        self.onRevoked = onRevoked
    }
}

/// A group consumer with manual commits and read_committed isolation by default.
///
/// `poll` blocks: call it from a dedicated thread (or use `messages()`, which
/// runs one). Rebalance hooks run inside `poll`, on the calling thread, so
/// hooks and messages are seen in order.
public final class KafkaConsumer: Sendable {
    private let handle: ClientHandle
    private let context: ConsumerContext
    private let queue: QueuePointer
    private let closed = Atomic<Bool>(false)
    private let loop = Mutex<PollThread?>(nil)
    public let groupId: String

    public init(config: KafkaConfig, groupId: String, rebalance: RebalanceListener = RebalanceListener()) throws(KafkaError) {
        var config = config.withDefaults([
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        ])
        config["group.id"] = groupId
        self.groupId = groupId
        let conf = try config.makeNative()
        let context = ConsumerContext(listener: rebalance, security: SecurityLatch(config))
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, code, partitions, opaque in
            guard let rk, let partitions, let opaque else { return }
            Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue().rebalance(rk, code, partitions)
        }
        rd_kafka_conf_set_error_cb(conf) { _, code, reason, opaque in
            guard let opaque else { return }
            let error = KafkaError(code: rd_kafka_resp_err_t(code), operation: "consumer",
                                   message: reason.map { String(cString: $0) })
            Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue().clientError(error)
        }
        // librdkafka's statistics (only emitted with `statistics.interval.ms` > 0), served inside `poll`.
        rd_kafka_conf_set_stats_cb(conf) { _, json, length, opaque in
            guard let json, let opaque else { return 0 }
            let data = Data(bytes: json, count: length)
            Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue().statsHandler.withLock { $0 }?(data)
            return 0  // librdkafka frees the JSON
        }
        handle = try ClientHandle(type: RD_KAFKA_CONSUMER, conf: conf)
        self.context = context
        // Serve rebalance and error events from the same queue as messages.
        rd_kafka_poll_set_consumer(handle.rk.pointer)
        queue = QueuePointer(rd_kafka_queue_get_consumer(handle.rk.pointer)!)
    }

    deinit {
        try? close()
        rd_kafka_queue_destroy(queue.pointer)
        withExtendedLifetime(context) {}
    }

    /// The broker's refusal of this consumer's credentials or TLS handshake, once reported
    /// (`KafkaError.Kind.authentication`); `poll` throws it from then on.
    public var securityFailure: KafkaError? { context.security.current }

    /// Errors librdkafka reports outside any call (broker down, …); SASL and TLS refusals
    /// arrive as `.authentication` errors naming the broker, mechanism and user.
    public func onClientError(_ handler: @escaping @Sendable (KafkaError) -> Void) {
        context.errorHandler.withLock { $0 = handler }
    }

    /// Called inside `poll` when a partition has no more records for now
    /// (needs `enable.partition.eof=true`), with the next offset to read.
    public func onPartitionEnd(_ handler: @escaping @Sendable (TopicPartitionOffset) -> Void) {
        context.endHandler.withLock { $0 = handler }
    }

    /// Called inside `poll` with librdkafka's statistics JSON (STATISTICS.md: per topic and
    /// partition `consumer_lag`, `fetch_state`, …) every `statistics.interval.ms` (ms; the
    /// config must set it, 0 = never).
    public func onStatistics(_ handler: @escaping @Sendable (Data) -> Void) {
        context.statsHandler.withLock { $0 = handler }
    }

    public func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = PartitionList(topics: topics)
        try check(rd_kafka_subscribe(handle.rk.pointer, list.pointer), "subscribe \(topics)")
    }

    /// Takes partitions directly, outside group management (e.g. to read a changelog).
    public func assign(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        let list = PartitionList(offsets)
        try check(rd_kafka_assign(handle.rk.pointer, list.pointer), "assign")
        context.assignment.withLock { $0 = Set(offsets.map(\.topicPartition)) }
    }

    /// At most `maxMessages`. `fill` true (the default): librdkafka's `rd_kafka_consume_batch_queue`,
    /// which waits until `maxMessages` arrived or `timeout` passed. `fill` false: waits up to
    /// `timeout` for the first message only, then returns it with those already fetched, so a
    /// message never waits for a batch to fill (up to `timeout` of latency per hop otherwise;
    /// `messages()` polls this way, the service loops do not). With `fill` false, records a seek
    /// or rebalance brings back may come over more calls, i.e. more and smaller batches.
    /// Rebalance hooks run inside this call. Throws when the consumer hit a fatal error, or
    /// when the broker refused its credentials or TLS handshake (`.authentication`: librdkafka
    /// would retry for ever); other errors go to `onClientError`.
    public func poll(maxMessages: Int = 1000, timeout: Duration = .milliseconds(100), fill: Bool = true) throws(KafkaError) -> [KafkaMessage] {
        try context.security.check()
        var buffer = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: max(maxMessages, 1))
        context.rebalanced.store(false, ordering: .relaxed)
        var count = rd_kafka_consume_batch_queue(queue.pointer, timeout.milliseconds, &buffer, fill ? maxMessages : 1)
        if !fill && count == 1 && maxMessages > 1 {
            // What is already fetched, without waiting (timeout 0); an error here shows in the next call.
            let more = buffer.withUnsafeMutableBufferPointer {
                rd_kafka_consume_batch_queue(queue.pointer, 0, $0.baseAddress! + 1, maxMessages - 1)
            }
            if more > 0 { count += more }
        }
        guard count > 0 else {
            if count < 0 { throw KafkaError(code: rd_kafka_last_error(), operation: "poll") }
            return []
        }
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(count)
        var firstError: KafkaError?
        // Only the polling thread touches the name cache; take it out of the lock once per batch.
        var names = context.topicNames.withLock { $0 }
        do {
            for i in 0..<count {
                guard let rkm = buffer[i] else { continue }
                defer { rd_kafka_message_destroy(rkm) }
                let m = rkm.pointee
                if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        let end = TopicPartitionOffset(String(cString: rd_kafka_topic_name(m.rkt)), m.partition, m.offset)
                        context.endHandler.withLock { $0 }?(end)
                        continue
                    }
                    let error = KafkaError(code: m.err, operation: "consume", message: m.err2string(rkm))
                    if m.err == RD_KAFKA_RESP_ERR__FATAL { firstError = firstError ?? error } else { context.clientError(error) }
                    continue
                }
                messages.append(Self.convert(rkm, names: &names))
            }
        }
        if names.count != context.topicNames.withLock({ $0.count }) {
            context.topicNames.withLock { [names] in $0 = names }
        }
        if let firstError { throw handle.fatalError(operation: "consume") ?? firstError }
        // A rebalance during this call may have revoked partitions whose
        // messages were already collected: never hand those out.
        if context.rebalanced.load(ordering: .relaxed) {
            let owned = context.assignment.withLock { $0 }
            messages.removeAll { !owned.contains($0.topicPartition) }
        }
        return messages
    }

    /// Batch poll for readers of assigned partitions: `accept` sees each record before it is
    /// copied; errors and end-of-partition reports are handled as in `poll`.
    func pollRaw(maxMessages: Int, timeout: Duration, accept: (rd_kafka_message_t) -> Bool) throws(KafkaError) -> [KafkaMessage] {
        try context.security.check()
        var buffer = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: maxMessages)
        let count = rd_kafka_consume_batch_queue(queue.pointer, timeout.milliseconds, &buffer, maxMessages)
        guard count > 0 else {
            if count < 0 { throw KafkaError(code: rd_kafka_last_error(), operation: "poll") }
            return []
        }
        var messages: [KafkaMessage] = []
        var names = context.topicNames.withLock { $0 }
        for i in 0..<count {
            guard let rkm = buffer[i] else { continue }
            defer { rd_kafka_message_destroy(rkm) }
            let m = rkm.pointee
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                context.endHandler.withLock { $0 }?(TopicPartitionOffset(String(cString: rd_kafka_topic_name(m.rkt)), m.partition, m.offset))
            } else if m.err == RD_KAFKA_RESP_ERR__FATAL {
                throw handle.fatalError(operation: "consume") ?? KafkaError(code: m.err, operation: "consume", message: m.err2string(rkm))
            } else if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                context.clientError(KafkaError(code: m.err, operation: "consume", message: m.err2string(rkm)))
            } else if accept(m) {
                messages.append(Self.convert(rkm, names: &names))
            }
        }
        return messages
    }

    private static func convert(_ rkm: UnsafeMutablePointer<rd_kafka_message_t>, names: inout [Int: String]) -> KafkaMessage {
        let m = rkm.pointee
        let topic: String
        let rktKey = Int(bitPattern: m.rkt)
        if let cached = names[rktKey] { topic = cached } else {
            topic = String(cString: rd_kafka_topic_name(m.rkt))
            names[rktKey] = topic
        }
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(String(cString: name!), value.map { Data(bytes: $0, count: size) }))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(rkm, &timestampType)
        return KafkaMessage(
            topic: topic, partition: m.partition, offset: m.offset,
            key: m.key.map { Data(bytes: $0, count: m.key_len) },
            value: m.payload.map { Data(bytes: $0, count: m.len) },
            headers: headers,
            timestampMs: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp)
    }

    /// Runs `poll` (`fill` false: each record as soon as it is fetched) on a dedicated thread and
    /// yields non-empty batches. Ends (with the error) on a fatal error, or when `close` is called.
    public func messages(maxBatch: Int = 1000) -> AsyncThrowingStream<[KafkaMessage], Error> {
        let (stream, continuation) = AsyncThrowingStream<[KafkaMessage], Error>.makeStream(bufferingPolicy: .unbounded)
        let thread = PollThread(name: "yishi.consumer.poll") { [self] in
            do {
                let batch = try self.poll(maxMessages: maxBatch, timeout: .milliseconds(100), fill: false)
                if !batch.isEmpty { continuation.yield(batch) }
            } catch {
                continuation.finish(throwing: error)
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        loop.withLock { $0 = thread }
        return stream
    }

    /// Commits explicit offsets (the offset of the next record to read) synchronously.
    public func commit(_ offsets: [TopicPartitionOffset]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = PartitionList(offsets)
        try check(rd_kafka_commit(handle.rk.pointer, list.pointer, 0), "commit")
        if let error = list.firstError("commit") { throw error }
    }

    /// The group's committed offsets for `partitions`.
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws(KafkaError) -> [TopicPartitionOffset] {
        let list = PartitionList(partitions: partitions)
        try check(rd_kafka_committed(handle.rk.pointer, list.pointer, timeout.milliseconds), "committed")
        return list.offsets
    }

    public func seek(_ offsets: [TopicPartitionOffset], timeout: Duration = .seconds(10)) throws(KafkaError) {
        let list = PartitionList(offsets)
        try check(rd_kafka_seek_partitions(handle.rk.pointer, list.pointer, timeout.milliseconds), "seek")
        if let error = list.firstError("seek") { throw error }
    }

    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = PartitionList(partitions: partitions)
        try check(rd_kafka_pause_partitions(handle.rk.pointer, list.pointer), "pause")
        if let error = list.firstError("pause") { throw error }
    }

    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        let list = PartitionList(partitions: partitions)
        try check(rd_kafka_resume_partitions(handle.rk.pointer, list.pointer), "resume")
        if let error = list.firstError("resume") { throw error }
    }

    /// The partitions this consumer currently owns.
    public func assignment() throws(KafkaError) -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try check(rd_kafka_assignment(handle.rk.pointer, &list), "assignment")
        guard let list else { return [] }
        return PartitionList(owning: list).offsets.map(\.topicPartition)
    }

    /// Per partition, the offset of the next record `poll` returns (`rd_kafka_position`); absent
    /// while librdkafka does not know it yet (nothing fetched since the assignment or a seek).
    public func positions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        let list = PartitionList(partitions: partitions)
        guard rd_kafka_position(handle.rk.pointer, list.pointer) == RD_KAFKA_RESP_ERR_NO_ERROR else { return [:] }
        var result: [TopicPartition: Int64] = [:]
        for entry in list.offsets where entry.offset >= 0 { result[entry.topicPartition] = entry.offset }
        return result
    }

    /// The high watermark librdkafka last saw in a fetch response for `partition`
    /// (`rd_kafka_get_watermark_offsets`: no request); nil while unknown.
    public func cachedHighWatermark(_ partition: TopicPartition) -> Int64? {
        var low: Int64 = 0, high: Int64 = 0
        guard rd_kafka_get_watermark_offsets(handle.rk.pointer, partition.topic, partition.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
              high >= 0 else { return nil }
        return high
    }

    /// Low and high watermark offsets of a partition, asked of the broker.
    public func watermarks(_ partition: TopicPartition, timeout: Duration = .seconds(10)) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0, high: Int64 = 0
        try check(rd_kafka_query_watermark_offsets(handle.rk.pointer, partition.topic, partition.partition,
                                                   &low, &high, timeout.milliseconds), "watermarks \(partition)")
        return (low, high)
    }

    /// `rd_kafka_consumer_group_metadata_t` for `sendOffsetsToTransaction`; the caller destroys it.
    func groupMetadata() -> OpaquePointer {
        rd_kafka_consumer_group_metadata(handle.rk.pointer)!
    }

    /// Leaves the group cleanly (revoke hooks run on this thread) and stops
    /// the `messages()` thread. Idempotent. Do not call concurrently with `poll`.
    public func close() throws(KafkaError) {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.withLock { $0 }?.stop()
        try check(rd_kafka_consumer_close(handle.rk.pointer), "close")
    }
}

struct QueuePointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// Per-consumer state reached from librdkafka's callbacks.
final class ConsumerContext: Sendable {
    let listener: RebalanceListener
    let assignment = Mutex<Set<TopicPartition>>([])
    let rebalanced = Atomic<Bool>(false)
    let topicNames = Mutex<[Int: String]>([:])
    let errorHandler = Mutex<(@Sendable (KafkaError) -> Void)?>(nil)
    let endHandler = Mutex<(@Sendable (TopicPartitionOffset) -> Void)?>(nil)
    let statsHandler = Mutex<(@Sendable (Data) -> Void)?>(nil)

    let security: SecurityLatch

    init(listener: RebalanceListener, security: SecurityLatch) { self.listener = listener; self.security = security }

    func rebalance(_ rk: OpaquePointer, _ code: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        rebalanced.store(true, ordering: .relaxed)
        let partitions = PartitionList.read(list).map(\.topicPartition)
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        var failure: KafkaError?
        if code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) { failure = KafkaError(consuming: error, operation: "assign") }
            } else {
                let code = rd_kafka_assign(rk, list)
                if code != RD_KAFKA_RESP_ERR_NO_ERROR { failure = KafkaError(code: code, operation: "assign") }
            }
            assignment.withLock { owned in
                if !cooperative { owned.removeAll() }
                owned.formUnion(partitions)
            }
            listener.onAssigned(partitions)
        } else {
            listener.onRevoked(partitions, rd_kafka_assignment_lost(rk) != 0)
            assignment.withLock { $0.subtract(partitions) }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) { failure = KafkaError(consuming: error, operation: "unassign") }
            } else {
                let code = rd_kafka_assign(rk, nil)
                if code != RD_KAFKA_RESP_ERR_NO_ERROR { failure = KafkaError(code: code, operation: "unassign") }
            }
        }
        if let failure { clientError(failure) }
    }

    func clientError(_ error: KafkaError) {
        let error = security.observe(error)
        errorHandler.withLock { $0 }?(error)
    }
}

extension rd_kafka_message_t {
    func err2string(_ rkm: UnsafeMutablePointer<rd_kafka_message_t>) -> String {
        String(cString: rd_kafka_message_errstr(rkm))
    }
}
