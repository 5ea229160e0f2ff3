import Foundation
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// Snapshots of the live set and the restore that reads them (docs/operations.md, "Restore").
///
/// `saga-snapshots` has as many partitions as `saga-state`; the snapshot of `saga-state`
/// partition p goes to partition p: chunk records (many encoded states each, well under
/// `message.max.bytes`), then one manifest record (key `manifest`) naming the chunks' offsets
/// and the `saga-state` offset the snapshot covers. Restore reads the last few records of the
/// partition (the last `manifestProbe` records, else high watermark minus `manifestWindow`), takes the newest manifest, reads its
/// chunks and then the `saga-state` tail from the covered offset: O(live set + tail), never
/// O(history).
///
/// Exactly-once safety: a snapshot is taken on the loop thread between two transactions, from
/// the committed hot state only (never a batch's overlay), and its covered offset is the
/// `saga-state` high watermark queried after the last commit and before the copy (or the end the
/// last restore read, when higher). So every record below that offset is either in the copy
/// (committed by this instance or restored) or was aborted (read_committed never shows it). A covered offset that is too low is harmless:
/// the tail's newest record per key is the newest overall and wins. The records are produced
/// outside the transaction by an idempotent producer; a manifest is written only after every
/// chunk it names is acknowledged, so a snapshot cut short by a crash is never used, and a late
/// snapshot (even a zombie's) is still a true checkpoint of a prefix of the changelog.
/// The watermark is asked by a read_committed client, so the broker answers the last stable
/// offset: records of a transaction still open (e.g. a commit pipelined with the next batch) lie
/// at or above it and are read in the tail, never skipped. What must hold for the copy is that
/// `SagaHost.sagas` holds only state whose transaction has committed.
enum SnapshotFormat {
    static let chunkMagic = Data("yishi.snapshot-chunk/1\n".utf8)
    /// Records read back from the end of a `saga-snapshots` partition to find its manifest
    /// (the manifest is the last data record; the window covers transaction markers and a
    /// snapshot cut short by a crash).
    static let manifestWindow: Int64 = 64
    /// Records read first from the end of a partition: the manifest, a transaction marker or two.
    static let manifestProbe: Int64 = 4
    /// Target bytes per chunk record (far below the default 1 MB `message.max.bytes`).
    static let chunkBytes = 256 * 1024

    /// The last record of a snapshot: what it covers and where its chunks are.
    struct Manifest: Codable, Equatable {
        var format = 1
        var snapshotId: String
        var partition: Int32
        /// The `saga-state` offset restore reads the tail from.
        var stateOffset: Int64
        /// Offsets of the chunk records in the same `saga-snapshots` partition.
        var chunks: [Int64]
        var sagas: Int
        var finished: Int
        var instance: String
    }

    /// One entry of a chunk: a live state (its `SagaStateCodec` bytes and, when finished, since
    /// when), or a `FinishedIndex` entry.
    enum Entry {
        case state(sagaId: String, value: Data, finishedAt: Instant?)
        case finished(hash: UInt64, offset: Int64)
    }

