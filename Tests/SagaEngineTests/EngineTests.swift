import Foundation
import Testing
@testable import SagaEngine

@Suite struct EngineScenarioTests {
    @Test func happyPathRunsTheDAGInParallelAndCompletes() {
        var h = Harness()
        var out = h.submit()
        #expect(out.dispatched.map(\.step) == ["name-reservation"])
        #expect(out.scheduled.map(\.key).contains(.slaBreach))
        #expect(h.state.deadline == at("2026-03-03T09:15:00+08:00"))  // 7 working hours later
        out = h.succeed("name-reservation")
        #expect(out.dispatched.map(\.step) == ["registration"])
        #expect(out.dispatched[0].payload["approvedName"] == .string("name-reservation.approvedName"))
        #expect(out.dispatched[0].payload["legalRepresentative"]?["idNumber"] == .string("11010519491231002X"))
        out = h.succeed("registration")
        #expect(Set(out.dispatched.map(\.step)) == ["seals", "tax-registration", "social-security"])
        #expect(out.contains { if case .licenceIssued(let l) = $0 { return l.type == "business-licence" && l.data["uscc"] == .string("registration.uscc") }; return false })
        out = h.succeed("tax-registration")
        #expect(out.dispatched.isEmpty)  // invoices also wait for seals
        out = h.succeed("seals")
        #expect(Set(out.dispatched.map(\.step)) == ["bank-account", "invoices-ukey"])
        #expect(out.dispatched.first { $0.step == "invoices-ukey" }?.payload["invoiceSealCode"] == .string("seals.invoiceSealCode"))
        _ = h.succeed("social-security")
        _ = h.succeed("bank-account")
        out = h.succeed("invoices-ukey")
        #expect(h.state.status == .completed)
        #expect(out.contains(.finished(sagaId: "saga-APP-1", status: .completed, at: h.now)))
        #expect(Set(out.cancelled.map(\.key)) == [.stepTimeout(step: "invoices-ukey", attempt: 1), .slaAtRisk, .slaBreach])
        // Every accepted transition emitted audit events, numbered by seq.
        #expect(h.outputs.audits.map(\.seq).max() == h.state.seq)
        #expect(h.state.seq == 8)
    }

    @Test func requestIdAndTimerIdAreDeterministic() {
        var h = Harness()
        let out = h.submit()
        #expect(out.dispatched[0].requestId == "saga-APP-1/name-reservation/r0")
        #expect(out.scheduled.first { $0.key == .stepTimeout(step: "name-reservation", attempt: 1) }?.id == "saga-APP-1/timeout/name-reservation/1")
    }

    @Test func technicalFailureRetriesWithDeterministicBackoffThenOpensManualCase() throws {
        var h = Harness()
        _ = h.submit(); _ = h.succeed("name-reservation"); _ = h.succeed("registration")
        var out = h.apply(.stepFailed(step: "seals", attempt: 1, code: "UNAVAILABLE", message: "down"))
        let backoff = try #require(out.scheduled.first)
        #expect(backoff.key == .retryBackoff(step: "seals", attempt: 1))
        let delay = backoff.due.ms - h.now.ms
        #expect(delay > 24_000 && delay <= 30_000)  // base 30s, jitter 0.2
        #expect(SagaEngine.backoff(step: h.bundle.steps[2], sagaId: "saga-APP-1", attempt: 1, failures: 1) == delay)
        out = h.apply(.timerFired(backoff.key), at: backoff.due)
        #expect(out.dispatched.map(\.attempt) == [2])
        #expect(out.dispatched[0].requestId == "saga-APP-1/seals/r0")  // same request: the department dedupes
        // Not retryable: straight to the step's policy (manual).
        out = h.apply(.stepFailed(step: "seals", attempt: 2, code: "SEAL_PATTERN_CONFLICT", message: "conflict"))
        #expect(h.state.status == .manual)
        #expect(out.contains { if case .manualCaseOpened(_, let c) = $0 { return c.step == "seals" && c.code == "SEAL_PATTERN_CONFLICT" }; return false })
        // Independent branches go on during the manual case.
        out = h.succeed("tax-registration")
        #expect(out.dispatched.isEmpty && h.status("tax-registration") == .succeeded)
    }

