import Foundation
import Messaging
import Synchronization
import YishiKafka

/// What went wrong in an operator command, mapped to the CLI's exit codes.
public enum OperationsError: Error, CustomStringConvertible, Equatable {
    /// Nothing by that id/offset, or nothing matched (exit 1).
    case notFound(String)
    /// The orchestrator (or the engine) refused the request (exit 1).
    case refused(String)
    /// The broker or the orchestrator did not answer in time (exit 3).
    case unreachable(String)
    /// A record on a topic could not be read (exit 1).
    case badRecord(String)
    /// The broker refused the client's SASL credentials or TLS handshake, or the security
    /// settings cannot work (exit 2, a configuration error).
    case security(String)

    public var description: String {
        switch self {
        case .notFound(let s), .refused(let s), .unreachable(let s), .badRecord(let s), .security(let s): s
        }
    }

    /// The CLI exit code for this error.
    public var exitCode: Int32 {
        if case .unreachable = self { return ExitCode.unreachable }
        if case .security = self { return ExitCode.usage }
        return ExitCode.problems
    }
}

/// Exit codes of every `yishi` command.
public enum ExitCode {
    public static let ok: Int32 = 0
    /// Not found, refused by the orchestrator, or problems found.
    public static let problems: Int32 = 1
    public static let usage: Int32 = 2
    /// Broker or orchestrator unreachable, or no answer in time.
    public static let unreachable: Int32 = 3
}

/// Where the hub is and who is asking: the settings every operator command shares.
public final class Hub: Sendable {
    public let bootstrap: String
    public let prefix: String
    /// Operator identity, recorded with every action and every access to personal data.
    public let operatorName: String
    /// How long to wait for the broker and the orchestrator's replies (`--timeout`). With a
    /// `deadline` (the CLI's hubs) it is the whole command's budget: every wait takes what is left
    /// of it (`remaining`), so a command that makes several calls still answers within `timeout`.
    public let timeout: Duration
    /// When the command's budget ends (`timeout` after the hub was made), or nil: each wait
    /// gets the full `timeout` (long-lived hubs of tools and tests).
    public let deadline: ContinuousClock.Instant?
    /// The orchestrator's consumer group (for `lag`): `<prefix>orchestrator` unless told.
    public let orchestratorGroup: String
    let extra: [String: String]
    /// SASL and TLS settings of every client the command creates.
    public let security: KafkaSecurity
    private let partitionCounts = Mutex<[String: Int32]>([:])
    private let learned = Mutex<Int64?>(nil)

    /// The hub-clock now (Unix ms) the orchestrator last said in a reply (`OpsReply.now`), if any.
    public var hubNow: Int64? { learned.withLock { $0 } }

    /// Keeps the hub's now from an orchestrator reply.
    func learnHubNow(_ ms: Int64?) {
        guard let ms else { return }
        learned.withLock { $0 = max($0 ?? ms, ms) }
    }

    public init(bootstrap: String, prefix: String = "yishi.", operatorName: String, timeout: Duration = .seconds(10),
                orchestratorGroup: String? = nil, kafka extra: [String: String] = [:], security: KafkaSecurity = .none,
                wholeCommandBudget: Bool = false) {
        self.security = security
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.operatorName = operatorName
        self.timeout = timeout
        self.deadline = wholeCommandBudget ? ContinuousClock.now + timeout : nil
        self.orchestratorGroup = orchestratorGroup ?? HubGroups.orchestrator(prefix: prefix)
        self.extra = extra
    }

    public func topic(_ name: String) -> String { prefix + name }

    /// What is left of the command's `timeout` (at least 50 ms, so a last call still gets an answer
    /// the broker has ready); the full `timeout` without a `deadline`.
    public var remaining: Duration {
        guard let deadline else { return timeout }
        return max(.milliseconds(50), deadline - ContinuousClock.now)
    }

