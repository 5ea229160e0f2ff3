import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// `dlq list|show|replay`: dead letters read from `<prefix>dlq`, personal data masked unless
/// revealed, and replayed (original key, value and headers) to the topic they came from.
public struct DeadLetters {
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    /// A dead letter as operators see it. `id` is `<dlq partition>:<dlq offset>`.
    public struct Entry: Encodable {
        public var id: String
        public var partition: Int32
        public var offset: Int64
        public var originalTopic: String
        public var originalPartition: Int32
        public var originalOffset: Int64
        public var errorClass: String
        public var errorMessage: String
        public var errorPath: String?
        public var consumerGroup: String
        public var failedAt: String
        public var key: String?
        /// `show` only: original headers and payload.
        public var headers: [String: String]?
        public var payload: JSONValue?
        public var payloadText: String?
        /// Set when the record could not be read as a dead letter.
        public var problem: String?
        /// What the DLQ copy lacks (`value`, `headers`, `key`): cut to fit message.max.bytes; `replay` reads the original.
        public var truncated: [String]?
        /// The original record's size (bytes), for a cut copy.
        public var originalSize: Int?

        init(id: String, partition: Int32, offset: Int64) {
            self.id = id; self.partition = partition; self.offset = offset
            originalTopic = "?"; originalPartition = -1; originalOffset = -1; errorClass = "?"; errorMessage = ""
            consumerGroup = "?"; failedAt = "?"
        }

        var origin: String { "\(originalTopic)[\(originalPartition)]@\(originalOffset)" }
    }

    /// Every record on the DLQ (all partitions), oldest first per partition.
    public func read() throws -> [KafkaMessage] {
        let count = try hub.partitions("dlq")
        return try TopicReader(hub: hub).read(topic: hub.topic("dlq"), partitions: Array(0..<count))
            .sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
    }

    public static func entry(_ message: KafkaMessage, detail: Bool, revealPII: Bool) -> Entry {
        func mask(_ text: String) -> String { revealPII ? text : PersonalData.maskText(text) }
        var e = Entry(id: "\(message.partition):\(message.offset)", partition: message.partition, offset: message.offset)
        e.key = message.keyString.map(mask)
        do {
            let letter = try DeadLetter(message)
            e.originalTopic = letter.originalTopic
            e.originalPartition = letter.originalPartition
            e.originalOffset = letter.originalOffset
            e.errorClass = letter.errorClass
            e.errorMessage = mask(letter.errorMessage)
            e.errorPath = letter.errorPath
            e.consumerGroup = letter.consumerGroup
            // Hub time (every service stamps dead letters on the hub clock), shown in the
            // calendars' zone, Asia/Shanghai (+08:00), like every other time the CLI prints.
            e.failedAt = Instant(ms: Int64((letter.failedAt.timeIntervalSince1970 * 1000).rounded())).description
            if !letter.truncated.isEmpty { e.truncated = letter.truncated; e.originalSize = letter.originalSize }
            if detail {
                e.headers = Dictionary(letter.headers.map { ($0.name, mask($0.value.map { String(decoding: $0, as: UTF8.self) } ?? "")) }) { _, b in b }
                if let value = letter.value {
                    if let json = try? JSONValue.parse(value) { e.payload = revealPII ? json : PersonalData.mask(json) }
                    else { e.payloadText = mask(String(decoding: value, as: UTF8.self)) }
                }
            }
        } catch {
            e.problem = "\(error)"
        }
        return e
    }

    /// `id` as `P:OFFSET` (or a bare offset when the DLQ has one partition).
    public func find(_ id: String, in messages: [KafkaMessage]) throws -> KafkaMessage {
        let parts = id.split(separator: ":")
        let wanted: (Int32, Int64)?
        if parts.count == 2, let p = Int32(parts[0]), let o = Int64(parts[1]) { wanted = (p, o) }
        else if parts.count == 1, let o = Int64(parts[0]), try hub.partitions("dlq") == 1 { wanted = (0, o) }
        else { wanted = nil }
        guard let (p, o) = wanted else { throw OperationsError.notFound("'\(id)' is not a dead-letter id (want PARTITION:OFFSET, as `yishi dlq list` shows)") }
        guard let m = messages.first(where: { $0.partition == p && $0.offset == o }) else {
            throw OperationsError.notFound("no dead letter at \(hub.topic("dlq"))[\(p)]@\(o)")
        }
        return m
    }

    /// Header repairs an operator asks for on replay (`--remove-header NAME`, `--set-header
    /// NAME=VALUE`): removals first, then each set replaces every header of that name. Names are
    /// exact (Kafka header names are case-sensitive). `yishi.dlq.*` headers cannot be edited.
    public struct HeaderEdits: Sendable, Equatable {
        public var remove: [String] = []
        public var set: [(name: String, value: String)] = []
        public init(remove: [String] = [], set: [(name: String, value: String)] = []) { self.remove = remove; self.set = set }
        public var isEmpty: Bool { remove.isEmpty && set.isEmpty }
        public static func == (a: HeaderEdits, b: HeaderEdits) -> Bool {
            a.remove == b.remove && a.set.map(\.name) == b.set.map(\.name) && a.set.map(\.value) == b.set.map(\.value)
        }

        /// `headers` with the edits applied (order kept; set headers appended).
        public func apply(to headers: [KafkaHeader]) -> [KafkaHeader] {
            let dropped = Set(remove).union(set.map(\.name))
            return headers.filter { !dropped.contains($0.name) } + set.map { KafkaHeader($0.name, $0.value) }
        }

