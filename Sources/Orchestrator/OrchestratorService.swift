import Foundation
import HubHTTP
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// Runs the saga engine on Kafka. One loop on the calling thread (a dedicated
/// thread, never Swift's cooperative pool):
///
///     poll inputs → decode (bad ones to the DLQ) → engine → fire due timers →
///     one transaction { commands, audit events, licences, saga-state records,
///     ops replies, dead letters, consumed offsets } → commit
///
/// On assignment it restores the owned sagas from `saga-state` before it
/// processes anything of those partitions; on revocation it drops them.
public final class OrchestratorService: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only by the loop thread
    // (rebalance hooks run inside `poll` on that same thread).
    public let config: OrchestratorConfig
    /// The bundle versions this instance runs; replaced between batches by `reloadBundles`.
    private(set) var library: BundleLibrary
    private let reloadRequested = Atomic<Bool>(false)
    let inbound: InboundDecoder
    let triggers: TriggerMatcher
    let log: JSONLog
    private var host: SagaHost
    private var owned: Set<Int32> = []
    /// Input partitions read to their end since they were assigned. Timers wait for
    /// this after a (re)assignment: answers that arrived while nobody owned the
    /// partition must count before deadlines that passed meanwhile.
    private var caughtUp: Set<TopicPartition> = []
    private var assignedInputs: Set<TopicPartition> = []
    private var lastAssignment = ContinuousClock.now
    static let catchUpLimit: Duration = .seconds(30)
    /// When batches stopped committing promptly (broker or coordinator away); nil while they commit.
    private var outageStart: ContinuousClock.Instant?
    /// Timers do not fire before this instant: while transactions fail, and after an outage for
    /// as long as it lasted (at most `catchUpLimit`), so that answers the departments and adapters
    /// send once the broker is back count before deadlines that passed while nobody could act.
    private var timersHeldUntil = ContinuousClock.now
    /// A transaction that takes longer than this counts as an outage.
    static let outageThreshold: Duration = .seconds(5)
    private var sagaPartition: [String: Int32] = [:]
    /// Per owned `saga-state` partition, an offset at or below the next record written there
    /// (the end reached by the last restore or snapshot): the `FinishedIndex` lower bound.
    private var stateLowerBound: [Int32: Int64] = [:]
    /// Dead letters of undecodable `saga-state`/snapshot records found by a restore, written with
    /// the next transaction.
    private var quarantine: [ProducerRecord] = []
    private var snapshotWriter: SnapshotWriter?
    private var retentionMetrics: RetentionMetrics?
    private var lastSnapshot = ContinuousClock.now
    /// Asks the broker for `saga-state` high watermarks (snapshots), created when first needed.
    private var watermarkReader: KafkaConsumer?
    /// `saga-state` records the last restore read after the snapshots it used.
    private var lastRestoreTail = 0
    static let snapshotAfterTail = 1000
    /// A copy of `sagaPartition` other threads may read (kept in step at each change).
    private let partitionSnapshot = Mutex<[String: Int32]>([:])
    private var consumer: KafkaConsumer!
    private var licenceTable: LicenceTable!
    private var producer: TransactionalProducer!
    private let stopping = Atomic<Bool>(false)
    /// Set when a restore refused partitions (definitions changed, restore failed): `run` throws
    /// it instead of going on, so the process exits 1 for its supervisor.
    private var fatal: (any Error)?
    private let statsLock = Mutex(Stats())
    /// The current loop turn's breakdown (loop thread only) and the recent ones (`recentBatches`).
    private var timing = BatchTiming(start: .now)
    private let trace = BatchTrace()
    /// Keep every turn's `BatchTiming` for `recentBatches` (benchmarks, tests); off by default.
    public var traceBatches: Bool {
        get { tracing.load(ordering: .relaxed) }
        set { tracing.store(newValue, ordering: .relaxed) }
    }
    private let tracing = Atomic<Bool>(false)
    /// The loop turns (polls and their transactions) since `traceBatches` was turned on, oldest first
    /// (at most the last 50,000); any thread.
    public var recentBatches: [BatchTiming] { trace.all }
    /// A turn longer than this is logged at debug level with its breakdown (`transaction slow`).
    static let slowBatch: Duration = .milliseconds(100)
    /// Warnings and the periodic summary from committed batches.
    private lazy var operationsLog = OperationsLog(log: log, interval: config.summaryInterval)

    public struct Stats: Sendable {
        public var transactions = 0
        public var inputs = 0
        public var deadLetters = 0
        public var timersFired = 0
        public var restoredSagas = 0
        public var restoreSeconds = 0.0
        /// Process CPU seconds (user + system, all threads) the restores took.
        public var restoreCPUSeconds = 0.0
        public var ownedPartitions: [Int32] = []
        public var ownedSagas = 0
        /// The transactional producer's reactions to librdkafka's error classes (aborts, retries, rebuilds).
        public var kafka = TransactionCounts()
        /// Batches after which the owned sagas were re-read from `saga-state` (commit outcome unknown).
        public var stateReloads = 0
        /// Outages (no prompt commit for over `outageThreshold`) after which timers were held.
        public var outages = 0
        /// Records written in committed transactions (all topics), and the bytes of their values.
        public var recordsProduced = 0
        public var valueBytesProduced = 0
        /// Of those, `saga-state` records and their value bytes.
        public var stateRecords = 0
        public var stateBytes = 0
        /// Wall seconds spent in `commitBatch` (produce, send offsets, commit) over all batches.
        public var commitSeconds = 0.0
        /// Finished sagas that left the hot state after their grace period (`Retention`).
        public var sagasRetired = 0
        /// Re-submitted application ids of finished sagas answered "already finished".
        public var resubmitsAnswered = 0
        /// Agency answers and timers for sagas that had left the hot state, recorded as ignored.
        public var lateInputsIgnored = 0
        /// `saga-state`/snapshot records that did not decode at restore, sent to the DLQ.
        public var quarantined = 0
        /// Partitions restored from a snapshot (plus the tail after it).
        public var restoredFromSnapshot = 0
        /// The last restore's phases and their seconds (manifests, chunks, tail, merge, install).
        public var lastRestore = ""
    }

    public var stats: Stats { statsLock.withLock { $0 } }
    /// Snapshots (one per partition) written to `saga-snapshots` so far.
    public var snapshotsWritten: Int { snapshotWriter?.count ?? 0 }
    /// Prometheus metrics and health of this instance (`--http`); replace before `run`.
    public var metrics: OrchestratorMetrics

    public init(config: OrchestratorConfig, log: JSONLog = JSONLog(component: "orchestrator")) throws {
        var config = config
        let library = try BundleLibrary.load(bundles: config.bundlesDirectory, catalogues: config.cataloguesDirectory,
                                             calendars: config.calendarsDirectory,
                                             schemas: config.schemasDirectory,
                                             serving: config.agencies.map(Set.init))
        // The agency list is the catalogues' (adapters/*/catalogue.json), unless configured.
        config.agencies = config.agencies ?? library.catalogues.ids
        self.config = config
        self.log = log
        self.library = library
        if !library.problems.isEmpty {
            throw OrchestratorError.invalidBundles(library.problems.map(\.description))
        }
        if library.bundles.isEmpty {
            throw OrchestratorError.invalidBundles(["\(config.bundlesDirectory.path): no bundle definitions (*.json) found"])
        }
        inbound = try InboundDecoder(config: config)
        host = SagaHost(library: library)
        triggers = TriggerMatcher(library: library, config: config)
        host.chainAlgorithm = config.auditChainAlgorithm
        host.retention.graceMs = config.finishedGrace.wholeMilliseconds
        host.admit = { [inbound] in inbound.admit(sagaId: $0, state: $1, outbound: $2) }
        metrics = OrchestratorMetrics(prefix: config.connection.prefix)
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// Asks the loop to load the bundle directory again before its next batch (any thread; the
    /// `orchestrator run` command calls it on SIGHUP). New versions serve new applications;
    /// running sagas keep theirs. See `BundleReload` for what is refused.
    public func reloadBundles() { reloadRequested.store(true, ordering: .relaxed) }

    /// Performs a requested reload on the loop thread; a refusal keeps the loaded bundles.
    private func reloadIfRequested() {
        guard reloadRequested.exchange(false, ordering: .relaxed) else { return }
        let result = BundleReload.reload(current: library, running: Array(host.sagas.values), directory: config.bundlesDirectory.path) {
            try BundleLibrary.load(bundles: config.bundlesDirectory, catalogues: config.cataloguesDirectory,
                                   calendars: config.calendarsDirectory, schemas: config.schemasDirectory,
                                   serving: config.agencies.map(Set.init))
        }
        switch result {
        case .success(let reload):
            library = reload.library
            host.library = reload.library
            log.info("bundles reloaded", ["added": reload.added.joined(separator: ", "), "removed": reload.removed.joined(separator: ", "),
                                          "bundles": library.bundles.count.description])
        case .failure(let refusal):
            log.error("bundle reload refused; the loaded bundles stay", ["reason": refusal.description])
        }
    }

    /// The loaded bundle version a saga runs (for tools and tests).
    public func bundle(_ id: String, version: Int) -> CompiledBundle? { library.bundle(id, version: version) }

    /// The partition of an owned saga (any thread).
    public func partition(of sagaId: String) -> Int32? { partitionSnapshot.withLock { $0[sagaId] } }

    /// Blocks until `stop()` or a fatal error.
    public func run() throws {
        let admin = try KafkaAdmin(config: config.clientConfig())
        log.info("connecting", ["bootstrap": config.connection.bootstrap, "prefix": config.connection.prefix])
        try admin.ensureTopics(HubTopics.all(prefix: config.connection.prefix, partitions: config.partitions, agencies: config.agencies ?? []))
        producer = try TransactionalProducer(config: config.clientConfig(["transaction.timeout.ms": "10000"]),
                                             transactionalId: "\(config.groupId)-\(config.instanceId)",
                                             policy: config.transactionPolicy,
                                             onEvent: { [log] in log.warn("transaction", $0.logFields) })
        licenceTable = try LicenceTable(config: config, log: log)
        if config.snapshotInterval > .zero { snapshotWriter = try SnapshotWriter(config: config, log: log) }
        retentionMetrics = RetentionMetrics(registry: metrics.registry)
        consumer = try KafkaConsumer(
            config: config.consumerConfig([
                "partition.assignment.strategy": "range",  // co-partitioned topics: same numbers to one member
                "max.poll.interval.ms": "300000",
                "enable.partition.eof": "true",
                "statistics.interval.ms": String(KafkaServiceMetrics.statisticsIntervalMs),
            ]),
            groupId: config.groupId,
            rebalance: RebalanceListener(
                onAssigned: { [unowned self] in self.assigned($0) },
                onRevoked: { [unowned self] partitions, lost in self.revoked(partitions, lost: lost) }))
        consumer.onClientError { [log] in log.warn("kafka", ["error": $0.description]) }
        consumer.onStatistics { [metrics] in metrics.kafka.statistics($0) }
        consumer.onPartitionEnd { [unowned self] in self.caughtUp.insert($0.topicPartition) }
        try consumer.subscribe(config.inputTopics + triggers.topics)
        log.info("started", ["instance": config.instanceId, "group": config.groupId, "bundles": library.bundles.map { "\($0.id) v\($0.version)" }.joined(separator: ", ")])
        defer {
            try? consumer.close()
            try? watermarkReader?.close()
            snapshotWriter?.close()
            licenceTable.close()
            let k = producer.counts
            log.info("stopped", ["instance": config.instanceId, "commits": String(k.commits), "aborts": String(k.aborts),
                                 "retries": String(k.retries), "producer_rebuilds": String(k.rebuilds)])
        }
        while !stopping.load(ordering: .relaxed) {
            reloadIfRequested()
            try runOnce()
            operationsLog.tick(inFlight: { host.sagas.values.reduce(0) { $0 + ($1.status.isFinal ? 0 : 1) } }, partitions: { owned.count })
            metrics.kafka.beat()
            metrics.refresh(sagas: host.sagas.values, owned: owned, assigned: Set(assignedInputs.map(\.partition)))
        }
        // A refusal noticed while stopping still ends the process as a fatal error (exit 1), never as a clean stop.
        if let fatal { throw fatal }
    }

    /// One poll and, if there is anything to do, one transaction.
    func runOnce() throws {
        // Up to `maxBatch` inputs or 50 ms (librdkafka's batch consume, `fill`): inputs that
        // arrive while a transaction commits make the next batch, so batches grow with the load.
        // `commitInterval` (default zero) gathers longer for fewer, larger transactions (Kafka
        // Streams' commit.interval.ms). `fill: false` would save up to 50 ms per hop at low load,
        // but after an abort it hands the rewound inputs back over several smaller transactions,
        // which the transaction-fault tests' one-fault-per-transaction steps do not allow for yet.
        timing = BatchTiming(start: .now)
        defer { finishTurn() }
        var mark = timing.start
        func lap() -> Double { let now = ContinuousClock.now; defer { mark = now }; return (now - mark).seconds }
        var messages = try consumer.poll(maxMessages: config.maxBatch, timeout: .milliseconds(50))
        timing.pollWait = lap()
        let gatherUntil = ContinuousClock.now + config.commitInterval
        while fatal == nil, !messages.isEmpty, messages.count < config.maxBatch, case let left = gatherUntil - .now, left > .zero {
            let more = try consumer.poll(maxMessages: config.maxBatch - messages.count, timeout: min(left, .milliseconds(10)))
            messages += more
        }
        timing.gather = lap()
        if let oldest = messages.lazy.compactMap(\.timestampMs).min() {
            timing.oldestInput = max(0, Date().timeIntervalSince1970 - Double(oldest) / 1000)
        }
        // A refused assignment (inside a poll) ends the run before anything of it is processed.
        if let fatal { throw fatal }
        // A rebalance inside the gathering polls may have revoked partitions whose
        // records were already gathered: their new owner reads them again.
        messages.removeAll { !assignedInputs.contains($0.topicPartition) }
        var extra: [ProducerRecord] = []
        for message in messages {
            process(message, into: &extra)
        }
        timing.process = lap()
        let firing = timersMayFire
        let now = config.clock.now()
        var fired = firing ? try host.fireDueTimers(now: now, limit: config.maxBatch) : 0
        // Like timers, retirement waits until the inputs are read to their end: a late answer that
        // arrived while nobody owned the partition still reaches its saga.
        var retired = firing ? host.evictFinished(now: now, limit: config.maxBatch) : 0
        timing.timers = lap()
        guard !messages.isEmpty || fired > 0 || retired > 0 || !quarantine.isEmpty else { return }
        // Each changed saga's state is encoded once for the batch and checked here; when one
        // would not fit, the batch is done again with the exact check of every input's state
        // (`SagaHost.exactStateAdmission`), which refuses just the inputs that make it too large.
        let states = host.encodeChangedStates()
        if states.contains(where: { inbound.admit(sagaId: $0.key, state: $0.value, outbound: []) != nil }) {
            host.abortBatch()
            host.exactStateAdmission = true
            defer { host.exactStateAdmission = false }
            extra = []
            for message in messages { process(message, into: &extra) }
            fired = firing ? try host.fireDueTimers(now: now, limit: config.maxBatch) : 0
            retired = firing ? host.evictFinished(now: now, limit: config.maxBatch) : 0
            _ = host.encodeChangedStates()
        }
        timing.encode = lap()
        timing.inputs = messages.count
        timing.fired = fired
        timing.retired = retired
        try commit(consumed: messages, extra: quarantine + extra, fired: fired)
    }

    /// Ends the loop turn's breakdown: kept when tracing, logged at debug level when slow.
    private func finishTurn() {
        timing.end = .now
        if tracing.load(ordering: .relaxed) { trace.append(timing) }
        if timing.end - timing.start > Self.slowBatch { log.debug("transaction slow", timing.logFields) }
    }

    private var timersMayFire: Bool {
        guard ContinuousClock.now >= timersHeldUntil else { return false }
        if ContinuousClock.now - lastAssignment > Self.catchUpLimit { return true }
        let pending = assignedInputs.subtracting(caughtUp)
        guard !pending.isEmpty else { return true }
        // librdkafka reports the end of a partition once per end offset: after a rewind to the
        // committed offsets with nothing new, no end comes again. So compare positions with the
        // high watermarks librdkafka last saw as well.
        let positions = consumer.positions(Array(pending))
        for partition in pending {
            guard let position = positions[partition], let high = consumer.cachedHighWatermark(partition), position >= high else { return false }
            caughtUp.insert(partition)
        }
        return true
    }

    private func process(_ message: KafkaMessage, into extra: inout [ProducerRecord]) {
        let now = config.clock.now()
        // 免申即享: an event on a trigger topic files applications (TriggerMatcher), nothing else.
        if triggers.handles(message.topic) { return extra += triggers.applications(for: message, now: now) }
        switch inbound.decode(message, now: now) {
        case .deadLetter(let record):
            extra.append(record)
            log.warn("dead-letter", ["topic": message.topic, "partition": String(message.partition), "offset": String(message.offset),
                                     "reason": record.headers.string(DeadLetter.Header.errorMessage) ?? "?"])
        case .submit(let sagaId, let bundleId, let form, let at):
            if sagaPartition.updateValue(message.partition, forKey: sagaId) == nil {
                partitionSnapshot.withLock { $0[sagaId] = message.partition }
            }
            // An application id whose saga finished and left the hot state: answered, never a second saga.
            if host.state(sagaId) == nil, let summary = finishedSummary(sagaId, partition: message.partition) {
                host.answerAlreadyFinished(summary, at: at)
                statsLock.withLock { $0.resubmitsAnswered += 1 }
                retentionMetrics?.resubmits.inc()
                log.info("application already finished; no second saga", ["saga": sagaId, "status": summary.status.rawValue])
                return
            }
            // 免证办: an existing enterprise's e-licences come from the licences table, not from paper.
            let licences = form["company"]?["uscc"]?.stringValue.map { licenceTable.licences(holder: $0) } ?? [:]
            do { try host.submit(sagaId: sagaId, bundleId: bundleId, form: form, licences: licences, at: at) } catch {
                extra.append(refused(message, error))
            }
        case .input(let sagaId, let input):
            do { try host.apply(sagaId, input) } catch SagaHost.Rejection.unknownSaga where host.retention.index.lookup(sagaId) != nil {
                // Late answer for a saga that finished and left the hot state: ignored, not an error.
                statsLock.withLock { $0.lateInputsIgnored += 1 }
                retentionMetrics?.lateIgnored.inc()
                log.info("input ignored: its saga finished and left the hot state",
                         ["saga": sagaId, "topic": message.topic, "partition": String(message.partition), "offset": String(message.offset)])
            } catch {
                extra.append(refused(message, error))
            }
        case .ops(let request):
            extra.append(contentsOf: answer(request, partition: message.partition))
        }
    }

    /// The dead letter of an input the saga host did not take: `too-large` when its result would
    /// not fit `message.max.bytes` (the saga is unchanged), else `unprocessable`.
    private func refused(_ message: KafkaMessage, _ error: any Error) -> ProducerRecord {
        let record: ProducerRecord
        if case SagaHost.Rejection.tooLarge(let why) = error {
            record = inbound.deadLetter(message, reason: .tooLarge, detail: why)
        } else {
            record = inbound.deadLetter(message, reason: .unprocessable, detail: "\(error)")
        }
        log.warn("dead-letter", ["topic": message.topic, "partition": String(message.partition), "offset": String(message.offset),
                                 "reason": record.headers.string(DeadLetter.Header.errorMessage) ?? "?"])
        return record
    }

    private func commit(consumed: [KafkaMessage], extra: [ProducerRecord], fired: Int) throws {
        var records = extra
        for out in host.outbound { records.append(inbound.record(out)) }
        for state in host.changedStates {
            var record: ProducerRecord
            if let data = host.encodedStates[state.sagaId] {
                record = inbound.stateRecord(sagaId: state.sagaId, data: data, partition: sagaPartition[state.sagaId])
            } else {
                record = inbound.stateRecord(state, partition: sagaPartition[state.sagaId])
            }
            if state.status.isFinal, let at = host.retention.finishedInstant(state.sagaId) {
                record.headers.append(KafkaHeader(RestoreReader.finishedAtHeader, String(at.ms)))
            }
            records.append(record)
        }
        // Finished sagas leaving the hot state, and re-submitted ones whose audit chain advanced: their summaries.
        let summarized = host.retention.summaries
        let retiring = host.retention.evicting
        for (id, summary) in summarized.sorted(by: { $0.key < $1.key }) {
            records.append(inbound.stateRecord(sagaId: id, data: summary.encoded(), partition: sagaPartition[id]))
            if !retiring.contains(id), let head = summary.auditChain {
                records.append(inbound.chainHeadRecord(sagaId: id, bundleVersion: summary.bundleVersion, head: head, partition: sagaPartition[id]))
            }
        }
        for chain in host.advancedChains {
            records.append(inbound.chainHeadRecord(sagaId: chain.sagaId, bundleVersion: chain.bundleVersion, head: chain.head,
                                                   partition: sagaPartition[chain.sagaId]))
        }
        for (timer, why) in host.heldTimers {
            // Cannot happen while inputs leave `stateHeadroom`; said loudly if it does.
            log.error("timer held", ["saga": timer.sagaId, "timer": timer.id, "reason": why,
                                     "action": "the saga keeps its state; act on it with yishi sagas (cancel, resolve)"])
        }
        // Fenced by a newer instance with our id, or no commit for the policy's outage limit: thrown;
        // the process exits and its supervisor restarts it. Every other error class is handled inside.
        let started = ContinuousClock.now
        let before: Double = timing.pollWait + timing.gather + timing.process + timing.timers + timing.encode
        timing.build = (started - timing.start).seconds - before
        timing.records = records.count
        let outcome = try producer.commitBatch(records, consumed: consumed, consumer: consumer)
        let commitReturned = ContinuousClock.now
        timing.commit = (commitReturned - started).seconds
        (timing.produce, timing.sendOffsets, timing.commitCall) = (producer.lastPhases.produce.seconds, producer.lastPhases.sendOffsets.seconds,
                                                                   producer.lastPhases.commit.seconds)
        statsLock.withLock { $0.kafka = producer.counts }
        if outcome != .committed || ContinuousClock.now - started > Self.outageThreshold {
            outageStart = outageStart ?? started
        }
        guard outcome == .committed else {
            metrics.kafka.abortedTransaction()
            operationsLog.aborted()
            host.abortBatch()
            // Time the hub could not act must not count against steps: no timer fires while
            // transactions fail, and afterwards only once the inputs are read to their end.
            timersHeldUntil = .now + Self.catchUpLimit
            caughtUp.removeAll()
            lastAssignment = .now
            if outcome == .unknown { try reloadOwnedSagas() }
            log.warn("transaction not committed; the batch is read again", ["outcome": "\(outcome)"])
            return
        }
        if let since = outageStart {
            outageStart = nil
            let outage = ContinuousClock.now - since
            let hold = min(outage, Self.catchUpLimit)
            timersHeldUntil = .now + hold
            caughtUp.removeAll()
            lastAssignment = .now
            statsLock.withLock { $0.outages += 1 }
            log.warn("transactions commit again after an outage; timers wait for the answers sent meanwhile",
                     ["outage_seconds": String(format: "%.1f", outage.seconds), "hold_seconds": String(format: "%.1f", hold.seconds)])
        }
        metrics.kafka.committed(consumed: consumed, produced: records, since: started)
        metrics.committed(host.outbound) { host.state($0)?.bundleId }
        operationsLog.committed(host.outbound, inputs: consumed.count, timersFired: fired,
                                deadLetters: extra.reduce(0) { $0 + ($1.topic == config.topic("dlq") ? 1 : 0) })
        host.commitBatch { [sagaPartition, stateLowerBound] id in sagaPartition[id].map { ($0, stateLowerBound[$0] ?? 0) } }
        quarantine.removeAll()
        // Sagas no longer in the hot state keep nothing here but their `FinishedIndex` entry.
        let gone = summarized.keys.filter { host.state($0) == nil }
        if !gone.isEmpty {
            for id in gone { sagaPartition[id] = nil }
            partitionSnapshot.withLock { for id in gone { $0[id] = nil } }
        }
        if !retiring.isEmpty { retentionMetrics?.retired.inc(by: Double(retiring.count)) }
        timing.committedAt = commitReturned
        let snapshotStart = ContinuousClock.now
        timing.install = (snapshotStart - commitReturned).seconds
        maybeSnapshot()
        timing.snapshot = (ContinuousClock.now - snapshotStart).seconds
        // One update per transaction, so that a reader never sees sagas retired but still owned.
        statsLock.withLock {
            $0.sagasRetired += retiring.count
            $0.transactions += 1
            $0.inputs += consumed.count
            $0.timersFired += fired
            $0.deadLetters += extra.filter { $0.topic == config.topic("dlq") }.count
            $0.recordsProduced += records.count
            $0.commitSeconds += (ContinuousClock.now - started).seconds
            $0.valueBytesProduced += records.reduce(0) { $0 + ($1.value?.count ?? 0) }
            let stateTopic = config.topic("saga-state")
            for record in records where record.topic == stateTopic {
                $0.stateRecords += 1
                $0.stateBytes += record.value?.count ?? 0
            }
            $0.ownedSagas = host.sagas.count
        }
    }

    // MARK: Ownership

    private func assigned(_ partitions: [TopicPartition]) {
        assignedInputs.formUnion(partitions)
        caughtUp.subtract(partitions)
        lastAssignment = .now
        let numbers = Set(partitions.map(\.partition)).subtracting(owned)
        guard !numbers.isEmpty else { return }
        let start = ContinuousClock.now
        do {
            let restored = try restore(partitions: numbers.sorted())
            owned.formUnion(numbers)
            // A restore that read a long changelog tail checkpoints at once, so the next one is short
            // (safe here: inside poll, between transactions, with only restored, committed state).
            if lastRestoreTail >= Self.snapshotAfterTail { maybeSnapshot(force: true) }
            let seconds = (ContinuousClock.now - start).seconds
            metrics.restoredPartitions(seconds: seconds, sagas: restored)
            statsLock.withLock {
                $0.restoredSagas += restored
                $0.restoreSeconds += seconds
                $0.ownedPartitions = owned.sorted()
                $0.ownedSagas = host.sagas.count
            }
            log.info("assigned", ["partitions": numbers.sorted().map(String.init).joined(separator: ","),
                                  "restored_sagas": String(restored), "seconds": String(format: "%.3f", seconds)])
        } catch {
            // Without its state (or with definitions that no longer fit it) the instance must not
            // process these partitions: `runOnce` throws this, `run` ends, the process exits 1.
            log.error("restore failed", ["partitions": numbers.sorted().map(String.init).joined(separator: ","), "error": "\(error)"])
            assignedInputs.subtract(partitions)
            fatal = error
        }
    }

    /// After a commit with an unknown outcome the batch may have been committed after all: the
    /// owned sagas are re-read from `saga-state` (read_committed), as after an assignment.
    private func reloadOwnedSagas() throws {
        let numbers = owned.sorted()
        host.drop { _ in true }
        host.retention.dropAll()
        sagaPartition.removeAll()
        partitionSnapshot.withLock { $0.removeAll() }
        let restored = numbers.isEmpty ? 0 : try restore(partitions: numbers)
        statsLock.withLock { $0.stateReloads += 1; $0.ownedSagas = host.sagas.count }
        log.warn("owned sagas re-read from saga-state after a commit with unknown outcome", ["partitions": numbers.map(String.init).joined(separator: ","),
                                                                                             "restored_sagas": String(restored)])
    }

    private func revoked(_ partitions: [TopicPartition], lost: Bool) {
        assignedInputs.subtract(partitions)
        caughtUp.subtract(partitions)
        let numbers = Set(partitions.map(\.partition))
        guard !numbers.isEmpty else { return }
        owned.subtract(numbers)
        host.drop { [sagaPartition] in numbers.contains(sagaPartition[$0] ?? -1) }
        host.retention.drop(where: { [sagaPartition] in numbers.contains(sagaPartition[$0] ?? -1) }, partitions: numbers)
        sagaPartition = sagaPartition.filter { !numbers.contains($0.value) }
        for p in numbers { stateLowerBound[p] = nil }
        partitionSnapshot.withLock { $0 = $0.filter { !numbers.contains($0.value) } }
        statsLock.withLock { $0.ownedPartitions = owned.sorted(); $0.ownedSagas = host.sagas.count }
        log.info("revoked", ["partitions": numbers.sorted().map(String.init).joined(separator: ","), "lost": String(lost)])
    }

    /// Restores the owned sagas of `partitions` (read_committed): the newest snapshot of each and the
    /// `saga-state` tail after it (`RestoreReader`). A record that does not decode is quarantined
    /// (a dead letter naming topic, partition, offset, saga and reason, written with the next
    /// transaction); the rest restore. Finished sagas get their grace period back (from the instant
    /// they finished, when the record says it, else from now); summaries fill the `FinishedIndex`.
    /// - Throws: `OrchestratorError.definitionsChanged` when running sagas need bundle versions that
    ///   are gone or changed; Kafka errors; `restoreTimedOut`.
    private func restore(partitions: [Int32]) throws -> Int {
        let cpuStart = Self.processCPUSeconds()
        let read = try RestoreReader(config: config, groupId: "\(config.groupId)-restore-\(config.instanceId)").read(partitions: partitions)
        var installPhases: [(String, Double)] = []
        var mark = ContinuousClock.now
        func phase(_ name: String) {
            let now = ContinuousClock.now
            installPhases.append((name, (now - mark).seconds))
            mark = now
        }
        let states = read.states.map(\.state)
        let problems = DefinitionCheck.problems(states, library: library, directory: config.bundlesDirectory.path)
        guard problems.isEmpty else { throw OrchestratorError.definitionsChanged(partitions: partitions, problems) }
        phase("check")
        let now = config.clock.now()
        var ids: [(String, Int32)] = []
        ids.reserveCapacity(read.states.count)
        // The finished sagas' index is built on another thread while the sagas are installed (the
        // partitions are newly owned: the index has no entry of theirs, so merging equals inserting).
        let index = Background { [finishedIds = read.finishedIds, finishedHashes = read.finishedHashes] in
            var index = FinishedIndex()
            index.reserve(finishedIds.count + finishedHashes.count)
            for (id, p, offset) in finishedIds { index.insert(id, partition: p, offset: offset) }
            for (hash, p, offset) in finishedHashes { index.insert(hash: hash, partition: p, offset: offset) }
            return index
        }
        // Each saga's partition is noted while its timers are armed on another thread.
        var finished: [(String, Instant)] = []
        host.restore(all: states) {
            sagaPartition.reserveCapacity(sagaPartition.count + read.states.count)
            for (state, partition, finishedAt) in read.states {
                sagaPartition[state.sagaId] = partition
                ids.append((state.sagaId, partition))
                if state.status.isFinal { finished.append((state.sagaId, finishedAt ?? now)) }
            }
            partitionSnapshot.withLock { $0.reserveCapacity($0.count + ids.count); for (id, p) in ids { $0[id] = p } }
        }
        for (id, at) in finished { host.retention.restoreFinished(id, at: at) }
        phase("sagas+timers+partitions")
        host.retention.restoreIndex(index.wait())
        host.retention.sortQueue()
        phase("finished index")
        for (p, end) in read.stateEnd { stateLowerBound[p] = end }
        for bad in read.bad {
            quarantine.append(inbound.deadLetter(bad.message, reason: .undecodableState,
                                                 detail: "saga \(bad.sagaId ?? "?") left out of restore: \(bad.reason)"))
            log.error("saga state quarantined; the saga needs an operator (yishi dlq list)",
                      ["saga": bad.sagaId ?? "?", "topic": bad.message.topic, "partition": String(bad.message.partition),
                       "offset": String(bad.message.offset), "reason": bad.reason])
        }
        lastRestoreTail = read.tailRecords
        let cpu = Self.processCPUSeconds() - cpuStart
        let phases = (read.phases + installPhases).map { "\($0.0) \(String(format: "%.3f", $0.1)) s" }.joined(separator: ", ")
            + ", tail records \(read.tailRecords), snapshot partitions \(read.fromSnapshot.count)"
            + String(format: ", process CPU %.3f s", cpu)
        statsLock.withLock {
            $0.lastRestore = phases
            $0.restoreCPUSeconds += cpu
            $0.quarantined += read.bad.count
            if !read.bad.isEmpty { retentionMetrics?.quarantined.inc(by: Double(read.bad.count)) }
            $0.restoredFromSnapshot += read.fromSnapshot.count
        }
        return read.states.count
    }

    /// User + system CPU seconds of the whole process so far (`getrusage`): a restore's CPU
    /// cost, which a loaded machine changes much less than its wall time.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// The summary of a saga that finished and left the hot state, when `sagaId` is in the
    /// `FinishedIndex` (read from `saga-state`; rare: only re-submitted ids and hash collisions).
    private func finishedSummary(_ sagaId: String, partition: Int32) -> FinishedSummary? {
        if let pending = host.retention.summaries[sagaId] { return pending }
        guard let entry = host.retention.index.lookup(sagaId), entry.partition == partition else { return nil }
        do {
            return try RestoreReader(config: config, groupId: "\(config.groupId)-restore-\(config.instanceId)")
                .summary(of: sagaId, partition: partition, from: entry.offset)
        } catch {
            log.warn("finished-saga summary not readable; treated as a new application", ["saga": sagaId, "error": "\(error)"])
            return nil
        }
    }

    /// Hands the committed live set to the snapshot writer when one is due (see `SnapshotFormat`
    /// for why this is exactly-once-safe: called right after a commit, before the next batch).
    private func maybeSnapshot(force: Bool = false) {
        guard let writer = snapshotWriter, !owned.isEmpty, force || ContinuousClock.now - lastSnapshot >= config.snapshotInterval,
              !writer.isBusy else { return }
        do {
            if watermarkReader == nil { watermarkReader = try KafkaConsumer(config: config.consumerConfig(), groupId: "\(config.groupId)-snapshot-\(config.instanceId)") }
            var offsets: [Int32: Int64] = [:]
            // The high watermark, or the end the last restore read if that is higher (Tansu answers a
            // watermark as low as the last batch's base offset + 1): every record below either is
            // in the committed hot state or was aborted, so the next restore need not re-read it.
            for p in owned {
                let high = try watermarkReader!.watermarks(TopicPartition(config.topic("saga-state"), p)).high
                offsets[p] = max(high, stateLowerBound[p] ?? 0)
            }
            lastSnapshot = .now
            if writer.submit(SnapshotWriter.Job(sagas: host.sagas, partitionOf: sagaPartition, finishedAt: host.retention.finishedAt,
                                                 index: host.retention.index, stateOffsets: offsets)) { retentionMetrics?.snapshots.inc() }
        } catch {
            lastSnapshot = .now
            log.warn("snapshot skipped", ["error": "\(error)"])
        }
    }

    // MARK: Operator requests

    private func answer(_ request: OpsRequest, partition: Int32) -> [ProducerRecord] {
        let reply = OpsHandler.answer(request, host: &host, sagaPartition: sagaPartition, partition: partition,
                                      library: library, now: config.clock.now(), maxReplyBytes: inbound.outboundGuard.limit.maxBytes)
        return [inbound.opsReply(reply)]
    }
}

public enum OrchestratorError: Error, CustomStringConvertible {
    case invalidBundles([String])
    case restoreTimedOut(partitions: [Int32])
    /// Sagas on these `saga-state` partitions need bundle versions that were removed or edited in place.
    case definitionsChanged(partitions: [Int32], [DefinitionCheck.Problem])

    public var description: String {
        switch self {
        case .invalidBundles(let problems): return "bundle definitions have problems:\n" + problems.joined(separator: "\n")
        case .restoreTimedOut(let partitions): return "restoring partitions \(partitions) (saga-snapshots, saga-state) got no record for 60 s before reaching their end"
        case .definitionsChanged(let partitions, let problems):
            return "refusing saga-state partitions \(partitions): their running sagas need bundle definitions that are gone or changed:\n"
                + problems.map(\.description).joined(separator: "\n")
        }
    }
}
