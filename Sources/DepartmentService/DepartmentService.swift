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

    public struct Counters: Sendable, Equatable {
        public var requests = 0
        public var replies = 0
        public var replayed = 0
        public var lostReplies = 0
        public var deadLetters = 0
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
        if let stateFile, FileManager.default.fileExists(atPath: stateFile.path) {
            let checkpoint = try JSONDecoder().decode(Checkpoint.self, from: Data(contentsOf: stateFile))
            try self.endpoint.restore(checkpoint.state)
            pending = checkpoint.pending
        }
        ledgerCopy.withLock { $0 = self.endpoint.ledger }
    }

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
            .ensureTopics(HubTopics.all(prefix: connection.prefix, partitions: connection.partitions))
        let producer = try KafkaProducer(config: connection.clientConfig(clientId: clientId))
        let consumer = try KafkaConsumer(config: connection.consumerConfig(clientId: clientId, ["statistics.interval.ms": String(KafkaServiceMetrics.statisticsIntervalMs)]),
                                         groupId: groupId, rebalance: metrics.readinessListener())
        consumer.onStatistics { [metrics] in metrics.statistics($0) }
        consumer.onClientError { [log] in log.warn("kafka", ["error": $0.description]) }
        try consumer.subscribe([connection.topic("dept.\(agency.rawValue).requests")])
        log.info("started", ["instance": instanceId, "group": groupId, "pending_replies": String(pending.count)])
        defer {
            try? producer.flush()
            try? consumer.close()
            log.info("stopped", ["instance": instanceId])
        }
        while !stopping.load(ordering: .relaxed) {
            let messages = try consumer.poll(maxMessages: 500, timeout: .milliseconds(20))
            if !messages.isEmpty {
                var deadLetters: [ProducerRecord] = []
                for message in messages { receive(message, deadLetters: &deadLetters) }
                for record in deadLetters { try producer.enqueue(record) }
                try checkpoint()
                try consumer.commit(KafkaMessage.offsets(after: messages))
                metrics.committed(consumed: messages, produced: deadLetters, since: nil)
                ledgerCopy.withLock { $0 = endpoint.ledger }
            }
            try sendDueReplies(producer)
            metrics.beat()
        }
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
        pending.append(PendingReply(dueMs: due.ms, key: meta.sagaId, value: reply,
                                    headers: headers.map { [$0.name, String(decoding: $0.value ?? Data(), as: UTF8.self)] }))
    }

    private func sendDueReplies(_ producer: KafkaProducer) throws {
        let now = connection.clock.now().ms
        guard pending.contains(where: { $0.dueMs <= now }) else { return }
        let topic = connection.topic("dept.\(agency.rawValue).replies")
        let due = pending.filter { $0.dueMs <= now }
        for reply in due {
            try producer.enqueue(ProducerRecord(topic: topic, key: reply.key, value: reply.value,
                                                headers: reply.headers.map { KafkaHeader($0[0], $0[1]) }))
        }
        pending.removeAll { $0.dueMs <= now }
        counters.withLock { $0.replies += due.count }
        metrics.produced(topic: topic, count: due.count)
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
        return DeadLetter.record(for: message, group: groupId, error: why, at: connection.clock.now().date, dlqTopic: connection.topic("dlq"))
    }
}