        /// For the audit record: `remove NAME`, `set NAME=VALUE` (value masked like the command line).
        public var descriptions: [String] {
            remove.map { "remove \($0)" } + set.map { "set \($0.name)=\(PersonalData.maskText($0.value))" }
        }
    }

    /// Sends each dead letter's original record back to its origin topic (same key, value and
    /// headers, marked `yishi.dlq.replayed` and `yishi.dlq.replayed.by`, with `edits` applied to
    /// the original headers) and waits for the broker.
    ///
    /// The two `replayed` headers make a record that just fitted `message.max.bytes` a few dozen
    /// bytes too large for the same limit: the replay producer's limit is raised to the largest
    /// replay (the broker's own limit still applies).
    public func replay(_ messages: [KafkaMessage], edits: HeaderEdits = HeaderEdits()) throws -> [String] {
        var records: [ProducerRecord] = []
        var done: [String] = []
        for message in messages {
            var letter: DeadLetter
            do { letter = try DeadLetter(message) } catch {
                throw OperationsError.badRecord("cannot replay \(hub.topic("dlq"))[\(message.partition)]@\(message.offset): \(error)")
            }
            if !letter.truncated.isEmpty { letter = try whole(letter, dlq: message) }
            letter.headers = edits.apply(to: letter.headers)
            var record = letter.replayRecord(from: TopicPartitionOffset(message.topic, message.partition, message.offset))
            record.headers.append(KafkaHeader(DeadLetter.Header.replayedBy, hub.operatorName))
            records.append(record)
            done.append("\(message.topic)[\(message.partition)]@\(message.offset)")
        }
        var config = hub.kafka()
        let largest = records.map(RecordSizeLimit.wireSize).max() ?? 0
        if largest > RecordSizeLimit(config: config).maxBytes { config["message.max.bytes"] = String(largest) }
        let producer = try KafkaProducer(config: config)
        for record in records { try producer.enqueue(record) }
        try producer.flush(timeout: hub.remaining)
        let counts = producer.deliveryCounts
        guard counts.failed == 0, counts.delivered == messages.count else {
            throw OperationsError.unreachable("only \(counts.delivered) of \(messages.count) replays were acknowledged by the broker")
        }
        return done
    }
}

extension DeadLetters {
    /// A dead letter cut to fit `message.max.bytes` holds only the start of the original: the
    /// original itself is read back from where it came from, as long as that topic keeps it.
    func whole(_ letter: DeadLetter, dlq message: KafkaMessage) throws -> DeadLetter {
        let origin = letter.origin
        let found = try TopicReader(hub: hub).read(topic: origin.topic, partitions: [origin.partition],
                                                   from: [origin.partition: origin.offset]) { $0.offset == origin.offset }
        guard let original = found.first else {
            throw OperationsError.notFound("dead letter \(hub.topic("dlq"))[\(message.partition)]@\(message.offset) is a cut copy "
                + "(\(letter.truncated.joined(separator: ", ")) cut to fit message.max.bytes) and its original \(origin) is no longer "
                + "on its topic (retention): it cannot be replayed whole")
        }
        var whole = letter
        whole.key = original.key
        whole.value = original.value
        whole.headers = original.headers.filter { !$0.name.hasPrefix(DeadLetter.Header.prefix) }
        whole.truncated = []
        return whole
    }
}

extension Render {
    public static func deadLetters(_ entries: [DeadLetters.Entry], style: Style) -> String {
        var table = Table(["ID", "ORIGIN", "CLASS", "FAILED AT (hub time, +08:00)", "KEY", "MESSAGE"])
        for e in entries {
            table.add([Cell(e.id), Cell(e.problem == nil ? e.origin : "?"), Cell(e.errorClass, .red), Cell(e.failedAt), Cell(e.key ?? "-"),
                       Cell(e.problem ?? String(e.errorMessage.prefix(100)))])
        }
        return table.render(style) + "\n\(entries.count) dead letter(s); `yishi dlq show ID` for one, `yishi dlq replay ID…` to send back"
    }

    public static func deadLetter(_ e: DeadLetters.Entry, style: Style) -> String {
        var out = [style.paint("Dead letter \(e.id)", .bold) + " on the DLQ"]
        if let problem = e.problem { out.append("unreadable: \(problem)"); return out.joined(separator: "\n") }
        out.append("origin     \(e.origin), consumer group \(e.consumerGroup)")
        out.append("failed at  \(e.failedAt) (hub time, Asia/Shanghai)")
        out.append("class      " + style.paint(e.errorClass, .red) + (e.errorPath.map { " at \($0)" } ?? ""))
        out.append("message    \(e.errorMessage)")
        if let cut = e.truncated {
            out.append("cut        \(cut.joined(separator: ", ")) cut to fit message.max.bytes (original \(e.originalSize.map(String.init) ?? "?") bytes, "
                       + "whole at \(e.origin) while that topic keeps it; replay sends the original)")
        }
        out.append("key        \(e.key ?? "-")")
        out.append("headers")
        for (name, value) in (e.headers ?? [:]).sorted(by: { $0.key < $1.key }) { out.append("  \(name): \(value)") }
        out.append("payload")
        if let payload = e.payload { out.append(payload.text(pretty: true)) } else { out.append(e.payloadText ?? "(none)") }
        return out.joined(separator: "\n")
    }
}
