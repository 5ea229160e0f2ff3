import Foundation
import Messaging
import SagaEngine
import HubHTTP

/// The finished-saga lifecycle of one orchestrator instance (docs/operations.md, "Retention").
///
/// A saga that reaches a final status stays in the hot state for `grace` (hub time, measured
/// from the instant it finished), so that late agency answers still reach it (a late success
/// after a failure is undone). Then it leaves the hot state in the transaction that writes its
/// `FinishedSummary` to `saga-state`; from then on the instance keeps only a `FinishedIndex`
/// entry (16 bytes of payload) that says on which `saga-state` partition, at or after which
/// offset, its summary is. A re-submitted application id with an index entry is answered from
/// the summary (read from the changelog, rare), never with a second saga; a late answer for it
/// is counted and logged as ignored, not dead-lettered.
///
/// Batch semantics follow `SagaHost`: what a batch does is pending until `commit`, and `abort`
/// forgets it, so an aborted transaction leaves the lifecycle exactly as it was.
struct Retention {
    /// How long a finished saga stays in the hot state (hub time, ms).
    var graceMs: Int64 = OrchestratorConfig.defaultFinishedGrace.wholeMilliseconds

    /// When each finished saga in the hot state finished (committed).
    private(set) var finishedAt: [String: Instant] = [:]
    /// Finished sagas in the order they finished (due order, since grace is one constant);
    /// entries whose saga reopened or finished again are skipped when they come due.
    private var queue: [(id: String, at: Instant)] = []
    private var head = 0
    /// The sagas that left the hot state.
    private(set) var index = FinishedIndex()

    // Batch (pending until commit).
    private(set) var pendingFinished: [String: Instant] = [:]
    /// `saga-state` values to write in this batch: summaries of sagas leaving the hot state,
    /// and updated summaries (advanced audit chain) of re-submitted finished sagas.
    private(set) var summaries: [String: FinishedSummary] = [:]
    /// Of `summaries`, the sagas that leave the hot state in this batch.
    private(set) var evicting: Set<String> = []

    mutating func finished(_ sagaId: String, at: Instant) { pendingFinished[sagaId] = at }

    /// The instant a saga finished, pending or committed.
    func finishedInstant(_ sagaId: String) -> Instant? { pendingFinished[sagaId] ?? finishedAt[sagaId] }

    /// Pops the sagas whose grace ended by `now` (at most `limit`), for the host to evict.
    mutating func due(now: Instant, limit: Int) -> [(id: String, at: Instant)] {
        var out: [(id: String, at: Instant)] = []
        while head < queue.count, out.count < limit, queue[head].at.ms &+ graceMs <= now.ms {
            let entry = queue[head]
            head += 1
            if finishedAt[entry.id] == entry.at { out.append(entry) }
        }
        if head > 4096, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return out
    }

    /// Puts sagas popped by `due` back at the front (changed in this batch: they leave with a later one).
    mutating func requeue(_ entries: [(id: String, at: Instant)]) {
        guard !entries.isEmpty else { return }
        queue.insert(contentsOf: entries, at: head)
    }

    mutating func evict(_ summary: FinishedSummary) {
        summaries[summary.sagaId] = summary
        evicting.insert(summary.sagaId)
    }

    mutating func rewrite(_ summary: FinishedSummary) { summaries[summary.sagaId] = summary }

    /// Makes the batch's changes the committed lifecycle. `lowerBound(sagaId)` gives the
    /// `saga-state` partition and an offset at or below the one the summary gets.
    mutating func commit(lowerBound: (String) -> (partition: Int32, offset: Int64)?) {
        for (id, at) in pendingFinished.sorted(by: { $0.value < $1.value }) {
            finishedAt[id] = at
            queue.append((id, at))
        }
        for id in evicting {
            finishedAt[id] = nil
            if let bound = lowerBound(id) { index.insert(id, partition: bound.partition, offset: bound.offset) }
        }
        clear()
    }

    /// Forgets the batch; sagas whose eviction was in it come due again.
    mutating func abort() {
        for id in evicting.sorted() {
            if let at = finishedAt[id] { queue.insert((id, at), at: head) }
        }
        clear()
    }

    private mutating func clear() {
        pendingFinished.removeAll(keepingCapacity: true)
        summaries.removeAll(keepingCapacity: true)
        evicting.removeAll(keepingCapacity: true)
    }

    /// Restore: a finished saga back in the hot state (its grace counts from `at`).
    mutating func restoreFinished(_ sagaId: String, at: Instant) {
        finishedAt[sagaId] = at
        queue.append((sagaId, at))
    }

    /// Restore: the entries of `restored` (built apart, for partitions this instance did not own)
    /// join the index, as if inserted one by one after the ones already in it.
    mutating func restoreIndex(_ restored: FinishedIndex) { index.merge(restored) }

    /// After a restore the queue must be in due order again.
    mutating func sortQueue() {
        queue = Array(queue[head...]).sorted { $0.at < $1.at }
        head = 0
    }

