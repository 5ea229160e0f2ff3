import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import YishiKafka

/// Orchestrator figures on the broker in YISHI_BOOTSTRAP: enterprise-opening sagas driven end
/// to end by one instance with instant scripted responders (every message really goes through
/// Tansu), and how fast a fresh instance restores those sagas from `saga-state`.
enum OrchestratorBench {
    static func run(bootstrap: String, repoRoot: URL, sagas: Int) throws -> [(name: String, value: Double, unit: String)] {
        let prefix = "bench-\(UUID().uuidString.prefix(6).lowercased())."
        let partitions: Int32 = 6
        // Real speed from a working-day morning: no SLA timer fires during the run.
        let clock = HubClock(start: Instant(rfc3339: "2026-03-02T09:00:00+08:00")!, speed: 1)
        let kafka = benchConfig(bootstrap, ["log_level": "3", "partitioner": "murmur2_random"])
        try KafkaAdmin(config: kafka).ensureTopics(HubTopics.all(prefix: prefix, partitions: partitions))

        var connection = HubConnection(bootstrap: bootstrap)
        connection.prefix = prefix
        connection.partitions = partitions
        connection.clock = clock
        connection.kafka = ["log_level": "3"]
        connection.security = benchSecurity
        let config = OrchestratorConfig(connection: connection, instanceId: "bench-1", repository: repoRoot)

        let responders = try ScriptedResponders(config: kafka, prefix: prefix,
                                                catalogues: CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")),
                                                now: { clock.now().date })
        defer { responders.close() }
        let first = try BackgroundOrchestrator(config)
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: sagas, tag: "BENCH")
        // Wait until the instance owns its partitions, so the figure is processing, not the group join.
        try waitUntil(seconds: 60, "the orchestrator owns all partitions") { first.service.stats.ownedPartitions.count == Int(partitions) }
        let start = ContinuousClock.now
        try SeedApplications.submit(forms, topicPrefix: prefix, producer: KafkaProducer(config: kafka), time: clock.now().date)
        let completed = try countFinished(kafka: kafka, topic: prefix + "saga-events", partitions: partitions, expecting: sagas)
        let elapsed = (ContinuousClock.now - start).seconds
        first.stop()
        if let failure = first.failure { throw BenchError("orchestrator: \(failure)") }
        guard completed == sagas else { throw BenchError("only \(completed) of \(sagas) sagas finished") }

        // A new incarnation of the same instance reads all the sagas back.
        let second = try BackgroundOrchestrator(config)
        try waitUntil(seconds: 120, "the restarted orchestrator restored every saga") { second.service.stats.restoredSagas >= sagas }
        let restore = second.service.stats
        second.stop()
        if let failure = second.failure { throw BenchError("restarted orchestrator: \(failure)") }
        return [
            ("orchestrator.sagas_per_s", Double(sagas) / elapsed, "sagas/s"),
            // The restore figures of record (≥ 100,000 in-flight states, history behind them) are the `restore` group's.
            ("orchestrator.restore_after_run_sagas_per_s", Double(restore.restoredSagas) / max(restore.restoreSeconds, 1e-6), "sagas/s"),
        ]
    }

    /// Counts `saga.finished` events until `expecting` arrived (or 10 minutes passed).
    private static func countFinished(kafka: KafkaConfig, topic: String, partitions: Int32, expecting: Int) throws -> Int {
        let reader = try KafkaConsumer(config: kafka, groupId: "bench-reader-\(UUID().uuidString.prefix(6))")
        try reader.assign((0..<partitions).map { TopicPartitionOffset(topic, $0, TopicPartitionOffset.beginning) })
        var finished = Set<String>()
        let deadline = ContinuousClock.now + .seconds(600)
        var lastReport = ContinuousClock.now
        while finished.count < expecting && ContinuousClock.now < deadline {
            for message in try reader.poll(maxMessages: 5000, timeout: .milliseconds(100))
            where message.headers.string(Envelope.Header.type) == MessageType.sagaFinished {
                if let key = message.keyString { finished.insert(key) }
            }
            if ContinuousClock.now - lastReport > .seconds(5) {
                progress("orchestrator: \(finished.count)/\(expecting) sagas finished")
                lastReport = .now
            }
        }
        try reader.close()
        return finished.count
    }

    private static func waitUntil(seconds: Int, _ what: String, _ condition: () -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BenchError("timed out waiting until \(what)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}
