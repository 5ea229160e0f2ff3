import Foundation
import HubTestKit
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// 企业注销 through both routes and 免申即享 from an event, on Tansu with an in-process
/// orchestrator and scripted departments, on a virtual clock fast enough (300 000×) that the
/// 20-natural-day public notice takes about 6 s.
@Suite(.serialized) struct DeregistrationTests {
    static let uscc = "91330106MA2B3C4D5E"

    func form(_ id: String, _ bundle: String, _ hub: TestHub) -> JSONValue {
        ["applicationId": .string(id), "bundle": .string(bundle), "submittedAt": .string(hub.clock.now().date.formatted(.iso8601)),
         "region": "330106", "company": ["uscc": .string(Self.uscc), "name": "杭州云栖茶饮有限公司"],
         "deregistration": ["reason": "决议解散", "employerSocialSecurityNo": "330100123456", "accountNumber": "6222021202000123456",
                            "sealSetId": "SEAL-1"],
         "materials": [["type": "tax-payment-receipt", "provided": false]]]
    }

    func send(_ hub: TestHub, _ producer: KafkaProducer, _ type: String, key: String, topic: String = "applications", _ body: JSONValue,
              id: String? = nil) async throws {
        var envelope = Envelope(source: "/frontdesk/test", type: type, time: hub.clock.now().date, subject: key)
        if let id { envelope.id = id }
        _ = try await producer.send(envelope.record(topic: hub.topic(topic), key: key, data: Data(body.text().utf8)))
    }