    @Test func retriesStopAfterTheConfiguredAttempts() {
        var h = Harness()
        _ = h.submit()
        for attempt in 1...4 {
            let out = h.apply(.timerFired(.stepTimeout(step: "name-reservation", attempt: attempt)), at: h.now + 16 * 60_000 * Int64(attempt * 2))
            if attempt < 4 {
                let t = out.scheduled[0]
                _ = h.apply(.timerFired(t.key), at: t.due + 1)
            }
        }
        #expect(h.state.steps[0].attempt == 4)
        #expect(h.outputs.dispatched.count == 4)
        // name-reservation: onFailure fail, 4 tries, all timed out: the outcome is unknown, so the
        // name is released before the saga ends failed.
        #expect(h.state.status == .compensating && h.outputs.compensations.map(\.step) == ["name-reservation"])
        _ = h.apply(.compensationSucceeded(step: "name-reservation", attempt: 1))
        #expect(h.state.status == .failed)
    }

    @Test func businessRejectionOfRegistrationCompensatesTheNameReservation() {
        var h = Harness()
        _ = h.submit(); _ = h.succeed("name-reservation")
        let out = h.apply(.stepRejected(step: "registration", attempt: 1, code: "ADDRESS_UNVERIFIED", reason: "no such address", field: "company.address"))
        #expect(h.state.status == .compensating)
        #expect(out.compensations.map(\.action) == ["release-name"])
        #expect(out.compensations[0].payload == ["reservationId": .string("name-reservation.reservationId")])
        _ = h.apply(.compensationSucceeded(step: "name-reservation", attempt: 1))
        #expect(h.state.status == .compensated)
    }

    @Test func cancelCompensatesInReverseCompletionOrderAfterInFlightStepsSettle() {
        var h = Harness()
        _ = h.submit(); _ = h.succeed("name-reservation"); _ = h.succeed("registration")
        _ = h.succeed("social-security"); _ = h.succeed("seals")  // bank + invoices now running, tax running
        var out = h.apply(.operatorCommand(OperatorCommand(id: "op-1", by: "operator:li", .cancel(reason: "applicant withdrew"))))
        #expect(out.compensations.isEmpty)  // three requests still in flight
        out = h.succeed("tax-registration")
        out = h.apply(.stepRejected(step: "invoices-ukey", attempt: 1, code: "INVALID_REQUEST", reason: "x", field: nil))
        #expect(out.compensations.isEmpty)
        out = h.succeed("bank-account")
        var order: [String] = []
        while let c = out.compensations.first {
            order.append(c.step)
            out = h.apply(.compensationSucceeded(step: c.step, attempt: c.attempt))
        }
        #expect(order == ["bank-account", "tax-registration", "seals", "social-security", "registration", "name-reservation"])
        #expect(h.state.status == .cancelled)
        #expect(h.outputs.audits.contains { $0.kind == .cancelRequested && $0.by == "operator:li" })
    }

    @Test func compensationFailureRetriesThenOpensACaseResolvedByHand() {
        var h = Harness()
        _ = h.submit(); _ = h.succeed("name-reservation")
        _ = h.apply(.stepRejected(step: "registration", attempt: 1, code: "NAME_CONFLICT", reason: "r", field: nil))
        var out = h.apply(.compensationFailed(step: "name-reservation", attempt: 1, code: "UNAVAILABLE", message: "down"))
        let t = out.scheduled[0]
        #expect(t.key == .compensationBackoff(step: "name-reservation", attempt: 1))
        out = h.apply(.timerFired(t.key), at: t.due)
        #expect(out.compensations.map(\.attempt) == [2])
        out = h.apply(.compensationFailed(step: "name-reservation", attempt: 2, code: "INVALID_REQUEST", message: "no"))
        #expect(h.status("name-reservation") == .compensationFailed)
        #expect(h.state.manualCases.map(\.kind) == [.compensation])
        out = h.apply(.operatorCommand(OperatorCommand(id: "op-9", by: "operator:wang", .resolveManually(step: "name-reservation", outputs: [:], note: "released at the counter"))))
        #expect(h.state.status == .compensated)
    }

