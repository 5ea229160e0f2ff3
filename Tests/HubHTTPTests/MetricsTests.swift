import Foundation
@testable import HubHTTP
import Testing
import YishiTestSupport

/// `promtool check metrics` on `text` (Debian's prometheus package, installed by
/// scripts/setup-promtool.sh on first use): (exit status, its output).
func promtoolCheck(_ text: String) throws -> (Int32, String) {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try Subprocess.promtoolCheckMetrics(text, repoRoot: root)
}

@Suite("Prometheus text exposition format 0.0.4")
struct MetricsTests {
    @Test("counters, gauges and histograms render exactly, with escaping and cumulative buckets")
    func exactRendering() {
        let registry = MetricsRegistry()
        let finished = registry.counter("yishi_sagas_finished_total", "Sagas finished, by bundle and \"status\".\nSecond line \\ here.",
                                        labels: ["bundle", "status"])
        finished.inc("company-opening", "completed", by: 3)
        finished.inc("a\"b\\c\nd", "rejected")
        let flight = registry.gauge("yishi_sagas_in_flight", "Sagas not finished.")
        flight.set(2.5)
        let steps = registry.histogram("yishi_step_duration_seconds", "Step latency.", labels: ["agency"], buckets: [1, 0.5, 10])
        steps.observe(0.25, "tax")
        steps.observe(0.5, "tax")
        steps.observe(7, "tax")
        steps.observe(100, "tax")
        #expect(registry.render() == """
            # HELP yishi_sagas_finished_total Sagas finished, by bundle and "status".\\nSecond line \\\\ here.
            # TYPE yishi_sagas_finished_total counter
            yishi_sagas_finished_total{bundle="a\\"b\\\\c\\nd",status="rejected"} 1
            yishi_sagas_finished_total{bundle="company-opening",status="completed"} 3
            # HELP yishi_sagas_in_flight Sagas not finished.
            # TYPE yishi_sagas_in_flight gauge
            yishi_sagas_in_flight 2.5
            # HELP yishi_step_duration_seconds Step latency.
            # TYPE yishi_step_duration_seconds histogram
            yishi_step_duration_seconds_bucket{agency="tax",le="0.5"} 2
            yishi_step_duration_seconds_bucket{agency="tax",le="1"} 2
            yishi_step_duration_seconds_bucket{agency="tax",le="10"} 3
            yishi_step_duration_seconds_bucket{agency="tax",le="+Inf"} 4
            yishi_step_duration_seconds_sum{agency="tax"} 107.75
            yishi_step_duration_seconds_count{agency="tax"} 4

            """)
    }

    @Test("asking for a family again returns the same one (services sharing a registry)")
    func sharedFamilies() {
        let registry = MetricsRegistry()
        registry.counter("yishi_records_in_total", "In.", labels: ["service", "topic"]).inc("a", "t")
        registry.counter("yishi_records_in_total", "In.", labels: ["service", "topic"]).inc("b", "t", by: 2)
        #expect(registry.render().components(separatedBy: "# TYPE yishi_records_in_total").count == 2)
        #expect(registry.counter("yishi_records_in_total", "In.", labels: ["service", "topic"]).value("b", "t") == 2)
    }

    @Test("consumer lag from librdkafka statistics JSON replaces the partitions owned before")
    func lagFromStatistics() throws {
        let metrics = KafkaServiceMetrics(service: "adapter.tax", dlqTopic: "yishi.dlq")
        let first = #"{"topics":{"yishi.commands.tax":{"partitions":{"0":{"consumer_lag":5,"fetch_state":"active"},"1":{"consumer_lag":-1},"-1":{"consumer_lag":-1}}}}}"#
        metrics.statistics(Data(first.utf8))
        let lag = metrics.registry.gauge("yishi_consumer_lag", "", labels: ["service", "topic", "partition"])
        #expect(lag.value("adapter.tax", "yishi.commands.tax", "0") == 5)
        #expect(!metrics.registry.render().contains(#"partition="1""#), "unknown lag (-1) is not shown")
        // A transactional consumer never learns its committed offset: the lag of its position then.
        let second = #"{"topics":{"yishi.commands.tax":{"partitions":{"2":{"consumer_lag":-1,"committed_offset":-1001,"ls_offset":10,"hi_offset":12,"app_offset":7,"fetch_state":"active"}}}}}"#
        metrics.statistics(Data(second.utf8))
        let text = metrics.registry.render()
        #expect(!text.contains(#"partition="0""#) && text.contains(#"yishi_consumer_lag{service="adapter.tax",topic="yishi.commands.tax",partition="2"} 3"#))
        // A department commits last offset + 1, which points at the transaction's commit marker:
        // librdkafka's consumer_lag says 1 on an idle partition; its position is past the marker.
        let idle = #"{"topics":{"yishi.dept.tax.requests":{"partitions":{"0":{"consumer_lag":1,"committed_offset":9,"ls_offset":10,"hi_offset":10,"app_offset":10,"fetch_state":"active"}}}}}"#
        metrics.statistics(Data(idle.utf8))
        #expect(metrics.registry.render().contains(#"yishi_consumer_lag{service="adapter.tax",topic="yishi.dept.tax.requests",partition="0"} 0"#))
    }

    @Test("promtool check metrics accepts a page with every kind of family and awkward label values")
    func promtoolAccepts() throws {
        let registry = MetricsRegistry()
        let metrics = KafkaServiceMetrics(service: "orchestrator", registry: registry, dlqTopic: "yishi.dlq")
        metrics.beat()
        metrics.abortedTransaction()
        registry.counter("yishi_sagas_finished_total", "Sagas finished.", labels: ["bundle", "status"]).inc("开办企业 \"x\"\\\n", "completed")
        registry.histogram("yishi_step_duration_seconds", "Latency.", labels: ["agency"], buckets: [0.001, 1e-7, 2e9]).observe(3, "tax")
        let (code, said) = try promtoolCheck(registry.render())
        #expect(code == 0, "promtool: \(said)\n\(registry.render())")
        // promtool does find problems (the check can fail): a counter without _total.
        let bad = MetricsRegistry()
        bad.counter("yishi_things", "Bad name.").inc()
        let (badCode, badSaid) = try promtoolCheck(bad.render())
        #expect(badCode != 0 && badSaid.contains("_total"), "\(badSaid)")
    }
}
