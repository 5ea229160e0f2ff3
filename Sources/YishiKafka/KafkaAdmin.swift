import CRdKafka

/// A topic to create: partitions, replication and topic configs such as
/// `cleanup.policy=compact`.
public struct TopicSpec: Sendable, Equatable {
    public var name: String
    public var partitions: Int32
    public var replicationFactor: Int32
    public var configs: [String: String]

    public init(_ name: String, partitions: Int32, replicationFactor: Int32 = 1, configs: [String: String] = [:]) {
        self.name = name; self.partitions = partitions; self.replicationFactor = replicationFactor; self.configs = configs
    }

    public var isCompacted: Bool { configs["cleanup.policy"] == "compact" }
}

public struct TopicDescription: Sendable, Equatable {
    public let name: String
    public let partitions: Int32
}

/// Topic administration. Calls block the calling thread (they are rare and
/// bounded by `timeout`); use the async variants from Swift concurrency.
public final class KafkaAdmin: Sendable {
    private let handle: ClientHandle
    private let context: AdminContext

    /// - Throws: `.configuration` for a rejected property (e.g. an `ssl.ca.location` that
    ///   cannot be read: librdkafka loads TLS files here).
    public init(config: KafkaConfig) throws(KafkaError) {
        let conf = try config.makeNative()
        let context = AdminContext(security: SecurityLatch(config))
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_error_cb(conf) { _, code, reason, opaque in
            guard let opaque else { return }
            let error = KafkaError(code: rd_kafka_resp_err_t(code), operation: "admin", message: reason.map { String(cString: $0) })
            _ = Unmanaged<AdminContext>.fromOpaque(opaque).takeUnretainedValue().security.observe(error)
        }
        handle = try ClientHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        self.context = context
    }

    deinit { withExtendedLifetime(context) {} }

    /// The broker's refusal of this client's credentials or TLS handshake, once reported.
    public var securityFailure: KafkaError? { context.security.current }

    /// Serves librdkafka's error callback and throws a SASL or TLS refusal (`.authentication`).
    private func checkSecurity() throws(KafkaError) {
        rd_kafka_poll(handle.rk.pointer, 0)
        try context.security.check()
    }