    /// Chunk layout (little endian): magic, then entries: tag 1 = state (u16 id length, id UTF-8,
    /// u32 value length, value, i64 finished-at ms or Int64.min), tag 2 = finished (u64 hash, i64 offset).
    static func chunks(_ entries: [Entry]) -> [Data] {
        var out: [Data] = []
        var chunk = chunkMagic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { chunk.append(contentsOf: $0) } }
        for entry in entries {
            switch entry {
            case .state(let id, let value, let at):
                let idBytes = Data(id.utf8)
                put(UInt8(1)); put(UInt16(clamping: idBytes.count)); chunk.append(idBytes)
                put(UInt32(value.count)); chunk.append(value); put(at?.ms ?? Int64.min)
            case .finished(let hash, let offset):
                put(UInt8(2)); put(hash); put(offset)
            }
            if chunk.count >= chunkBytes {
                out.append(chunk)
                chunk = chunkMagic
            }
        }
        if chunk.count > chunkMagic.count || out.isEmpty { out.append(chunk) }
        return out
    }

    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    static func entries(_ data: Data) throws -> [Entry] {
        var out: [Entry] = []
        try scan(data, state: { out.append(.state(sagaId: $0, value: $1, finishedAt: $2)) },
                 finished: { out.append(.finished(hash: $0, offset: $1)) })
        return out
    }

    /// Hands each entry of a chunk to `state` or `finished`, in order, without copying: a state's
    /// value is a slice of `data` (restore decodes it in place).
    /// - Throws: `FormatError` for a chunk that is not one or is cut short (entries before the
    ///   fault have been handed over).
    static func scan(_ data: Data, state: (_ sagaId: String, _ value: Data, _ finishedAt: Instant?) -> Void,
                     finished: (_ hash: UInt64, _ offset: Int64) -> Void) throws {
        guard data.starts(with: chunkMagic) else { throw FormatError(description: "not a snapshot chunk (unknown format)") }
        let base = data.startIndex
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> Void in
            var i = chunkMagic.count
            func take<T: FixedWidthInteger>(_: T.Type) throws -> T {
                guard i + MemoryLayout<T>.size <= raw.count else { throw FormatError(description: "snapshot chunk cut short at byte \(i)") }
                var v: T = 0
                withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[i..<i + MemoryLayout<T>.size])) }
                i += MemoryLayout<T>.size
                return T(littleEndian: v)
            }
            func range(_ n: Int) throws -> Range<Int> {
                guard i + n <= raw.count else { throw FormatError(description: "snapshot chunk cut short at byte \(i)") }
                defer { i += n }
                return i..<i + n
            }
            while i < raw.count {
                switch try take(UInt8.self) {
                case 1:
                    let idRange = try range(Int(try take(UInt16.self)))
                    let id = String(decoding: UnsafeRawBufferPointer(rebasing: raw[idRange]), as: UTF8.self)
                    let valueRange = try range(Int(try take(UInt32.self)))
                    let at = try take(Int64.self)
                    state(id, data[base + valueRange.lowerBound..<base + valueRange.upperBound], at == Int64.min ? nil : Instant(ms: at))
                case 2:
                    let hash = try take(UInt64.self)
                    finished(hash, try take(Int64.self))
                case let tag:
                    throw FormatError(description: "unknown snapshot entry tag \(tag) at byte \(i - 1)")
                }
            }
        }
    }
}

/// Writes snapshots on its own thread with its own idempotent producer, one at a time.
final class SnapshotWriter: @unchecked Sendable {
    // @unchecked: `producer` is used only on `queue`; `busy` is atomic.
    private let producer: KafkaProducer
    private let queue = DispatchQueue(label: "yishi.snapshot-writer")
    private let busy = Atomic<Bool>(false)
    private let topic: String
    private let instance: String
    private let log: JSONLog
    private let written = Mutex<Int>(0)

    /// The committed live set of some partitions, as the loop thread saw it between two transactions.
    struct Job: @unchecked Sendable {
        var sagas: [String: SagaState]
        var partitionOf: [String: Int32]
        var finishedAt: [String: Instant]
        var index: FinishedIndex
        /// `saga-state` high watermark per owned partition, queried after the last commit.
        var stateOffsets: [Int32: Int64]
    }

    init(config: OrchestratorConfig, log: JSONLog) throws {
        producer = try KafkaProducer(config: config.clientConfig(["enable.idempotence": "true", "acks": "all", "linger.ms": "5"]))
        topic = config.topic("saga-snapshots")
        instance = config.instanceId
        self.log = log
    }

    var isBusy: Bool { busy.load(ordering: .relaxed) }
    /// Snapshots (partitions) written so far.
    var count: Int { written.withLock { $0 } }

    /// Starts writing `job` unless a snapshot is still being written (then false).
    func submit(_ job: Job) -> Bool {
        guard !busy.exchange(true, ordering: .acquiring) else { return false }
        queue.async { [self] in
            defer { busy.store(false, ordering: .releasing) }
            do { try write(job) } catch { log.warn("snapshot not written; restore reads the older one", ["error": "\(error)"]) }
        }
        return true
    }

    /// Writes `job` and waits until every record is acknowledged (tests, shutdown).
    func writeNow(_ job: Job) throws {
        try queue.sync { try write(job) }
    }

