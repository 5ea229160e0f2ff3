import Foundation
import HubHTTP
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// One agency's adapter on Kafka: exactly-once consume-transform-produce between the hub's
/// canonical topics and the department's native ones.
///
///     commands.<agency>      → dept.<agency>.requests   (canonical command → native request)
///     dept.<agency>.replies  → dept.<agency>.requests   (next native call of a sequence)
///                            → events.<agency>          (native reply → canonical event)
///
/// Each poll's records, their outputs and the consumed offsets go in one transaction, so a
/// SIGKILL at any moment neither loses a command nor sends a department request twice.
/// Records that fail their checks go to `dlq` in the same transaction.
public final class AdapterService: @unchecked Sendable {
    // @unchecked: consumer and producer are used by the loop thread only.
    public let agency: String
    /// Every agency with a catalogue beside this one's (`adapters/*/catalogue.json`): the topics ensured at start.
    let agencies: [String]
    let connection: HubConnection
    let instanceId: String
    let translator: Translator
    let registry: SchemaRegistry
    let log: JSONLog
    private let stopping = Atomic<Bool>(false)
    private let counters = Mutex(Counters())

    public struct Counters: Sendable, Equatable {
        public var commands = 0
        public var replies = 0
        public var nativeRequests = 0
        public var events = 0
        public var deadLetters = 0
        public var transactions = 0
        public var aborted = 0
        /// The transactional producer's reactions to librdkafka's error classes (aborts, retries, rebuilds).
        public var kafka = TransactionCounts()
    }

    public var groupId: String { HubGroups.adapter(prefix: connection.prefix, agency: agency) }
    public var counts: Counters { counters.withLock { $0 } }
    /// Prometheus metrics and health (`--http`); replace before `run`.
    public lazy var metrics = KafkaServiceMetrics(service: "adapter." + agency, dlqTopic: connection.topic("dlq"))

    /// `repository`: the directory holding `adapters/` (catalogues, mappings, native schemas) and `schemas/`.
    public init(agency: String, connection: HubConnection, instanceId: String, repository: URL,
                log: JSONLog? = nil) throws {
        self.agency = agency
        self.connection = connection
        self.instanceId = instanceId
        self.log = log ?? JSONLog(component: "adapter." + agency)
        outboundGuard = OutboundGuard(connection: connection, group: HubGroups.adapter(prefix: connection.prefix, agency: agency))
        let adapters = repository.appendingPathComponent("adapters")
        let catalogues = try CatalogueSet.load(directory: adapters)
        agencies = catalogues.ids
        guard let catalogue = catalogues.agencies[agency] else {
            throw MappingError(adapters.appendingPathComponent(agency).path, "no catalogue.json for agency '\(agency)'")
        }
        let mapping = try AgencyMapping.load(adapters.appendingPathComponent(agency).appendingPathComponent("mapping.json"), catalogue: catalogue)
        translator = Translator(mapping: mapping, catalogue: catalogue)
        var registry = try SchemaRegistry.load(directory: repository.appendingPathComponent("schemas"))
        try registry.loadNative(directory: adapters.appendingPathComponent(agency).appendingPathComponent("native"), agency: agency)
        self.registry = registry
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }

    var commandsTopic: String { connection.topic("commands.\(agency)") }
    var repliesTopic: String { connection.topic("dept.\(agency).replies") }
    var requestsTopic: String { connection.topic("dept.\(agency).requests") }
    var eventsTopic: String { connection.topic("events.\(agency)") }
    var source: String { "/yishi/adapters/\(agency)" }

