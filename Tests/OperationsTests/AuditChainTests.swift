import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// Tampering with one saga's `saga-events` records, as the tests below do it (offsets as on the
/// topic: a removed record leaves a gap, swapped records trade places).
enum Tamper {
    /// The saga's records in `records` (indices into it, in offset order).
    static func indices(of saga: String, in records: [KafkaMessage]) -> [Int] {
        records.indices.filter { records[$0].keyString == saga }.sorted { records[$0].offset < records[$1].offset }
    }

    static func copy(_ m: KafkaMessage, offset: Int64? = nil, value: Data? = nil, headers: [KafkaHeader]? = nil) -> KafkaMessage {
        KafkaMessage(topic: m.topic, partition: m.partition, offset: offset ?? m.offset, key: m.key, value: value ?? m.value,
                     headers: headers ?? m.headers, timestampMs: m.timestampMs)
    }

    /// The payload of the saga's `n`-th record changed (one character of its text), headers kept.
    static func changed(_ records: [KafkaMessage], saga: String, n: Int) -> (records: [KafkaMessage], offset: Int64) {
        var out = records
        let i = indices(of: saga, in: records)[n]
        var text = String(decoding: records[i].value ?? Data(), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"seq\":", with: "\"seq\": ")
        if text == String(decoding: records[i].value ?? Data(), as: UTF8.self) { text += " " }
        out[i] = copy(records[i], value: Data(text.utf8))
        return (out, records[i].offset)
    }

    /// The saga's `n`-th record removed; returns the offset of the record after it.
    static func removed(_ records: [KafkaMessage], saga: String, n: Int) -> (records: [KafkaMessage], offset: Int64) {
        let idx = indices(of: saga, in: records)
        var out = records
        out.remove(at: idx[n])
        return (out, records[idx[n + 1]].offset)
    }

