import Foundation
import Messaging
import Synchronization
import Orchestrator
import SagaEngine
import YishiKafka

/// The read-only path when no orchestrator answers: `saga-state` (compacted; the last record per
/// key wins, a tombstone deletes) and `saga-events` (the audit trail), read to their end.
/// A saga's records all live on the partition its id hashes to, so one saga costs one partition.
///
/// A read-only reader never stops at a record it cannot decode: it skips it and says so in
/// `skipped` (topic, partition, offset and why), which the CLI prints as notes.
public struct Changelog: Sendable {
    public let hub: Hub
    /// Records skipped because they did not decode, one line each.
    public let skipped: SkipLog

    public init(hub: Hub, skipped: SkipLog = SkipLog()) { self.hub = hub; self.skipped = skipped }

    /// The saga's latest state, reading only its partition of `saga-state`. A saga that finished
    /// and left the orchestrator's hot state has a `FinishedSummary` as its newest record: its
    /// last full state before it is returned with the summary's status (until compaction removes
    /// it; then the summary is reported in `skipped` and nil returned).
    public func state(of sagaId: String) throws -> SagaState? {
        let topic = hub.topic("saga-state")
        let partition = try hub.partition(ofSaga: sagaId)
        let records = try TopicReader(hub: hub).read(topic: topic, partitions: [partition], key: sagaId)
        return Self.newest(records, topic: topic, skipped: skipped)
    }

    /// The newest state among one saga's `records` (in offset order); see `state(of:)`.
    static func newest(_ records: [KafkaMessage], topic: String, skipped: SkipLog) -> SagaState? {
        var summary: FinishedSummary?
        // The newest readable record; an unreadable one is skipped and reported, never fatal.
        for record in records.reversed() {
            let name = record.keyString ?? "-"
            do {
                switch try SagaStateRecord.decode(record.value) {
                case .tombstone: return nil
                case .finished(let f): summary = summary ?? f
                case .state(var state):
                    if let summary { state.status = summary.status }
                    return state
                }
            } catch {
                skipped.add("skipped \(topic)[\(record.partition)]@\(record.offset) (saga \(name)): not a SagaState: \(error)")
            }
        }
        if let summary {
            skipped.add("saga \(summary.sagaId) \(summary.status.rawValue) at \(summary.finishedAt) and left the hot state; its full state was compacted away (audit trail: saga-events)")
        }
        return nil
    }

    /// Every saga's latest state (all partitions).
    public func allStates() throws -> [SagaState] {
        let topic = hub.topic("saga-state")
        let count = try hub.partitions("saga-state")
        var latest: [Data: [KafkaMessage]] = [:]
        for message in try TopicReader(hub: hub).read(topic: topic, partitions: Array(0..<count)) {
            guard let key = message.key else { continue }
            // Keep the newest record, and the ones before it only while it is not a full state
            // (a summary needs the full state before it; an unreadable record is skipped).
            if let value = message.value, !value.starts(with: FinishedSummary.magic), (try? SagaStateCodec.decode(value)) != nil {
                latest[key] = [message]
            } else {
                latest[key, default: []].append(message)
            }
        }
        return latest.values.sorted { ($0.last!.partition, $0.last!.offset) < ($1.last!.partition, $1.last!.offset) }.compactMap {
            Self.newest($0, topic: topic, skipped: skipped)
        }
    }

    /// The saga's audit trail from `saga-events` (its partition only), in order.
    public func audit(of sagaId: String) throws -> [AuditEvent] {
        let topic = hub.topic("saga-events")
        let partition = try hub.partition(ofSaga: sagaId, topic: "saga-events")
        let records = try TopicReader(hub: hub).read(topic: topic, partitions: [partition], key: sagaId)
        return Self.auditEvents(records, skipped: skipped)
    }

    /// Reads the audit trail on another thread while `body` runs (both are one partition's read).
    public func audit<T>(of sagaId: String, while body: () throws -> T) throws -> (T, [AuditEvent]) {
        // One metadata request serves both reads (the partition counts are cached), not one each.
        _ = try hub.partitions("saga-events")
        let result = Mutex<Result<[AuditEvent], Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            let outcome = Result { try self.audit(of: sagaId) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        thread.start()
        let value = Result { try body() }
        done.wait()
        return (try value.get(), try result.withLock { $0! }.get())
    }

    /// Audit events among `records` (the other `saga-events` types — case opened, finished — are skipped).
    /// An audit record that does not decode is skipped and reported in `skipped`.
    static func auditEvents(_ records: [KafkaMessage], skipped: SkipLog = SkipLog()) -> [AuditEvent] {
        let decoder = JSONDecoder()
        return records.compactMap { message in
            guard let type = message.headers.string(Envelope.Header.type), type.hasPrefix(MessageType.sagaAuditPrefix),
                  type != MessageType.manualCaseOpened, type != MessageType.sagaFinished, let value = message.value else { return nil }
            do { return try decoder.decode(AuditEvent.self, from: value) } catch {
                skipped.add("skipped \(message.topic)[\(message.partition)]@\(message.offset) (\(type)): not an audit event: \(error)")
                return nil
            }
        }
    }
}

/// Lines a read-only reader reports about records it skipped (any thread).
public final class SkipLog: Sendable {
    private let lines = Mutex<[String]>([])
    public init() {}
    public func add(_ line: String) { lines.withLock { $0.append(line) } }
    public var all: [String] { lines.withLock { $0 } }
}

/// Reading sagas: live from the orchestrator, or from the changelog when none answers.
public struct SagaSource {
    public enum Mode: String, Sendable, CaseIterable {
        /// The orchestrator; if it does not answer, the changelog (and say so).
        case auto
        case live
        case changelog
    }