    private func write(_ job: Job) throws {
        var byPartition: [Int32: [SnapshotFormat.Entry]] = [:]
        for (id, saga) in job.sagas {
            guard let p = job.partitionOf[id], job.stateOffsets[p] != nil else { continue }
            byPartition[p, default: []].append(.state(sagaId: id, value: SagaStateCodec.encode(saga), finishedAt: job.finishedAt[id]))
        }
        for p in job.stateOffsets.keys {
            for (hash, offset) in job.index.entries(partition: p) { byPartition[p, default: []].append(.finished(hash: hash, offset: offset)) }
        }
        let snapshotId = "\(instance)-\(UInt64(Date().timeIntervalSince1970 * 1000))"
        for (p, stateOffset) in job.stateOffsets.sorted(by: { $0.key < $1.key }) {
            let entries = byPartition[p] ?? []
            let chunks = SnapshotFormat.chunks(entries)
            let offsets = Mutex<[Int: Int64]>([:])
            let failure = Mutex<KafkaError?>(nil)
            for (n, chunk) in chunks.enumerated() {
                try producer.enqueue(ProducerRecord(topic: topic, partition: p, key: "\(snapshotId)/chunk/\(n)", value: chunk)) { result in
                    switch result {
                    case .success(let report): offsets.withLock { $0[n] = report.offset }
                    case .failure(let error): failure.withLock { $0 = error }
                    }
                }
            }
            try producer.flush(timeout: .seconds(60))
            if let error = failure.withLock({ $0 }) { throw error }
            let chunkOffsets = offsets.withLock { o in (0..<chunks.count).compactMap { o[$0] } }
            guard chunkOffsets.count == chunks.count else { throw SnapshotFormat.FormatError(description: "chunks of partition \(p) not acknowledged") }
            var states = 0, finished = 0
            for entry in entries { if case .state = entry { states += 1 } else { finished += 1 } }
            let manifest = SnapshotFormat.Manifest(snapshotId: snapshotId, partition: p, stateOffset: stateOffset, chunks: chunkOffsets,
                                                   sagas: states, finished: finished, instance: instance)
            try producer.enqueue(ProducerRecord(topic: topic, partition: p, key: "manifest", value: try JSONEncoder().encode(manifest)))
            try producer.flush(timeout: .seconds(60))
            written.withLock { $0 += 1 }
        }
    }

    func close() {
        queue.sync {}
        try? producer.flush(timeout: .seconds(5))
    }
}

/// Reads the owned live set back: the newest snapshot of each partition, then the `saga-state`
/// tail after it (or the whole partition when there is none). Decoding runs on all cores while
/// records are read, and only the newest value per saga is kept.
struct RestoreReader {
    let config: OrchestratorConfig
    let groupId: String
    /// False reads every partition's whole changelog, ignoring snapshots (tools, tests).
    var useSnapshots = true

    init(config: OrchestratorConfig, groupId: String, useSnapshots: Bool = true) {
        self.config = config
        self.groupId = groupId
        self.useSnapshots = useSnapshots
    }

    /// A record that did not decode: where it is, the saga it names, and why.
    struct Bad: @unchecked Sendable {
        var message: KafkaMessage
        var sagaId: String?
        var reason: String
    }

    struct Result {
        var states: [(state: SagaState, partition: Int32, finishedAt: Instant?)] = []
        /// `FinishedIndex` entries: by saga id (from the tail, exact offsets) or by hash (from a snapshot).
        var finishedIds: [(sagaId: String, partition: Int32, offset: Int64)] = []
        var finishedHashes: [(hash: UInt64, partition: Int32, offset: Int64)] = []
        var bad: [Bad] = []
        /// Per partition: the `saga-state` end offset reached (a lower bound for future writes).
        var stateEnd: [Int32: Int64] = [:]
        /// Partitions restored from a snapshot (the rest from their whole changelog).
        var fromSnapshot: Set<Int32> = []
        var tailRecords = 0
        /// Seconds of each phase (manifests, chunks, tail), for logs and benches.
        var phases: [(String, Double)] = []
    }

    /// A saga of a partition (the newest record per key wins within a partition).
    private struct SagaKey: Hashable {
        var partition: Int32
        var id: String
    }

    private enum Latest {
        case state(SagaState, finishedAt: Instant?)
        case finished(FinishedSummary)
        case tombstone
        case bad(Bad)
    }

    static let finishedAtHeader = "yishi-finished-at"