    @Test func supplementNeededParksOneBranchWhileOthersGoOn() {
        var h = Harness("restaurant-opening")
        _ = h.submit(); _ = h.succeed("name-reservation")
        var out = h.succeed("registration")
        #expect(out.dispatched.contains { $0.step == "food-business-permit" && $0.payload["deferrableMaterials"] == .array([.string("lease-contract"), .string("premises-layout")]) })
        out = h.apply(.supplementNeeded(step: "food-business-permit", attempt: 1, materials: ["premises-layout"]))
        #expect(h.status("food-business-permit") == .waitingSupplement)
        #expect(h.state.steps[h.bundle.stepIndex(of: "food-business-permit")!].missing == ["premises-layout"])
        for s in ["seals", "tax-registration", "social-security"] { _ = h.succeed(s) }
        _ = h.succeed("bank-account"); _ = h.succeed("invoices-ukey")
        #expect(h.state.status == .running)  // only the permit branch is waiting
        out = h.apply(.supplementProvided(step: "food-business-permit", attempt: 1, materials: ["premises-layout": .string("doc-77")], by: "operator:li"))
        // Entered by an operator: an operator action in the audit trail, with who.
        #expect(out.audits.first { $0.kind == .supplementProvided }?.by == "operator:li")
        #expect(out.dispatched.count == 1)
        #expect(out.dispatched[0].attempt == 2 && out.dispatched[0].requestId.hasSuffix("/r1"))
        #expect(out.dispatched[0].payload["supplements"] == .object(["premises-layout": .string("doc-77")]))
        _ = h.succeed("food-business-permit", attempt: 2)
        #expect(h.state.status == .completed)
    }

    @Test func supplementForANonDeferrableMaterialIsARejection() {
        var h = Harness("restaurant-opening")
        _ = h.submit(); _ = h.succeed("name-reservation"); _ = h.succeed("registration")
        _ = h.apply(.supplementNeeded(step: "food-business-permit", attempt: 1, materials: ["id-copy-legal-representative"]))
        #expect(h.status("food-business-permit") == .failed)
        #expect(h.state.manualCases.first?.code == HubErrorCode.materialMissing)
    }

    @Test func operatorRetryWithCorrectedInputSkipAndResolve() {
        var h = Harness()
        _ = h.submit(); _ = h.succeed("name-reservation"); _ = h.succeed("registration")
        _ = h.apply(.stepRejected(step: "tax-registration", attempt: 1, code: "RISK_CONTROL_HOLD", reason: "check", field: nil))
        #expect(h.state.status == .manual)
        var out = h.apply(.operatorCommand(OperatorCommand(id: "op-1", by: "operator:li", .retry(step: "tax-registration", correctedInput: ["address": .string("文三路 102 号")]))))
        #expect(h.state.status == .running)
        #expect(out.dispatched[0].payload["address"] == .string("文三路 102 号"))
        #expect(out.dispatched[0].requestId == "saga-APP-1/tax-registration/r1")
        // The old attempt's late answer is stale now.
        #expect(h.apply(.stepSucceeded(step: "tax-registration", attempt: 1, outputs: [:])).isIgnored)
        _ = h.apply(.stepFailed(step: "social-security", attempt: 1, code: "EMPLOYER_EXISTS", message: "exists"))
        out = h.apply(.operatorCommand(OperatorCommand(id: "op-2", by: "operator:li", .skip(step: "social-security", reason: "registered last year"))))
        #expect(h.status("social-security") == .skipped)
        _ = h.apply(.stepRejected(step: "seals", attempt: 1, code: "SEAL_PATTERN_CONFLICT", reason: "x", field: nil))
        out = h.apply(.operatorCommand(OperatorCommand(id: "op-3", by: "operator:wang", .resolveManually(step: "seals", outputs: outputs(for: h.bundle.steps[2]), note: "engraved at the hall"))))
        #expect(Set(out.dispatched.map(\.step)) == ["bank-account"])
        #expect(h.apply(.operatorCommand(OperatorCommand(id: "op-3", by: "operator:wang", .resume))).isIgnored)  // same id
    }

