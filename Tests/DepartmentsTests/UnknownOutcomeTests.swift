import Foundation
import Testing
@testable import Departments

/// Kind 6 of issue 10: the hub undoes a step whose outcome it never learned (its request timed
/// out), so it sends the compensation without the key the step's answer would have carried. The
/// department finds what that saga's step did in its own records, and answers success with
/// nothing undone when the step did nothing.
@Suite struct UnknownOutcomeTests {
    let f = sampleForm

    /// A compensation request carrying only the department's envelope (request id, action,
    /// saga and step references): no key, as the adapter sends it when the hub has none.
    func keyless<M: DepartmentModel>(_ model: M.Type, action: String, saga: String, step: String) -> Data {
        let meta = RequestMeta(requestId: "\(saga)/\(step)/undo", sagaId: saga, step: step, action: action)
        return NativeJSON.encode(NativeMessage(envelope: M.RequestEnvelope(meta: meta), body: NoFields()))
    }

    /// A real compensation request with its key field (top level) left out, as the adapter
    /// renders it when the saga has no value for it.
    func withoutKey<M: DepartmentModel, Body: NativeRequestBody>(_ model: M.Type, _ body: Body, key: String, saga: String, step: String) throws -> Data {
        let data = M.request(body, requestId: "\(saga)/\(step)/undo", sagaId: saga, step: step)
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object[key] = nil
        return try JSONSerialization.data(withJSONObject: object)
    }

    @Test("every department answers a keyless undo of a step that did nothing with success and no effect")
    func undoOfNothingSucceedsEverywhere() {
        var hub = Hub()
        func check<M: DepartmentModel>(_ dept: inout RunningDepartment<M>) {
            #expect(!M.undoTargets.isEmpty, "\(M.agency) declares no compensation")
            for action in M.undoTargets.keys.sorted() {
                let request = keyless(M.self, action: action, saga: "saga-never", step: "s-\(action)")
                let h = dept.receive(request, at: monday)
                #expect(h.outcome == .completed, "\(M.agency) \(action): \(h.outcome)")
                #expect(h.effects.isEmpty, "\(M.agency) \(action) undid something: \(h.effects)")
                // The reply is what the adapter accepts (its native schema); the request, with its
                // reason and without its key, is what the native interface documents.
                do {
                    let replyErrors = schemaErrors(try JSONSerialization.jsonObject(with: h.reply ?? Data()), try nativeSchema(M.agency, action, "reply"))
                    #expect(replyErrors.isEmpty, "\(M.agency) \(action) reply: \(replyErrors)")
                } catch { Issue.record("\(M.agency) \(action): \(error)") }
            }
        }
        check(&hub.registration); check(&hub.seals); check(&hub.tax); check(&hub.social); check(&hub.bank)
    }

    @Test("a name reserved by a request whose answer never reached the hub is released by the keyless undo; the name can be reserved again")
    func timedOutNameReservationIsReleased() throws {
        var dept = Hub().registration
        let reserved = dept.receive(nameReservation(f), at: monday)
        let mcblh = try #require(string(reserved.reply, "mcblh"))
        // Another application for the same company is refused while the name is held.
        var again = f
        again.applicationId = "APP-20260302-009999"
        #expect(dept.receive(nameReservation(again), at: minutes(60)).outcome == .rejected(code: "E2005", field: "qymc"))
        let request = try withoutKey(BusinessRegistration.self, BusinessRegistration.NameRelease(mcblh: "", cxyy: "一件事未办结，撤销名称保留"),
                                     key: "mcblh", saga: saga(f), step: "name-reservation")
        let undo = dept.receive(request, at: minutes(90))
        #expect(undo.outcome == .completed)
        #expect(undo.effects.map(\.kind) == ["name-released"] && undo.effects.first?.key == mcblh)
        // Repeating the same undo request answers from the record; nothing more happens.
        let repeated = dept.receive(request, at: minutes(95))
        #expect(repeated.replayed && repeated.effects.isEmpty)
        var third = f
        third.applicationId = "APP-20260302-009998"
        #expect(dept.receive(nameReservation(third), at: minutes(120)).outcome == .completed)
    }

    @Test("nested and data-held keys: a bank account and seals found by saga and step")
    func nestedAndDataKeys() throws {
        var hub = Hub()
        let (_, _, registered) = try registeredSample()
        let opened = hub.bank.receive(accountOpening(f, uscc: registered), at: monday)
        #expect(opened.outcome == .completed)
        let close = hub.bank.receive(keyless(Bank.self, action: "acmt.019", saga: saga(f), step: "bank-account"), at: minutes(30))
        #expect(close.outcome == .completed && close.effects.map(\.kind) == ["account-closed"])
        let engraved = hub.seals.receive(engraving(f, uscc: registered), at: monday)
        #expect(engraved.outcome == .completed)
        let cancel = hub.seals.receive(try withoutKey(SealEngraving.self, SealEngraving.Cancel(USCC: "", REASON: "一件事未办结，缴销印章"),
                                                      key: "USCC", saga: saga(f), step: "seal-engraving"), at: minutes(30))
        #expect(cancel.outcome == .completed)
        #expect(Set(cancel.effects.map(\.kind)) == ["seal-cancelled"] && cancel.effects.count == engraved.effects.count)
    }
}

/// 容缺 (issue 10, kind 6): the department names what it still needs, in a field the adapter reads.
@Suite struct NamedMaterialTests {
    @Test("an E3101 reply lists the missing material types in qbcl and conforms to the native reply schema")
    func e3101NamesTheMaterials() throws {
        var (dept, _, uscc) = try registeredSample()
        let h = dept.receive(permitApplication(sampleForm, uscc: uscc, xklx: "SPJY",
                                               clqd: [.init(cllx: "lease-contract", sftj: true), .init(cllx: "floor-plan", sftj: false)]), at: monday)
        #expect(h.outcome == .rejected(code: "E3101", field: "clqd"))
        #expect(json(h.reply)["qbcl"] as? [String] == ["premises-layout"])
        let errors = schemaErrors(try JSONSerialization.jsonObject(with: try #require(h.reply)), try nativeSchema(.businessRegistration, "XKSQ", "reply"))
        #expect(errors.isEmpty, "\(errors)")
    }
}

@Suite struct WithdrawnStepTests {
    @Test("a forward request that arrives after its step was undone (a dead letter replayed late) does not act")
    func forwardAfterUndoIsRefused() throws {
        var dept = Hub().registration
        let f = sampleForm
        // The undo comes first: nothing on record, nothing undone.
        let undo = dept.receive(BusinessRegistration.request(BusinessRegistration.NameRelease(mcblh: "330106MC2026999999", cxyy: "一件事未办结"),
                                                             requestId: "\(saga(f))/name-reservation/undo", sagaId: saga(f), step: "name-reservation"), at: monday)
        #expect(undo.outcome == .completed && undo.effects.isEmpty)
        // Then the reservation itself: refused, nothing reserved; the same request again answers the same.
        let late = dept.receive(nameReservation(f), at: minutes(10))
        #expect(late.outcome == .rejected(code: BusinessRegistration.conflictCode, field: nil), "\(late.outcome)")
        #expect(late.effects.isEmpty && dept.ledger.isEmpty)
        #expect(dept.receive(nameReservation(f), at: minutes(20)).replayed)
        // Another saga's step is not affected.
        var other = f
        other.applicationId = "APP-20260302-009997"
        #expect(dept.receive(nameReservation(other), at: minutes(30)).outcome == .completed)
    }
}