    /// Blocks until `stop()` or a fatal error (then a supervisor restarts the process).
    public func run() throws {
        let clientId = "yishi-adapter-\(agency)-\(instanceId)"
        // Any process of the hub may start first: the topics exist once one of them ran.
        try KafkaAdmin(config: connection.clientConfig(clientId: clientId + "-admin"))
            .ensureTopics(HubTopics.all(prefix: connection.prefix, partitions: connection.partitions, agencies: agencies))
        let producer = try TransactionalProducer(config: connection.clientConfig(clientId: clientId, ["transaction.timeout.ms": "10000"]),
                                                 transactionalId: "\(groupId)-\(instanceId)", policy: connection.transactionPolicy,
                                                 onEvent: { [log] in log.warn("transaction", $0.logFields) })
        let consumer = try KafkaConsumer(config: connection.consumerConfig(clientId: clientId, ["statistics.interval.ms": String(KafkaServiceMetrics.statisticsIntervalMs)]),
                                         groupId: groupId, rebalance: metrics.readinessListener())
        consumer.onStatistics { [metrics] in metrics.statistics($0) }
        consumer.onClientError { [log] in log.warn("kafka", ["error": $0.description]) }
        try consumer.subscribe([commandsTopic, repliesTopic])
        log.info("started", ["instance": instanceId, "group": groupId])
        defer {
            try? consumer.close()
            let k = producer.counts
            log.info("stopped", ["instance": instanceId, "commits": String(k.commits), "aborts": String(k.aborts),
                                 "retries": String(k.retries), "producer_rebuilds": String(k.rebuilds)])
        }
        while !stopping.load(ordering: .relaxed) {
            let messages = try consumer.poll(maxMessages: 500, timeout: .milliseconds(50))
            metrics.beat()
            guard !messages.isEmpty else { continue }
            let commitStart = ContinuousClock.now
            var out: [ProducerRecord] = []
            var tally = Counters()
            for message in messages { out += guarded(message, tally: &tally) }
            // Fenced by a newer instance with our id, or no commit for the policy's outage limit: thrown;
            // the process exits and its supervisor restarts it. Every other error class is handled inside.
            let outcome = try producer.commitBatch(out, consumed: messages, consumer: consumer)
            counters.withLock { $0.kafka = producer.counts }
            guard outcome == .committed else {
                // The adapter keeps no state of its own: reading the batch again is all it takes.
                log.warn("transaction not committed; the batch is read again", ["outcome": "\(outcome)"])
                counters.withLock { $0.aborted += 1 }
                metrics.abortedTransaction()
                continue
            }
            metrics.committed(consumed: messages, produced: out, since: commitStart)
            counters.withLock {
                $0.commands += tally.commands; $0.replies += tally.replies; $0.nativeRequests += tally.nativeRequests
                $0.events += tally.events; $0.deadLetters += tally.deadLetters; $0.transactions += 1
            }
        }
    }

    /// What one consumed record leads to, whole or not at all: when a record it leads to would
    /// not fit `message.max.bytes`, only its dead letter (class `too-large`, naming that record).
    func guarded(_ message: KafkaMessage, tally: inout Counters) -> [ProducerRecord] {
        var out: [ProducerRecord] = []
        var mine = Counters()
        transform(message, into: &out, tally: &mine)
        let (records, why) = outboundGuard.guarded(out, from: message, at: connection.clock.now().date)
        if let why {
            log.warn("dead-letter", ["topic": message.topic, "partition": String(message.partition), "offset": String(message.offset),
                                     "class": why.errorClass.rawValue, "reason": why.message])
            mine = Counters(commands: mine.commands, replies: mine.replies, deadLetters: 1)
        }
        tally.commands += mine.commands; tally.replies += mine.replies; tally.nativeRequests += mine.nativeRequests
        tally.events += mine.events; tally.deadLetters += mine.deadLetters
        return records
    }

    /// The size check of everything this adapter writes (its producer's `message.max.bytes`).
    let outboundGuard: OutboundGuard