    /// A forged record inserted after the saga's `n`-th: a copy of it with another payload,
    /// either without chain headers or with a correctly computed link (a forger who knows the scheme).
    static func inserted(_ records: [KafkaMessage], saga: String, n: Int, computeLink: Bool) -> (records: [KafkaMessage], offset: Int64) {
        let idx = indices(of: saga, in: records)
        let after = records[idx[n]]
        let value = Data(#"{"sagaId":"\#(saga)","seq":999,"kind":"stepSucceeded","at":0,"detail":"forged"}"#.utf8)
        var headers = after.headers.filter { !$0.name.hasPrefix("yishi-chain") }
        if computeLink {
            let type = after.headers.string(Envelope.Header.type)!
            var head = AuditChainHead(algorithm: HashAlgorithm(name: after.headers.string(AuditChain.Header.algorithm)!)!, length: 0,
                                      link: after.headers.string(AuditChain.Header.link)!)
            let (previous, link) = head.append(type: type, key: saga, value: [UInt8](value))
            headers += [KafkaHeader(AuditChain.Header.algorithm, head.algorithm.rawValue), KafkaHeader(AuditChain.Header.previous, previous),
                        KafkaHeader(AuditChain.Header.link, link)]
        }
        // Offsets after the insertion point move up by one (as if produced there).
        var out = records.map { m in m.partition == after.partition && m.offset > after.offset ? copy(m, offset: m.offset + 1) : m }
        out.append(copy(after, offset: after.offset + 1, value: value, headers: headers))
        return (out, after.offset + 1)
    }

    /// The saga's `n`-th and `n+1`-th records swapped (each takes the other's offset).
    static func swapped(_ records: [KafkaMessage], saga: String, n: Int) -> (records: [KafkaMessage], offset: Int64) {
        let idx = indices(of: saga, in: records)
        var out = records
        let a = records[idx[n]], b = records[idx[n + 1]]
        out[idx[n]] = copy(b, offset: a.offset)
        out[idx[n + 1]] = copy(a, offset: b.offset)
        return (out, a.offset)
    }

    /// The saga's last record removed.
    static func lastRemoved(_ records: [KafkaMessage], saga: String) -> [KafkaMessage] {
        var out = records
        out.remove(at: indices(of: saga, in: records).last!)
        return out
    }
}

/// Must show 1 of issue 13: the audit trail is tamper-evident.
@Suite struct AuditVerifierTests {
    /// A saga's chained records built as the orchestrator writes them.
    static func chained(_ saga: String, count: Int, partition: Int32 = 0, from offset: Int64 = 0, algorithm: HashAlgorithm = .sm3)
        -> (records: [KafkaMessage], head: AuditChainHead) {
        var head = AuditChainHead.start(sagaId: saga, bundleVersion: 1, algorithm: algorithm)
        var records: [KafkaMessage] = []
        for i in 0..<count {
            let type = MessageType.sagaAudit(i == 0 ? "submitted" : "stepDispatched")
            let value = Data(#"{"sagaId":"\#(saga)","seq":\#(i + 1),"kind":"x","at":\#(i)}"#.utf8)
            let (previous, link) = head.append(type: type, key: saga, value: [UInt8](value))
            records.append(KafkaMessage(topic: "t.saga-events", partition: partition, offset: offset + Int64(i), key: Data(saga.utf8), value: value,
                                        headers: [KafkaHeader(Envelope.Header.type, type), KafkaHeader(AuditChain.Header.algorithm, algorithm.rawValue),
                                                  KafkaHeader(AuditChain.Header.previous, previous), KafkaHeader(AuditChain.Header.link, link),
                                                  KafkaHeader(AuditChain.Header.position, String(head.length))]))
        }
        return (records, head)
    }

    static func state(_ saga: String, head: AuditChainHead?) -> SagaState {
        var s = SagaState(sagaId: saga, bundle: library.newest("enterprise-opening")!)
        s.bundleVersion = 1
        s.auditChain = head
        return s
    }

    @Test("each kind of tampering is named at its record; other sagas stay intact; both algorithms")
    func kindsOfTampering() throws {
        for alg in HashAlgorithm.allCases {
            let a = Self.chained("A", count: 8, algorithm: alg), b = Self.chained("B", count: 5, from: 100, algorithm: alg)
            let records = a.records + b.records
            let states = ["A": Self.state("A", head: a.head), "B": Self.state("B", head: b.head)]
            let clean = AuditVerifier.verify(events: records, states: states, heads: [])
            #expect(clean.ok && clean.intact == 2 && clean.sagas.allSatisfy { $0.verified == $0.records })

            func expectBreak(_ tampered: [KafkaMessage], _ kind: AuditVerifier.BreakKind, offset: Int64?, position: UInt32,
                             states: [String: SagaState] = states, heads: [KafkaMessage] = [], _ what: String) {
                let report = AuditVerifier.verify(events: tampered, states: states, heads: heads)
                let a = report.sagas.first { $0.sagaId == "A" }
                #expect(!report.ok && report.broken == 1, "\(what): \(report)")
                #expect(a?.firstBreak?.kind == kind, "\(what): \(String(describing: a?.firstBreak))")
                #expect(a?.firstBreak?.offset == offset, "\(what): \(String(describing: a?.firstBreak))")
                #expect(a?.firstBreak?.position == position, "\(what): \(String(describing: a?.firstBreak))")
                #expect(report.sagas.first { $0.sagaId == "B" }?.status == .intact, "\(what)")
            }
            let changed = Tamper.changed(records, saga: "A", n: 3)
            expectBreak(changed.records, .changed, offset: 3, position: 4, "payload changed")
            let removed = Tamper.removed(records, saga: "A", n: 3)
            expectBreak(removed.records, .removed, offset: 4, position: 4, "one removed")
            let first = Tamper.removed(records, saga: "A", n: 0)
            expectBreak(first.records, .removed, offset: 1, position: 1, "the first removed")
            let inserted = Tamper.inserted(records, saga: "A", n: 3, computeLink: false)
            expectBreak(inserted.records, .inserted, offset: 4, position: 5, "inserted without chain headers")
            let forged = Tamper.inserted(records, saga: "A", n: 3, computeLink: true)
            expectBreak(forged.records, .inserted, offset: 4, position: 5, "inserted with a computed link")
            let swapped = Tamper.swapped(records, saga: "A", n: 3)
            expectBreak(swapped.records, .reordered, offset: 3, position: 4, "two swapped")
            let last = Tamper.lastRemoved(records, saga: "A")
            expectBreak(last, .removed, offset: nil, position: 8, "the last removed (saga-state keeps the head)")
            // The same with only audit-heads to tell (the saga's state rewritten by the tamperer as well).
            let headValue = try JSONEncoder().encode(AuditChainHeadRecord(sagaId: "A", bundleVersion: 1, algorithm: alg.rawValue, length: a.head.length,
                                                                          link: a.head.link, at: "2026-03-02T09:00:00+08:00"))
            let headRecord = KafkaMessage(topic: "t.audit-heads", partition: 0, offset: 0, key: Data("A".utf8), value: headValue)
            var rewritten = Self.state("A", head: a.head)
            rewritten.auditChain = AuditChainHead(algorithm: alg, length: 7, link: Hex.encode(Hex.decode(last.filter { $0.keyString == "A" }.last!
                .headers.string(AuditChain.Header.link)!)!))
            expectBreak(last, .removed, offset: nil, position: 8, states: ["A": rewritten, "B": states["B"]!], heads: [headRecord],
                        "the last removed (audit-heads keeps the head)")
            // A duplicate of a record right after it.
            var duplicate = records
            duplicate.append(Tamper.copy(records[2], offset: 50))
            let dup = AuditVerifier.verify(events: duplicate.sorted { $0.offset < $1.offset }, states: states, heads: [])
            #expect(dup.sagas.first { $0.sagaId == "A" }?.firstBreak?.kind == .inserted)
            #expect(dup.sagas.first { $0.sagaId == "A" }?.firstBreak?.offset == 50)
        }
    }

    @Test("records from before the chain are unchained, not broken; foreign and malformed records are reported and verification goes on")
    func unchainedForeignAndMalformed() throws {
        let a = Self.chained("A", count: 4, from: 10)
        let old = (0..<3).map { i in
            KafkaMessage(topic: "t.saga-events", partition: 0, offset: Int64(i), key: Data("OLD".utf8), value: Data("{}".utf8),
                         headers: [KafkaHeader(Envelope.Header.type, MessageType.sagaAudit("submitted"))])
        }
        // A saga upgraded mid-run: unchained records, then its chain from the genesis.
        let upgradedOld = (0..<2).map { i in
            KafkaMessage(topic: "t.saga-events", partition: 0, offset: 20 + Int64(i), key: Data("A".utf8), value: Data("{}".utf8),
                         headers: [KafkaHeader(Envelope.Header.type, MessageType.sagaAudit("submitted"))])
        }
        let upgraded = Self.chained("A", count: 4, from: 30)  // same saga id: different offsets after the unchained ones
        _ = a
        let foreign = [
            KafkaMessage(topic: "t.saga-events", partition: 1, offset: 7, key: nil, value: Data("hello".utf8)),
            KafkaMessage(topic: "t.saga-events", partition: 1, offset: 8, key: Data("X".utf8), value: Data("not json".utf8)),
            KafkaMessage(topic: "t.saga-events", partition: 1, offset: 9, key: Data("M".utf8), value: Data("{}".utf8),
                         headers: [KafkaHeader(Envelope.Header.type, MessageType.sagaAudit("submitted")), KafkaHeader(AuditChain.Header.algorithm, "md5"),
                                   KafkaHeader(AuditChain.Header.link, "zz")]),
        ]
        let report = AuditVerifier.verify(events: old + upgradedOld + upgraded.records + foreign,
                                          states: ["A": Self.state("A", head: upgraded.head)], heads: [])
        let byId = Dictionary(uniqueKeysWithValues: report.sagas.map { ($0.sagaId, $0) })
        #expect(byId["OLD"]?.status == .unchained && byId["OLD"]?.unchained == 3)
        #expect(byId["A"]?.status == .intact && byId["A"]?.unchained == 2 && byId["A"]?.verified == 4)
        #expect(byId["M"]?.status == .broken, "a record with malformed chain headers breaks its saga's chain")
        #expect(report.problems.map(\.offset) == [7, 8, 9])
        #expect(report.problems[0].reason.contains("no key") && report.problems[1].reason.contains("ce_type"))
        #expect(report.problems[2].reason.contains("malformed chain headers") && report.problems[2].partition == 1)
        // Without M the rest is fine: foreign records alone do not fail the run.
        let withoutM = AuditVerifier.verify(events: old + upgraded.records + foreign.prefix(2), states: ["A": Self.state("A", head: upgraded.head)], heads: [])
        #expect(withoutM.ok && withoutM.problems.count == 2)
        // Asking for a saga that is nowhere.
        let missing = AuditVerifier.verify(events: upgraded.records, states: [:], heads: [], sagas: ["NOPE"])
        #expect(!missing.ok && missing.notFound == ["NOPE"])
    }
}

/// On Tansu: a demo-sized run (50 sagas, the orchestrator restarted midway as another instance)
/// verifies intact; tampered copies of its records are caught, through the library and the binary.
@Suite(.serialized) struct AuditChainLiveTests {
    /// Copies `records` (by topic name without prefix) to the same partitions under `prefix`.
    static func write(_ records: [String: [KafkaMessage]], prefix: String, hub: Hub) throws {
        try KafkaAdmin(config: hub.kafka()).ensureTopics(HubTopics.all(prefix: prefix, partitions: try hub.partitions("saga-events"), agencies: try hubAgencies()))
        let producer = try KafkaProducer(config: hub.kafka())
        for (name, list) in records {
            for m in list {
                try producer.enqueue(ProducerRecord(topic: prefix + name, partition: m.partition, key: m.key, value: m.value, headers: m.headers))
            }
        }
        try producer.flush(timeout: .seconds(20))
    }

