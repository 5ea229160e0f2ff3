import Departments
import Foundation
import HubHTTP
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// A department simulator on Kafka: reads its native requests from `dept.<agency>.requests`,
/// lets the pure simulator decide, and publishes each reply on `dept.<agency>.replies` when its
/// latency (working minutes on the business calendar, on the hub's clock) has passed.
///
/// Like a real department system it keeps its own books: with a state file, every batch is
/// checkpointed (books, idempotency memo, effect ledger, replies not yet sent) before the
/// request offsets are committed, so a restart neither forgets a request it acted on nor acts
/// twice. The gateway echoes the caller's correlation headers (`yishi-adapter-context`,
/// `traceparent`) on every reply.
public final class DepartmentService: @unchecked Sendable {
    // @unchecked: `endpoint` and `pending` are touched by the loop thread only, after `init`.
    public let agency: Agency
    let connection: HubConnection
    let instanceId: String
    let calendar: BusinessCalendar
    let stateFile: URL?
    let log: JSONLog
    private var endpoint: any DepartmentEndpoint
    private var pending: [PendingReply] = []
    private let stopping = Atomic<Bool>(false)
    private let ledgerCopy = Mutex<[LedgerEffect]>([])
    private let counters = Mutex(Counters())
    /// Records whose delivery failed, handed from the producer's poll thread to the loop.
    private let undelivered = Mutex<[(record: ProducerRecord, notBefore: ContinuousClock.Instant)]>([])

    public struct Counters: Sendable, Equatable {
        public var requests = 0
        public var replies = 0
        public var replayed = 0
        public var lostReplies = 0
        public var deadLetters = 0
        /// Records (replies, dead letters) whose delivery failed and that were enqueued again.
        public var redelivered = 0
        /// Offset commits that failed (the requests are read again and answered from the memo).
        public var commitFailures = 0
        /// Producer instances replaced after a fatal error of the idempotent producer.
        public var producerRebuilds = 0
    }

    /// A reply waiting for its due time (the department is still "working").
    struct PendingReply: Codable {
        var dueMs: Int64
        var key: String
        var value: Data
        var headers: [[String]]
    }

    struct Checkpoint: Codable {
        var state: Data
        var pending: [PendingReply]
    }

    /// Headers the department's gateway copies from a request to its reply.
    static let echoedHeaders = ["yishi-adapter-context", Envelope.Header.traceParent]

    public var groupId: String { HubGroups.department(prefix: connection.prefix, agency: agency.rawValue) }
    /// Every effect so far (any thread).
    public var ledger: [LedgerEffect] { ledgerCopy.withLock { $0 } }
    public var counts: Counters { counters.withLock { $0 } }
    /// Prometheus metrics and health (`--http`); replace before `run`.
    public lazy var metrics = KafkaServiceMetrics(service: "dept." + agency.rawValue, dlqTopic: connection.topic("dlq"))

    public init(agency: Agency, connection: HubConnection, instanceId: String, endpoint: any DepartmentEndpoint,
                calendar: BusinessCalendar, stateFile: URL?, log: JSONLog? = nil) throws {
        self.agency = agency
        self.connection = connection
        self.instanceId = instanceId
        self.endpoint = endpoint
        self.calendar = calendar
        self.stateFile = stateFile
        self.log = log ?? JSONLog(component: "dept." + agency.rawValue)
        outboundGuard = OutboundGuard(connection: connection, group: HubGroups.department(prefix: connection.prefix, agency: agency.rawValue))
        if let stateFile, FileManager.default.fileExists(atPath: stateFile.path) {
            do {
                let checkpoint = try JSONDecoder().decode(Checkpoint.self, from: Data(contentsOf: stateFile))
                try self.endpoint.restore(checkpoint.state)
                pending = checkpoint.pending
            } catch {
                // An unreadable state file must not stop the department for good: it is kept aside
                // (nothing is deleted) and the department starts with empty books.
                let aside = stateFile.appendingPathExtension("unreadable-\(Int64(Date().timeIntervalSince1970 * 1000))")
                try FileManager.default.moveItem(at: stateFile, to: aside)
                self.log.error("state file unreadable; moved aside, starting with empty books",
                               ["file": stateFile.path, "moved_to": aside.path, "error": "\(error)"])
                quarantinedStateFile = aside
            }
        }
        ledgerCopy.withLock { $0 = self.endpoint.ledger }
    }

    /// Where an unreadable state file was moved at start, if one was.
    public private(set) var quarantinedStateFile: URL?
    /// The size check of the replies and dead letters this department writes.
    let outboundGuard: OutboundGuard

