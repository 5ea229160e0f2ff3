import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import YishiKafka

/// Restore figures on the broker in YISHI_BOOTSTRAP, with states written directly by a producer
/// (`SagaStateCodec`, as the orchestrator writes them) instead of by running the sagas:
///
/// - `orchestrator.restore_sagas_per_s`: a fresh incarnation of the instance restores `inFlight`
///   in-flight enterprise-opening states from the newest snapshot and the tail after it.
/// - `orchestrator.restore_history_ratio`: the same restore once `history` finished sagas (their
///   `FinishedSummary` records) are behind the in-flight ones, divided by the first; goal ≤ 1.2.
/// - `orchestrator.restore_history_cpu_ratio`: the same two restores compared by the process CPU
///   seconds they took (`Stats.restoreCPUSeconds`), which other load on the machine changes much
///   less than their wall time.
///
/// Each measured restore is the orchestrator's own (`Stats.restoreSeconds`: read, decode,
/// definition check, install and timer arming), after an earlier incarnation wrote the snapshot.
enum RestoreBench {
    static func run(bootstrap: String, repoRoot: URL, inFlight: Int, history: Int) throws -> [(name: String, value: Double, unit: String)] {
        let prefix = "bench-restore-\(UUID().uuidString.prefix(6).lowercased())."
        let partitions: Int32 = 6
        let clock = HubClock(start: Instant(rfc3339: "2026-03-02T09:00:00+08:00")!, speed: 1)
        let kafka = benchConfig(bootstrap, ["log_level": "3", "partitioner": "murmur2_random", "linger.ms": "20",
                                            "batch.size": "1000000", "queue.buffering.max.kbytes": "1048576"])
        try KafkaAdmin(config: kafka).ensureTopics(HubTopics.all(prefix: prefix, partitions: partitions, agencies: benchAgencies(repoRoot)))
        var connection = HubConnection(bootstrap: bootstrap)
        connection.prefix = prefix
        connection.partitions = partitions
        connection.clock = clock
        connection.kafka = ["log_level": "3"]
        connection.security = benchSecurity
        var config = OrchestratorConfig(connection: connection, instanceId: "bench-restore", repository: repoRoot)
        config.snapshotInterval = .seconds(3600)  // only the snapshot a long-tail restore takes at once

        // One in-flight enterprise-opening state (submitted, first steps dispatched), cloned.
        let library = try BundleLibrary.load(bundles: config.bundlesDirectory, catalogues: config.cataloguesDirectory,
                                             calendars: config.calendarsDirectory)
        guard let bundle = library.newest("enterprise-opening"), let calendar = library.calendar(for: bundle) else {
            throw BenchError("no enterprise-opening bundle in \(config.bundlesDirectory.path)")
        }
        let form = try SeedApplications.cloned(repoRoot: repoRoot, count: 1, tag: "RESTORE")[0]
        var template = SagaState(sagaId: "RESTORE-0", bundle: bundle)
        _ = SagaEngine.apply(to: &template, SagaInput(at: clock.now(), .submit(form: form, licences: [:])), bundle: bundle, calendar: calendar)
        let producer = try KafkaProducer(config: kafka)
        let stateTopic = prefix + "saga-state"

        progress("restore: writing \(inFlight) in-flight states")
        let sample = SagaStateCodec.encode(template)
        for n in 0..<inFlight {
            var state = template
            state.sagaId = "RESTORE-\(n)"
            try producer.enqueue(ProducerRecord(topic: stateTopic, key: state.sagaId, value: SagaStateCodec.encode(state)))
        }
        try producer.flush(timeout: .seconds(600))

        // First incarnation: the whole changelog, then a snapshot. Second: the measured restore.
        let full = try restore(config, expecting: inFlight, snapshotFirst: true).seconds
        let (plain, plainCPU) = try restore(config, expecting: inFlight, snapshotFirst: false)
        progress(String(format: "restore: %d in flight: whole changelog %.2f s, snapshot + tail %.2f s", inFlight, full, plain))

        progress("restore: writing \(history) finished sagas' summaries")
        for n in 0..<history {
            let summary = FinishedSummary(sagaId: "DONE-\(n)", bundleId: bundle.id, bundleVersion: bundle.version, status: .completed,
                                          finishedAt: clock.now(), auditChain: template.auditChain)
            try producer.enqueue(ProducerRecord(topic: stateTopic, key: summary.sagaId, value: summary.encoded()))
        }
        try producer.flush(timeout: .seconds(900))
        let tail = try restore(config, expecting: inFlight, snapshotFirst: true).seconds
        let (withHistory, withHistoryCPU) = try restore(config, expecting: inFlight, snapshotFirst: false)
        progress(String(format: "restore: %d finished behind: snapshot + %d-record tail %.2f s, then snapshot + tail %.2f s",
                        history, history, tail, withHistory))
        return [
            ("orchestrator.restore_sagas_per_s", Double(inFlight) / max(plain, 1e-6), "sagas/s"),
            ("orchestrator.restore_history_ratio", withHistory / max(plain, 1e-6), "x"),
            ("orchestrator.restore_history_cpu_ratio", withHistoryCPU / max(plainCPU, 1e-6), "x"),
            ("orchestrator.restore_full_changelog_sagas_per_s", Double(inFlight) / max(full, 1e-6), "sagas/s"),
            ("orchestrator.state_record_bytes", Double(sample.count), "bytes"),
        ]
    }

    /// Starts an incarnation of the instance, waits for its restore, and (when `snapshotFirst`)
    /// for the snapshot it then writes; returns the restore's wall seconds and process CPU seconds.
    private static func restore(_ config: OrchestratorConfig, expecting: Int, snapshotFirst: Bool) throws -> (seconds: Double, cpu: Double) {
        let instance = try BackgroundOrchestrator(config)
        defer { instance.stop() }
        let deadline = ContinuousClock.now + .seconds(900)
        while instance.service.stats.restoredSagas < expecting || (snapshotFirst && instance.service.snapshotsWritten < Int(config.connection.partitions)) {
            if let failure = instance.failure { throw BenchError("orchestrator: \(failure)") }
            guard ContinuousClock.now < deadline else { throw BenchError("restore of \(expecting) sagas did not finish: \(instance.service.stats)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        progress("restore: \(instance.service.stats.lastRestore)")
        return (instance.service.stats.restoreSeconds, instance.service.stats.restoreCPUSeconds)
    }
}
