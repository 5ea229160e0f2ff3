import Foundation
import HubTestKit
import Messaging
@testable import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// The audit chain as the saga host writes it (no broker): every `saga-events` record of a saga
/// is linked to the one before, from the genesis value; the head lives in the saga's state, so it
/// is committed with the transaction, discarded with an aborted one, and restored with the state.
@Suite struct AuditChainHostTests {
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

    /// Checks that `records` (one saga's saga-events records, in order) link from `start`.
    func expectLinked(_ records: [SagaHost.Outbound], from start: AuditChainHead) -> AuditChainHead {
        var head = start
        for out in records {
            let chain = out.chain
            #expect(chain != nil, "\(out.type) has no chain link")
            let (previous, link) = head.append(type: out.type, key: out.key, value: out.data)
            #expect(chain?.previous == previous && chain?.link == link && chain?.position == head.length && chain?.algorithm == head.algorithm)
        }
        return head
    }

    @Test("saga-events records chain from the genesis; the head is in the state; an abort discards it; restore continues it; ignored inputs are chained too")
    func hostChainsSagaEvents() throws {
        var host = SagaHost(library: library)
        let id = "APP-CHAIN-1"
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form(id), licences: [:], at: t0)
        let first = host.outbound
        #expect(first.filter { $0.topic != "saga-events" }.allSatisfy { $0.chain == nil }, "only saga-events records are chained")
        let events = first.filter { $0.topic == "saga-events" }
        #expect(events.count >= 2)
        let version = try #require(host.state(id)).bundleVersion
        let genesis = AuditChainHead.start(sagaId: id, bundleVersion: version, algorithm: .sm3)
        let head = expectLinked(events, from: genesis)
        #expect(host.state(id)?.auditChain == head)
        #expect(host.advancedChains.map(\.sagaId) == [id])
        host.commitBatch()
        #expect(host.sagas[id]?.auditChain == head)
        #expect(host.advancedChains.isEmpty)

        // An answer in a transaction that aborts: its links and the advanced head are discarded.
        let dispatched = try #require(first.first { $0.type == MessageType.stepRequested })
        let bundle = try #require(library.bundle("enterprise-opening", version: version))
        let step = try #require(bundle.steps.first { $0.id == dispatched.step })
        let action = try #require(library.catalogues.agencies[step.agency]?.action(step.action))
        let outputs = Dictionary(uniqueKeysWithValues: action.outputs.map { ($0.name, fakeOutput($0.name, saga: id)) })
        let answer = SagaInput(at: t0 + 60_000, .stepSucceeded(step: dispatched.step!, attempt: dispatched.attempt!, outputs: outputs))
        try host.apply(id, answer)
        let aborted = host.outbound.filter { $0.topic == "saga-events" }
        #expect(!aborted.isEmpty)
        host.abortBatch()
        #expect(host.state(id)?.auditChain == head, "the aborted batch's head is gone")
        // Read again (as after the abort): the chain goes on from the committed head, identically.
        try host.apply(id, answer)
        let again = host.outbound.filter { $0.topic == "saga-events" }
        #expect(again.map(\.chain) == aborted.map(\.chain))
        let head2 = expectLinked(again, from: head)
        host.commitBatch()

        // A duplicate answer changes no step, but its inputIgnored event is chained and the head advances.
        try host.apply(id, answer)
        let ignored = host.outbound.filter { $0.topic == "saga-events" }
        #expect(ignored.map(\.type) == [MessageType.sagaAudit(AuditEvent.Kind.inputIgnored.rawValue)])
        let head3 = expectLinked(ignored, from: head2)
        #expect(host.changedStates.map(\.sagaId) == [id] && host.encodeChangedStates()[id] != nil, "the new head reaches saga-state")
        host.commitBatch()
        #expect(host.sagas[id]?.auditChain == head3 && head3.length == head2.length + 1)

        // Another instance restores the state (with the head) and continues the same chain,
        // even when configured for another algorithm: a saga keeps its chain's.
        var other = SagaHost(library: library)
        other.chainAlgorithm = .sha256
        let state = try JSONDecoder().decode(SagaState.self, from: JSONEncoder().encode(try #require(host.sagas[id])))
        other.restore(state)
        try other.apply(id, SagaInput(at: t0 + 120_000, .operatorCommand(OperatorCommand(id: "op-1", by: "operator-li", .pause(reason: "check")))))
        let continued = other.outbound.filter { $0.topic == "saga-events" }
        #expect(!continued.isEmpty)
        _ = expectLinked(continued, from: head3)
        #expect(continued.allSatisfy { $0.chain?.algorithm == .sm3 })
    }

    @Test("a saga started under --audit-chain-alg sha-256 chains with SHA-256; a state from before the chain starts at the genesis")
    func algorithmAndOldStates() throws {
        var host = SagaHost(library: library)
        host.chainAlgorithm = .sha256
        try host.submit(sagaId: "APP-CHAIN-2", bundleId: "enterprise-opening", form: form("APP-CHAIN-2"), licences: [:], at: t0)
        let events = host.outbound.filter { $0.topic == "saga-events" }
        // The genesis names the version the saga runs (the newest at submission).
        let version = try #require(host.state("APP-CHAIN-2")).bundleVersion
        _ = expectLinked(events, from: AuditChainHead.start(sagaId: "APP-CHAIN-2", bundleVersion: version, algorithm: .sha256))
        #expect(events.first?.chain?.algorithm == .sha256)
        host.commitBatch()

        // A state written before the chain existed (no head): the next record starts the chain at the genesis.
        var old = try #require(host.sagas["APP-CHAIN-2"])
        old.auditChain = nil
        var restored = SagaHost(library: library)
        restored.restore(old)
        try restored.apply("APP-CHAIN-2", SagaInput(at: t0 + 60_000, .operatorCommand(OperatorCommand(id: "op-2", by: "operator-li", .pause(reason: "x")))))
        let next = restored.outbound.filter { $0.topic == "saga-events" }
        _ = expectLinked(next, from: AuditChainHead.start(sagaId: "APP-CHAIN-2", bundleVersion: version, algorithm: .sm3))
        #expect(next.first?.chain?.position == 1)
    }
}