    func read(partitions: [Int32]) throws -> Result {
        let reader = try KafkaConsumer(config: config.consumerConfig([
            "enable.partition.eof": "true", "fetch.wait.max.ms": "5", "fetch.error.backoff.ms": "10",
            "queued.max.messages.kbytes": "262144", "auto.offset.reset": "earliest",
            // Large fetches for the snapshot's 256 KB chunks and a long tail (restore only).
            "fetch.max.bytes": "67108864", "max.partition.fetch.bytes": "16777216", "receive.message.max.bytes": "68157440",
        ]), groupId: groupId)
        defer { try? reader.close() }
        let snapshots = config.topic("saga-snapshots"), stateTopic = config.topic("saga-state")

        var phases: [(String, Double)] = []
        var phaseStart = ContinuousClock.now
        func phase(_ name: String) {
            let now = ContinuousClock.now
            let d = now - phaseStart
            phases.append((name, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18))
            phaseStart = now
        }
        // 1. The newest manifest of each partition (O(1) in history): the last `manifestProbe`
        //    records first (the manifest is normally the very last one, and chunks are 256 KB
        //    each, so a wide window would read most of the snapshot twice), then the whole
        //    `manifestWindow` for partitions whose probe held none.
        var bounds: [Int32: (low: Int64, high: Int64)] = [:]
        for p in partitions where useSnapshots {
            let (low, high) = try reader.watermarks(TopicPartition(snapshots, p))
            if high > low { bounds[p] = (low, high) }
        }
        var manifests: [Int32: SnapshotFormat.Manifest] = [:]
        for window in [SnapshotFormat.manifestProbe, SnapshotFormat.manifestWindow] {
            let starts = bounds.sorted { $0.key < $1.key }.compactMap { p, b -> TopicPartitionOffset? in
                guard manifests[p] == nil, window == SnapshotFormat.manifestProbe || b.high - b.low > SnapshotFormat.manifestProbe else { return nil }
                return TopicPartitionOffset(snapshots, p, max(b.low, b.high - window))
            }
            try drain(reader, starts) { message in
                guard message.keyString == "manifest", let value = message.value,
                      let m = try? JSONDecoder().decode(SnapshotFormat.Manifest.self, from: value), m.partition == message.partition else { return }
                manifests[message.partition] = m
            }
        }

        phase("manifests")
        // 2. Their chunks, decoded on all cores as they arrive.
        let latest = Mutex<[SagaKey: (offset: Int64, value: Latest)]>([:])
        let hashes = Mutex<[(hash: UInt64, partition: Int32, offset: Int64)]>([])
        let decoding = DispatchGroup()
        let pool = DispatchQueue(label: "yishi.restore-decode", attributes: .concurrent)
        // The manifests say how many finished-index entries come: one allocation for all of them
        // (capped, so a manifest with a wrong count costs at most ~100 MB of reserved capacity).
        let cap = 4_000_000
        let expected = manifests.values.reduce(0) { min($0 + min(max(0, $1.finished), cap), cap) }
        hashes.withLock { $0.reserveCapacity(expected) }
        let chunkStarts = manifests.values.compactMap { m in m.chunks.min().map { TopicPartitionOffset(snapshots, m.partition, $0) } }
        var wanted: [Int32: Set<Int64>] = manifests.mapValues { Set($0.chunks) }
        if !chunkStarts.isEmpty {
            try drain(reader, chunkStarts, stop: { wanted.values.allSatisfy(\.isEmpty) }) { message in
                guard wanted[message.partition]?.remove(message.offset) != nil else { return }
                decoding.enter()
                pool.async {
                    defer { decoding.leave() }
                    var local: [(String, Latest)] = [], found: [(hash: UInt64, partition: Int32, offset: Int64)] = []
                    local.reserveCapacity(400)
                    do {
                        try SnapshotFormat.scan(message.value ?? Data(), state: { id, value, at in
                            do { local.append((id, .state(try SagaStateCodec.decode(value), finishedAt: at))) } catch {
                                let m = KafkaMessage(topic: message.topic, partition: message.partition, offset: message.offset,
                                                     key: Data(id.utf8), value: Data(value), headers: message.headers)
                                local.append((id, .bad(Bad(message: m, sagaId: id, reason: "snapshot state of saga \(id) does not decode: \(error)"))))
                            }
                        }, finished: { hash, offset in found.append((hash, message.partition, offset)) })
                    } catch {
                        local = [("#chunk@\(message.offset)", .bad(Bad(message: message, sagaId: nil, reason: "snapshot chunk does not decode: \(error)")))]
                    }
                    latest.withLock { map in for (id, v) in local { map[SagaKey(partition: message.partition, id: id)] = (-1, v) } }
                    hashes.withLock { $0 += found }
                }
            }
        }
        phase("chunks read")
        decoding.wait()
        phase("decoded")
        var result = Result()
        // A manifest whose chunks are not all there (deleted by retention) is not used: whole changelog instead.
        for (p, rest) in wanted where !rest.isEmpty {
            manifests[p] = nil
            latest.withLock { $0 = $0.filter { $0.key.partition != p } }
            hashes.withLock { $0.removeAll { $0.partition == p } }
        }
        result.fromSnapshot = Set(manifests.keys)

        // 3. The saga-state tail after each snapshot (or the whole partition), decoded on all cores.
        let tailStarts = partitions.map { TopicPartitionOffset(stateTopic, $0, manifests[$0]?.stateOffset ?? TopicPartitionOffset.beginning) }
        var ends: [Int32: Int64] = [:]
        var batch: [KafkaMessage] = []
        func flush() {
            guard !batch.isEmpty else { return }
            let messages = batch
            batch = []
            decoding.enter()
            pool.async {
                defer { decoding.leave() }
                var local: [(SagaKey, Int64, Latest)] = []
                local.reserveCapacity(messages.count)
                for message in messages {
                    guard let key = message.keyString else { continue }
                    let value: Latest
                    do {
                        switch try SagaStateRecord.decode(message.value) {
                        case .state(let s):
                            let at = message.headers.string(Self.finishedAtHeader).flatMap(Int64.init).map(Instant.init(ms:))
                            value = .state(s, finishedAt: at)
                        case .finished(let f): value = .finished(f)
                        case .tombstone: value = .tombstone
                        }
                    } catch {
                        value = .bad(Bad(message: message, sagaId: key, reason: "\(error)"))
                    }
                    local.append((SagaKey(partition: message.partition, id: key), message.offset, value))
                }
                latest.withLock { map in
                    for (key, offset, value) in local where (map[key]?.offset ?? -2) < offset { map[key] = (offset, value) }
                }
            }
        }
        try drain(reader, tailStarts) { message in
            ends[message.partition] = message.offset + 1
            result.tailRecords += 1
            batch.append(message)
            if batch.count >= 2000 { flush() }
        }
        flush()
        decoding.wait()
        phase("tail")
        for p in partitions { result.stateEnd[p] = max(ends[p] ?? 0, manifests[p]?.stateOffset ?? 0) }

        result.finishedHashes = hashes.withLock { $0 }
        let newest = latest.withLock { $0 }
        result.states.reserveCapacity(newest.count)
        for (key, entry) in newest {
            let p = key.partition
            switch entry.value {
            case .state(let s, let at): result.states.append((s, p, at))
            case .finished(let f): result.finishedIds.append((f.sagaId, p, entry.offset))
            case .tombstone: break
            case .bad(let bad): result.bad.append(bad)
            }
        }
        phase("merge")
        result.phases = phases
        return result
    }

