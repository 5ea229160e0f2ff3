import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// `yishi audit verify`: recomputes each saga's audit hash chain (`AuditChain`) from the records
/// on `saga-events` and checks it against the chain heads kept in `saga-state` and on
/// `audit-heads`. Names the first broken link of each saga and its kind.
///
/// Records written before the chain existed (no `yishi-chain` headers, before a saga's first
/// chained record) are counted as unchained, never as broken. Foreign records (no key, no
/// CloudEvents type) and malformed ones (unreadable chain headers, undecodable heads or states)
/// are listed with topic, partition and offset and verification goes on; a malformed record
/// inside a saga's chain also breaks that chain at its place.
public enum AuditVerifier {
    /// How a chain is broken.
    public enum BreakKind: String, Codable, Sendable {
        /// A record's content (payload, type, key or chain headers) no longer matches its link.
        case changed
        /// A record is missing: the next one links to a record that is not there, or the chain
        /// ends before the head recorded in `saga-state` / `audit-heads`.
        case removed
        /// A record that does not belong: the chain goes on past it, it repeats an earlier
        /// record, or it has no chain headers inside a chained trail.
        case inserted
        /// A record stands before the one it links to.
        case reordered
    }

    /// The first broken link of a saga's chain.
    public struct Break: Codable, Sendable, Equatable {
        public var kind: BreakKind
        /// 1-based position in the chain where the break is (the expected position of the record).
        public var position: UInt32
        /// Where the record at the break is (nil for a removed tail: no record is there).
        public var topic: String?
        public var partition: Int32?
        public var offset: Int64?
        public var detail: String
    }

    public struct SagaResult: Codable, Sendable, Equatable {
        public enum Status: String, Codable, Sendable { case intact, broken, unchained }
        public var sagaId: String
        public var status: Status
        /// `sm3` or `sha-256` (nil when nothing is chained).
        public var algorithm: String?
        /// Records of the saga on `saga-events`.
        public var records: Int
        /// Records written before the chain existed.
        public var unchained: Int
        /// Links verified in order from the genesis value.
        public var verified: Int
        /// Chain length recorded in `saga-state` (nil when the state has no chain head).
        public var recordedLength: UInt32?
        public var firstBreak: Break?
        public var notes: [String]
    }