    @Test("audit verify passes on 50 sagas across two orchestrator instances and names each kind of tampering; the yishi binary exits 0 and 1",
          .timeLimit(.minutes(3)))
    func liveRun() async throws {
        let fx = try OpsFixture(partitions: 3, speed: 60)
        let responders = try fx.responders()
        defer { responders.close() }
        var orchestrator = try BackgroundOrchestrator(fx.orchestratorConfig(instance: "o1"))
        var ids = try fx.submit(25, tag: "AUD").map { $0["applicationId"]!.stringValue! }
        let changelog = Changelog(hub: fx.hub)
        try await eventually(every: .milliseconds(300), timeout: .seconds(60), "some sagas completed on o1") {
            try changelog.allStates().filter { $0.status == .completed }.count >= 5
        }
        // A second instance takes over mid-run: the chains go on from the heads in saga-state.
        orchestrator.stop()
        #expect(orchestrator.failure == nil)
        orchestrator = try BackgroundOrchestrator(fx.orchestratorConfig(instance: "o2"))
        defer { orchestrator.stop() }
        ids += try fx.submit(25, tag: "AUE").map { $0["applicationId"]!.stringValue! }
        try await eventually(every: .milliseconds(500), timeout: .seconds(90), "50 sagas completed") {
            try changelog.allStates().filter { $0.status == .completed }.count == 50
        }
        orchestrator.stop()

        let report = try AuditTrailReader(hub: fx.hub).verify(sagas: nil)
        #expect(report.ok && report.intact == 50 && report.broken == 0 && report.problems.isEmpty, "\(report)")
        #expect(Set(report.sagas.map(\.sagaId)) == Set(ids))
        for saga in report.sagas {
            #expect(saga.algorithm == "sm3" && saga.unchained == 0 && saga.verified == saga.records && saga.records >= 10, "\(saga)")
            #expect(saga.recordedLength == UInt32(saga.records), "the head in saga-state covers every record: \(saga)")
        }

        // The records as on the topics, tampered one kind at a time and verified by the same function the CLI uses.
        let reader = TopicReader(hub: fx.hub)
        let all = Array(0..<fx.partitions)
        let events = try reader.read(topic: fx.hub.topic("saga-events"), partitions: all)
        let heads = try reader.read(topic: fx.hub.topic("audit-heads"), partitions: all)
        #expect(Set(heads.compactMap(\.keyString)) == Set(ids), "every saga has chain-head records")
        var states: [String: SagaState] = [:]
        for m in try reader.read(topic: fx.hub.topic("saga-state"), partitions: all) {
            if let key = m.keyString, let value = m.value { states[key] = try SagaStateCodec.decode(value) }
        }
        let victim = ids[30]
        func expectBreak(_ tampered: [KafkaMessage], _ kind: AuditVerifier.BreakKind, offset: Int64?, _ what: String) {
            let r = AuditVerifier.verify(events: tampered, states: states, heads: heads)
            let saga = r.sagas.first { $0.sagaId == victim }
            #expect(r.broken == 1 && r.intact == 49, "\(what)")
            #expect(saga?.firstBreak?.kind == kind && saga?.firstBreak?.offset == offset, "\(what): \(String(describing: saga?.firstBreak))")
        }
        let changed = Tamper.changed(events, saga: victim, n: 4)
        expectBreak(changed.records, .changed, offset: changed.offset, "one payload changed")
        let removed = Tamper.removed(events, saga: victim, n: 4)
        expectBreak(removed.records, .removed, offset: removed.offset, "one removed")
        let inserted = Tamper.inserted(events, saga: victim, n: 4, computeLink: false)
        expectBreak(inserted.records, .inserted, offset: inserted.offset, "one inserted")
        let swapped = Tamper.swapped(events, saga: victim, n: 4)
        expectBreak(swapped.records, .reordered, offset: swapped.offset, "two swapped")
        expectBreak(Tamper.lastRemoved(events, saga: victim), .removed, offset: nil, "the last removed")

        // The binary, on the real topics (exit 0) and on a tampered copy under a second prefix (exit 1).
        var env = ProcessInfo.processInfo.environment
        env["YISHI_BOOTSTRAP"] = fx.hub.bootstrap
        env["YISHI_OPERATOR"] = "auditor-zhao"
        env["YISHI_TIMEOUT"] = "20"
        env.removeValue(forKey: "YISHI_TOPIC_PREFIX")
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: env)
        let ok = try yishi.run(["audit", "verify", "--all", "--prefix", fx.prefix])
        #expect(ok.status == 0 && ok.out.contains("50 saga(s): 50 intact, 0 broken") && ok.out.contains("all chains intact"), "\(ok)")
        let one = try yishi.run(["audit", "verify", victim, ids[0], "--prefix", fx.prefix, "--json"])
        let oneReport = try JSONDecoder().decode(AuditVerifier.Report.self, from: Data(one.out.utf8))
        #expect(one.status == 0 && oneReport.sagas.map(\.sagaId).sorted() == [victim, ids[0]].sorted(), "\(one)")