    /// Assigns `starts` and hands every record to `body` until each partition reached its end
    /// (or `stop` says enough).
    private func drain(_ reader: KafkaConsumer, _ starts: [TopicPartitionOffset], stop: () -> Bool = { false },
                       _ body: (KafkaMessage) throws -> Void) throws {
        guard !starts.isEmpty else { return }
        let ended = Mutex<Set<TopicPartition>>([])
        reader.onPartitionEnd { end in ended.withLock { _ = $0.insert(end.topicPartition) } }
        try reader.assign(starts)
        let all = Set(starts.map(\.topicPartition))
        // Gives up only after 60 s without a record: a long changelog (a first start after an
        // upgrade, no snapshot yet) is slow, not stuck.
        var deadline = ContinuousClock.now + .seconds(60)
        while !stop(), !ended.withLock({ all.isSubset(of: $0) }) {
            guard ContinuousClock.now < deadline else {
                throw OrchestratorError.restoreTimedOut(partitions: all.subtracting(ended.withLock { $0 }).map(\.partition).sorted())
            }
            let messages = try reader.poll(maxMessages: 5000, timeout: .milliseconds(20))
            if !messages.isEmpty { deadline = ContinuousClock.now + .seconds(60) }
            for message in messages where all.contains(message.topicPartition) {
                try body(message)
            }
        }
        try reader.assign([])
    }

    /// The newest `saga-state` record of `sagaId` on `partition` at or after `offset`, when it is a
    /// `FinishedSummary` (a re-submitted application id found in the `FinishedIndex`).
    func summary(of sagaId: String, partition: Int32, from offset: Int64) throws -> FinishedSummary? {
        let reader = try KafkaConsumer(config: config.consumerConfig(["enable.partition.eof": "true", "fetch.wait.max.ms": "5"]), groupId: groupId)
        defer { try? reader.close() }
        var newest: Data??
        try drain(reader, [TopicPartitionOffset(config.topic("saga-state"), partition, offset)]) { message in
            if message.keyString == sagaId { newest = .some(message.value) }
        }
        guard case .some(let value) = newest, case .finished(let summary)? = try? SagaStateRecord.decode(value) else { return nil }
        return summary
    }
}
