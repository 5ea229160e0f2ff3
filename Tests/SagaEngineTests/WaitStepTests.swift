import Foundation
import Testing
@testable import SagaEngine

/// Timed wait steps (简易注销's 20-natural-day notice), objections during them, and the
/// validator's checks of wait durations and trigger fields.
@Suite struct WaitStepTests {
    let deregForm: JSONValue = [
        "applicationId": "DEREG-1", "bundle": "enterprise-deregistration-simple", "submittedAt": "2026-03-02T09:15:00+08:00",
        "company": ["uscc": "91330106MA2XXXXX1X"], "deregistration": ["reason": "决议解散"],
    ]

    func submitted() -> Harness {
        var h = Harness("enterprise-deregistration-simple", sagaId: "DEREG-1")
        h.apply(.submit(form: deregForm, licences: [:]))
        return h
    }

    @Test func noticeRunsTwentyNaturalDaysThenCancellationIsDispatched() {
        var h = submitted()
        let timer = h.outputs.scheduled.first { if case .waitElapsed = $0.key { return true }; return false }
        #expect(timer?.id == "DEREG-1/wait/public-notice/1")
        #expect(timer?.due == h.now + 20 * 86_400_000)
        #expect(h.outputs.dispatched.isEmpty)  // no agency is asked during the notice
        #expect(h.status("public-notice") == .running)
        // Restore re-arms it: the state alone names the wait timer.
        // Early firing is stale; an agency answer for the wait step is ignored.
        #expect(h.apply(.timerFired(.waitElapsed(step: "public-notice", attempt: 1)), at: h.now + 19 * 86_400_000).isIgnored)
        #expect(h.apply(.stepSucceeded(step: "public-notice", attempt: 1, outputs: [:])).isIgnored)
        let out = h.apply(.timerFired(.waitElapsed(step: "public-notice", attempt: 1)), at: h.now + 20 * 86_400_000)
        #expect(h.status("public-notice") == .succeeded)
        #expect(out.dispatched.map(\.step) == ["registration-cancellation"])
        #expect(out.dispatched.first?.payload["uscc"] == "91330106MA2XXXXX1X")
        _ = h.succeed("registration-cancellation", outputs: [:])
        #expect(h.state.status == .completed)
        // Replay gives the same state.
        #expect(SagaEngine.replay(sagaId: "DEREG-1", h.log, bundle: h.bundle, calendar: calendar) == h.state)
    }

    @Test func objectionDuringNoticeOpensManualCaseAndRetryRestartsTheNotice() {
        var h = submitted()
        let day5 = h.now + 5 * 86_400_000
        let out = h.apply(.objection(step: "public-notice", by: "债权人 某某公司", reason: "尚有未清偿债务"), at: day5)
        #expect(h.state.status == .manual)
        #expect(h.state.manualCases.first?.code == HubErrorCode.objection)
        #expect(out.cancelled.map(\.id) == ["DEREG-1/wait/public-notice/1"])
        #expect(out.audits.map(\.kind).contains(.objectionReceived))
        // The old timer firing later changes nothing; nothing was dispatched.
        #expect(h.apply(.timerFired(.waitElapsed(step: "public-notice", attempt: 1)), at: h.now + 21 * 86_400_000).isIgnored)
        #expect(h.outputs.dispatched.isEmpty)
        // The objection settled, the operator restarts the notice: a new full period from now.
        let day9 = h.now + 9 * 86_400_000
        let retry = h.apply(.operatorCommand(OperatorCommand(id: "c1", by: "op", .retry(step: "public-notice", correctedInput: nil))), at: day9)
        #expect(h.state.status == .running)
        #expect(retry.scheduled.map(\.id) == ["DEREG-1/wait/public-notice/2"])
        #expect(retry.scheduled.first?.due == day9 + 20 * 86_400_000)
        // A second objection after the period ended is too late.
        h.apply(.timerFired(.waitElapsed(step: "public-notice", attempt: 2)), at: day9 + 20 * 86_400_000)
        #expect(h.apply(.objection(step: "public-notice", by: "x", reason: "late")).isIgnored)
        _ = h.succeed("registration-cancellation", outputs: [:])
        #expect(h.state.status == .completed)
    }

