import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// How one orchestrator instance is run. Flags and environment map onto this
/// (see `yishi orchestrator --help`).
public struct OrchestratorConfig: Sendable {
    public var bootstrap: String
    /// Prefix of every hub topic (DESIGN.md "Topics").
    public var topicPrefix = "yishi."
    /// Partitions of every saga-keyed topic; created with this count when missing.
    public var partitions: Int32 = 6
    /// Stable across restarts: the transactional id is `<groupId>-<instanceId>`, so a
    /// restarted instance fences its own zombie.
    public var instanceId: String
    /// Consumer group, also the stem of the transactional ids: `<prefix>orchestrator` unless
    /// set, so that two hubs on one cluster (a demo beside production) never share a group.
    public var groupId: String {
        get { groupOverride ?? topicPrefix + "orchestrator" }
        set { groupOverride = newValue }
    }
    private var groupOverride: String?
    public var agencies = HubTopics.defaultAgencies
    public var bundlesDirectory: URL
    public var cataloguesDirectory: URL
    public var calendarsDirectory: URL
    public var schemasDirectory: URL
    public var clock: HubClock = .real
    /// librdkafka `session.timeout.ms`: how long a vanished instance keeps its partitions.
    public var sessionTimeoutMs = 10_000
    public var maxBatch = 500
    /// How long inputs are gathered before one transaction commits them.
    public var commitInterval: Duration = .milliseconds(30)
    /// Extra librdkafka properties for every client.
    public var kafka: [String: String] = [:]

    public init(bootstrap: String, instanceId: String, repository root: URL) {
        self.bootstrap = bootstrap
        self.instanceId = instanceId
        bundlesDirectory = root.appendingPathComponent("seeds/bundles")
        cataloguesDirectory = root.appendingPathComponent("adapters")
        calendarsDirectory = root.appendingPathComponent("seeds/calendar")
        schemasDirectory = root.appendingPathComponent("schemas")
    }

    func topic(_ name: String) -> String { topicPrefix + name }

    /// Topics the orchestrator consumes (all keyed by saga id, co-partitioned).
    var inputTopics: [String] {
        [topic("applications"), topic("ops")] + agencies.map { topic("events.\($0)") }
    }

    /// Consumer settings: the producer-only `partitioner` left out (librdkafka warns about it).
    func consumerConfig(_ extra: [String: String] = [:]) -> KafkaConfig {
        var c = clientConfig(extra)
        c["partitioner"] = nil
        return c
    }

    func clientConfig(_ extra: [String: String] = [:]) -> KafkaConfig {
        var properties = kafka
        properties["client.id"] = "yishi-orchestrator-\(instanceId)"
        // Java clients' partitioner, so that records keyed by saga id land on
        // the same partition whoever writes them.
        properties["partitioner"] = "murmur2_random"
        for (key, value) in extra { properties[key] = value }
        return KafkaConfig(bootstrapServers: bootstrap, properties)
    }
}
