import Foundation
import Synchronization
import YishiKafka

/// The metrics every Kafka service of the hub shares (orchestrator, adapters, department
/// simulators), labelled with `service` (e.g. `orchestrator`, `adapter.tax`, `dept.bank`) so
/// several services can share one registry (the in-process demo):
///
/// - `yishi_records_in_total{service,topic}`, `yishi_records_out_total{service,topic}`
/// - `yishi_dead_letters_total{service,class,topic}`: records sent to the DLQ, by error class
///   and the topic they came from
/// - `yishi_transaction_commit_seconds{service}` (histogram), `yishi_transactions_aborted_total{service}`
/// - `yishi_consumer_lag{service,topic,partition}`: records behind the partition's end, from
///   librdkafka's statistics (`statistics.interval.ms`), per owned partition: `consumer_lag`
///   `ls_offset − app_offset` when librdkafka knows the position (it moves past transaction
///   markers, so an idle partition reads 0), else `consumer_lag` (from the committed offset) (the
///   consumer's position; transactional services commit through their producer)
/// - `yishi_loop_turns_total{service}`
public final class KafkaServiceMetrics: Sendable {
    public let service: String
    public let registry: MetricsRegistry
    public let health: ServiceHealth
    let recordsIn, recordsOut, deadLetters, commitSeconds, aborted, lag, turns: MetricFamily
    /// The DLQ topic's name (with prefix): records to it count as dead letters.
    let dlqTopic: String

    /// Statistics interval to give the consumer (`statistics.interval.ms`), in ms.
    public static let statisticsIntervalMs = 5000

    public init(service: String, registry: MetricsRegistry = MetricsRegistry(), health: ServiceHealth = ServiceHealth(), dlqTopic: String) {
        self.service = service
        self.registry = registry
        self.health = health
        self.dlqTopic = dlqTopic
        recordsIn = registry.counter("yishi_records_in_total", "Records consumed and processed (committed), by topic.", labels: ["service", "topic"])
        recordsOut = registry.counter("yishi_records_out_total", "Records produced in committed transactions or batches, by topic.",
                                      labels: ["service", "topic"])
        deadLetters = registry.counter("yishi_dead_letters_total", "Records sent to the dead-letter topic, by error class and original topic.",
                                       labels: ["service", "class", "topic"])
        commitSeconds = registry.histogram("yishi_transaction_commit_seconds", "Wall seconds to write and commit one batch (transaction).",
                                           labels: ["service"], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        aborted = registry.counter("yishi_transactions_aborted_total", "Transactions aborted (the batch is read again).", labels: ["service"])
        lag = registry.gauge("yishi_consumer_lag", "Records between the consumer's position and the partition's end (librdkafka statistics).",
                             labels: ["service", "topic", "partition"])
        turns = registry.counter("yishi_loop_turns_total", "Turns of the service loop (polls).", labels: ["service"])
    }

    /// One loop turn: `/healthz` stays healthy.
    public func beat() {
        health.beat()
        turns.inc(service)
    }

    /// A batch committed: counts what was consumed and written, dead letters, and the commit time.
    public func committed(consumed: [KafkaMessage], produced: [ProducerRecord], since start: ContinuousClock.Instant?) {
        if let start { commitSeconds.observe((ContinuousClock.now - start).seconds, service) }
        var inCounts: [String: Int] = [:], outCounts: [String: Int] = [:]
        for m in consumed { inCounts[m.topic, default: 0] += 1 }
        for r in produced {
            outCounts[r.topic, default: 0] += 1
            if r.topic == dlqTopic {
                deadLetters.inc(service, r.headers.string("yishi.dlq.error.class") ?? "unknown",
                                r.headers.string("yishi.dlq.original.topic") ?? "unknown")
            }
        }
        for (topic, n) in inCounts { recordsIn.inc(service, topic, by: Double(n)) }
        for (topic, n) in outCounts { recordsOut.inc(service, topic, by: Double(n)) }
    }

    /// Records written outside a transaction (e.g. a department's delayed replies).
    public func produced(topic: String, count: Int) { recordsOut.inc(service, topic, by: Double(count)) }

    /// A rebalance listener that keeps readiness: ready while the consumer owns partitions.
    /// (With the eager protocol a rebalance revokes everything first: not ready until reassigned.)
    public func readinessListener() -> RebalanceListener {
        let owned = Mutex<Set<TopicPartition>>([])
        let health = self.health
        return RebalanceListener(
            onAssigned: { partitions in
                let count = owned.withLock { $0.formUnion(partitions); return $0.count }
                health.ready(count > 0, "no partitions assigned")
            },
            onRevoked: { partitions, _ in
                let count = owned.withLock { $0.subtract(partitions); return $0.count }
                health.ready(count > 0, "no partitions assigned (rebalancing, or more members than partitions)")
            })
    }

    /// A transaction was aborted.
    public func abortedTransaction() { aborted.inc(service) }

    /// librdkafka's statistics JSON (the consumer's `onStatistics`; STATISTICS.md): sets the lag of
    /// every partition the consumer fetches, and drops partitions no longer owned. Partitions whose
    /// lag librdkafka cannot tell (-1, partition -1) are left out.
    public func statistics(_ json: Data) {
        guard let root = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
              let topics = root["topics"] as? [String: Any] else { return }
        var values: [[String]: Double] = [:]
        for (topic, body) in topics {
            guard let partitions = (body as? [String: Any])?["partitions"] as? [String: Any] else { continue }
            for (partition, p) in partitions where partition != "-1" {
                guard let p = p as? [String: Any], (p["fetch_state"] as? String).map({ $0 != "none" && $0 != "stopped" }) ?? true else { continue }
                func number(_ key: String) -> Int64 { (p[key] as? NSNumber)?.int64Value ?? -1 }
                // The lag of the member's position: the last stable offset (read_committed; the high
                // watermark otherwise) minus `app_offset`, which librdkafka moves past transaction markers.
                // `consumer_lag` (end − committed offset) counts the commit marker after the last record
                // as 1 on an idle partition (a service commits last offset + 1), and a transactional
                // service's consumer never learns its committed offset: it is used only while the
                // position is unknown.
                let end = number("ls_offset") >= 0 ? number("ls_offset") : number("hi_offset")
                let lag = end >= 0 && number("app_offset") >= 0 ? max(0, end - number("app_offset")) : number("consumer_lag")
                guard lag >= 0 else { continue }
                values[[service, topic, partition]] = Double(lag)
            }
        }
        lag.replace(prefix: [service], with: values)
    }
}

extension Duration {
    /// This duration in (fractional) seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