    /// Creates topics; returns the per-topic outcome (nil = created).
    public func createTopics(_ specs: [TopicSpec], timeout: Duration = .seconds(30)) throws(KafkaError) -> [String: KafkaError?] {
        guard !specs.isEmpty else { return [:] }
        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for spec in specs {
            guard let topic = rd_kafka_NewTopic_new(spec.name, spec.partitions, spec.replicationFactor, &errstr, errstr.count) else {
                throw KafkaError(kind: .other, code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, name: "_INVALID_ARG",
                                 message: string(fromBuffer: errstr), operation: "create topic \(spec.name)")
            }
            newTopics.append(topic)
            for (key, value) in spec.configs.sorted(by: { $0.key < $1.key }) {
                try check(rd_kafka_NewTopic_set_config(topic, key, value), "create topic \(spec.name) config \(key)")
            }
        }
        return try withAdminResult(timeout: timeout, operation: "createTopics") { (rk, options, queue) in
            rd_kafka_CreateTopics(rk, &newTopics, newTopics.count, options, queue)
        } read: { event in
            var count = 0
            let results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count)
            var outcome: [String: KafkaError?] = [:]
            for i in 0..<count {
                let result = results![i]
                let name = String(cString: rd_kafka_topic_result_name(result))
                let code = rd_kafka_topic_result_error(result)
                outcome[name] = code == RD_KAFKA_RESP_ERR_NO_ERROR ? nil
                    : KafkaError(code: code, operation: "create topic \(name)",
                                 message: rd_kafka_topic_result_error_string(result).map { String(cString: $0) })
            }
            return outcome
        }
    }

    /// Creates the topics that do not exist yet and checks that existing ones
    /// have the expected partition count. Safe to call on every start.
    public func ensureTopics(_ specs: [TopicSpec], timeout: Duration = .seconds(30)) throws(KafkaError) {
        let existing = try describeTopics(timeout: timeout)
        let missing = specs.filter { existing[$0.name] == nil }
        for (_, outcome) in try createTopics(missing, timeout: timeout) {
            if let error = outcome, error.code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue { throw error }
        }
        for spec in specs {
            if let have = existing[spec.name], have.partitions != spec.partitions {
                throw KafkaError(kind: .other, code: RD_KAFKA_RESP_ERR_INVALID_PARTITIONS.rawValue, name: "INVALID_PARTITIONS",
                                 message: "topic \(spec.name) has \(have.partitions) partitions, the hub expects \(spec.partitions)",
                                 operation: "ensureTopics")
            }
        }
    }

    /// All topics the cluster knows, by name.
    /// Asks in slices of at most 250 ms so that a SASL or TLS refusal ends the wait at once
    /// with `.authentication` (naming the broker, mechanism and user) instead of a time-out.
    public func describeTopics(timeout: Duration = .seconds(10)) throws(KafkaError) -> [String: TopicDescription] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let deadline = ContinuousClock.now + timeout
        while true {
            try checkSecurity()
            let slice = min(max(deadline - .now, .milliseconds(1)), .milliseconds(250))
            let code = rd_kafka_metadata(handle.rk.pointer, 1, nil, &metadata, slice.milliseconds)
            if code == RD_KAFKA_RESP_ERR_NO_ERROR { break }
            try checkSecurity()
            let retry = code == RD_KAFKA_RESP_ERR__TIMED_OUT || code == RD_KAFKA_RESP_ERR__TRANSPORT
            guard retry, ContinuousClock.now < deadline else { throw KafkaError(code: code, operation: "metadata") }
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var topics: [String: TopicDescription] = [:]
        let md = metadata!.pointee
        for i in 0..<Int(md.topic_cnt) {
            let topic = md.topics[i]
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            let name = String(cString: topic.topic)
            topics[name] = TopicDescription(name: name, partitions: topic.partition_cnt)
        }
        return topics
    }

    /// A topic's configuration entries (DescribeConfigs).
    public func topicConfig(_ topic: String, timeout: Duration = .seconds(10)) throws(KafkaError) -> [String: String] {
        var resources: [OpaquePointer?] = [rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic)]
        defer { rd_kafka_ConfigResource_destroy(resources[0]) }
        return try withAdminResult(timeout: timeout, operation: "describeConfigs \(topic)") { (rk, options, queue) in
            rd_kafka_DescribeConfigs(rk, &resources, 1, options, queue)
        } read: { event throws(KafkaError) in
            var count = 0
            let results = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(event), &count)
            guard count > 0, let resource = results?[0] else { return [:] }
            try check(rd_kafka_ConfigResource_error(resource), "describeConfigs \(topic)")
            var entryCount = 0
            let entries = rd_kafka_ConfigResource_configs(resource, &entryCount)
            var configs: [String: String] = [:]
            for i in 0..<entryCount {
                let entry = entries![i]
                if let value = rd_kafka_ConfigEntry_value(entry) {
                    configs[String(cString: rd_kafka_ConfigEntry_name(entry))] = String(cString: value)
                }
            }
            return configs
        }
    }

    public func ensureTopics(_ specs: [TopicSpec]) async throws {
        try await offloadBlocking("yishi.admin") { [self] in try self.ensureTopics(specs, timeout: .seconds(30)) }
    }

    /// Runs one admin request on a private queue and reads its result event.
    func withAdminResult<T>(timeout: Duration, operation: String,
                                    send: (OpaquePointer, OpaquePointer, OpaquePointer) -> Void,
                                    read: (OpaquePointer) throws(KafkaError) -> T) throws(KafkaError) -> T {
        let rk = handle.rk.pointer
        let queue = rd_kafka_queue_new(rk)!
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY)!
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errstr = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeout.milliseconds, &errstr, errstr.count)
        send(rk, options, queue)
        // In slices, so that a SASL or TLS refusal ends the wait at once.
        let deadline = ContinuousClock.now + timeout + .seconds(1)
        var result: OpaquePointer?
        while result == nil {
            try checkSecurity()
            guard ContinuousClock.now < deadline else { throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT, operation: operation) }
            result = rd_kafka_queue_poll(queue, 200)
        }
        let event = result!
        defer { rd_kafka_event_destroy(event) }
        let code = rd_kafka_event_error(event)
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: code, operation: operation, message: rd_kafka_event_error_string(event).map { String(cString: $0) })
        }
        return try read(event)
    }
}