    /// Client settings: the hub's partitioner, librdkafka's own logging kept to errors.
    public func kafka(_ more: [String: String] = [:]) -> KafkaConfig {
        var properties = ["partitioner": "murmur2_random", "log_level": "3", "client.id": "yishi-ctl"]
        for (k, v) in extra { properties[k] = v }
        for (k, v) in more { properties[k] = v }
        return security.apply(to: KafkaConfig(bootstrapServers: bootstrap, properties))
    }

    /// Partition count of a hub topic (from cluster metadata, cached).
    public func partitions(_ name: String) throws -> Int32 {
        let topic = self.topic(name)
        if let known = partitionCounts.withLock({ $0[topic] }) { return known }
        let all: [String: TopicDescription]
        do { all = try KafkaAdmin(config: kafka()).describeTopics(timeout: remaining) } catch {
            if error.kind == .authentication || error.isConfiguration { throw OperationsError.security("\(error)") }
            // A broker that requires SASL or TLS closes a plain connection without a word.
            let hint = security.securityProtocol == "plaintext"
                ? " (no --security-protocol given: if the broker requires SASL or TLS, see \"Kafka security\" in the command's --help)" : ""
            throw OperationsError.unreachable("the broker at \(bootstrap) did not answer a metadata request within \(timeout): \(error)\(hint)")
        }
        partitionCounts.withLock { counts in for (name, d) in all { counts[name] = d.partitions } }
        guard let count = all[topic]?.partitions else {
            throw OperationsError.notFound("topic \(topic) does not exist on \(bootstrap) (wrong --prefix, or no orchestrator has created the hub's topics yet)")
        }
        return count
    }

    /// The partition a saga's records live on (every saga-keyed topic is co-partitioned).
    public func partition(ofSaga sagaId: String, topic: String = "saga-state") throws -> Int32 {
        KafkaPartitioner.partition(forKey: sagaId, partitions: try partitions(topic))
    }

    /// `/yishi/ctl/<operator>` with the operator's name made URI-safe.
    var source: String {
        let safe = operatorName.unicodeScalars.map { s in
            (s.isASCII && (CharacterSet.alphanumerics.contains(s) || "-._~".unicodeScalars.contains(s))) ? String(s) : "_"
        }.joined()
        return "/yishi/ctl/" + (safe.isEmpty ? "unknown" : safe)
    }
}

/// Reads partitions from the beginning until each reports its end (read_committed), with its
/// own assignment (no consumer group). Reading to the end-of-partition report rather than to the
/// high watermark: Tansu 0.6.0's ListOffsets can report a high watermark below the real end.
public struct TopicReader: Sendable {
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    /// Every record of `partitions` of `topic` (full name) that `keep` accepts, in offset order per partition.
    /// With `key`, only that key's records are copied out of librdkafka (a scan for one saga).
    public func read(topic: String, partitions: [Int32], from offsets: [Int32: Int64] = [:], key: String? = nil,
                     keep: (KafkaMessage) -> Bool = { _ in true }) throws -> [KafkaMessage] {
        guard !partitions.isEmpty else { return [] }
        let consumer = try KafkaConsumer(config: hub.kafka([
            "enable.partition.eof": "true",
            "fetch.max.bytes": "104857600",
            "max.partition.fetch.bytes": "52428800",
            "queued.max.messages.kbytes": "262144",
            "fetch.wait.max.ms": "10",
        ]), groupId: "yishi-ctl-reader")
        defer { try? consumer.close() }
        // Explicit start offsets: assigning the logical BEGINNING before librdkafka knows the
        // partition's leader costs a fixed 500 ms offset-query retry; the low watermark does not.
        var start: [Int32: Int64] = [:]
        for p in partitions {
            if let given = offsets[p] { start[p] = given; continue }
            do { start[p] = try consumer.watermarks(TopicPartition(topic, p), timeout: hub.remaining).low } catch {
                throw OperationsError.unreachable("the broker did not give the offsets of \(topic)[\(p)] within \(hub.timeout): \(error)")
            }
        }
        let ended = Mutex<Set<Int32>>([])
        consumer.onPartitionEnd { end in ended.withLock { _ = $0.insert(end.partition) } }
        try consumer.assign(partitions.map { TopicPartitionOffset(topic, $0, start[$0]!) })
        var kept: [KafkaMessage] = []
        let keyBytes = key.map { Array($0.utf8) }
        let deadline = hub.deadline ?? ContinuousClock.now + hub.timeout
        while ended.withLock({ $0.count }) < partitions.count {
            guard ContinuousClock.now < deadline else {
                let missing = partitions.filter { p in !ended.withLock { $0.contains(p) } }
                throw OperationsError.unreachable("reading \(topic) partitions \(missing) did not reach their end within \(hub.timeout)")
            }
            // A short wait: the batch call waits for a full batch or its timeout, whichever first.
            let batch = try keyBytes.map { try consumer.poll(key: $0, maxMessages: 5000, timeout: .milliseconds(5)) }
                ?? consumer.poll(maxMessages: 5000, timeout: .milliseconds(5))
            for message in batch where keep(message) {
                kept.append(message)
            }
        }
        return kept
    }
}