    /// Revocation: forgets everything about sagas of partitions no longer owned.
    mutating func drop(where notOwned: (String) -> Bool, partitions: Set<Int32>) {
        finishedAt = finishedAt.filter { !notOwned($0.key) }
        queue = queue[head...].filter { !notOwned($0.id) }
        head = 0
        index.remove(partitions: partitions)
    }

    mutating func dropAll() {
        finishedAt.removeAll()
        queue.removeAll()
        head = 0
        index = FinishedIndex()
    }
}

/// The sagas that left the hot state, by a 64-bit hash of the saga id (FNV-1a): for each, the
/// `saga-state` partition and an offset at or before its `FinishedSummary` record. A hit is
/// confirmed by reading that summary, so a hash collision can only cost a read, never a wrong
/// answer.
///
/// An open-addressing table (linear probing, at most 3/4 full) keyed by the hash itself: the
/// hash is already a good 64-bit hash, so inserting one costs a multiply and a probe or two
/// instead of a `Dictionary`'s SipHash (a restore inserts one per finished saga in the
/// snapshot: a million in a year). Memory: 24 bytes per slot, 32–64 per finished saga,
/// against about 7 KB per saga in the hot state.
struct FinishedIndex: Sendable {
    struct Entry: Sendable, Equatable {
        var partition: Int32
        var offset: Int64
    }
    /// One slot: hash, offset and partition together (one cache line visit per probe).
    private struct Slot {
        var hash: UInt64
        var offset: Int64
        /// -1: empty.
        var partition: Int32
        static let empty = Slot(hash: 0, offset: 0, partition: -1)
    }
    /// A power-of-two number of slots.
    private var slots: [Slot] = []
    private(set) var count = 0

    static func hash(_ sagaId: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sagaId.utf8 {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01b3
        }
        return h
    }