    /// The effect ledger in a state file written by a department service.
    public static func ledger(in stateFile: URL, endpoint: any DepartmentEndpoint) throws -> [LedgerEffect] {
        var endpoint = endpoint
        try endpoint.restore(try JSONDecoder().decode(Checkpoint.self, from: Data(contentsOf: stateFile)).state)
        return endpoint.ledger
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// Blocks until `stop()` or a fatal error.
    public func run() throws {
        let clientId = "yishi-dept-\(agency.rawValue)-\(instanceId)"
        // Any process of the hub may start first: the topics exist once one of them ran.
        try KafkaAdmin(config: connection.clientConfig(clientId: clientId + "-admin"))
            .ensureTopics(HubTopics.all(prefix: connection.prefix, partitions: connection.partitions, agencies: [agency.rawValue]))
        var producer = try KafkaProducer(config: connection.clientConfig(clientId: clientId))
        producer.onClientError { [log] in log.warn("kafka", ["error": $0.description, "class": "\($0.kind)"]) }
        let consumer = try KafkaConsumer(config: connection.consumerConfig(clientId: clientId, ["statistics.interval.ms": String(KafkaServiceMetrics.statisticsIntervalMs)]),
                                         groupId: groupId, rebalance: metrics.readinessListener())
        consumer.onStatistics { [metrics] in metrics.statistics($0) }
        consumer.onClientError { [log] in log.warn("kafka", ["error": $0.description]) }
        try consumer.subscribe([connection.topic("dept.\(agency.rawValue).requests")])
        log.info("started", ["instance": instanceId, "group": groupId, "pending_replies": String(pending.count)])
        defer {
            do { try producer.flush() } catch { log.warn("flush at stop failed; unsent replies stay in the state file", ["error": "\(error)"]) }
            try? consumer.close()
            let c = counts
            log.info("stopped", ["instance": instanceId, "redelivered": String(c.redelivered), "commit_failures": String(c.commitFailures),
                                 "producer_rebuilds": String(c.producerRebuilds)])
        }
        while !stopping.load(ordering: .relaxed) {
            // The idempotent producer's fatal errors (rdkafka.h "Fatal errors"): the instance is
            // unusable; a new one takes over (what the old one had not delivered comes back below).
            if let fatal = producer.fatalError {
                log.warn("producer", ["action": "rebuild", "error": fatal.name, "class": "fatal", "message": fatal.message])
                producer.purgeUndelivered()  // their callbacks hand them back to be sent by the new instance
                producer = try KafkaProducer(config: connection.clientConfig(clientId: clientId))
                producer.onClientError { [log] in log.warn("kafka", ["error": $0.description, "class": "\($0.kind)"]) }
                counters.withLock { $0.producerRebuilds += 1 }
            }
            let messages = try consumer.poll(maxMessages: 500, timeout: .milliseconds(20))
            if !messages.isEmpty {
                var deadLetters: [ProducerRecord] = []
                for message in messages { receive(message, deadLetters: &deadLetters) }
                for record in deadLetters { send(record, producer) }
                try checkpoint()
                commit(KafkaMessage.offsets(after: messages), consumer)
                metrics.committed(consumed: messages, produced: deadLetters, since: nil)
                ledgerCopy.withLock { $0 = endpoint.ledger }
            }
            resendUndelivered(producer)
            try sendDueReplies(producer)
            metrics.beat()
        }
    }

    /// Commits request offsets after the checkpoint. A failed commit (broker away, coordinator
    /// moving, rebalance) loses nothing: the checkpoint holds the batch's effects, and requests
    /// read again are answered from the idempotency memo. So it is logged and counted, not thrown;
    /// the next commit covers these offsets too.
    private func commit(_ offsets: [TopicPartitionOffset], _ consumer: KafkaConsumer) {
        do { try consumer.commit(offsets) } catch {
            counters.withLock { $0.commitFailures += 1 }
            log.warn("offset commit failed; the requests will be read again and answered from the memo",
                     ["error": error.name, "class": "\(error.kind)", "message": error.message])
        }
    }

    /// Enqueues a record. A failed delivery (e.g. `message.timeout.ms` passed while the broker was
    /// away) hands it back to the loop, and so does a refused enqueue (e.g. a topic error librdkafka
    /// keeps until its next metadata refresh): it is sent again a second later, never lost, and
    /// each failure is a warn line.
    private func send(_ record: ProducerRecord, _ producer: KafkaProducer) {
        do {
            try producer.enqueue(record) { [weak self] result in
                guard case .failure(let error) = result, let self else { return }
                self.retryLater(record, error, "delivery failed")
            }
        } catch {
            retryLater(record, error, "enqueue refused")
        }
    }

    private func retryLater(_ record: ProducerRecord, _ error: KafkaError, _ what: String) {
        log.warn(what + "; sending again", ["topic": record.topic, "error": error.name, "class": "\(error.kind)", "message": error.message])
        undelivered.withLock { $0.append((record, .now + .seconds(1))) }
    }

    private func resendUndelivered(_ producer: KafkaProducer) {
        let now = ContinuousClock.now
        let again = undelivered.withLock { list in
            let due = list.filter { $0.notBefore <= now }.map(\.record)
            list.removeAll { $0.notBefore <= now }
            return due
        }
        guard !again.isEmpty else { return }
        counters.withLock { $0.redelivered += again.count }
        for record in again { send(record, producer) }
    }

    private func receive(_ message: KafkaMessage, deadLetters: inout [ProducerRecord]) {
        let now = connection.clock.now()
        let topic = MessageCheck.unprefixed(message.topic, prefix: connection.prefix) ?? message.topic
        // Only the agency's own adapter may send requests (the source policy of the hub).
        guard let source = message.headers.string(Envelope.Header.source), !source.isEmpty else {
            let missing = EnvelopeError.missingAttribute(Envelope.Header.source,
                                                         foundInstead: Envelope.lookalike(of: Envelope.Header.source, in: message.headers))
            deadLetters.append(deadLetter(message, MessageRejection(missing)))
            return
        }
        do { try SourcePolicy.standard.check(source: source, topic: topic) } catch {
            deadLetters.append(deadLetter(message, MessageRejection(.wrongSource, error.description, header: Envelope.Header.source)))
            return
        }
        let handling = endpoint.receive(message.value ?? Data(), at: now.date)
        counters.withLock { $0.requests += 1; if handling.replayed { $0.replayed += 1 } }
        if case .unreadable(let reason) = handling.outcome {
            deadLetters.append(deadLetter(message, MessageRejection(.unprocessable, "\(agency.rawValue) cannot read the request: \(reason)")))
            return
        }
        guard let meta = handling.meta, let reply = handling.reply else { return }
        if handling.replyLost {
            counters.withLock { $0.lostReplies += 1 }
            return
        }
        let due = calendar.addWorkingTime(now, Int64(handling.latencyMinutes) * 60_000)
        let envelope = Envelope(source: "/dept/\(agency.rawValue)", type: MessageType.native(agency: agency.rawValue, message: meta.action + ".reply"),
                                time: due.date, subject: meta.sagaId, sagaId: meta.sagaId, step: meta.step)
        var headers = envelope.headers.filter { $0.name != Envelope.Header.traceParent }
        headers += message.headers.filter { Self.echoedHeaders.contains($0.name) }
        let pendingReply = PendingReply(dueMs: due.ms, key: meta.sagaId, value: reply,
                                        headers: headers.map { [$0.name, String(decoding: $0.value ?? Data(), as: UTF8.self)] })
        // A reply the producer would refuse is never queued (it would stop the department when due).
        if let why = outboundGuard.rejection(for: [replyRecord(pendingReply)]) {
            deadLetters.append(deadLetter(message, why))
            return
        }
        pending.append(pendingReply)
    }

    private func replyRecord(_ reply: PendingReply) -> ProducerRecord {
        ProducerRecord(topic: connection.topic("dept.\(agency.rawValue).replies"), key: reply.key, value: reply.value,
                       headers: reply.headers.compactMap { $0.count == 2 ? KafkaHeader($0[0], $0[1]) : nil })
    }

    private func sendDueReplies(_ producer: KafkaProducer) throws {
        let now = connection.clock.now().ms
        guard pending.contains(where: { $0.dueMs <= now }) else { return }
        let due = pending.filter { $0.dueMs <= now }
        for reply in due {
            let record = replyRecord(reply)
            // Checked when queued; a reply restored from an older state file may not have been.
            guard outboundGuard.limit.fits(record) else {
                log.error("reply dropped: too large", ["key": reply.key, "size": String(RecordSizeLimit.wireSize(record)),
                                                       "limit": String(outboundGuard.limit.maxBytes)])
                continue
            }
            send(record, producer)
        }
        pending.removeAll { $0.dueMs <= now }
        counters.withLock { $0.replies += due.count }
        metrics.produced(topic: connection.topic("dept.\(agency.rawValue).replies"), count: due.count)
    }

    private func checkpoint() throws {
        guard let stateFile else { return }
        let data = try JSONEncoder().encode(Checkpoint(state: try endpoint.snapshot(), pending: pending))
        try data.write(to: stateFile, options: .atomic)
    }

    private func deadLetter(_ message: KafkaMessage, _ why: MessageRejection) -> ProducerRecord {
        counters.withLock { $0.deadLetters += 1 }
        log.warn("dead-letter", ["topic": message.topic, "partition": String(message.partition), "offset": String(message.offset),
                                 "class": why.errorClass.rawValue])
        return outboundGuard.deadLetter(message, why, at: connection.clock.now().date)
    }
}