/// Writes `ops-audit` records: who saw personal data unmasked, who replayed dead letters.
public struct AccessLog {
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    public enum What: String, Codable, Sendable { case revealPII = "reveal-pii", dlqReplay = "dlq-replay" }

    public struct Entry: Codable, Sendable, Equatable {
        public var by: String
        public var at: String
        public var what: What
        public var command: String
        public var sagaIds: [String]?
        public var records: [String]?
        /// Header repairs of a replay (`remove NAME`, `set NAME=VALUE`).
        public var headerChanges: [String]?
    }

    /// Writes one record and waits for the broker's acknowledgement; throws when it cannot,
    /// so that nothing is revealed or replayed without its record.
    public func record(_ what: What, command: [String], sagaIds: [String] = [], records: [String] = [], headerChanges: [String] = []) throws {
        let now = Date()
        let entry = Entry(by: hub.operatorName, at: RFC3339.format(now), what: what,
                          command: PersonalData.maskText(command.joined(separator: " ")),
                          sagaIds: sagaIds.isEmpty ? nil : sagaIds, records: records.isEmpty ? nil : records,
                          headerChanges: headerChanges.isEmpty ? nil : headerChanges)
        let envelope = Envelope(source: hub.source, type: MessageType.opsAudit, time: now, subject: hub.operatorName)
        let producer = try KafkaProducer(config: hub.kafka(["message.timeout.ms": String(max(1000, Int(hub.remaining.seconds * 1000)))]))
        try ensureTopic()
        let record = try envelope.record(topic: hub.topic("ops-audit"), key: hub.operatorName, payload: entry)
        do { try RecordSizeLimit(config: hub.kafka()).check(record) } catch {
            throw OperationsError.refused("the access record would not fit (\(error)); refusing to \(what == .revealPII ? "reveal personal data" : "replay") "
                                          + "so many at once: narrow the filter or --limit")
        }
        try producer.enqueue(record)
        try producer.flush(timeout: hub.remaining)
        let counts = producer.deliveryCounts
        guard counts.failed == 0, counts.delivered == 1 else {
            throw OperationsError.unreachable("could not write the access record to \(hub.topic("ops-audit")); refusing to \(what == .revealPII ? "reveal personal data" : "replay")")
        }
    }

    /// Older hubs lack the topic: create it like the orchestrator would.
    private func ensureTopic() throws {
        if (try? hub.partitions("ops-audit")) != nil { return }
        let partitions = try hub.partitions("saga-state")
        do {
            try KafkaAdmin(config: hub.kafka()).ensureTopics([TopicSpec(hub.topic("ops-audit"), partitions: partitions)], timeout: hub.remaining)
        } catch {
            throw OperationsError.unreachable("could not create \(hub.topic("ops-audit")): \(error)")
        }
    }
}
