import Foundation
import Testing
@testable import SagaEngine

/// Kind 6 of issue 10: effects whose outcome the hub never learned. A step that ended by
/// timeout has an unknown outcome; when the saga ends failed, compensated or cancelled, a
/// compensable step whose agency may have acted is undone, and a late success for a step the
/// saga gave up on leads to its compensation.
@Suite struct OutcomeTests {
    /// Times out every attempt of `step` (firing each timeout, then each backoff), as an
    /// orchestrator would with no answer ever arriving.
    static func timeOutEveryAttempt(_ h: inout Harness, _ step: String) {
        let i = h.bundle.stepIndex(of: step)!
        for _ in 0..<h.bundle.steps[i].attempts {
            guard h.state.steps[i].status == .running else { return }
            h.now = h.state.steps[i].due
            h.apply(.timerFired(.stepTimeout(step: step, attempt: Int(h.state.steps[i].attempt))))
            if h.state.steps[i].status == .backoff {
                h.now = h.state.steps[i].due
                h.apply(.timerFired(.retryBackoff(step: step, attempt: Int(h.state.steps[i].attempt))))
            }
        }
    }

    @Test("onFailure: fail — a name reservation whose every attempt timed out is released before the saga ends failed")
    func timedOutStepUnderFailIsUndone() {
        var h = Harness()
        _ = h.submit()
        Self.timeOutEveryAttempt(&h, "name-reservation")
        let i = h.bundle.stepIndex(of: "name-reservation")!
        #expect(h.state.steps[i].isUnconfirmed)
        #expect(h.state.status == .compensating, "status \(h.state.status)")
        #expect(h.state.abortedBy == .fail)
        let undo = h.outputs.compensations
        #expect(undo.map(\.step) == ["name-reservation"])
        #expect(undo.first?.action == "release-name" && undo.first?.requestId == "saga-APP-1/name-reservation/undo")
        let out = h.apply(.compensationSucceeded(step: "name-reservation", attempt: 1))
        #expect(h.state.status == .failed)
        #expect(out.contains(.finished(sagaId: "saga-APP-1", status: .failed, at: h.now)))
        #expect(h.state.steps[i].status == .compensated)
    }

    @Test("onFailure: fail with nothing unconfirmed still ends failed at once, keeping confirmed work")
    func failWithoutUnknownEndsAtOnce() {
        var h = Harness()
        _ = h.submit()
        let out = h.apply(.stepRejected(step: "name-reservation", attempt: 1, code: "NAME_CONFLICT", reason: "taken", field: nil))
        #expect(h.state.status == .failed)
        #expect(out.compensations.isEmpty)
    }

    @Test("onFailure: compensate — a registration whose attempts all timed out is deregistered, then the name released")
    func timedOutStepUnderCompensateIsUndone() {
        var h = Harness()
        _ = h.submit()
        _ = h.succeed("name-reservation")
        Self.timeOutEveryAttempt(&h, "registration")
        #expect(h.state.status == .compensating)
        #expect(h.outputs.compensations.map(\.step) == ["registration"])
        #expect(h.outputs.compensations.first?.action == "deregister-enterprise")
        // Nothing is known of the registration's outputs: the department finds it by saga and step.
        #expect(h.outputs.compensations.first?.payload.isEmpty == true)
        h.apply(.compensationSucceeded(step: "registration", attempt: 1))
        #expect(h.outputs.compensations.map(\.step) == ["registration", "name-reservation"])
        #expect(h.outputs.compensations.last?.payload["reservationId"] != nil)
        h.apply(.compensationSucceeded(step: "name-reservation", attempt: 1))
        #expect(h.state.status == .compensated)
    }

    @Test("cancel — a step backing off after a timeout is undone as well as the completed ones")
    func timedOutStepUnderCancelIsUndone() {
        var h = Harness()
        _ = h.submit()
        _ = h.succeed("name-reservation")
        let r = h.bundle.stepIndex(of: "registration")!
        h.now = h.state.steps[r].due
        h.apply(.timerFired(.stepTimeout(step: "registration", attempt: 1)))
        #expect(h.state.steps[r].status == .backoff)
        h.apply(.operatorCommand(OperatorCommand(id: "c1", by: "operator:test", .cancel(reason: "withdrawn"))))
        #expect(h.state.steps[r].status == .compensating)
        #expect(h.outputs.compensations.map(\.step) == ["registration"])
        h.apply(.compensationSucceeded(step: "registration", attempt: 1))
        h.apply(.compensationSucceeded(step: "name-reservation", attempt: 1))
        #expect(h.outputs.compensations.map(\.step) == ["registration", "name-reservation"])
        #expect(h.state.status == .cancelled)
    }