    /// The records one consumed record leads to (pure apart from the clock).
    func transform(_ message: KafkaMessage, into out: inout [ProducerRecord], tally: inout Counters) {
        let isCommand = message.topic == commandsTopic
        let topic = MessageCheck.unprefixed(message.topic, prefix: connection.prefix) ?? message.topic
        let validated: ValidatedMessage
        switch MessageCheck.validate(message: message, topic: topic, registry: registry, policy: .standard) {
        case .failure(let why): return deadLetter(message, why, into: &out, tally: &tally)
        case .success(let v): validated = v
        }
        if isCommand {
            tally.commands += 1
            emit(translator.start(command: validated.json), trace: validated.envelope.traceParent, into: &out, tally: &tally)
            return
        }
        tally.replies += 1
        guard let header = message.headers.first(where: { $0.name == AdapterContext.header })?.value else {
            let found = Envelope.lookalike(of: AdapterContext.header, in: message.headers).map { " (found '\($0)' instead: header names are case-sensitive)" } ?? ""
            return deadLetter(message, MessageRejection(.missingHeader, "reply without \(AdapterContext.header): the department must echo it" + found,
                                                        header: AdapterContext.header), into: &out, tally: &tally)
        }
        let context: AdapterContext
        do { context = try JSONDecoder().decode(AdapterContext.self, from: header) } catch {
            return deadLetter(message, MessageRejection(.badHeader, "\(AdapterContext.header) is not an adapter context: \(error)",
                                                        header: AdapterContext.header), into: &out, tally: &tally)
        }
        do {
            emit(try translator.finish(reply: validated.json, context: context), trace: validated.envelope.traceParent, into: &out, tally: &tally)
        } catch {
            deadLetter(message, MessageRejection(.unprocessable, error.message, path: error.at), into: &out, tally: &tally)
        }
    }

    private func emit(_ outcome: Outcome, trace: TraceParent?, into out: inout [ProducerRecord], tally: inout Counters) {
        switch outcome {
        case .request(let request): out.append(record(request, trace: trace)); tally.nativeRequests += 1
        case .event(let event): out.append(record(event, trace: trace)); tally.events += 1
        }
    }

    private func deadLetter(_ message: KafkaMessage, _ why: MessageRejection, into out: inout [ProducerRecord], tally: inout Counters) {
        tally.deadLetters += 1
        out.append(outboundGuard.deadLetter(message, why, at: connection.clock.now().date))
        log.warn("dead-letter", ["topic": message.topic, "partition": String(message.partition), "offset": String(message.offset),
                                 "class": why.errorClass.rawValue])
    }

    private func record(_ request: NativeRequest, trace: TraceParent?) -> ProducerRecord {
        Self.requestRecord(request, agency: agency, topic: requestsTopic, time: connection.clock.now().date, trace: trace?.child())
    }

    /// The record of a native request on `dept.<agency>.requests` (docs/integrating-a-department.md,
    /// "Headers"): key the saga id; CloudEvents headers with `ce_source` `/yishi/adapters/<agency>`,
    /// `ce_type` `cn.gov.yishi.dept.<agency>.<NATIVE>.request`, `ce_time` the hub clock's `time`;
    /// `traceparent`; the saga coordinates; and `yishi-adapter-context` (JSON of `request.context`).
    public static func requestRecord(_ request: NativeRequest, agency: String, topic: String, time: Date, trace: TraceParent?) -> ProducerRecord {
        let c = request.context
        let envelope = Envelope(source: "/yishi/adapters/\(agency)", type: MessageType.native(agency: agency, message: request.action + ".request"),
                                time: time, subject: c.sagaId, traceParent: trace,
                                sagaId: c.sagaId, step: c.step, attempt: c.attempt, requestId: request.requestId)
        let context = (try? JSONEncoder().encode(c)) ?? Data()
        var record = envelope.record(topic: topic, key: c.sagaId, data: Data(request.message.text().utf8))
        record.headers.append(KafkaHeader(AdapterContext.header, context))
        return record
    }

    private func record(_ event: CanonicalEvent, trace: TraceParent?) -> ProducerRecord {
        let c = event.context
        let envelope = Envelope(source: source, type: event.type, time: connection.clock.now().date, subject: c.sagaId,
                                traceParent: trace?.child(), sagaId: c.sagaId, step: c.step, attempt: c.attempt, requestId: c.requestId)
        return envelope.record(topic: eventsTopic, key: c.sagaId, data: Data(event.payload.text().utf8))
    }
}
