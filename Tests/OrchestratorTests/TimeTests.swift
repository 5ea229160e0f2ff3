import Foundation
import HubTestKit
import Messaging
@testable import Orchestrator
import SagaEngine
import Testing
import YishiTestSupport

/// Kind 1 of issue 10: instants the hub did not choose. The hub acts at its own now: a timer
/// that came due while nothing ran fires once, late, at the instant the hub acts, and every
/// dispatch, timeout and backoff it leads to counts from there. No broker needed.
@Suite struct LateTimerTests {
    let library = try! BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                          catalogues: repoRoot.appendingPathComponent("adapters"),
                                          calendars: repoRoot.appendingPathComponent("seeds/calendar"))

    func at(_ text: String) -> Instant { Instant(rfc3339: text)! }

    /// An enterprise-opening form submitted at `submittedAt`.
    func form(_ id: String, submittedAt: String) throws -> JSONValue {
        let seed = try #require(try SeedApplications.valid(repoRoot: repoRoot).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        guard case .object(var o) = seed else { throw SetupError("seed is not an object") }
        o["applicationId"] = .string(id)
        o["submittedAt"] = .string(submittedAt)
        return .object(o)
    }

    /// Commands and audit events of the batch so far, then commits it.
    func drain(_ host: inout SagaHost) -> [SagaHost.Outbound] {
        let out = host.outbound
        host.commitBatch()
        return out
    }

    @Test("orchestrator down 09:30–11:40: the overdue name-reservation timeout fires once at 11:40, one retry counts its timeout from then, the saga completes, the SLA still counts from 09:00")
    func overdueTimeoutFiresOnceAtNow() throws {
        var host = SagaHost(library: library)
        let id = "APP-20260302-000901"
        try host.submit(sagaId: id, bundleId: "enterprise-opening", form: form(id, submittedAt: "2026-03-02T09:00:00+08:00"),
                        licences: [:], at: at("2026-03-02T09:00:00+08:00"))
        let first = drain(&host).filter { $0.type == MessageType.stepRequested }
        #expect(first.map(\.step) == ["name-reservation"])
        #expect(first.first?.payload["deadline"]?.doubleValue == Double(at("2026-03-02T09:30:00+08:00").ms))

        // Nothing ran until 11:40; then the loop fires whatever is due, a few times a second, for a minute.
        var now = at("2026-03-02T11:40:00+08:00")
        var outbound: [SagaHost.Outbound] = []
        for _ in 0..<600 {
            _ = try host.fireDueTimers(now: now, limit: 500)
            outbound += drain(&host)
            now = now + 100
        }
        let requests = outbound.filter { $0.type == MessageType.stepRequested }
        #expect(requests.count == 1, "dispatched \(requests.map { "\($0.step ?? "?")#\($0.attempt ?? 0)" })")
        let retry = try #require(requests.first)
        #expect(retry.step == "name-reservation" && retry.attempt == 2)
        let timedOut = outbound.filter { $0.type == MessageType.sagaAudit(AuditEvent.Kind.stepTimedOut.rawValue) }
        #expect(timedOut.count == 1)
        #expect(timedOut.first?.payload["at"]?.doubleValue == Double(at("2026-03-02T11:40:00+08:00").ms), "the late timeout is recorded at the instant the hub acted")
        // The retry went out within the minute after 11:40 and gets its full 30 minutes from then.
        let sentAt = try #require(outbound.first { $0.type == MessageType.sagaAudit(AuditEvent.Kind.stepDispatched.rawValue) }?.payload["at"]?.doubleValue)
        #expect(sentAt >= Double(at("2026-03-02T11:40:00+08:00").ms) && sentAt < Double(at("2026-03-02T11:41:00+08:00").ms))
        let calendar = try #require(library.calendars["cn-mainland"])
        #expect(retry.payload["deadline"]?.doubleValue == Double(calendar.addWorkingTime(Instant(ms: Int64(sentAt)), 30 * 60_000).ms))
        let saga = try #require(host.state(id))
        #expect(saga.status == .running)
        #expect(saga.submittedAt == at("2026-03-02T09:00:00+08:00"))
        #expect(saga.deadline == calendar.addWorkingTime(at("2026-03-02T09:00:00+08:00"), 7 * 3_600_000))

        // The saga can complete: every request is answered.
        var pending = requests
        var t = now
        while let request = pending.first {
            pending.removeFirst()
            let bundle = try #require(library.bundle("enterprise-opening", version: 1))
            let step = try #require(bundle.steps.first { $0.id == request.step })
            let action = try #require(library.catalogues.agencies[step.agency]?.action(step.action))
            let outputs = Dictionary(uniqueKeysWithValues: action.outputs.map { ($0.name, JSONValue.string("\(id).\($0.name)")) })
            t = t + 60_000
            try host.apply(id, SagaInput(at: t, .stepSucceeded(step: step.id, attempt: request.attempt ?? 0, outputs: outputs)))
            pending += drain(&host).filter { $0.type == MessageType.stepRequested }
        }
        #expect(host.state(id)?.status == .completed)
    }
}