/// Admin state reached from librdkafka's error callback.
final class AdminContext: Sendable {
    let security: SecurityLatch
    init(security: SecurityLatch) { self.security = security }
}

/// The hub's topics (docs/message-catalogue.md). Every saga-keyed topic has the same
/// partition count so that one instance owns all of a saga's messages.
public enum HubTopics {
    /// The five agencies of enterprise-opening v1, for scripted tests and benchmarks only. The
    /// services derive their agency list from `adapters/*/catalogue.json` (`CatalogueSet.ids`)
    /// and pass it as `agencies`.
    public static let defaultAgencies = ["business-registration", "seal-engraving", "tax", "social-security", "bank"]

    /// Every hub topic for `agencies` (the services pass `CatalogueSet.ids`: every
    /// `adapters/<agency>/catalogue.json`), saga-keyed topics with `partitions` partitions.
    public static func all(prefix: String = "yishi.", partitions: Int32, replicationFactor: Int32 = 1,
                           agencies: [String]) -> [TopicSpec] {
        let compact = ["cleanup.policy": "compact"]
        var names = ["applications", "progress", "ops", "ops-replies", "ops-audit", "dlq"]
        for agency in agencies {
            names += ["commands.\(agency)", "dept.\(agency).requests", "dept.\(agency).replies", "events.\(agency)"]
        }
        var specs = names.map { TopicSpec(prefix + $0, partitions: partitions, replicationFactor: replicationFactor) }
        // The audit trail is the record of every saga ever run (全程留痕): kept, never deleted by time.
        let keep = ["retention.ms": "-1"]
        specs.append(TopicSpec(prefix + "saga-events", partitions: partitions, replicationFactor: replicationFactor, configs: keep))
        specs.append(TopicSpec(prefix + "audit-heads", partitions: partitions, replicationFactor: replicationFactor, configs: keep))
        // Snapshots of the orchestrator's live set (partition-aligned with saga-state); only the newest matters.
        specs.append(TopicSpec(prefix + "saga-snapshots", partitions: partitions, replicationFactor: replicationFactor,
                               configs: ["cleanup.policy": "delete", "retention.ms": String(7 * 24 * 3600 * 1000)]))
        specs.append(TopicSpec(prefix + "saga-state", partitions: partitions, replicationFactor: replicationFactor, configs: compact))
        specs.append(TopicSpec(prefix + "licences", partitions: partitions, replicationFactor: replicationFactor, configs: compact))
        return specs
    }
}

/// The hub's consumer groups, named under the topic prefix so that two hubs on one cluster
/// never share one; the services use these names and `yishi lag` looks them up.
public enum HubGroups {
    public static func orchestrator(prefix: String) -> String { prefix + "orchestrator" }
    /// An agency's adapter, on `commands.<agency>` and `dept.<agency>.replies`.
    public static func adapter(prefix: String, agency: String) -> String { prefix + "adapter." + agency }
    /// A department gateway on `dept.<agency>.requests` (the bundled department services).
    public static func department(prefix: String, agency: String) -> String { prefix + "dept." + agency }
}