    /// A record that is not part of any saga's chain, or that could not be read.
    public struct Problem: Codable, Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var reason: String
    }

    public struct Report: Codable, Sendable, Equatable {
        public var sagas: [SagaResult]
        public var problems: [Problem]
        /// Sagas asked for by id that have nothing on any of the three topics.
        public var notFound: [String]
        public var intact: Int { sagas.filter { $0.status == .intact }.count }
        public var broken: Int { sagas.filter { $0.status == .broken }.count }
        public var unchained: Int { sagas.filter { $0.status == .unchained }.count }
        /// True when no chain is broken and every saga asked for was found.
        public var ok: Bool { broken == 0 && notFound.isEmpty }

        enum CodingKeys: String, CodingKey { case sagas, problems, notFound, intact, broken, unchained, ok }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ok, forKey: .ok)
            try c.encode(intact, forKey: .intact)
            try c.encode(broken, forKey: .broken)
            try c.encode(unchained, forKey: .unchained)
            try c.encode(sagas, forKey: .sagas)
            try c.encode(problems, forKey: .problems)
            try c.encode(notFound, forKey: .notFound)
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            sagas = try c.decode([SagaResult].self, forKey: .sagas)
            problems = try c.decode([Problem].self, forKey: .problems)
            notFound = try c.decode([String].self, forKey: .notFound)
        }
        public init(sagas: [SagaResult], problems: [Problem], notFound: [String]) {
            self.sagas = sagas; self.problems = problems; self.notFound = notFound
        }
    }

    /// One `saga-events` record as the verifier sees it.
    struct Entry {
        let message: KafkaMessage
        let key: String
        let type: String
        struct Link { let algorithm: HashAlgorithm; let previous: [UInt8]; let link: [UInt8] }
        /// Nil: no chain headers at all.
        let chain: Link?
        /// Why the chain headers could not be read (then `chain` is nil).
        let malformed: String?
        var canonical: [UInt8] { AuditChain.canonical(type: type, key: key, value: [UInt8](message.value ?? Data())) }
    }

    /// Verifies the chains of `sagas` (every saga found when nil) from the records of
    /// `saga-events` (`events`, any order: sorted by partition and offset here), the latest
    /// `saga-state` record of each saga (`states`, by saga id) and the `audit-heads` records
    /// (`heads`). Pure: the CLI and the tests call it with records read from Kafka or built by hand.
    public static func verify(events: [KafkaMessage], states: [String: SagaState], heads: [KafkaMessage],
                              sagas: Set<String>? = nil) -> Report {
        var problems: [Problem] = []
        func problem(_ m: KafkaMessage, _ reason: String) {
            problems.append(Problem(topic: m.topic, partition: m.partition, offset: m.offset, reason: reason))
        }
        // saga-events records, by saga.
        var bySaga: [String: [Entry]] = [:]
        for m in events.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            guard let key = m.keyString, !key.isEmpty else { problem(m, "foreign record: no key (every hub record is keyed by saga id)"); continue }
            guard let type = m.headers.string(Envelope.Header.type) else {
                problem(m, "foreign record (key '\(key)'): no \(Envelope.Header.type) header, not a CloudEvents record of the hub"); continue
            }
            if let sagas, !sagas.contains(key) { continue }
            let names = [AuditChain.Header.algorithm, AuditChain.Header.previous, AuditChain.Header.link]
            let present = names.filter { m.headers.string($0) != nil }
            var chain: Entry.Link?
            var malformed: String?
            if !present.isEmpty {
                let algText = m.headers.string(AuditChain.Header.algorithm) ?? ""
                let prev = m.headers.string(AuditChain.Header.previous).flatMap(Hex.decode)
                let link = m.headers.string(AuditChain.Header.link).flatMap(Hex.decode)
                if let alg = HashAlgorithm(name: algText), let prev, prev.count == 32, let link, link.count == 32 {
                    chain = Entry.Link(algorithm: alg, previous: prev, link: link)
                } else {
                    malformed = "malformed chain headers (\(names.map { "\($0)=\(m.headers.string($0) ?? "missing")" }.joined(separator: ", ")))"
                    problem(m, "saga \(key): \(malformed!)")
                }
            }
            bySaga[key, default: []].append(Entry(message: m, key: key, type: type, chain: chain, malformed: malformed))
        }
        // audit-heads records, by saga, in order.
        var headsBySaga: [String: [(AuditChainHeadRecord, KafkaMessage)]] = [:]
        let decoder = JSONDecoder()
        for m in heads.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            guard let key = m.keyString, !key.isEmpty else { problem(m, "foreign record: no key"); continue }
            if let sagas, !sagas.contains(key) { continue }
            guard let value = m.value, let head = try? decoder.decode(AuditChainHeadRecord.self, from: value), head.sagaId == key,
                  HashAlgorithm(name: head.algorithm) != nil, Hex.decode(head.link)?.count == 32 else {
                problem(m, "malformed chain-head record for key '\(key)': not a cn.gov.yishi.audit.chain-head value for that saga"); continue
            }
            headsBySaga[key, default: []].append((head, m))
        }
        var ids = Set(bySaga.keys).union(headsBySaga.keys)
        for (id, state) in states where state.auditChain != nil && (sagas?.contains(id) ?? true) { ids.insert(id) }
        let notFound = (sagas ?? []).filter { id in !ids.contains(id) && states[id] == nil }.sorted()
        let results = ids.sorted().map { id in
            verifySaga(id, entries: bySaga[id] ?? [], state: states[id], heads: headsBySaga[id] ?? [])
        }
        return Report(sagas: results, problems: problems, notFound: notFound)
    }

    static func verifySaga(_ sagaId: String, entries: [Entry], state: SagaState?,
                           heads: [(AuditChainHeadRecord, KafkaMessage)]) -> SagaResult {
        var result = SagaResult(sagaId: sagaId, status: .intact, algorithm: nil, records: entries.count, unchained: 0, verified: 0,
                                recordedLength: state?.auditChain?.length, firstBreak: nil, notes: [])
        let stateHead = state?.auditChain
        let bundleVersion = state?.bundleVersion ?? heads.last?.0.bundleVersion
        var algorithm = stateHead?.algorithm ?? heads.last.flatMap { HashAlgorithm(name: $0.0.algorithm) }
        var expected: [UInt8]? = algorithm.flatMap { alg in bundleVersion.map { AuditChain.genesis(sagaId: sagaId, bundleVersion: $0, algorithm: alg) } }
        var beforeLast: [UInt8]?
        var links: [[UInt8]] = []  // links[n-1] = link at position n
        var started = false
        func fail(_ kind: BreakKind, at index: Int?, _ detail: String) -> SagaResult {
            var r = result
            r.status = .broken
            let m = index.map { entries[$0].message }
            r.firstBreak = Break(kind: kind, position: UInt32(links.count + 1), topic: m?.topic, partition: m?.partition, offset: m?.offset,
                                 detail: detail)
            r.verified = links.count
            return r
        }
        func at(_ i: Int) -> String { "\(entries[i].message.topic)[\(entries[i].message.partition)]@\(entries[i].message.offset)" }
        let laterLinks: [[UInt8]: Int] = Dictionary(entries.enumerated().compactMap { i, e in e.chain.map { ($0.link, i) } }, uniquingKeysWith: { a, _ in a })
        var seen = Set<[UInt8]>()
        for (i, entry) in entries.enumerated() {
            let next = i + 1 < entries.count ? entries[i + 1].chain : nil
            guard let chain = entry.chain else {
                if entry.malformed == nil && !started { result.unchained += 1; continue }
                if entry.malformed != nil {
                    return fail(next?.previous == expected ? .inserted : .changed, at: i,
                                "\(at(i)) (\(entry.type)): \(entry.malformed!)")
                }
                // No chain headers after the chain began: an insertion, or a record whose headers were stripped.
                if let e = expected, let alg = algorithm, let next, next.previous == AuditChain.link(previous: e, canonical: entry.canonical, algorithm: alg) {
                    return fail(.changed, at: i, "\(at(i)) (\(entry.type)): its chain headers were removed")
                }
                return fail(.inserted, at: i, "\(at(i)) (\(entry.type)) has no chain headers inside the saga's chained trail")
            }
            if !started {
                started = true
                if algorithm == nil { algorithm = chain.algorithm }
                result.algorithm = (algorithm ?? chain.algorithm).rawValue
                if expected == nil {
                    expected = chain.previous
                    result.notes.append("genesis not checked: no saga-state or audit-heads record names the saga's bundle version")
                }
            }
            let alg = algorithm ?? chain.algorithm
            guard chain.algorithm == alg else {
                return fail(.changed, at: i, "\(at(i)) (\(entry.type)): chain algorithm \(chain.algorithm.rawValue), the saga's chain uses \(alg.rawValue)")
            }
            let valid = AuditChain.link(previous: chain.previous, canonical: entry.canonical, algorithm: alg) == chain.link
            if chain.previous == expected {
                if valid && !seen.contains(chain.link) {
                    beforeLast = expected
                    expected = chain.link
                    links.append(chain.link)
                    seen.insert(chain.link)
                    continue
                }
                if let next, next.previous == expected {
                    return fail(.inserted, at: i, "\(at(i)) (\(entry.type)) does not belong: the next record links past it")
                }
                return fail(.changed, at: i, "\(at(i)) (\(entry.type)): its content no longer matches its link \(Hex.encode(chain.link).prefix(16))…")
            }
            if seen.contains(chain.link) {
                return fail(.inserted, at: i, "\(at(i)) (\(entry.type)) repeats an earlier record of the chain")
            }
            if chain.previous == beforeLast, i > 0 {
                // Two records claim the same predecessor: the one the chain does not go on from was inserted.
                if valid, let next, next.previous == chain.link {
                    links.removeLast()
                    return fail(.inserted, at: i - 1, "\(at(i - 1)) (\(entries[i - 1].type)) does not belong: the next record links past it")
                }
                return fail(.inserted, at: i, "\(at(i)) (\(entry.type)) does not belong: it links to the same record as the one before it")
            }
            if let j = laterLinks[chain.previous], j > i {
                return fail(.reordered, at: i, "\(at(i)) (\(entry.type)) stands before \(at(j)) (\(entries[j].type)), the record it links to")
            }
            if !valid {
                return fail(.changed, at: i, "\(at(i)) (\(entry.type)): its content and its link to the previous record no longer match")
            }
            return fail(.removed, at: i, "a record is missing before \(at(i)) (\(entry.type)): it links to \(Hex.encode(chain.previous).prefix(16))…, "
                        + "which no record of the saga has")
        }
        result.verified = links.count
        // The tail: the chain must reach every head recorded for the saga.
        func check(length: UInt32, link: String, from source: String) -> SagaResult? {
            let n = Int(length)
            if n > links.count {
                var r = fail(.removed, at: nil, "the last \(n - links.count) record(s) of the chain are missing: \(source) records \(n) chained "
                             + "record(s) ending in link \(link.prefix(16))…, saga-events has \(links.count)")
                r.firstBreak?.position = UInt32(links.count + 1)
                return r
            }
            if n > 0, Hex.encode(links[n - 1]) != link {
                var r = fail(.changed, at: nil, "link \(n) is \(Hex.encode(links[n - 1]).prefix(16))… on saga-events but \(link.prefix(16))… in \(source)")
                r.firstBreak?.position = UInt32(n)
                return r
            }
            return nil
        }
        if let stateHead, let broken = check(length: stateHead.length, link: stateHead.link, from: "saga-state") { return broken }
        for (head, m) in heads {
            if let broken = check(length: head.length, link: head.link, from: "audit-heads \(m.topic)[\(m.partition)]@\(m.offset)") { return broken }
        }
        if let stateHead, links.count > Int(stateHead.length) {
            result.notes.append("\(links.count - Int(stateHead.length)) record(s) after the head in saga-state (written while the topics were read)")
        }
        if !started { result.status = .unchained }
        return result
    }
}

