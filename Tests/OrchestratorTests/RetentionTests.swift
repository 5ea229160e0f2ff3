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

    func form(_ id: String) throws -> JSONValue {
        let seed = try #require(try SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        guard case .object(var o) = seed else { throw SetupError("seed is not an object") }
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

        // Grace over, but the transaction aborts: nothing changes, and it comes due again.
        let later = Instant(ms: finishedAt.ms + 3_600_000)
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
}
