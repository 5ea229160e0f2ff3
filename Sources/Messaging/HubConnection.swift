import Foundation
import YishiKafka

/// Where a hub service connects and how: the broker, the topic prefix, the shared partition
/// count and clock. Adapters, department services and tools take one.
public struct HubConnection: Sendable {
    public var bootstrap: String
    public var prefix = "yishi."
    /// Partitions of every saga-keyed topic (all must have the same count).
    public var partitions: Int32 = 6
    /// Extra librdkafka properties (security, tuning).
    public var kafka: [String: String] = [:]
    public var clock: HubClock = .real
    /// `session.timeout.ms` of the service's consumer group: how long a vanished member keeps its partitions.
    public var sessionTimeoutMs = 10_000
    /// How the transactional loops (orchestrator, adapters) bound retries, rebuilds and outages.
    public var transactionPolicy = TransactionPolicy()

    public init(bootstrap: String) { self.bootstrap = bootstrap }

    public func topic(_ name: String) -> String { prefix + name }

    /// Client settings; records keyed by saga id land on the same partition whoever writes
    /// them (the Java clients' `murmur2` partitioner).
    public func clientConfig(clientId: String, _ extra: [String: String] = [:]) -> KafkaConfig {
        // librdkafka backs off reconnects up to 10 s by default: after a broker freeze or restart
        // every client then waits up to 10 s more before it tries again. The hub's clients retry
        // at most every second (overridable through `kafka`).
        var properties = ["reconnect.backoff.max.ms": "1000"].merging(kafka) { _, mine in mine }
        properties["client.id"] = clientId
        properties["partitioner"] = "murmur2_random"
        for (key, value) in extra { properties[key] = value }
        return KafkaConfig(bootstrapServers: bootstrap, properties)
    }

    /// The largest record this service's producers accept (their `message.max.bytes`, from
    /// `kafka` or librdkafka's default): what `OutboundGuard` checks every record against.
    public var recordLimit: RecordSizeLimit { RecordSizeLimit(config: clientConfig(clientId: "")) }

    /// Consumer settings for a group member that may be killed: a short session so its
    /// partitions move on quickly.
    public func consumerConfig(clientId: String, _ extra: [String: String] = [:]) -> KafkaConfig {
        var c = clientConfig(clientId: clientId, [
            "session.timeout.ms": String(sessionTimeoutMs),
            "heartbeat.interval.ms": String(max(500, sessionTimeoutMs / 5)),
        ].merging(extra) { _, new in new })
        c["partitioner"] = nil  // a producer property; librdkafka warns when a consumer gets it
        return c
    }
}