    public let hub: Hub
    public let mode: Mode
    /// Where the last answer came from (`live` or `changelog`).
    public private(set) var answeredBy: Mode = .auto
    /// Said to the operator when the live path failed and the changelog answered instead, and
    /// the changelog records skipped as unreadable.
    public var notes: [String] { said + skipped.all }
    private var said: [String] = []
    /// Shared with the changelog reads this source makes.
    public let skipped = SkipLog()

    public init(hub: Hub, mode: Mode) { self.hub = hub; self.mode = mode }

    public mutating func state(of sagaId: String) throws -> SagaState {
        if mode != .changelog {
            let request = OpsRequest(requestId: OpsClient(hub: hub).newRequestId(), by: hub.operatorName, action: .get, sagaId: sagaId)
            do {
                let reply = try OpsClient(hub: hub, share: mode == .auto ? 0.5 : 1).send(request)
                answeredBy = .live
                if reply.ok, let state = reply.sagas?.first { return state }
                // Not in the orchestrator's hot state: a saga that finished and left it after its grace
                // period is still in the changelog and the audit trail.
                guard mode == .auto else {
                    throw OperationsError.notFound(reply.error.map { $0.hasPrefix("no saga") ? $0 : "no saga \(sagaId): \($0)" } ?? "no saga \(sagaId)")
                }
                said.append("live: \(reply.error ?? "the orchestrator has no such saga in its hot state"); answered from the changelog (\(hub.topic("saga-state")))")
            } catch let error as OperationsError {
                guard mode == .auto, case .unreachable(let why) = error else { throw error }
                said.append("live: \(why); answered from the changelog (\(hub.topic("saga-state")))")
            }
        }
        answeredBy = .changelog
        guard let state = try Changelog(hub: hub, skipped: skipped).state(of: sagaId) else {
            throw OperationsError.notFound("no saga \(sagaId)")
        }
        return state
    }

    /// Matching sagas over all partitions in (submittedAt, sagaId) order, at most `filter.limit`,
    /// and the cursor for the next page when there is one.
    public mutating func list(_ filter: SagaFilter, library: BundleLibrary) throws -> (sagas: [SagaState], next: SagaCursor?) {
        if mode != .changelog {
            // Auto: half of the budget for the orchestrator, the rest for the changelog.
            let client = OpsClient(hub: hub, share: mode == .auto ? 0.5 : 1)
            do {
                // Each reply is one ops-replies record: when the orchestrator had to cut a partition's
                // page to fit message.max.bytes, follow the pages until the limit is reached.
                var sagas: [SagaState] = []
                var after = filter.after
                let limit = filter.effectiveLimit
                while true {
                    var request = filter
                    request.after = after
                    request.limit = limit - sagas.count
                    let replies = try client.broadcast(OpsRequest(requestId: client.newRequestId(), by: hub.operatorName, action: .list, filter: request))
                    answeredBy = .live
                    if let bad = replies.first(where: { !$0.ok }) {
                        throw OperationsError.refused("partition \(bad.partition): \(bad.error ?? "refused")")
                    }
                    let (page, next) = Self.merge(replies, limit: limit - sagas.count)
                    sagas += page
                    guard let next, sagas.count < limit, !page.isEmpty else {
                        return (sagas, next == nil ? nil : sagas.last.map(SagaCursor.init(after:)))
                    }
                    after = next
                }
            } catch let error as OperationsError {
                guard mode == .auto, case .unreachable(let why) = error else { throw error }
                said.append("live: \(why); answered from the changelog (\(hub.topic("saga-state")))")
            }
        }
        answeredBy = .changelog
        let selected = filter.select(try Changelog(hub: hub, skipped: skipped).allStates()) { library.bundle($0.bundleId, version: $0.bundleVersion) }
        return Self.page(selected.sagas, more: selected.more, limit: filter.effectiveLimit)
    }

    /// Merges one reply per partition into the global page. A partition that said `more` gave
    /// its first sagas after the cursor, up to its last one: sagas of other partitions beyond
    /// that point may come after sagas it has not sent yet, so the merge stops at the earliest
    /// such last saga (then at `limit`). The cursor continues from the page's last saga.
    static func merge(_ replies: [OpsReply], limit: Int) -> (sagas: [SagaState], next: SagaCursor?) {
        var sagas = replies.flatMap { $0.sagas ?? [] }
        for reply in replies where reply.more == true {
            guard let last = reply.sagas?.max(by: SagaCursor.order) else { continue }
            let boundary = SagaCursor(after: last)
            sagas.removeAll { boundary.precedes($0) }
        }
        return page(sagas, more: replies.contains { $0.more == true }, limit: limit)
    }

    /// Merges per-partition pages: each partition gave its first `limit` after the cursor, so the
    /// first `limit` of the merge are exactly the global first `limit`.
    static func page(_ sagas: [SagaState], more: Bool, limit: Int) -> (sagas: [SagaState], next: SagaCursor?) {
        let sorted = sagas.sorted(by: SagaCursor.order)
        let page = Array(sorted.prefix(limit))
        let hasMore = more || sorted.count > limit
        return (page, hasMore ? page.last.map(SagaCursor.init(after:)) : nil)
    }
}
