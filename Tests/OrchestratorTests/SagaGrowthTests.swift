import Foundation
import Messaging
import SagaEngine
import Testing
import YishiKafka
@testable import Orchestrator

/// Issue 10, kind 2: saga state that would outgrow `message.max.bytes` (an agency's huge
/// outputs, a large supplement) must not stop the orchestrator: the input that would make it too
/// big is refused (dead-lettered `too-large` by the service) and the saga stays as it was.
@Suite struct SagaGrowthTests {
    @Test("an answer whose outputs would make the saga-state record too large is refused; the saga and the batch are unchanged")
    func growingStateIsRefused() throws {
        var connection = HubConnection(bootstrap: "127.0.0.1:1")
        connection.kafka = ["message.max.bytes": "20000"]
        let config = OrchestratorConfig(connection: connection, instanceId: "t", repository: repoRoot)
        let inbound = try InboundDecoder(config: config)
        let library = try BundleLibrary.load(bundles: config.bundlesDirectory, catalogues: config.cataloguesDirectory,
                                             calendars: config.calendarsDirectory)
        var host = SagaHost(library: library)
        host.admit = { [inbound] in inbound.admit(sagaId: $0, state: $1, outbound: $2) }
        host.exactStateAdmission = true  // the check the service redoes a batch with when a state did not fit
        let form = try #require(TestHub.validApplications(limit: 50).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        let id = try #require(form["applicationId"]?.stringValue)
        let at = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form, licences: [:], at: at)
        host.commitBatch()
        let before = try #require(host.state(id))

        let bundle = try #require(library.newest("enterprise-opening"))
        let step = bundle.steps[0]
        let action = try #require(library.catalogues.agencies[step.agency]?.action(step.action))
        var outputs = Dictionary(uniqueKeysWithValues: action.outputs.map { ($0.name, JSONValue.string("x")) })
        let retained = try #require(step.retainedOutputs.first, "the first step keeps no output")
        outputs[retained] = .string(String(repeating: "名", count: 10_000))  // 30,000 bytes in the state
        let answer = SagaInput(at: Instant(ms: at.ms + 60_000), .stepSucceeded(step: step.id, attempt: 1, outputs: outputs))
        do {
            try host.apply(id, answer)
            Issue.record("an answer making the saga-state record 30 kB under a 20,000-byte limit was taken")
        } catch SagaHost.Rejection.tooLarge(let why) {
            #expect(why.contains("saga-state") && why.contains("'\(id)'") && why.contains("bytes"), "\(why)")
        }
        #expect(host.state(id) == before && host.outbound.isEmpty && host.changedStates.isEmpty)

        // The same answer with ordinary outputs is taken.
        outputs[retained] = "ok"
        try host.apply(id, SagaInput(at: answer.at, .stepSucceeded(step: step.id, attempt: 1, outputs: outputs)))
        #expect((host.state(id)?.seq ?? 0) > before.seq && !host.outbound.isEmpty)
    }
}
