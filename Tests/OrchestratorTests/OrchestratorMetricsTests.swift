import Foundation
import HubHTTP
import Messaging
@testable import Orchestrator
import SagaEngine
import Testing

/// A saga-events record as the saga host emits it for an audit event.
private func audit(_ saga: String, _ kind: AuditEvent.Kind, step: String? = nil, atMs: Int64) -> SagaHost.Outbound {
    var body: [String: JSONValue] = ["sagaId": .string(saga), "seq": .number(1), "at": .number(Double(atMs)), "kind": .string(kind.rawValue)]
    if let step { body["step"] = .string(step) }
    return SagaHost.Outbound(topic: "saga-events", key: saga, sagaId: saga, type: MessageType.sagaAudit(kind.rawValue), subject: saga,
                             step: step, attempt: 1, payload: .object(body))
}

private func command(_ saga: String, step: String, agency: String, action: String) -> SagaHost.Outbound {
    SagaHost.Outbound(topic: "commands.\(agency)", key: saga, sagaId: saga, type: MessageType.stepRequested, subject: saga, step: step,
                      attempt: 1, payload: .object(["sagaId": .string(saga), "step": .string(step), "agency": .string(agency), "action": .string(action)]))
}

private func finished(_ saga: String, _ status: String) -> SagaHost.Outbound {
    SagaHost.Outbound(topic: "saga-events", key: saga, sagaId: saga, type: MessageType.sagaFinished, subject: saga, step: nil, attempt: nil,
                      payload: .object(["sagaId": .string(saga), "status": .string(status), "at": .string("x")]))
}

@Suite("Orchestrator metrics from committed saga outputs")
struct OrchestratorMetricsTests {
    @Test("starts, finishes by bundle and status, SLA events and step latency (dispatch and answer in different transactions)")
    func countsOutputs() throws {
        let metrics = OrchestratorMetrics(prefix: "yishi.")
        let bundles = ["A": "enterprise-opening", "B": "restaurant-opening"]
        // Transaction 1: both start, both steps dispatched.
        metrics.committed([audit("A", .submitted, atMs: 0), audit("B", .submitted, atMs: 0),
                           audit("A", .stepDispatched, step: "tax-registration", atMs: 1_000),
                           command("A", step: "tax-registration", agency: "tax", action: "register-taxpayer"),
                           audit("B", .stepDispatched, step: "seals", atMs: 2_000),
                           command("B", step: "seals", agency: "seal-engraving", action: "engrave-seals")]) { bundles[$0] }
        // Transaction 2: A answered after 90 s, B times out (no latency), SLA events, both finish.
        metrics.committed([audit("A", .stepSucceeded, step: "tax-registration", atMs: 91_000),
                           audit("B", .stepTimedOut, step: "seals", atMs: 900_000),
                           audit("B", .slaAtRisk, atMs: 900_000), audit("B", .slaBreached, atMs: 900_001),
                           finished("A", "completed"), finished("B", "failed")]) { bundles[$0] }
        let r = metrics.registry
        let started = r.counter("yishi_sagas_started_total", "", labels: ["bundle"])
        #expect(started.value("enterprise-opening") == 1 && started.value("restaurant-opening") == 1)
        let done = r.counter("yishi_sagas_finished_total", "", labels: ["bundle", "status"])
        #expect(done.value("enterprise-opening", "completed") == 1 && done.value("restaurant-opening", "failed") == 1)
        #expect(done.value("enterprise-opening", "failed") == 0)
        #expect(r.counter("yishi_sla_at_risk_total", "", labels: ["bundle"]).value("restaurant-opening") == 1)
        #expect(r.counter("yishi_sla_breached_total", "", labels: ["bundle"]).value("restaurant-opening") == 1)
        let steps = r.histogram("yishi_step_duration_seconds", "", labels: ["agency", "action"], buckets: [])
        #expect(steps.observations("tax", "register-taxpayer").count == 1 && steps.observations("tax", "register-taxpayer").sum == 90)
        #expect(steps.observations("seal-engraving", "engrave-seals").count == 0, "a timed-out step has no answer latency")
        let page = r.render()
        #expect(page.contains(#"yishi_step_duration_seconds_bucket{agency="tax",action="register-taxpayer",le="60"} 0"#))
        #expect(page.contains(#"yishi_step_duration_seconds_bucket{agency="tax",action="register-taxpayer",le="120"} 1"#))
    }
}