    @Test func pauseHoldsDispatchUntilResume() {
        var h = Harness()
        _ = h.submit()
        _ = h.apply(.operatorCommand(OperatorCommand(id: "p", by: "op", .pause(reason: "audit"))))
        var out = h.succeed("name-reservation")
        #expect(out.dispatched.isEmpty && h.status("registration") == .pending)
        out = h.apply(.operatorCommand(OperatorCommand(id: "r", by: "op", .resume)))
        #expect(out.dispatched.map(\.step) == ["registration"])
    }

    @Test func aHeldStepWaitsWhileTheRestGoesOn() {
        var h = Harness()
        _ = h.submit(); _ = h.succeed("name-reservation")
        // Hold seals before registration completes: tax and social security go out, seals does not.
        var out = h.apply(.operatorCommand(OperatorCommand(id: "h1", by: "operator:li", .pauseStep(step: "seals", reason: "seal pattern under review"))))
        #expect(out.audits.map(\.kind) == [.paused] && out.audits[0].step == "seals" && out.audits[0].by == "operator:li")
        out = h.succeed("registration")
        #expect(!out.dispatched.map(\.step).contains("seals") && out.dispatched.count == 2)
        #expect(h.status("seals") == .pending && h.state.steps[h.bundle.stepIndex(of: "seals")!].isPaused)
        #expect(h.apply(.operatorCommand(OperatorCommand(id: "h2", by: "operator:li", .pauseStep(step: "seals", reason: "again")))).audits.first?.kind == .commandRejected)
        // Everything else done: the saga still waits for the held step.
        _ = h.succeed("tax-registration"); _ = h.succeed("social-security")
        #expect(h.state.status == .running)
        out = h.apply(.operatorCommand(OperatorCommand(id: "h3", by: "operator:li", .resumeStep(step: "seals"))))
        #expect(out.dispatched.map(\.step) == ["seals"] && out.audits.first?.kind == .resumed)
        #expect(h.apply(.operatorCommand(OperatorCommand(id: "h4", by: "operator:li", .resumeStep(step: "seals")))).audits.first?.kind == .commandRejected)
        // A held step's retry backoff ends without a dispatch.
        _ = h.apply(.operatorCommand(OperatorCommand(id: "h5", by: "operator:li", .pauseStep(step: "seals", reason: "bank asks"))))
        let failed = h.apply(.stepFailed(step: "seals", attempt: 1, code: "UNAVAILABLE", message: "down"))
        let i = h.bundle.stepIndex(of: "seals")!
        #expect(h.status("seals") == .backoff)
        // Two events, two names: the retry is scheduled when the attempt fails, and is due when its timer fires.
        #expect(failed.audits.contains { $0.kind == .retryScheduled && $0.detail?.hasPrefix("in ") == true }, "\(failed.audits)")
        out = h.apply(.timerFired(.retryBackoff(step: "seals", attempt: 1)), at: h.state.steps[i].due)
        #expect(out.dispatched.isEmpty && h.status("seals") == .pending && out.audits.last?.detail == "retry due; step paused")
        #expect(out.audits.last?.kind == .retryDue && !out.audits.contains { $0.kind == .retryScheduled })
        // Records from before retryDue existed still decode, with their old name.
        let old = #"{"sagaId":"S","seq":3,"at":0,"kind":"retryScheduled","step":"seals","attempt":1,"detail":"retry due"}"#
        #expect((try? JSONDecoder().decode(AuditEvent.self, from: Data(old.utf8)))?.kind == .retryScheduled)
        out = h.apply(.operatorCommand(OperatorCommand(id: "h6", by: "operator:li", .resumeStep(step: "seals"))))
        #expect(out.dispatched.map(\.step) == ["seals"] && out.dispatched[0].attempt == 2)
    }