/// Reads what `AuditVerifier` checks from a hub: `saga-state` and `audit-heads` first, then
/// `saga-events` (so records written meanwhile are beyond the heads, never missing before them).
public struct AuditTrailReader {
    public let hub: Hub
    public let skipped: SkipLog

    public init(hub: Hub, skipped: SkipLog = SkipLog()) { self.hub = hub; self.skipped = skipped }

    /// Verifies `sagas` (their partitions only), or every saga when nil.
    /// - Throws: `OperationsError.notFound` when `saga-events` does not exist, `.unreachable` when
    ///   the broker does not answer within the hub's timeout.
    public func verify(sagas: [String]?) throws -> AuditVerifier.Report {
        let count = try hub.partitions("saga-events")
        let partitions: [Int32] = sagas.map { ids in Set(ids.map { KafkaPartitioner.partition(forKey: $0, partitions: count) }).sorted() }
            ?? Array(0..<count)
        let wanted = sagas.map(Set.init)
        let keep: (KafkaMessage) -> Bool = { m in wanted.map { set in m.keyString.map(set.contains) ?? false } ?? true }
        let reader = TopicReader(hub: hub)
        var states: [String: SagaState] = [:]
        var problems: [AuditVerifier.Problem] = []
        var latest: [String: KafkaMessage] = [:]
        for m in try reader.read(topic: hub.topic("saga-state"), partitions: partitions, keep: keep) {
            guard let key = m.keyString else { continue }
            latest[key] = m
        }
        for (key, m) in latest {
            guard let value = m.value else { continue }  // tombstone
            do { states[key] = try SagaStateCodec.decode(value) } catch {
                problems.append(.init(topic: m.topic, partition: m.partition, offset: m.offset, reason: "saga-state record of '\(key)' is not a SagaState: \(error)"))
            }
        }
        var heads: [KafkaMessage] = []
        if (try? hub.partitions("audit-heads")) != nil {
            heads = try reader.read(topic: hub.topic("audit-heads"), partitions: partitions, keep: keep)
        } else {
            skipped.add("\(hub.topic("audit-heads")) does not exist (a hub from before the audit chain): checked against saga-state only")
        }
        let events = try reader.read(topic: hub.topic("saga-events"), partitions: partitions) { m in
            // Keyless and foreign records are kept when reading everything, so they are reported.
            wanted.map { set in m.keyString.map(set.contains) ?? false } ?? true
        }
        var report = AuditVerifier.verify(events: events, states: states, heads: heads, sagas: wanted)
        report.problems = problems + report.problems
        return report
    }
}
