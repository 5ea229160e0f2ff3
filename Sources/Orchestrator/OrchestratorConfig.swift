import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// How one orchestrator instance is run. Flags and environment map onto this
/// (see `yishi orchestrator --help`).
public struct OrchestratorConfig: Sendable {
    /// Broker, topic prefix, partition count of the saga-keyed topics (created with it when
    /// missing), clock, session timeout and extra librdkafka properties: what every hub service has.
    public var connection: HubConnection
    /// Stable across restarts: the transactional id is `<groupId>-<instanceId>`, so a
    /// restarted instance fences its own zombie.
    public var instanceId: String
    /// Consumer group, also the stem of the transactional ids: `<prefix>orchestrator` unless
    /// set, so that two hubs on one cluster (a demo beside production) never share a group.
    public var groupId: String {
        get { groupOverride ?? HubGroups.orchestrator(prefix: connection.prefix) }
        set { groupOverride = newValue }
    }
    private var groupOverride: String?
    /// The agencies this instance serves: it creates their topics, consumes `events.<agency>`
    /// and may send `commands.<agency>`. Nil (the default): every agency with
    /// `<cataloguesDirectory>/<agency>/catalogue.json`. When set, a bundle with a step on
    /// another agency is refused at load (`unservableAgency`).
    public var agencies: [String]?
    public var bundlesDirectory: URL
    public var cataloguesDirectory: URL
    public var calendarsDirectory: URL
    public var schemasDirectory: URL
    /// Inputs in one transaction at most (a backlog drains in batches of this size).
    public var maxBatch = 500
    /// How long inputs are gathered, after the first arrived, before one transaction commits
    /// them. Zero (the default): a batch is what is already fetched when the loop is ready for
    /// it (natural batching: small batches and prompt commits at low load, full batches under
    /// backlog, since inputs pile up while the previous transaction commits). A longer interval
    /// trades step latency for fewer transactions.
    public var commitInterval: Duration = .zero
    /// Hash function of the audit chains of sagas this instance starts (`--audit-chain-alg`):
    /// SM3 (GB/T 32905-2016) by default, or SHA-256 (FIPS 180-4). A saga keeps its chain's.
    public var auditChainAlgorithm: HashAlgorithm = .sm3
    /// Wall time between two `summary` log lines (inputs, commits, sagas in flight, … of the
    /// interval); `--log-summary-seconds`, default 60 s.
    public var summaryInterval: Duration = .seconds(60)
    /// 免申即享 (`--triggers`): consume the trigger topics of bundles with a `trigger` and file
    /// an application for each matching event (`TriggerMatcher`). Off unless asked for: paying
    /// benefits without an application is a policy switch a deployment turns on deliberately.
    public var triggers = false
    /// How long a finished saga stays in the hot state (hub time) before it leaves it with a
    /// `FinishedSummary` in `saga-state` (`--finished-grace`, env YISHI_FINISHED_GRACE): long
    /// enough for late agency answers (a late success after a failure is still undone).
    public var finishedGrace: Duration = OrchestratorConfig.defaultFinishedGrace
    public static let defaultFinishedGrace: Duration = .seconds(72 * 3600)
    /// How often (wall time) the owned live set is written to `saga-snapshots` (`--snapshot-interval`,
    /// env YISHI_SNAPSHOT_INTERVAL); zero turns snapshots off. Restore reads the latest snapshot and
    /// the `saga-state` tail after the offsets it covers.
    public var snapshotInterval: Duration = .seconds(60)

    public init(connection: HubConnection, instanceId: String, repository root: URL) {
        self.connection = connection
        self.instanceId = instanceId
        bundlesDirectory = root.appendingPathComponent("seeds/bundles")
        cataloguesDirectory = root.appendingPathComponent("adapters")
        calendarsDirectory = root.appendingPathComponent("seeds/calendar")
        schemasDirectory = root.appendingPathComponent("schemas")
    }

    var clock: HubClock { connection.clock }
    var transactionPolicy: TransactionPolicy { connection.transactionPolicy }
    var partitions: Int32 { connection.partitions }
    func topic(_ name: String) -> String { connection.topic(name) }

    /// Topics the orchestrator consumes (all keyed by saga id, co-partitioned).
    var inputTopics: [String] {
        [topic("applications"), topic("ops")] + (agencies ?? []).map { topic("events.\($0)") }
    }

    var clientId: String { "yishi-orchestrator-\(instanceId)" }

    /// Group member settings: the connection's session timeout.
    func consumerConfig(_ extra: [String: String] = [:]) -> KafkaConfig {
        connection.consumerConfig(clientId: clientId, extra)
    }

    func clientConfig(_ extra: [String: String] = [:]) -> KafkaConfig {
        connection.clientConfig(clientId: clientId, extra)
    }
}