    @Test func slaTimersMarkAtRiskAndBreachButEarlyOrRepeatedFiringsAreIgnored() {
        var h = Harness()
        _ = h.submit()
        // 5 of the 7 working hours: 09:15–12:00 and 13:30–15:45.
        #expect(h.state.atRiskAt == at("2026-03-02T15:45:00+08:00"))
        #expect(h.apply(.timerFired(.slaAtRisk), at: h.state.atRiskAt + -1).isIgnored)
        _ = h.apply(.timerFired(.slaAtRisk), at: h.state.atRiskAt)
        #expect(h.state.slaAtRisk && !h.state.slaBreached)
        #expect(h.apply(.timerFired(.slaAtRisk), at: h.state.atRiskAt).isIgnored)
        let out = h.apply(.timerFired(.slaBreach), at: h.state.deadline)
        #expect(h.state.slaBreached && out.audits.map(\.kind) == [.slaBreached])
        #expect(h.state.status == .running)  // a breach is reported, not fatal
    }

    @Test func licencesAlreadyHeldFeedMappings() {
        var h = Harness("barbershop-opening")
        _ = h.submit(licences: ["business-licence": ["uscc": "91330106MA2XXXXX0X"]])
        #expect(h.state.external.contains(.string("91330106MA2XXXXX0X")))
    }

    @Test func staleDuplicateAndForeignInputsChangeNothing() {
        var h = Harness()
        _ = h.submit()
        let before = h.state
        #expect(h.submit().isIgnored)
        #expect(h.apply(.stepSucceeded(step: "registration", attempt: 1, outputs: [:])).isIgnored)
        #expect(h.apply(.stepSucceeded(step: "nope", attempt: 1, outputs: [:])).isIgnored)
        #expect(h.apply(.timerFired(.stepTimeout(step: "name-reservation", attempt: 1)), at: h.now + 1000).isIgnored)  // early
        #expect(h.state == before)
        var other = SagaState(sagaId: "x", bundle: bundle("barbershop-opening"))
        other.bundleVersion = 99
        #expect(SagaEngine.apply(to: &other, SagaInput(at: h.now, .submit(form: sampleForm, licences: [:])), bundle: bundle("barbershop-opening"), calendar: calendar).isIgnored)
    }

    @Test func stateRoundTripsThroughJSON() throws {
        var h = Harness()
        _ = h.submit(); _ = h.succeed("name-reservation")
        let data = try JSONEncoder().encode(h.state)
        #expect(try JSONDecoder().decode(SagaState.self, from: data) == h.state)
        let inputs = try JSONDecoder().decode([SagaInput].self, from: JSONEncoder().encode(h.log))
        #expect(inputs == h.log)
    }
}

@Suite struct PurityTests {
    /// The engine must stay pure: Foundation only, never a Kafka module (and no clock or RNG).
    @Test func engineImportsOnlyFoundation() throws {
        let dir = repoRoot.appendingPathComponent("Sources/SagaEngine")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
        #expect(files.count >= 8)
        for f in files {
            let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            let imports = text.split(separator: "\n").filter { $0.hasPrefix("import ") || $0.contains(" import ") }
            #expect(imports.allSatisfy { $0 == "import Foundation" }, "\(f): \(imports)")
            for banned in ["Date()", "random(", "DispatchTime", "ContinuousClock"] {
                #expect(!text.contains(banned), "\(f) uses \(banned)")
            }
        }
    }
}