    @Test("a late success for a step waiting to be undone gives its compensation the outputs")
    func lateSuccessWhileCompensating() {
        var h = Harness()
        _ = h.submit()
        _ = h.succeed("name-reservation")
        _ = h.succeed("registration")
        let seals = h.bundle.stepIndex(of: "seals")!, tax = h.bundle.stepIndex(of: "tax-registration")!
        h.now = max(h.state.steps[seals].due, h.state.steps[tax].due)
        h.apply(.timerFired(.stepTimeout(step: "seals", attempt: 1)))
        h.apply(.timerFired(.stepTimeout(step: "tax-registration", attempt: 1)))
        h.apply(.stepSucceeded(step: "social-security", attempt: 1, outputs: outputs(for: h.bundle.steps[h.bundle.stepIndex(of: "social-security")!])))
        h.apply(.operatorCommand(OperatorCommand(id: "c1", by: "operator:test", .cancel(reason: "withdrawn"))))
        // Unconfirmed first, newest step first: tax-registration, then seals.
        #expect(h.outputs.compensations.map(\.step) == ["tax-registration"])
        let late = outputs(for: h.bundle.steps[seals], tag: "-late")
        let out = h.apply(.stepSucceeded(step: "seals", attempt: 1, outputs: late))
        #expect(out.audits.map(\.kind) == [.lateSuccess])
        #expect(out.compensations.isEmpty, "one compensation at a time")
        // The same answer again is a duplicate.
        #expect(h.apply(.stepSucceeded(step: "seals", attempt: 1, outputs: late)).isIgnored)
        h.apply(.compensationSucceeded(step: "tax-registration", attempt: 1))
        let sealUndo = h.outputs.compensations.last!
        #expect(sealUndo.step == "seals")
        #expect(!sealUndo.payload.isEmpty && sealUndo.payload.values.allSatisfy { $0.stringValue?.hasSuffix("-late") == true },
                "payload \(sealUndo.payload)")
        while let undo = h.outputs.compensations.last, h.state.status == .compensating {
            h.apply(.compensationSucceeded(step: undo.step, attempt: undo.attempt))
        }
        #expect(h.outputs.compensations.map(\.step) == ["tax-registration", "seals", "social-security", "registration", "name-reservation"])
        #expect(h.state.status == .cancelled)
    }

    @Test("a late success after the saga ended failed reopens it, undoes the step, and it ends failed again")
    func lateSuccessAfterFailedSaga() {
        var h = Harness()
        _ = h.submit()
        Self.timeOutEveryAttempt(&h, "name-reservation")
        // A state as old code left it: failed, the timed-out step not marked, nothing undone.
        let i = h.bundle.stepIndex(of: "name-reservation")!
        var old = SagaState(sagaId: h.state.sagaId, bundle: h.bundle)
        old.status = .failed
        old.seq = h.state.seq
        old.submittedAt = h.state.submittedAt; old.deadline = h.state.deadline; old.atRiskAt = h.state.atRiskAt
        old.external = h.state.external
        old.steps[i].status = .failed
        old.steps[i].attempt = 4
        old.steps[i].lastError = "TIMEOUT"
        h.state = old
        let late = outputs(for: h.bundle.steps[i], tag: "-late")
        let out = h.apply(.stepSucceeded(step: "name-reservation", attempt: 2, outputs: late))
        #expect(out.audits.map(\.kind) == [.lateSuccess, .compensationStarted, .compensationDispatched])
        #expect(h.state.status == .compensating && h.state.abortedBy == .fail)
        #expect(out.compensations.first?.payload["reservationId"] == late["reservationId"])
        #expect(h.apply(.stepSucceeded(step: "name-reservation", attempt: 2, outputs: late)).isIgnored)
        let end = h.apply(.compensationSucceeded(step: "name-reservation", attempt: 1))
        #expect(h.state.status == .failed)
        #expect(end.contains(.finished(sagaId: h.state.sagaId, status: .failed, at: h.now)))
        // Once undone, another late answer changes nothing.
        #expect(h.apply(.stepSucceeded(step: "name-reservation", attempt: 1, outputs: late)).isIgnored)
    }
}
