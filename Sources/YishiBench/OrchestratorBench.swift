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
    /// Consumer settings of every client of the run (YISHI_BENCH_FETCH_WAIT_MS sets
    /// `fetch.wait.max.ms`; unset, librdkafka's default).
    static var fetchWait: [String: String] {
        ProcessInfo.processInfo.environment["YISHI_BENCH_FETCH_WAIT_MS"].map { ["fetch.wait.max.ms": $0] } ?? [:]
    }

    /// rdkafka_performance's produce rate (msg/s) measured by the kafka group of this run, if it ran.
    nonisolated(unsafe) static var toolProduceRate: Double?

    static func run(bootstrap: String, repoRoot: URL, sagas: Int) throws -> [(name: String, value: Double, unit: String)] {
        let (prefix, partitions, clock, kafka, config) = try setUp("bench", bootstrap: bootstrap, repoRoot: repoRoot)
        let responders = try responders(kafka, prefix: prefix, clock: clock, repoRoot: repoRoot)
        defer { responders.close() }
        let first = try BackgroundOrchestrator(config)
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: sagas, tag: "BENCH")
        // Wait until the instance owns its partitions and the responders' group join is over, so
        // the figure is processing, not group joins.
        try waitUntil(seconds: 60, "the orchestrator owns all partitions") { first.service.stats.ownedPartitions.count == Int(partitions) }
        try waitUntil(seconds: 60, "the responders are assigned their partitions") { responders.assignedPartitions > 0 }
        let producer = try KafkaProducer(config: kafka)
        let startCPU = threadCPU()
        let startThreads = CPUByThread.sample()
        let broker = ProcessInfo.processInfo.environment["YISHI_BROKER_PID"].flatMap(Int32.init)
        let startBroker = broker.map(CPUByThread.processCPU) ?? 0
        first.service.traceBatches = true
        let start = ContinuousClock.now
        try SeedApplications.submit(forms, topicPrefix: prefix, producer: producer, time: clock.now().date)
        let reader = try FinishedReader(kafka: kafka, topic: prefix + "saga-events", partitions: partitions)
        let completed = try reader.wait(for: sagas)
        let elapsed = (ContinuousClock.now - start).seconds
        let cpu = threadCPU() - startCPU
        let threads = CPUByThread.sample().since(startThreads)
        let brokerCPU = (broker.map(CPUByThread.processCPU) ?? 0) - startBroker
        let loopCPU = threads["yishi.orch"] ?? 0  // BackgroundOrchestrator names its loop thread so
        let throughputStats = first.service.stats
        progress("orchestrator: CPU seconds by thread during the throughput run (\(String(format: "%.1f", elapsed)) s wall): "
                 + threads.sorted { $0.value > $1.value }.prefix(8).map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", ")
                 + String(format: "; broker process %.2f", brokerCPU))
        if let failure = first.failure { throw BenchError("orchestrator: \(failure)") }
        guard completed >= sagas else { throw BenchError("only \(completed) of \(sagas) sagas finished") }
        let sagasPerSecond = Double(sagas) / elapsed
        progress(LoopBreakdown.summary("orchestrator: loop during the throughput run", first.service.recentBatches))

        // Step latency at half of that throughput: applications paced over ~10 s.
        let rate = max(sagasPerSecond / 2, 1)
        let paced = try SeedApplications.cloned(repoRoot: repoRoot, count: max(Int(rate * 10), 50), tag: "PACED")
        let pacedStart = ContinuousClock.now
        responders.latency.start()
        try submitPaced(paced, rate: rate, prefix: prefix, producer: producer, clock: clock)
        _ = try reader.wait(for: sagas + paced.count)
        let timed = responders.latency.stopTimed()
        let samples = timed.map(\.ms).sorted()
        let turns = first.service.recentBatches.filter { $0.start >= pacedStart }
        progress(LoopBreakdown.summary("orchestrator: loop during the latency run", turns))
        for line in LoopBreakdown.slowest(timed, turns: turns, origin: pacedStart) { progress("orchestrator: " + line) }
        progress(LoopBreakdown.split(responders.latency.split))
        first.stop()
        if let failure = first.failure { throw BenchError("orchestrator: \(failure)") }
        guard !samples.isEmpty else { throw BenchError("no step latency samples") }

        // A new incarnation of the same instance reads all the sagas back.
        let second = try BackgroundOrchestrator(config)
        try waitUntil(seconds: 120, "the restarted orchestrator restored every saga") { second.service.stats.restoredSagas >= sagas + paced.count }
        let restore = second.service.stats
        second.stop()
        if let failure = second.failure { throw BenchError("restarted orchestrator: \(failure)") }

        // The broker bound: what rdkafka_performance's produce rate allows at this many records per saga.
        let inputsPerSaga = Double(throughputStats.inputs) / Double(sagas)
        let outputsPerSaga = Double(throughputStats.recordsProduced) / Double(sagas)
        let recordsPerSaga = inputsPerSaga + outputsPerSaga
        let toolRate = try toolProduceRate ?? {
            progress("orchestrator: measuring rdkafka_performance's produce rate for the broker bound")
            let tool = ProcessInfo.processInfo.environment["YISHI_RDKAFKA_BIN"].map { $0 + "/rdkafka_performance" } ?? "rdkafka_performance"
            let bench = KafkaBench(bootstrap: bootstrap, tool: tool, messages: 100_000)
            let topic = "bench-tool-bound-\(UUID().uuidString.prefix(6))"
            try KafkaAdmin(config: benchConfig(bootstrap)).ensureTopics([TopicSpec(topic, partitions: bench.partitions)])
            return try bench.toolProduce(topic: topic)
        }()
        let bound = toolRate / recordsPerSaga
        func percentile(_ p: Double) -> Double { samples[min(samples.count - 1, Int((Double(samples.count) * p).rounded(.up)) - 1)] }
        return [
            ("orchestrator.sagas_per_s", sagasPerSecond, "sagas/s"),
            ("orchestrator.records_per_saga", recordsPerSaga, "records"),
            ("orchestrator.output_records_per_saga", outputsPerSaga, "records"),
            ("orchestrator.state_records_per_saga", Double(throughputStats.stateRecords) / Double(sagas), "records"),
            ("orchestrator.output_bytes_per_saga", Double(throughputStats.valueBytesProduced) / Double(sagas), "bytes"),
            ("orchestrator.state_bytes_per_record", Double(throughputStats.stateBytes) / Double(max(throughputStats.stateRecords, 1)), "bytes"),
            ("orchestrator.records_per_transaction", Double(throughputStats.recordsProduced) / Double(max(throughputStats.transactions, 1)), "records"),
            ("orchestrator.bench_cpu_per_saga_ms", cpu * 1000 / Double(sagas), "ms"),
            ("orchestrator.loop_cpu_per_saga_ms", loopCPU * 1000 / Double(sagas), "ms"),
            ("orchestrator.loop_busy_ratio", loopCPU / elapsed, "x"),
            ("orchestrator.commit_wait_ratio", throughputStats.commitSeconds / elapsed, "x"),
            ("orchestrator.broker_cpu_per_saga_ms", brokerCPU * 1000 / Double(sagas), "ms"),
            ("orchestrator.broker_bound_sagas_per_s", bound, "sagas/s"),
            ("orchestrator.broker_bound_ratio", sagasPerSecond / bound, "x"),
            ("orchestrator.step_latency_rate", rate, "sagas/s"),
            ("orchestrator.step_latency_p50_ms", percentile(0.5), "ms"),
            ("orchestrator.step_latency_p99_ms", percentile(0.99), "ms"),
            // The restore figures of record (≥ 100,000 in-flight states, history behind them) are the `restore` group's.
            ("orchestrator.restore_after_run_sagas_per_s", Double(restore.restoredSagas) / max(restore.restoreSeconds, 1e-6), "sagas/s"),
        ]
    }

    /// Steady load for `seconds` at `rate` applications per second on one orchestrator instance;
    /// RSS (this process: orchestrator, responders and readers) and a restart's restore time
    /// after a warm-up of a tenth of the time, and again at the end.
    static func soak(bootstrap: String, repoRoot: URL, seconds: Double, rate: Double) throws -> [(name: String, value: Double, unit: String)] {
        let (prefix, partitions, clock, kafka, base) = try setUp("soak", bootstrap: bootstrap, repoRoot: repoRoot)
        var config = base
        // A year in a minute: finished sagas leave the hot state after 10 s of hub time (3 days in
        // production), so what the soak measures is what a long run keeps — the sagas in flight.
        config.finishedGrace = .seconds(10)
        let responders = try responders(kafka, prefix: prefix, clock: clock, repoRoot: repoRoot)
        defer { responders.close() }
        let producer = try KafkaProducer(config: kafka)
        let reader = try FinishedReader(kafka: kafka, topic: prefix + "saga-events", partitions: partitions)
        let total = max(Int(seconds * rate), 20)
        let warmup = max(total / 10, 10)
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: total, tag: "SOAK")

        /// Restarts the instance and returns the new one with its restore time (seconds) and the sagas it restored.
        func restart(_ old: BackgroundOrchestrator?, expecting: Int) throws -> (BackgroundOrchestrator, Double, Int) {
            old?.stop()
            if let failure = old?.failure { throw BenchError("orchestrator: \(failure)") }
            let next = try BackgroundOrchestrator(config)
            try waitUntil(seconds: 120, "the orchestrator owns all partitions") { next.service.stats.ownedPartitions.count == Int(partitions) }
            try waitUntil(seconds: 120, "the orchestrator restored \(expecting)+ sagas") { next.service.stats.restoredSagas >= expecting }
            return (next, next.service.stats.restoreSeconds, next.service.stats.restoredSagas)
        }
        var (instance, _, _) = try restart(nil, expecting: 0)
        try waitUntil(seconds: 60, "the responders are assigned their partitions") { responders.assignedPartitions > 0 }
        try submitPaced(Array(forms[..<warmup]), rate: rate, prefix: prefix, producer: producer, clock: clock)
        _ = try reader.wait(for: warmup)
        // Finished sagas past their grace period are not restored: only the ones in flight or in grace.
        let (afterWarmup, restoreStart, restoredStart) = try restart(instance, expecting: 0)
        instance = afterWarmup
        let rssStart = residentBytes()
        progress(String(format: "soak: %d applications at %.0f/s for %.0f s", total - warmup, rate, Double(total - warmup) / rate))
        try submitPaced(Array(forms[warmup...]), rate: rate, prefix: prefix, producer: producer, clock: clock)
        _ = try reader.wait(for: total)
        let rssEnd = residentBytes()
        let (last, restoreEnd, restoredEnd) = try restart(instance, expecting: 0)
        last.stop()
        if let failure = last.failure { throw BenchError("orchestrator: \(failure)") }
        return [
            ("orchestrator.soak_sagas", Double(total), "sagas"),
            ("orchestrator.soak_rss_start_mb", Double(rssStart) / 1_048_576, "MB"),
            ("orchestrator.soak_rss_end_mb", Double(rssEnd) / 1_048_576, "MB"),
            ("orchestrator.soak_rss_growth_ratio", Double(rssEnd) / Double(max(rssStart, 1)), "x"),
            ("orchestrator.soak_restore_start_s", restoreStart, "s"),
            ("orchestrator.soak_restore_end_s", restoreEnd, "s"),
            ("orchestrator.soak_restored_sagas_start", Double(restoredStart), "sagas"),
            ("orchestrator.soak_restored_sagas_end", Double(restoredEnd), "sagas"),
        ]
    }

    /// A fresh topic prefix with the hub's topics (6 partitions), a real-speed clock from a
    /// working-day morning (no SLA timer fires during a run), the bench's client settings and an
    /// orchestrator configuration for it.
    private static func setUp(_ tag: String, bootstrap: String, repoRoot: URL) throws
        -> (prefix: String, partitions: Int32, clock: HubClock, kafka: KafkaConfig, config: OrchestratorConfig) {
        let prefix = "\(tag)-\(UUID().uuidString.prefix(6).lowercased())."
        let partitions: Int32 = 6
        let clock = HubClock(start: Instant(rfc3339: "2026-03-02T09:00:00+08:00")!, speed: 1)
        let kafka = benchConfig(bootstrap, ["log_level": "3", "partitioner": "murmur2_random"].merging(fetchWait) { $1 })
        try KafkaAdmin(config: kafka).ensureTopics(HubTopics.all(prefix: prefix, partitions: partitions, agencies: benchAgencies(repoRoot)))
        return (prefix, partitions, clock, kafka,
                orchestratorConfig(bootstrap: bootstrap, prefix: prefix, partitions: partitions, clock: clock, repoRoot: repoRoot))
    }

    /// Instant scripted answers for every catalogue agency.
    private static func responders(_ kafka: KafkaConfig, prefix: String, clock: HubClock, repoRoot: URL) throws -> ScriptedResponders {
        try ScriptedResponders(config: kafka, prefix: prefix, catalogues: CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")),
                               now: { clock.now().date })
    }

    private static func orchestratorConfig(bootstrap: String, prefix: String, partitions: Int32, clock: HubClock,
                                           repoRoot: URL) -> OrchestratorConfig {
        var connection = HubConnection(bootstrap: bootstrap)
        connection.prefix = prefix
        connection.partitions = partitions
        connection.clock = clock
        connection.kafka = ["log_level": "3"].merging(fetchWait) { $1 }
        connection.security = benchSecurity
        return OrchestratorConfig(connection: connection, instanceId: "bench-1", repository: repoRoot)
    }

    /// Submits `forms` at `rate` per second, in 20 ms slices.
    private static func submitPaced(_ forms: [JSONValue], rate: Double, prefix: String, producer: KafkaProducer, clock: HubClock) throws {
        let start = ContinuousClock.now
        var sent = 0
        while sent < forms.count {
            let due = min(forms.count, Int((ContinuousClock.now - start).seconds * rate) + 1)
            if due > sent {
                try SeedApplications.submit(Array(forms[sent..<due]), topicPrefix: prefix, producer: producer, time: clock.now().date)
                sent = due
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// This process's resident set size (bytes), from /proc/self/statm.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// CPU seconds this process used so far (all threads: orchestrator, responders, librdkafka).
    static func threadCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Reads `saga.finished` events of a run as they come.
    final class FinishedReader {
        let reader: KafkaConsumer
        var finished = Set<String>()
        init(kafka: KafkaConfig, topic: String, partitions: Int32) throws {
            reader = try KafkaConsumer(config: kafka, groupId: "bench-reader-\(UUID().uuidString.prefix(6))")
            try reader.assign((0..<partitions).map { TopicPartitionOffset(topic, $0, TopicPartitionOffset.beginning) })
        }
        deinit { try? reader.close() }

        /// Reads until `expecting` sagas finished in all (or 10 minutes passed); the count.
        func wait(for expecting: Int) throws -> Int {
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
            return finished.count
        }
    }

    private static func waitUntil(seconds: Int, _ what: String, _ condition: () -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BenchError("timed out waiting until \(what)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}

/// CPU seconds per thread of this process (by thread name, summed over threads of the same
/// name), from /proc/self/task/*/stat; and of another process, from /proc/PID/stat.
struct CPUByThread {
    var seconds: [String: Double]

    static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// utime + stime of a /proc stat line, in seconds.
    private static func cpu(statLine: String) -> Double {
        guard let close = statLine.lastIndex(of: ")") else { return 0 }
        let fields = statLine[statLine.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / ticks
    }

    static func sample() -> CPUByThread {
        var seconds: [String: Double] = [:]
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for task in tasks {
            guard let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8) else { continue }
            seconds[name.trimmingCharacters(in: .whitespacesAndNewlines), default: 0] += cpu(statLine: stat)
        }
        return CPUByThread(seconds: seconds)
    }

    /// Per thread name, the CPU seconds used since `earlier` (threads that ended meanwhile are not counted).
    func since(_ earlier: CPUByThread) -> [String: Double] {
        seconds.mapValues { $0 }.merging(earlier.seconds.mapValues { -$0 }) { $0 + $1 }.filter { $0.value > 0.005 }
    }

    /// CPU seconds (all threads) of process `pid` so far; 0 when unreadable.
    static func processCPU(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return 0 }
        return cpu(statLine: stat)
    }
}

/// The hub's agencies: one per `adapters/*/catalogue.json`.
func benchAgencies(_ repoRoot: URL) throws -> [String] {
    try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids
}
