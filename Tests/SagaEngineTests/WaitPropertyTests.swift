import Foundation
import Testing
@testable import SagaEngine

/// Random interleavings on the simplified deregistration route (a 20-natural-day notice, then
/// cancellation): early, late, stale and duplicated wait timers, objections at any time, operator
/// retries, resolutions and cancels, duplicated answers. Invariants after every input: the notice
/// succeeds only by its own current timer at or after its due instant (or by an operator), the
/// cancellation is never dispatched before the notice is done, an ignored input changes nothing,
/// and replaying the log gives the same state.
@Suite struct WaitPropertyTests {
    @Test func randomInterleavingsOfNoticeObjectionsAndTimersKeepTheInvariants() throws {
        let form: JSONValue = ["applicationId": "D", "bundle": "enterprise-deregistration-simple", "submittedAt": "2026-03-02T09:15:00+08:00",
                               "company": ["uscc": "91330106MA2B3C4D5E"], "deregistration": ["reason": "决议解散"]]
        var finals: [SagaStatus: Int] = [:]
        var objectionsAccepted = 0
        for run in 0..<1_500 {
            var rng = SplitMix64(seed: 7_000_003 &* UInt64(run + 1))
            var h = Harness("enterprise-deregistration-simple", sagaId: "D\(run)")
            h.apply(.submit(form: form, licences: [:]))
            let notice = h.bundle.stepIndex(of: "public-notice")!
            var ops = 0
            for _ in 0..<40 where !h.state.status.isFinal {
                h.now = h.now + Int64(rng.next() % (3 * 86_400_000))
                let before = h.state
                let st = h.state.steps[notice]
                let attempt = Int(st.attempt)
                let out: [SagaOutput]
                switch rng.next() % 9 {
                case 0, 1:
                    out = h.apply(.timerFired(.waitElapsed(step: "public-notice", attempt: attempt)))
                case 2: out = h.apply(.timerFired(.waitElapsed(step: "public-notice", attempt: max(1, attempt - 1))), at: h.now)
                case 3: out = h.apply(.objection(step: "public-notice", by: "creditor", reason: "debt"))
                case 4:
                    ops += 1
                    out = h.apply(.operatorCommand(OperatorCommand(id: "r\(ops)", by: "op", .retry(step: "public-notice", correctedInput: nil))))
                case 5:
                    ops += 1
                    out = h.apply(.operatorCommand(OperatorCommand(id: "m\(ops)", by: "op", .resolveManually(step: "public-notice", outputs: [:], note: "withdrawn"))))
                case 6:
                    let c = h.state.steps[h.bundle.stepIndex(of: "registration-cancellation")!]
                    out = h.apply(.stepSucceeded(step: "registration-cancellation", attempt: max(1, Int(c.attempt)), outputs: [:]))
                case 7: out = h.apply(.stepSucceeded(step: "public-notice", attempt: attempt, outputs: [:]))  // no agency answers a wait
                default:
                    ops += 1
                    out = rng.next() % 4 == 0 ? h.apply(.operatorCommand(OperatorCommand(id: "c\(ops)", by: "op", .cancel(reason: "withdrawn"))))
                                               : h.apply(h.log[Int(rng.next() % UInt64(h.log.count))].event)  // a duplicate
                }
                if out.isIgnored { #expect(h.state == before, "run \(run): an ignored input changed the state") }
                let now = h.state.steps[notice]
                if now.status == .succeeded, before.steps[notice].status == .running {
                    // Only its own current timer, never early.
                    let own = h.log.last?.event == .timerFired(.waitElapsed(step: "public-notice", attempt: Int(before.steps[notice].attempt)))
                    #expect(own && h.now >= before.steps[notice].due, "run \(run): notice ended early or by another input")
                }
                if before.steps[notice].status == .running, now.status == .failed { objectionsAccepted += 1 }
                for d in out.dispatched where d.step == "registration-cancellation" {
                    #expect(h.state.steps[notice].status.isDone, "run \(run): cancellation dispatched before the notice was done")
                }
                #expect(!out.dispatched.contains { $0.step == "public-notice" }, "run \(run): a wait step sent a request")
            }
            finals[h.state.status, default: 0] += 1
            #expect(SagaEngine.replay(sagaId: "D\(run)", h.log, bundle: h.bundle, calendar: calendar) == h.state, "run \(run): replay differs")
        }
        #expect(finals[.completed, default: 0] > 20 && finals[.cancelled, default: 0] > 20, "\(finals)")
        #expect(objectionsAccepted > 50)
    }
}
