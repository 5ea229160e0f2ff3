import Foundation
import HubTestKit
import Messaging
@testable import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// The finished-saga lifecycle in the saga host (no broker): grace period, summary, index,
/// the "already finished" answer, and an aborted batch changing nothing.
@Suite struct RetentionHostTests {
    let library = try! BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                          catalogues: repoRoot.appendingPathComponent("adapters"),
                                          calendars: repoRoot.appendingPathComponent("seeds/calendar"))
    let t0 = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!

    static let seed = try! SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "enterprise-opening" }

    func form(_ id: String) throws -> JSONValue {
        guard case .object(var o)? = Self.seed else { throw SetupError("no enterprise-opening seed application") }
        o["applicationId"] = .string(id)
        o["submittedAt"] = .string("2026-03-02T09:00:00+08:00")
        return .object(o)
    }

    /// Submits `id` and cancels it before anything was done, so it finishes `cancelled` at `t0 + 1 min`.
    func finishedHost(_ id: String, graceMs: Int64) throws -> (SagaHost, Instant) {
        var host = SagaHost(library: library)
        host.retention.graceMs = graceMs
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form(id), licences: [:], at: t0)
        var pending = host.outbound.filter { $0.type == MessageType.stepRequested }
        host.commitBatch()
        let at = Instant(ms: t0.ms + 60_000)
        try host.apply(id, SagaInput(at: at, .operatorCommand(OperatorCommand(id: "c1", by: "test", .cancel(reason: "test")))))
        // Answer the dispatched steps (failed) and any compensation (done), until the saga is final.
        var rounds = 0
        while let saga = host.state(id), !saga.status.isFinal, rounds < 10 {
            rounds += 1
            let commands = pending + host.outbound.filter { $0.type == MessageType.compensationRequested || $0.type == MessageType.stepRequested }
            pending = []
            host.commitBatch()
            for c in commands {
                let event: SagaEvent = c.type == MessageType.compensationRequested
                    ? .compensationSucceeded(step: c.step!, attempt: c.attempt ?? 1)
                    : .stepFailed(step: c.step!, attempt: c.attempt ?? 1, code: "X", message: "x")
                try host.apply(id, SagaInput(at: at, event))
            }
        }
        #expect(host.state(id)?.status.isFinal == true, "saga is \(String(describing: host.state(id)?.status))")
        host.commitBatch()
        return (host, at)
    }

    @Test("a finished saga leaves the hot state after its grace period with a summary; an abort keeps it; a re-submit is answered already finished")
    func graceThenSummary() throws {
        let id = "APP-RET-1"
        var (host, finishedAt) = try finishedHost(id, graceMs: 3_600_000)
        let finishedStatus = try #require(host.sagas[id]?.status)
        #expect(host.retention.finishedAt[id] != nil)

        // Within the grace period: stays; a re-submit is ignored by the engine and answered on progress.
        #expect(host.evictFinished(now: Instant(ms: finishedAt.ms + 3_599_000), limit: 100) == 0)
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form(id), licences: [:], at: Instant(ms: finishedAt.ms + 1000))
        #expect(host.outbound.contains { $0.type == MessageType.progressAlreadyFinished && $0.payload["status"]?.stringValue == finishedStatus.rawValue })
        #expect(host.outbound.contains { $0.type == MessageType.sagaAudit("inputIgnored") })
        #expect(!host.outbound.contains { $0.type == MessageType.stepRequested || $0.type == MessageType.progressAccepted })
        host.commitBatch()

        // Grace over, but the saga changed in this very batch (a re-submit): it leaves with the next one.
        let later = Instant(ms: finishedAt.ms + 3_600_000)
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form(id), licences: [:], at: later)
        #expect(host.evictFinished(now: later, limit: 100) == 0)
        host.commitBatch()
        #expect(host.sagas[id] != nil)

        // Grace over, but the transaction aborts: nothing changes, and it comes due again.
        #expect(host.evictFinished(now: later, limit: 100) == 1)
        host.abortBatch()
        #expect(host.sagas[id] != nil && host.retention.index.lookup(id) == nil)

        #expect(host.evictFinished(now: later, limit: 100) == 1)
        let summary = try #require(host.retention.summaries[id])
        #expect(summary.status == finishedStatus && summary.finishedAt == finishedAt && summary.auditChain == host.sagas[id]?.auditChain)
        // The summary is what saga-state gets, and it decodes as one.
        guard case .finished(let decoded) = try SagaStateRecord.decode(summary.encoded()) else { Issue.record("summary does not decode"); return }
        #expect(decoded == summary)
        host.commitBatch { _ in (2, 1234) }
        #expect(host.sagas[id] == nil && host.retention.finishedAt[id] == nil)
        #expect(host.retention.index.lookup(id) == FinishedIndex.Entry(partition: 2, offset: 1234))

        // After it left: the answer continues its audit chain and rewrites the summary with the new head.
        host.answerAlreadyFinished(summary, at: Instant(ms: later.ms + 5000))
        let audit = try #require(host.outbound.first { $0.topic == "saga-events" })
        #expect(audit.chain?.position == (summary.auditChain?.length ?? 0) + 1)
        #expect(host.outbound.contains { $0.topic == "progress" && $0.type == MessageType.progressAlreadyFinished })
        #expect(host.retention.summaries[id]?.auditChain?.length == (summary.auditChain?.length ?? 0) + 1)
        #expect(host.state(id) == nil, "no second saga")
    }

    @Test("snapshot chunks round-trip states and finished-index entries")
    func chunkRoundTrip() throws {
        let (host, at) = try finishedHost("APP-RET-2", graceMs: 1)
        let state = try #require(host.sagas["APP-RET-2"])
        var entries: [SnapshotFormat.Entry] = []
        for i in 0..<300 { entries.append(.state(sagaId: "S-\(i)", value: SagaStateCodec.encode(state), finishedAt: i % 2 == 0 ? at : nil)) }
        for i in 0..<1000 { entries.append(.finished(hash: FinishedIndex.hash("F-\(i)"), offset: Int64(i))) }
        let chunks = SnapshotFormat.chunks(entries)
        #expect(chunks.count > 1, "300 states should not fit one chunk")
        #expect(chunks.allSatisfy { $0.count < SnapshotFormat.chunkBytes + 64 * 1024 })
        let back = try chunks.flatMap { try SnapshotFormat.entries($0) }
        #expect(back.count == entries.count)
        if case .state(let id, let value, let finished) = back[2] {
            let decoded = try SagaStateCodec.decode(value)
            #expect(id == "S-2" && finished == at && decoded == state)
        } else { Issue.record("entry 2 is not a state") }
        #expect(throws: (any Error).self) { try SnapshotFormat.entries(Data("nonsense".utf8)) }
    }

    @Test("a chunk scanned in place hands over slices that decode to the same states as copies; a chunk cut short throws after the whole entries")
    func chunkScanInPlace() throws {
        let (host, at) = try finishedHost("APP-RET-3", graceMs: 1)
        let state = try #require(host.sagas["APP-RET-3"])
        var entries: [SnapshotFormat.Entry] = []
        for i in 0..<40 {
            var s = state
            s.sagaId = "S-\(i)-名"
            entries.append(.state(sagaId: s.sagaId, value: SagaStateCodec.encode(s), finishedAt: i % 3 == 0 ? at : nil))
            entries.append(.finished(hash: FinishedIndex.hash("F-\(i)"), offset: Int64(i) * 7))
        }
        let chunk = try #require(SnapshotFormat.chunks(entries).first)
        // The chunk inside a larger buffer (as a record value may be), so slices do not start at index 0.
        let framed = (Data([1, 2, 3]) + chunk + Data([9]))[3..<(3 + chunk.count)]
        var states: [(String, Data, Instant?)] = [], finished: [(UInt64, Int64)] = []
        try SnapshotFormat.scan(framed, state: { states.append(($0, $1, $2)) }, finished: { finished.append(($0, $1)) })
        #expect(states.count == 40 && finished.count == 40)
        for (i, (id, value, finishedAt)) in states.enumerated() {
            guard case .state(let wantId, let wantValue, let wantAt) = entries[2 * i] else { Issue.record("entry \(2 * i)"); continue }
            #expect(id == wantId && finishedAt == wantAt)
            #expect(Data(value) == wantValue, "the slice holds the value's bytes")
            #expect(try SagaStateCodec.decode(value) == SagaStateCodec.decode(wantValue))
        }
        #expect(finished.map(\.0) == (0..<40).map { FinishedIndex.hash("F-\($0)") } && finished.map(\.1) == (0..<40).map { Int64($0) * 7 })
        // Cut inside the third state: the first two come out, then a FormatError naming the byte.
        guard case .state(_, let firstValue, _) = entries[0] else { return }
        let cut = chunk.prefix(SnapshotFormat.chunkMagic.count + 2 * (1 + 2 + "S-0-名".utf8.count + 4 + firstValue.count + 8 + 17) + 20)
        var seen = 0
        #expect(throws: SnapshotFormat.FormatError.self) {
            try SnapshotFormat.scan(cut, state: { _, _, _ in seen += 1 }, finished: { _, _ in })
        }
        #expect(seen == 2)
    }

    @Test("timers are keyed by saga and timer key: rescheduling replaces, cancelling removes, due timers come soonest first")
    func timerIndexKeys() {
        var index = TimerIndex()
        let t = Instant(ms: 1_000_000)
        index.reserve(8)
        index.schedule(TimerCommand(sagaId: "A", key: .stepTimeout(step: "tax", attempt: 1), due: Instant(ms: t.ms + 30)))
        index.schedule(TimerCommand(sagaId: "A", key: .stepTimeout(step: "tax", attempt: 2), due: Instant(ms: t.ms + 10)))
        index.schedule(TimerCommand(sagaId: "B", key: .stepTimeout(step: "tax", attempt: 1), due: Instant(ms: t.ms + 20)))
        index.schedule(TimerCommand(sagaId: "A", key: .slaBreach, due: Instant(ms: t.ms + 5)))
        // Rescheduled: the older deadline is stale.
        index.schedule(TimerCommand(sagaId: "A", key: .stepTimeout(step: "tax", attempt: 1), due: Instant(ms: t.ms + 40)))
        // The same key of another saga is another timer; a saga id with a slash is not another saga's timer.
        index.schedule(TimerCommand(sagaId: "A/timeout/tax", key: .slaAtRisk, due: Instant(ms: t.ms + 1)))
        index.cancel(TimerCommand(sagaId: "A/timeout/tax", key: .slaAtRisk, due: Instant(ms: t.ms + 1)))
        #expect(index.count == 4)
        #expect(index.nextDue() == Instant(ms: t.ms + 5))
        let due = index.popDue(now: Instant(ms: t.ms + 35))
        #expect(due.map(\.sagaId) == ["A", "A", "B"])
        #expect(due.map(\.key) == [.slaBreach, .stepTimeout(step: "tax", attempt: 2), .stepTimeout(step: "tax", attempt: 1)])
        #expect(index.popDue(now: Instant(ms: t.ms + 39)).isEmpty, "the first deadline of A's attempt 1 was replaced")
        #expect(index.popDue(now: Instant(ms: t.ms + 40)).map(\.key) == [.stepTimeout(step: "tax", attempt: 1)])
        #expect(index.count == 0 && index.nextDue() == nil)
    }

    @Test("the finished index keeps, for each hash, what a dictionary with the same rule keeps: through growth, colliding slots, merges and revoked partitions")
    func finishedIndexTable() {
        var rng = LCG(state: 7)
        var index = FinishedIndex(), reference: [UInt64: FinishedIndex.Entry] = [:]
        func insert(_ hash: UInt64, _ p: Int32, _ offset: Int64, into index: inout FinishedIndex, _ reference: inout [UInt64: FinishedIndex.Entry]) {
            index.insert(hash: hash, partition: p, offset: offset)
            if let old = reference[hash], old.partition == p, old.offset <= offset { return }
            reference[hash] = FinishedIndex.Entry(partition: p, offset: offset)
        }
        // Hashes that differ only above the bits a small table looks at, and repeats of earlier ones.
        for n in 0..<5000 {
            let hash = n % 5 == 0 ? UInt64(rng.next() % 64) << 40 : (n % 7 == 0 ? UInt64(rng.next() % 300) : rng.next() << 20 | rng.next())
            insert(hash, Int32(rng.next() % 4), Int64(rng.next() % 1000), into: &index, &reference)
        }
        #expect(index.count == reference.count)
        for (hash, entry) in reference { #expect(index.lookup(hash: hash) == entry) }
        #expect(index.lookup(hash: 0xdead_beef_0000_0001) == nil || reference[0xdead_beef_0000_0001] != nil)
        #expect(index.lookup("never finished") == nil)
        #expect(Set(index.all.map(\.hash)) == Set(reference.keys))
        for p in Int32(0)..<4 {
            #expect(Set(index.entries(partition: p).map { "\($0.hash)@\($0.offset)" })
                    == Set(reference.filter { $0.value.partition == p }.map { "\($0.key)@\($0.value.offset)" }))
        }
        // Built apart for partitions 4 and 5 (newly owned), merged: as if inserted one by one.
        var apart = FinishedIndex(), sequential = index, sequentialReference = reference
        apart.reserve(3000)
        for _ in 0..<3000 {
            let hash = rng.next() % 2 == 0 ? rng.next() << 20 | rng.next() : Array(reference.keys)[Int(rng.next()) % reference.count]
            let p = Int32(4 + rng.next() % 2), offset = Int64(rng.next() % 1000)
            var scratch: [UInt64: FinishedIndex.Entry] = [:]
            insert(hash, p, offset, into: &apart, &scratch)
            insert(hash, p, offset, into: &sequential, &sequentialReference)
        }
        index.merge(apart)
        #expect(index.count == sequential.count && index.count == sequentialReference.count)
        for (hash, entry) in sequentialReference { #expect(index.lookup(hash: hash) == entry) }
        var empty = FinishedIndex()
        empty.merge(apart)
        #expect(empty.count == apart.count)
        // Revoked partitions leave; the rest stay findable.
        index.remove(partitions: [1, 4])
        let kept = sequentialReference.filter { $0.value.partition != 1 && $0.value.partition != 4 }
        #expect(index.count == kept.count)
        for (hash, entry) in kept { #expect(index.lookup(hash: hash) == entry) }
        for (hash, entry) in sequentialReference where entry.partition == 1 || entry.partition == 4 { #expect(index.lookup(hash: hash) == nil) }
    }

    @Test("timers armed apart and merged (a restore on two cores) pop exactly as when scheduled one by one")
    func timerIndexMerge() {
        var rng = LCG(state: 11)
        let keys: [TimerKey] = [.slaAtRisk, .slaBreach, .stepTimeout(step: "tax", attempt: 1), .retryBackoff(step: "seal", attempt: 2)]
        let timers = (0..<600).map { _ in
            TimerCommand(sagaId: "S-\(rng.next() % 50)", key: keys[Int(rng.next() % 4)], due: Instant(ms: Int64(rng.next() % 1000)))
        }
        var inOrder = TimerIndex(), merged = TimerIndex(), apart = TimerIndex(), intoEmpty = TimerIndex(), alone = TimerIndex()
        for t in timers { inOrder.schedule(t) }
        for t in timers[..<200] { merged.schedule(t) }
        for t in timers[200...] { apart.schedule(t); alone.schedule(t) }
        merged.merge(apart)
        intoEmpty.merge(alone)
        #expect(merged.count == inOrder.count)
        func drain(_ index: inout TimerIndex) -> [String] {
            index.popDue(now: Instant(ms: 2000)).map { "\($0.due.ms) \($0.sagaId) \($0.key.id(sagaId: $0.sagaId))" }
        }
        let expected = drain(&inOrder)
        #expect(expected.count == Set(timers.map(\.id)).count)
        #expect(drain(&merged).sorted() == expected.sorted())
        // Soonest first: the due instants come out in order.
        var again = TimerIndex()
        again.merge(alone)
        let dues = again.popDue(now: Instant(ms: 2000)).map(\.due.ms)
        #expect(dues == dues.sorted() && dues.count == drain(&intoEmpty).count)
    }
}

/// Retention, snapshots and quarantine on Tansu, with the virtual clock.
@Suite("Retention and restore on Tansu", .serialized)
struct RetentionTansuTests {
    @Test("finished sagas leave the hot state after their grace period; a late answer is ignored, not dead-lettered; a re-submitted id before, after and after a restart starts no second saga and is answered already finished",
          .timeLimit(.minutes(3)))
    func retireAndResubmit() async throws {
        let hub = try TestHub(partitions: 2, speed: 120)
        try hub.ensureTopics()
        var config = hub.config(instance: "o1")
        config.finishedGrace = .seconds(900)  // 7.5 s of wall time at 120×: the re-submit below comes well within it
        config.snapshotInterval = .milliseconds(300)
        let responders = try hub.responders()
        defer { responders.close() }
        let producer = try KafkaProducer(config: hub.kafka())
        let forms = try TestHub.validApplications(limit: 3)
        let ids = forms.map { $0["applicationId"]!.stringValue! }
        let first = try BackgroundOrchestrator(config)
        try hub.submit(forms, producer: producer)
        let finished = try await finishedSagas(hub: hub, expecting: 3, timeout: .seconds(60))
        #expect(finished.count == 3)
        func commandCount() async throws -> Int {
            try await readAll(topics: HubTopics.defaultAgencies.map { hub.topic("commands.\($0)") }, partitions: hub.partitions,
                              expecting: .max, config: hub.kafka(), timeout: .milliseconds(300)).count
        }
        let commandsBefore = try await commandCount()

        // Before the grace period ends: the engine ignores it; the applicant side is told.
        try hub.submit([forms[0]], producer: producer)
        _ = try await progress(hub, until: { $0.count >= 1 })
        #expect(first.service.stats.resubmitsAnswered == 0 && first.service.stats.sagasRetired == 0, "answered from the hot state: \(first.service.stats)")

        // After it: every saga leaves the hot state; saga-state's newest record per saga is its summary.
        let deadline = ContinuousClock.now + .seconds(40)
        while first.service.stats.sagasRetired < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        #expect(first.service.stats.sagasRetired == 3 && first.service.stats.ownedSagas == 0, "\(first.service.stats)")
        let states = try await readAll(hub.topic("saga-state"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(2))
        var newest: [String: Data?] = [:]
        for m in states { newest[m.keyString ?? ""] = m.value }
        for id in ids {
            guard case .finished(let summary)? = try? SagaStateRecord.decode(newest[id] ?? nil) else { Issue.record("no summary for \(id)"); continue }
            #expect(summary.status == .completed && summary.bundleId == forms[ids.firstIndex(of: id)!]["bundle"]?.stringValue)
        }

        // A late agency answer for a saga that left the hot state: recorded as ignored, not dead-lettered.
        let command = try #require(try await readAll(hub.topic("commands.business-registration"), partitions: hub.partitions,
                                                     expecting: .max, config: hub.kafka(), timeout: .milliseconds(500))
            .first { $0.keyString == ids[1] })
        let body = try JSONValue.parse(command.value ?? Data())
        let step = try #require(body["step"]?.stringValue)
        let envelope = Envelope(source: "/yishi/adapters/business-registration", type: MessageType.stepFailed, time: hub.clock.now().date,
                                subject: ids[1], sagaId: ids[1], step: step, attempt: 1)
        let late = JSONValue.object(["sagaId": .string(ids[1]), "step": .string(step), "attempt": .number(1),
                                     "requestId": body["requestId"] ?? .string("?"), "code": .string("UNAVAILABLE"), "message": .string("late")])
        try producer.enqueue(envelope.record(topic: hub.topic("events.business-registration"), key: ids[1], data: Data(late.text().utf8)))
        try producer.flush()
        while first.service.stats.lateInputsIgnored < 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(first.service.stats.lateInputsIgnored == 1 && first.service.stats.deadLetters == 0, "\(first.service.stats)")

        try hub.submit([forms[1]], producer: producer)
        _ = try await progress(hub, until: { $0.count >= 2 })
        #expect(first.service.stats.resubmitsAnswered == 1)
        // A snapshot was written; the restart below reads it.
        while first.service.snapshotsWritten == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        first.stop()
        #expect(first.failure == nil, "\(first.failure ?? "")")

        let second = try BackgroundOrchestrator(config)
        defer { second.stop() }
        try hub.submit([forms[2]], producer: producer)
        let answers = try await progress(hub, until: { $0.count >= 3 })
        #expect(Set(answers.map { $0["applicationId"]?.stringValue ?? "" }) == Set(ids))
        #expect(answers.allSatisfy { $0["status"]?.stringValue == "completed" && $0["finishedAt"] != nil })
        #expect(second.service.stats.resubmitsAnswered == 1 && second.service.stats.restoredFromSnapshot > 0, "\(second.service.stats)")
        #expect(second.failure == nil, "\(second.failure ?? "")")

        // One saga each: one `submitted`, one finish; each re-submit recorded as inputIgnored.
        let events = try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(2))
        for id in ids {
            let mine = events.filter { $0.keyString == id }.compactMap { $0.headers.string(Envelope.Header.type) }
            #expect(mine.filter { $0 == MessageType.sagaAudit("submitted") }.count == 1, "\(id): \(mine)")
            #expect(mine.filter { $0 == MessageType.sagaFinished }.count == 1)
            #expect(mine.filter { $0 == MessageType.sagaAudit("inputIgnored") }.count == 1)
        }
        #expect(try await commandCount() == commandsBefore, "a re-submit dispatched commands")

        // `yishi sagas show` of a saga that left the hot state: the orchestrator no longer has it, so
        // the CLI answers from the changelog and prints its whole timeline from saga-events.
        let shown = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment).run(
            ["sagas", "show", ids[0], "--bootstrap", hub.bootstrap, "--prefix", hub.prefix, "--timeout", "20"])
        #expect(shown.status == 0, "\(shown)")
        #expect(shown.out.contains("Saga \(ids[0]) · ") && shown.out.contains("Status     completed"), "\(shown.out)")
        let timeline = shown.out.split(separator: "\n").filter { $0.contains(" #1  ") && $0.contains("succeeded") }
        // Every opening bundle has at least enterprise opening's 7 steps, each succeeded on its first attempt here.
        #expect(timeline.count >= 7, "every step's attempt is in the timeline: \(shown.out)")
        #expect(shown.out.contains("source: changelog"), "\(shown.out)")
    }

    @Test("restore: a state in today's JSON format restores, an undecodable one is quarantined to the DLQ while the rest restore, and snapshot + tail equals the whole changelog",
          .timeLimit(.minutes(2)))
    func quarantineAndSnapshot() async throws {
        let hub = try TestHub(partitions: 2, speed: 1)
        try hub.ensureTopics()
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        var host = SagaHost(library: library)
        let t0 = hub.clock.now()
        for form in try TestHub.validApplications(limit: 5) {
            try host.submit(sagaId: form["applicationId"]!.stringValue!, bundleId: "enterprise-opening", form: form, licences: [:], at: t0)
        }
        host.commitBatch()
        let producer = try KafkaProducer(config: hub.kafka())
        // One record per produce request: Tansu answers a partition's high watermark as the last
        // batch's base offset + 1, which would make the snapshot cover less (safe, but the bad record
        // would then be in its tail too).
        func put(_ key: String, _ value: Data?) throws {
            try producer.enqueue(ProducerRecord(topic: hub.topic("saga-state"), key: key, value: value))
            try producer.flush()
        }
        for (id, state) in host.sagas { try put(id, SagaStateCodec.encode(state)) }
        let fixture = try Data(contentsOf: repoRoot.appendingPathComponent("Tests/OrchestratorTests/Fixtures/saga-state-json-v0.json"))
        try put("APP-JSON-V0", fixture)
        let archived = String(decoding: fixture, as: UTF8.self).replacingOccurrences(of: "APP-JSON-V0", with: "APP-BAD-1")
            .replacingOccurrences(of: "\"status\":\"running\"", with: "\"status\":\"archived\"")
        #expect(archived.contains("\"archived\""))
        try put("APP-BAD-1", Data(archived.utf8))
        try producer.flush()

        var config = hub.config(instance: "o1")
        config.snapshotInterval = .milliseconds(200)
        let first = try BackgroundOrchestrator(config)
        let deadline = ContinuousClock.now + .seconds(40)
        while (first.service.stats.quarantined < 1 || first.service.snapshotsWritten < 2), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        first.stop()
        #expect(first.failure == nil, "restore must not fail: \(first.failure ?? "")")
        #expect(first.service.stats.restoredSagas == 6 && first.service.stats.quarantined == 1, "\(first.service.stats)")
        let dlq = try await readAll(hub.topic("dlq"), partitions: hub.partitions, expecting: 1, config: hub.kafka(), timeout: .seconds(10))
        let letter = try #require(dlq.first { $0.headers.string(DeadLetter.Header.errorClass) == "undecodable-state" })
        #expect(letter.headers.string(DeadLetter.Header.originalTopic) == hub.topic("saga-state"))
        #expect(letter.headers.string(DeadLetter.Header.originalOffset) != nil)
        #expect(letter.headers.string(DeadLetter.Header.errorMessage)?.contains("APP-BAD-1") == true)
        #expect(letter.value == Data(archived.utf8), "the DLQ keeps the record's bytes")

        // A tail after the snapshot: one saga changed, one deleted, one new.
        var changed = try #require(host.sagas.values.sorted { $0.sagaId < $1.sagaId }.first)
        changed.paused = true
        try put(changed.sagaId, SagaStateCodec.encode(changed))
        try put(host.sagas.keys.sorted()[1], nil)
        var fresh = changed
        fresh.sagaId = "APP-TAIL-NEW"
        try put(fresh.sagaId, SagaStateCodec.encode(fresh))
        try producer.flush()

        // A snapshot cut short after the last one (chunks, no manifest): the manifest is no longer among
        // the last `manifestProbe` records of its partition, so restore looks further back and still uses it.
        for p in Int32(0)..<2 {
            for n in 0..<Int(SnapshotFormat.manifestProbe) + 2 {
                try producer.enqueue(ProducerRecord(topic: hub.topic("saga-snapshots"), partition: p, key: "cut-short/chunk/\(n)",
                                                    value: SnapshotFormat.chunks([])[0]))
            }
        }
        try producer.flush()

        let fromSnapshot = try RestoreReader(config: config, groupId: uniqueName("r")).read(partitions: [0, 1])
        let full = try RestoreReader(config: config, groupId: uniqueName("r"), useSnapshots: false).read(partitions: [0, 1])
        #expect(fromSnapshot.fromSnapshot == [0, 1] && full.fromSnapshot.isEmpty)
        #expect(fromSnapshot.tailRecords < full.tailRecords)
        func byId(_ r: RestoreReader.Result) -> [String: SagaState] { Dictionary(uniqueKeysWithValues: r.states.map { ($0.state.sagaId, $0.state) }) }
        #expect(byId(fromSnapshot) == byId(full))
        #expect(byId(full).count == 6 && byId(full)[changed.sagaId]?.paused == true && byId(full)["APP-TAIL-NEW"] != nil)
        #expect(Set(full.states.map { "\($0.state.sagaId)@\($0.partition)" }) == Set(fromSnapshot.states.map { "\($0.state.sagaId)@\($0.partition)" }))
        // The whole changelog still holds the bad record (quarantined, not lost); the snapshot's tail does not re-read it.
        #expect(full.bad.count == 1 && fromSnapshot.bad.isEmpty,
                "snapshot partitions \(fromSnapshot.fromSnapshot), bad at \(fromSnapshot.bad.map { "\($0.message.topic)[\($0.message.partition)]@\($0.message.offset)" })")
    }

    /// `progress` answers saying "already finished", in order of arrival.
    func progress(_ hub: TestHub, until done: @escaping @Sendable ([JSONValue]) -> Bool) async throws -> [JSONValue] {
        let messages = try await readAll(hub.topic("progress"), partitions: hub.partitions, expecting: .max, config: hub.kafka(),
                                         timeout: .seconds(30), until: { messages in
            done(messages.filter { $0.headers.string(Envelope.Header.type) == MessageType.progressAlreadyFinished }
                .compactMap { try? JSONValue.parse($0.value ?? Data()) })
        })
        return messages.filter { $0.headers.string(Envelope.Header.type) == MessageType.progressAlreadyFinished }
            .compactMap { try? JSONValue.parse($0.value ?? Data()) }
    }
}

/// Knuth's MMIX linear congruential generator, upper 31 bits: the same numbers on every run.
private struct LCG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }
}
