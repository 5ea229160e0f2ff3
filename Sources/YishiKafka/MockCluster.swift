import CRdKafka

/// librdkafka's in-process mock cluster, for fault injection: failing
/// requests, brokers going down and up, added round-trip time.
///
/// Not a broker to prove semantics with: it has no Admin API, writes no
/// transaction markers and ignores the isolation level (docs/kafka-layer.md).
public final class MockCluster: Sendable {
    private let host: ClientHandle
    private let cluster: MockPointer
    public let bootstrapServers: String

    public init(brokers: Int32 = 3) throws(KafkaError) {
        // The cluster lives inside an rd_kafka_t that it is created from.
        let conf = try KafkaConfig(properties: ["log_level": "3"]).makeNative()
        host = try ClientHandle(type: RD_KAFKA_PRODUCER, conf: conf)
        guard let cluster = rd_kafka_mock_cluster_new(host.rk.pointer, brokers) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__FAIL, operation: "create mock cluster")
        }
        self.cluster = MockPointer(cluster)
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit { rd_kafka_mock_cluster_destroy(cluster.pointer) }

    /// A client configuration pointing at this cluster.
    public func clientConfig(_ properties: [String: String] = [:]) -> KafkaConfig {
        KafkaConfig(bootstrapServers: bootstrapServers, properties)
    }

    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws(KafkaError) {
        try check(rd_kafka_mock_topic_create(cluster.pointer, name, partitions, replicationFactor), "mock create topic \(name)")
    }

    /// The next requests of `apiKey` (any broker) fail with `errors`, in order.
    public func failNextRequests(_ apiKey: KafkaApiKey, with errors: [KafkaErrorCode]) {
        let codes = errors.map { rd_kafka_resp_err_t($0.rawValue) }
        rd_kafka_mock_push_request_errors_array(cluster.pointer, apiKey.rawValue, codes.count, codes)
    }

    /// The next requests of `apiKey` that broker `brokerId` receives are answered after
    /// `delayMs` (ms) with `error` (`.none` for a delayed success), in order: one entry per
    /// request. Broker errors take precedence over `failNextRequests` (librdkafka's
    /// `rd_kafka_mock_broker_push_request_error_rtts`).
    public func delayNextRequests(_ apiKey: KafkaApiKey, broker brokerId: Int32,
                                  _ responses: [(error: KafkaErrorCode, delayMs: Int32)]) throws(KafkaError) {
        for response in responses {
            try check(yishi_mock_broker_push_request_error_rtt(cluster.pointer, brokerId, apiKey.rawValue,
                                                               rd_kafka_resp_err_t(response.error.rawValue), response.delayMs),
                      "mock push \(apiKey.rawValue) errors")
        }
    }

    /// Drops the errors still stacked for `apiKey` (cluster-wide).
    public func clearRequestErrors(_ apiKey: KafkaApiKey) {
        rd_kafka_mock_clear_request_errors(cluster.pointer, apiKey.rawValue)
    }

    /// Makes broker `brokerId` the coordinator of a transactional id, so that faults pushed to
    /// that broker hit its InitProducerId / AddOffsetsToTxn / EndTxn requests.
    public func setTransactionCoordinator(_ transactionalId: String, broker brokerId: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_coordinator_set(cluster.pointer, "transaction", transactionalId, brokerId), "mock coordinator")
    }

    /// Makes broker `brokerId` the coordinator of a consumer group (TxnOffsetCommit, OffsetFetch).
    public func setGroupCoordinator(_ groupId: String, broker brokerId: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_coordinator_set(cluster.pointer, "group", groupId, brokerId), "mock coordinator")
    }

    public func setBrokerDown(_ brokerId: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_down(cluster.pointer, brokerId), "mock broker \(brokerId) down")
    }

    public func setBrokerUp(_ brokerId: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_up(cluster.pointer, brokerId), "mock broker \(brokerId) up")
    }

    public func setRoundTripTime(_ brokerId: Int32, milliseconds: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_rtt(cluster.pointer, brokerId, milliseconds), "mock broker \(brokerId) rtt")
    }

    public func setPartitionLeader(_ topic: String, _ partition: Int32, brokerId: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_partition_set_leader(cluster.pointer, topic, partition, brokerId), "mock leader \(topic)[\(partition)]")
    }
}

struct MockPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// Kafka protocol API keys, for fault injection.
public struct KafkaApiKey: RawRepresentable, Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let produce = KafkaApiKey(rawValue: 0)
    public static let fetch = KafkaApiKey(rawValue: 1)
    public static let metadata = KafkaApiKey(rawValue: 3)
    public static let offsetCommit = KafkaApiKey(rawValue: 8)
    public static let findCoordinator = KafkaApiKey(rawValue: 10)
    public static let initProducerId = KafkaApiKey(rawValue: 22)
    public static let addPartitionsToTxn = KafkaApiKey(rawValue: 24)
    public static let addOffsetsToTxn = KafkaApiKey(rawValue: 25)
    public static let endTxn = KafkaApiKey(rawValue: 26)
    public static let txnOffsetCommit = KafkaApiKey(rawValue: 28)
}

/// Kafka protocol error codes (the positive ones are the broker's).
public struct KafkaErrorCode: RawRepresentable, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let notLeaderOrFollower = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue)
    public static let requestTimedOut = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue)
    public static let notEnoughReplicas = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue)
    public static let leaderNotAvailable = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE.rawValue)
    public static let coordinatorNotAvailable = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE.rawValue)
    /// No error (a delayed success in `delayNextRequests`).
    public static let none = KafkaErrorCode(rawValue: 0)
    public static let notCoordinator = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_COORDINATOR.rawValue)
    public static let concurrentTransactions = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS.rawValue)
    public static let producerFenced = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_PRODUCER_FENCED.rawValue)
    public static let invalidProducerEpoch = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH.rawValue)
    public static let unknownProducerId = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID.rawValue)
    public static let invalidTxnState = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_INVALID_TXN_STATE.rawValue)
    public static let groupAuthorizationFailed = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED.rawValue)
    public static let topicAuthorizationFailed = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue)
    public static let unknownServerError = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_UNKNOWN.rawValue)
    public static let topicAlreadyExists = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue)
}
