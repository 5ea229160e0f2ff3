import Foundation
import Operations
import SagaEngine
import Testing

/// `yishi sagas show` / `diagnose` of a saga in its public notice: the hub's turn, until when.
@Suite struct WaitStepReportTests {
    @Test func aRunningNoticeIsTheHubsTurnUntilItsEnd() throws {
        let bundle = try #require(library.newest("enterprise-deregistration-simple"))
        let calendar = try #require(library.calendar(for: bundle))
        let t0 = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        var state = SagaState(sagaId: "DEREG-1", bundle: bundle)
        var audit: [AuditEvent] = []
        for out in SagaEngine.apply(to: &state, SagaInput(at: t0, .submit(form: ["submittedAt": "2026-03-02T09:00:00+08:00"], licences: [:])),
                                    bundle: bundle, calendar: calendar) {
            if case .audit(let e) = out { audit.append(e) }
        }
        let timeline = SagaTimeline(state: state, bundle: bundle, calendar: calendar, audit: audit, now: t0 + 86_400_000, source: "test")
        let blocker = try #require(timeline.blockers.first)
        #expect(blocker.step == "public-notice" && blocker.turn == "hub" && blocker.agency == nil, "\(blocker)")
        #expect(blocker.reason.contains("notice period runs until") && blocker.reason.contains("2026-03-22"), "\(blocker.reason)")
    }
}