    /// The slot holding `hash`, or the empty slot where it would go. Needs a non-empty table.
    @inline(__always) private static func slot(_ hash: UInt64, in slots: UnsafeBufferPointer<Slot>) -> Int {
        let mask = slots.count - 1
        // Fibonacci hashing spreads FNV's low bits over the table.
        var i = Int(truncatingIfNeeded: (hash &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
        while slots[i].partition >= 0 && slots[i].hash != hash { i = (i + 1) & mask }
        return i
    }

    func lookup(_ sagaId: String) -> Entry? { lookup(hash: Self.hash(sagaId)) }

    func lookup(hash: UInt64) -> Entry? {
        guard count > 0 else { return nil }
        return slots.withUnsafeBufferPointer { s in
            let slot = s[Self.slot(hash, in: s)]
            return slot.partition >= 0 ? Entry(partition: slot.partition, offset: slot.offset) : nil
        }
    }

    mutating func insert(_ sagaId: String, partition: Int32, offset: Int64) {
        insert(hash: Self.hash(sagaId), partition: partition, offset: offset)
    }

    /// Keeps the lowest offset when two sagas share a hash, so both summaries are at or after it.
    mutating func insert(hash: UInt64, partition: Int32, offset: Int64) {
        precondition(partition >= 0, "a saga-state partition is never negative")
        if (count + 1) * 4 > slots.count * 3 { grow(to: count + 1) }
        let added = slots.withUnsafeMutableBufferPointer { s -> Bool in
            let i = Self.slot(hash, in: UnsafeBufferPointer(s))
            if s[i].partition >= 0, s[i].partition == partition, s[i].offset <= offset { return false }
            let new = s[i].partition < 0
            s[i] = Slot(hash: hash, offset: offset, partition: partition)
            return new
        }
        if added { count += 1 }
    }

    /// Room for `count` more entries without growing (a restore knows how many it brings).
    mutating func reserve(_ more: Int) {
        if (count + more) * 4 > slots.count * 3 { grow(to: count + more) }
    }

    /// Rebuilds the table with room for `needed` entries at most 3/4 full.
    private mutating func grow(to needed: Int) {
        var size = max(16, slots.count)
        while needed * 4 > size * 3 { size *= 2 }
        let old = slots
        slots = Array(repeating: .empty, count: size)
        slots.withUnsafeMutableBufferPointer { s in
            for slot in old where slot.partition >= 0 { s[Self.slot(slot.hash, in: UnsafeBufferPointer(s))] = slot }
        }
    }

    /// Inserts every entry of `other` (an index built apart, e.g. by a restore on another thread).
    /// The same as inserting them one by one when no hash is on a partition of both.
    mutating func merge(_ other: FinishedIndex) {
        guard count > 0 else {
            self = other
            return
        }
        reserve(other.count)
        for slot in other.slots where slot.partition >= 0 { insert(hash: slot.hash, partition: slot.partition, offset: slot.offset) }
    }

    mutating func remove(partitions gone: Set<Int32>) {
        guard count > 0 else { return }
        let old = slots
        slots = []
        count = 0
        for slot in old where slot.partition >= 0 && !gone.contains(slot.partition) {
            insert(hash: slot.hash, partition: slot.partition, offset: slot.offset)
        }
    }

    func entries(partition: Int32) -> [(hash: UInt64, offset: Int64)] {
        slots.compactMap { $0.partition == partition ? ($0.hash, $0.offset) : nil }
    }

    /// Every entry (tests, tools), in no particular order.
    var all: [(hash: UInt64, entry: Entry)] {
        slots.compactMap { $0.partition >= 0 ? ($0.hash, Entry(partition: $0.partition, offset: $0.offset)) : nil }
    }
}

extension SagaHost {
    /// Moves the finished sagas whose grace ended by `now` out of the hot state: each gets its
    /// `FinishedSummary` written to `saga-state` in this batch and leaves `sagas` at commit.
    /// A saga changed in this batch waits for the next one. Returns how many leave.
    mutating func evictFinished(now: Instant, limit: Int) -> Int {
        var count = 0
        var later: [(id: String, at: Instant)] = []
        for (id, at) in retention.due(now: now, limit: limit) {
            guard let saga = sagas[id], saga.status.isFinal else { continue }
            // Changed in this batch (its state is encoded at commit): it leaves with the next one.
            guard !changedInBatch(id) else { later.append((id, at)); continue }
            retention.evict(FinishedSummary(saga, finishedAt: at))
            count += 1
        }
        retention.requeue(later)
        return count
    }

    /// A submit for a saga that already finished: an `inputIgnored` audit event (chained into its
    /// audit trail) and a `progress` answer saying it is already finished. `summary` is the
    /// saga's summary; its advanced audit chain is written back to `saga-state` in this batch.
    mutating func answerAlreadyFinished(_ summary: FinishedSummary, at: Instant) {
        var summary = retention.summaries[summary.sagaId] ?? summary
        // An `AuditEvent` (kind inputIgnored) in its JSON form.
        let event = JSONValue.object([
            "sagaId": .string(summary.sagaId), "seq": .number(0), "at": .number(Double(at.ms)),
            "kind": .string(AuditEvent.Kind.inputIgnored.rawValue),
            "detail": .string("application already finished: \(summary.status.rawValue) at \(summary.finishedAt); no second saga"),
        ])
        var out = SagaHost.Outbound(topic: "saga-events", key: summary.sagaId, sagaId: summary.sagaId,
                                    type: MessageType.sagaAudit(AuditEvent.Kind.inputIgnored.rawValue), subject: summary.sagaId,
                                    step: nil, attempt: nil, payload: event)
        var chain = summary.auditChain ?? .start(sagaId: summary.sagaId, bundleVersion: summary.bundleVersion, algorithm: chainAlgorithm)
        let (previous, link) = chain.append(type: out.type, key: out.key, value: out.data)
        out.chain = Outbound.ChainLink(algorithm: chain.algorithm, previous: previous, link: link, position: chain.length)
        summary.auditChain = chain
        outbound.append(out)
        outbound.append(Self.alreadyFinishedProgress(summary, at: at))
        retention.rewrite(summary)
    }

    /// The `progress` record that answers a re-submitted application of a finished saga.
    static func alreadyFinishedProgress(_ summary: FinishedSummary, at: Instant) -> Outbound {
        let payload = JSONValue.object([
            "applicationId": .string(summary.sagaId), "bundle": .string(summary.bundleId),
            "status": .string(summary.status.rawValue), "finishedAt": .string(summary.finishedAt.description),
            "at": .string(at.description),
        ])
        return Outbound(topic: "progress", key: summary.sagaId, sagaId: summary.sagaId, type: MessageType.progressAlreadyFinished,
                        subject: summary.sagaId, step: nil, attempt: nil, payload: payload)
    }
}

extension Duration {
    /// The duration in whole milliseconds.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds &* 1000 &+ attoseconds / 1_000_000_000_000_000
    }
}

/// Prometheus counters of the finished-saga lifecycle, restore quarantine and snapshots
/// (docs/operations.md, "Metrics"), registered on the orchestrator's registry when it runs:
/// `yishi_sagas_retired_total`, `yishi_resubmits_answered_total`, `yishi_late_inputs_ignored_total`,
/// `yishi_states_quarantined_total`, `yishi_snapshots_started_total`.
struct RetentionMetrics {
    let retired, resubmits, lateIgnored, quarantined, snapshots: MetricFamily

    init(registry: MetricsRegistry) {
        retired = registry.counter("yishi_sagas_retired_total", "Finished sagas that left the hot state after their grace period.")
        resubmits = registry.counter("yishi_resubmits_answered_total", "Re-submitted application ids of finished sagas answered already finished.")
        lateIgnored = registry.counter("yishi_late_inputs_ignored_total", "Agency answers for sagas that had left the hot state, ignored.")
        quarantined = registry.counter("yishi_states_quarantined_total", "saga-state or snapshot records that did not decode at restore (DLQ undecodable-state).")
        snapshots = registry.counter("yishi_snapshots_started_total", "Snapshots of the live set handed to the snapshot writer.")
    }
}
