import Foundation
import Messaging
import SagaEngine
import Testing
@testable import Orchestrator

/// Issue 11, "no needless work on the hot path": payloads built directly, cheap header ids, and
/// the saga state encoded once per saga per batch.
@Suite struct HotPathTests {
    @Test("payloads built directly equal the Codable encodings they replace (commands, audit events, licences, manual cases)")
    func directPayloadsMatchCodable() throws {
        // The engine's types have no public memberwise initialisers: built from their JSON.
        func make<T: Decodable>(_ v: JSONValue) throws -> T { try JSONDecoder().decode(T.self, from: Data(v.text().utf8)) }
        let at: JSONValue = 1_772_413_200_123
        for kind in ["forward", "compensation"] {
            let command: StepCommand = try make(["kind": .string(kind), "sagaId": "A-1", "step": "register", "attempt": 2, "agency": "amr",
                                                 "action": "register-company", "revision": 1, "deadline": at,
                                                 "payload": ["name": "示例", "n": 3, "nested": ["x": [1, "y", nil, true]]]])
            #expect(OutboundPayload.command(command) == (try JSONValue.encode(CommandMessage(command))))
        }
        let events: [AuditEvent] = [
            try make(["sagaId": "A-1", "seq": 7, "at": at, "kind": "stepFailed", "step": "tax", "attempt": 3, "by": "op-1",
                      "detail": "UNAVAILABLE: down"]),
            try make(["sagaId": "A-1", "seq": 0, "at": at, "kind": "inputIgnored"]),
        ]
        for event in events { #expect(OutboundPayload.audit(event) == (try JSONValue.encode(event))) }
        let licence: LicenceIssued = try make(["sagaId": "A-1", "step": "register", "type": "business-licence",
                                               "data": ["uscc": "91310000MA1FL0XX0X", "n": 1.5]])
        #expect(OutboundPayload.licence(licence) == (try JSONValue.encode(licence)))
        let manuals: [ManualCase] = [
            try make(["step": "seal", "kind": "compensation", "reason": "已刻章", "openedAt": at]),
            try make(["step": "seal", "kind": "forward", "code": "NAME_TAKEN", "reason": "x", "openedAt": at]),
        ]
        for manual in manuals { #expect(OutboundPayload.manualCase(manual) == (try JSONValue.encode(manual))) }
        for completedAt in [JSONValue?.none, "2026-03-02T10:00:00+08:00"] {
            var package: [String: JSONValue] = ["applicationId": "A-1", "bundle": "enterprise-opening", "bundleTitle": "企业开办",
                                                "items": [["step": "register", "stepTitle": "设立登记", "agency": "amr", "name": "uscc",
                                                           "label": "统一社会信用代码", "value": "91310000MA1FL0XX0X"],
                                                          ["step": "seal", "stepTitle": "刻章", "agency": "psb", "name": "electronicSealIds",
                                                           "label": "电子印章编号", "value": ["E1", "E2"]]]]
            package["completedAt"] = completedAt
            let value: ResultPackage = try make(.object(package))
            #expect(OutboundPayload.resultPackage(value) == (try JSONValue.encode(value)))
        }
    }

    @Test("record ids: version-4 UUIDs, non-zero span ids, all distinct; a saga's trace id stays the FNV hash of its id")
    func headerIds() throws {
        var seen = Set<String>()
        for _ in 0..<5_000 {
            let id = Envelope.newId()
            let uuid = try #require(UUID(uuidString: id))
            #expect(uuid.uuidString.lowercased() == id)
            #expect(Array(id)[14] == "4" && "89ab".contains(Array(id)[19]), "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 5_000)
        let trace = try #require(InboundDecoder.trace(for: "SH-2026-000123"))
        func fnv(_ seed: UInt64) -> UInt64 {
            var h = seed
            for byte in "SH-2026-000123".utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return h
        }
        #expect(trace.traceId == String(format: "%016llx%016llx", fnv(0xcbf2_9ce4_8422_2325), fnv(0x84222325cbf29ce4)))
        #expect(TraceParent(trace.description) == trace)
        let spans = Set((0..<5_000).compactMap { _ in InboundDecoder.trace(for: "SH-2026-000123")?.spanId })
        #expect(spans.count == 5_000 && !spans.contains("0000000000000000"))
        let fresh = TraceParent.newTrace()
        #expect(TraceParent(fresh.description) == fresh)
    }

    @Test("a saga's state is encoded once per batch, after all its inputs, and equals the codec's encoding of the final state")
    func stateEncodedOncePerBatch() throws {
        let config = OrchestratorConfig(connection: HubConnection(bootstrap: "127.0.0.1:1"), instanceId: "t", repository: repoRoot)
        let library = try BundleLibrary.load(bundles: config.bundlesDirectory, catalogues: config.cataloguesDirectory,
                                             calendars: config.calendarsDirectory)
        var host = SagaHost(library: library)
        nonisolated(unsafe) var statesSeen: [Data?] = []
        host.admit = { _, state, _ in statesSeen.append(state); return nil }
        let form = try #require(TestHub.validApplications(limit: 50).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        let id = try #require(form["applicationId"]?.stringValue)
        let at = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form, licences: [:], at: at)
        let bundle = try #require(library.newest("enterprise-opening"))
        let step = bundle.steps[0]
        let action = try #require(library.catalogues.agencies[step.agency]?.action(step.action))
        let outputs = Dictionary(uniqueKeysWithValues: action.outputs.map { ($0.name, JSONValue.string("x")) })
        try host.apply(id, SagaInput(at: Instant(ms: at.ms + 1_000), .stepSucceeded(step: step.id, attempt: 1, outputs: outputs)))
        #expect(statesSeen.count == 2 && statesSeen.allSatisfy { $0 == nil }, "the state was encoded per input")
        #expect(host.encodedStates.isEmpty)
        let encoded = host.encodeChangedStates()
        let final = try #require(host.state(id))
        #expect(encoded.count == 1)
        #expect(try SagaStateCodec.decode(try #require(encoded[id])) == final)
        // The exact check (a batch done again after a state did not fit) passes every input's state.
        host.abortBatch()
        host.exactStateAdmission = true
        statesSeen = []
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form, licences: [:], at: at)
        #expect(statesSeen.count == 1 && statesSeen[0] != nil)
    }
}