    /// The audit events of `saga` on saga-events once `until` holds for them.
    func audits(_ hub: TestHub, _ saga: String, timeout: Duration = .seconds(60), until: @escaping @Sendable ([JSONValue]) -> Bool) async throws -> [JSONValue] {
        @Sendable func of(_ ms: [KafkaMessage]) -> [JSONValue] {
            ms.filter { $0.keyString == saga && ($0.headers.string(Envelope.Header.type) ?? "").hasPrefix(MessageType.sagaAuditPrefix) }
                .compactMap { try? JSONValue.parse($0.value ?? Data()) }.filter { $0["kind"] != nil }
        }
        return of(try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(),
                                    timeout: timeout, until: { until(of($0)) }))
    }

    @Test func deregistrationBothRoutesAndABenefitFromOneEventDeliveredTwice() async throws {
        let hub = try TestHub(partitions: 3, speed: 300_000)
        try hub.ensureTopics()
        var config = hub.config(instance: "o1")
        config.triggers = true
        let orchestrator = try BackgroundOrchestrator(config)
        defer { orchestrator.stop() }
        let clock = hub.clock
        let responders = try ScriptedResponders(config: hub.kafka(), prefix: hub.prefix,
                                                catalogues: CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")),
                                                supplementUntilProvided: ["tax-clearance": ["tax-payment-receipt"]], now: { clock.now().date })
        defer { responders.close() }
        let producer = try KafkaProducer(config: hub.kafka())

        try await send(hub, producer, MessageType.applicationFiled, key: "DEREG-G1", form("DEREG-G1", "enterprise-deregistration", hub))
        try await send(hub, producer, MessageType.applicationFiled, key: "DEREG-S1", form("DEREG-S1", "enterprise-deregistration-simple", hub))
        try await send(hub, producer, MessageType.applicationFiled, key: "DEREG-S2", form("DEREG-S2", "enterprise-deregistration-simple", hub))
        // 免申即享: the business licence of an opening saga, delivered twice (same CloudEvents id).
        let licence: JSONValue = ["sagaId": "APP-OPEN-1", "step": "registration", "type": "business-licence",
                                  "data": ["uscc": .string(Self.uscc), "licenceId": "L-1"]]
        for _ in 0..<2 {
            try await send(hub, producer, MessageType.licenceIssued, key: "\(Self.uscc)/business-licence", topic: "licences", licence, id: "evt-licence-1")
        }

        // General route: 清税 refused over unpaid tax (容缺: payment receipt); the applicant pays and hands it in.
        let asked = try await audits(hub, "DEREG-G1") { $0.contains { $0["kind"] == "supplementRequested" } }
        #expect(!asked.contains { $0["step"] == "bank-account-closure" })  // closure waits for clearance
        let attempt = try #require(asked.first { $0["kind"] == "supplementRequested" }?["attempt"])
        try await send(hub, producer, MessageType.supplementProvided, key: "DEREG-G1",
                       ["sagaId": "DEREG-G1", "step": "tax-clearance", "attempt": attempt,
                        "materials": ["tax-payment-receipt": ["receiptNo": "JK-2026-0001"]]])

        // Simplified route with an objection during the notice: a manual case, resolved at the window.
        _ = try await audits(hub, "DEREG-S2") { $0.contains { $0["kind"] == "waitStarted" } }
        try await send(hub, producer, MessageType.objectionReceived, key: "DEREG-S2",
                       ["sagaId": "DEREG-S2", "step": "public-notice", "by": "某某商贸有限公司（债权人）", "reason": "尚有货款未结清"])
        let objected = try await audits(hub, "DEREG-S2") { $0.contains { $0["kind"] == "manualCaseOpened" } }
        #expect(objected.contains { $0["kind"] == "objectionReceived" })
        let reply = try await hub.ops(OpsRequest(requestId: "op-1", by: "window-3", action: .resolve, sagaId: "DEREG-S2", step: "public-notice",
                                                 note: "异议人已撤回异议（已结清货款）"), producer: producer)
        #expect(reply.ok, "\(reply)")

        let finished = try await finishedSagas(hub: hub, expecting: 4, timeout: .seconds(90))
        #expect(finished["DEREG-G1"] == "completed")
        #expect(finished["DEREG-S1"] == "completed")
        #expect(finished["DEREG-S2"] == "completed")
        let benefit = "startup-subsidy-\(Self.uscc)"
        #expect(finished[benefit] == "completed")
        #expect(finished.count == 4, "\(finished)")

        // The notice of S1 ran its 20 natural days on the virtual clock before cancellation went out.
        let s1 = try await audits(hub, "DEREG-S1") { $0.contains { $0["kind"] == "sagaFinished" } }
        let started = try #require(s1.first { $0["kind"] == "waitStarted" }?["at"]?.doubleValue)
        let ended = try #require(s1.first { $0["kind"] == "waitElapsed" }?["at"]?.doubleValue)
        #expect(ended - started >= 20 * 86_400_000)
        let cancel = try #require(s1.first { $0["kind"] == "stepDispatched" && $0["step"] == "registration-cancellation" }?["at"]?.doubleValue)
        #expect(cancel >= ended)
        // The general route kept the legal order: closure after clearance, seals after closure.
        let g1 = try await audits(hub, "DEREG-G1") { $0.contains { $0["kind"] == "sagaFinished" } }
        let order = g1.filter { $0["kind"] == "stepSucceeded" }.compactMap { $0["step"]?.stringValue }
        #expect(order.firstIndex(of: "tax-clearance")! < order.firstIndex(of: "bank-account-closure")!)
        #expect(order.firstIndex(of: "bank-account-closure")! < order.firstIndex(of: "seal-cancellation")!)
        #expect(order.last == "registration-cancellation")

        // One benefit saga for the event delivered twice: two filed applications, one submit, one finish.
        let filed = try await readAll(hub.topic("applications"), partitions: hub.partitions, expecting: .max, config: hub.kafka(),
                                      timeout: .seconds(10), until: { ms in ms.filter { $0.keyString == benefit }.count >= 2 })
        #expect(filed.filter { $0.keyString == benefit }.count == 2)
        let b = try await audits(hub, benefit) { $0.contains { $0["kind"] == "sagaFinished" } }
        #expect(b.filter { $0["kind"] == "submitted" }.count == 1)
        #expect(b.filter { $0["kind"] == "sagaFinished" }.count == 1)
        #expect(b.contains { $0["kind"] == "inputIgnored" && $0["detail"] == "already submitted" })
        #expect(orchestrator.failure == nil)
    }
}