    @Test func objectionResolvedManuallyLetsTheSagaGoOn() {
        var h = submitted()
        h.apply(.objection(step: "public-notice", by: "税务机关", reason: "未清税"))
        let out = h.apply(.operatorCommand(OperatorCommand(id: "c1", by: "op", .resolveManually(step: "public-notice", outputs: [:], note: "异议已撤回"))))
        #expect(out.dispatched.map(\.step) == ["registration-cancellation"])
    }

    @Test func cancelDuringNoticeStopsTheWaitAndEndsCancelled() {
        var h = submitted()
        let out = h.apply(.operatorCommand(OperatorCommand(id: "c1", by: "op", .cancel(reason: "申请人撤回"))))
        #expect(h.state.status == .cancelled)
        #expect(out.cancelled.contains { $0.id == "DEREG-1/wait/public-notice/1" })
    }

    @Test func objectionToAnAgencyStepIsIgnored() {
        var h = Harness()
        _ = h.submit()
        #expect(h.apply(.objection(step: "name-reservation", by: "x", reason: "y")).isIgnored)
    }

    @Test func workingDayWaitCountsOnTheCalendar() throws {
        var json = try JSONValue.parse(Data(contentsOf: repoRoot.appendingPathComponent("seeds/bundles/enterprise-deregistration-simple.v1.json")))
        guard case .object(var top) = json, case .array(var steps) = top["steps"]!, case .object(var notice) = steps[0] else { Issue.record("shape"); return }
        notice["wait"] = ["days": 2, "calendar": "working"]
        steps[0] = .object(notice); top["steps"] = .array(steps); json = .object(top)
        let (def, problems) = library.validator.validate(json: json, file: "w.json")
        #expect(problems.isEmpty)
        let b = CompiledBundle(def!, catalogues: library.catalogues, calendar: calendar)
        var s = SagaState(sagaId: "W", bundle: b)
        // Friday 2026-03-06 10:00 + 2 working days = Tuesday 2026-03-10 10:00.
        let out = SagaEngine.apply(to: &s, SagaInput(at: at("2026-03-06T10:00:00+08:00"), .submit(form: deregForm, licences: [:])), bundle: b, calendar: calendar)
        #expect(out.scheduled.first { $0.id == "W/wait/public-notice/1" }?.due == at("2026-03-10T10:00:00+08:00"))
    }
}

@Suite struct WaitAndTriggerValidationTests {
    func problems(_ file: String, _ edit: (inout [String: JSONValue]) -> Void) throws -> [BundleProblem] {
        let json = try JSONValue.parse(Data(contentsOf: repoRoot.appendingPathComponent("seeds/bundles/" + file)))
        guard case .object(var top) = json else { return [] }
        edit(&top)
        return library.validator.validate(json: .object(top), file: file).1
    }

    func editStep0(_ top: inout [String: JSONValue], _ f: (inout [String: JSONValue]) -> Void) {
        guard case .array(var steps) = top["steps"]!, case .object(var s) = steps[0] else { return }
        f(&s); steps[0] = .object(s); top["steps"] = .array(steps)
    }

    @Test func shippedBundlesIncludingWaitAndTriggerAreValid() {
        #expect(library.problems.isEmpty, "\(library.problems)")
        #expect(library.newest("enterprise-deregistration-simple")?.steps[0].isWait == true)
        #expect(library.newest("startup-subsidy")?.definition.trigger?.type == "cn.gov.yishi.licence.issued")
        #expect(library.triggered.map(\.id) == ["startup-subsidy"])
    }