        let copy = uniqueName("ops-tampered") + "."
        let other = ids[40]
        var tampered = Tamper.lastRemoved(Tamper.swapped(events, saga: other, n: 2).records, saga: victim)
        tampered.sort { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
        try Self.write(["saga-events": tampered, "audit-heads": heads,
                        "saga-state": try reader.read(topic: fx.hub.topic("saga-state"), partitions: all)], prefix: copy, hub: fx.hub)
        let bad = try yishi.run(["audit", "verify", "--all", "--prefix", copy, "--json"])
        #expect(bad.status == 1, "\(bad)")
        let badReport = try JSONDecoder().decode(AuditVerifier.Report.self, from: Data(bad.out.utf8))
        #expect(badReport.broken == 2 && badReport.intact == 48)
        #expect(badReport.sagas.first { $0.sagaId == victim }?.firstBreak?.kind == .removed)
        #expect(badReport.sagas.first { $0.sagaId == other }?.firstBreak?.kind == .reordered)
        let text = try yishi.run(["audit", "verify", "--all", "--prefix", copy])
        #expect(text.status == 1 && text.out.contains("BROKEN    \(victim)") && text.out.contains("removed") && text.out.contains("audit trail NOT intact"), "\(text)")
        let help = try yishi.run(["audit", "verify", "--help"])
        #expect(help.status == 0 && help.out.contains("yishi audit verify"))
    }
}