    @Test(arguments: [
        (JSONValue.object(["days": 0, "calendar": "natural"]), "$.steps[0].wait.days"),
        (JSONValue.object(["days": 2.5, "calendar": "natural"]), "$.steps[0].wait.days"),
        (JSONValue.object(["days": "20d", "calendar": "natural"]), "$.steps[0].wait.days"),
        (JSONValue.object(["days": 400, "calendar": "natural"]), "$.steps[0].wait.days"),
        (JSONValue.object(["days": 20, "calendar": "lunar"]), "$.steps[0].wait.calendar"),
    ])
    func badWaitDurationIsRejectedWithItsPath(wait: JSONValue, path: String) throws {
        let ps = try problems("enterprise-deregistration-simple.v1.json") { top in editStep0(&top) { $0["wait"] = wait } }
        #expect(ps.map(\.path) == [path], "\(ps)")
        #expect(ps.first?.kind == .badDuration)
        #expect(ps.first?.description.hasPrefix("enterprise-deregistration-simple.v1.json: \(path): ") == true)
    }

    @Test func waitStepMustBeManualAndTakesNoAgencyFields() throws {
        let ps = try problems("enterprise-deregistration-simple.v1.json") { top in
            editStep0(&top) { $0["onFailure"] = "compensate"; $0["agency"] = "tax" }
        }
        #expect(Set(ps.map(\.path)) == ["$.steps[0].onFailure", "$.steps[0].agency"], "\(ps)")
    }

    @Test func triggerFieldMissingFromTheEventSchemaIsRejectedWithItsPath() throws {
        let ps = try problems("startup-subsidy.v1.json") { top in
            guard case .object(var t) = top["trigger"]!, case .object(var when) = t["when"]! else { return }
            when["licenceType"] = "business-licence"  // the schema's field is `type`
            t["when"] = .object(when)
            t["key"] = "data.uscc"
            t["form"] = ["company": ["uscc": "$.event.holder"]]  // no `holder` in licence.issued
            top["trigger"] = .object(t)
        }
        #expect(Set(ps.map(\.path)) == ["$.trigger.when.licenceType", "$.trigger.form.company.uscc"], "\(ps)")
        #expect(ps.allSatisfy { $0.kind == .unknownEventField })
        #expect(ps.contains { $0.message.contains("has no field 'licenceType'") })
    }

    @Test func triggerWithUnknownEventTypeIsRejected() throws {
        let ps = try problems("startup-subsidy.v1.json") { top in
            guard case .object(var t) = top["trigger"]! else { return }
            t["type"] = "cn.gov.yishi.licence.isued"
            top["trigger"] = .object(t)
        }
        #expect(ps.map(\.path) == ["$.trigger.type"], "\(ps)")
    }

    @Test func triggerMatchingAndSagaIdAreDeterministic() throws {
        let t = try #require(library.newest("startup-subsidy")?.definition.trigger)
        let event: JSONValue = ["sagaId": "APP-1", "step": "registration", "type": "business-licence", "data": ["uscc": "91330106MA2B3C4D5E", "licenceId": "L1"]]
        #expect(t.matches(event))
        #expect(!t.matches(["sagaId": "APP-1", "step": "food-permit", "type": "food-business-permit", "data": ["uscc": "x"]]))
        #expect(t.sagaId(bundleId: "startup-subsidy", eventId: "e1", data: event) == "startup-subsidy-91330106MA2B3C4D5E")
        #expect(t.sagaId(bundleId: "startup-subsidy", eventId: "e2", data: event) == t.sagaId(bundleId: "startup-subsidy", eventId: "e1", data: event))
        let form = t.form(data: event, sagaId: "S", bundleId: "startup-subsidy", submittedAt: "2026-03-02T09:15:00+08:00")
        #expect(form["company"]?["uscc"] == "91330106MA2B3C4D5E")
        #expect(form["applicationId"] == "S")
    }
}
