import Foundation
import Testing
@testable import Departments

typealias Registration = BusinessRegistration

/// Business registration with the sample form's name reserved and the enterprise registered.
func registeredSample() throws -> (dept: RunningDepartment<Registration>, mcblh: String, uscc: String) {
    var dept = Hub().registration
    let mcblh = try #require(string(dept.receive(nameReservation(sampleForm), at: monday).reply, "mcblh"))
    let uscc = try #require(string(dept.receive(establishment(sampleForm, reservation: mcblh), at: monday).reply, "tyshxydm"))
    return (dept, mcblh, uscc)
}

/// The sample form's materials plus the premises layout that SPJY and GGWS need.
let materialsWithLayout = materialList(sampleForm) + [Registration.Material(cllx: "premises-layout", sftj: true)]

@Suite struct MaterialTests {
    let f = sampleForm

    @Test func establishmentWaitsForMissingMaterials() throws {
        var dept = Hub().registration
        let mcblh = try #require(string(dept.receive(nameReservation(f), at: monday).reply, "mcblh"))
        var notSubmitted = materialList(f)
        notSubmitted[1].sftj = false
        let first = dept.receive(establishment(f, reservation: mcblh, clqd: notSubmitted), at: monday)
        #expect(first.outcome == .rejected(code: "E3101", field: "clqd[1].sftj"))
        #expect(string(first.reply, "jgms")?.contains("lease-contract") == true)
        let absent = dept.receive(establishment(f, reservation: mcblh, clqd: [.init(cllx: "articles-of-association", sftj: true)], attempt: 2), at: monday)
        #expect(absent.outcome == .rejected(code: "E3101", field: "clqd"))
        #expect(string(absent.reply, "jgms")?.contains("lease-contract, id-copy-legal-representative") == true)
        #expect(dept.ledger.map(\.kind) == ["name-reserved"])
        // Nothing was used up: the supplemented request registers the enterprise.
        #expect(dept.receive(establishment(f, reservation: mcblh, clqd: materialList(f), attempt: 3), at: monday).outcome == .completed)
    }

    @Test func otherRejectionsComeBeforeMaterials() throws {
        var dept = Hub().registration
        let mcblh = try #require(string(dept.receive(nameReservation(f), at: monday).reply, "mcblh"))
        var bad = f
        bad.legalRepresentative.idNumber = "110105194912310021"
        let h = dept.receive(establishment(bad, reservation: mcblh, clqd: [.init(cllx: "lease-contract", sftj: false)]), at: monday)
        #expect(h.outcome == .rejected(code: "E3004", field: "fddbr.zjhm"))
    }
}

@Suite struct PermitTests {
    let f = sampleForm

    @Test func permitNumbersAndValidity() throws {
        var (dept, _, uscc) = try registeredSample()
        let food = dept.receive(permitApplication(f, uscc: uscc, xklx: "SPJY", clqd: materialsWithLayout), at: monday)
        #expect(food.outcome == .completed)
        #expect(string(food.reply, "xkzbh") == "JY23301060000001")
        #expect(string(food.reply, "xklx") == "SPJY")
        #expect(string(food.reply, "fzrq") == "2026-03-02")
        #expect(string(food.reply, "yxqz") == "2031-03-01")
        let filing = dept.receive(permitApplication(f, uscc: uscc, xklx: "YBBA", clqd: materialList(f)), at: monday)
        #expect(string(filing.reply, "xkzbh") == "YB33010626000001")
        #expect(json(filing.reply)["yxqz"] == nil)
        let hygiene = dept.receive(permitApplication(f, uscc: uscc, xklx: "GGWS"), at: monday) // no clqd: no material check
        #expect(string(hygiene.reply, "xkzbh") == "卫公证字〔2026〕第330106000001号")
        #expect(string(hygiene.reply, "yxqz") == "2030-03-01")
        let issued = dept.ledger.filter { $0.kind == "permit-issued" }
        #expect(issued.map { $0.data["xklx"] } == ["SPJY", "YBBA", "GGWS"])
        #expect(issued.allSatisfy { $0.data["tyshxydm"] == uscc })
        #expect(issued.map(\.key) == ["JY23301060000001", "YB33010626000001", "卫公证字〔2026〕第330106000001号"])
    }

    @Test func rejectionsNameTheirField() throws {
        var (dept, _, uscc) = try registeredSample()
        var renamed = f
        renamed.company.proposedName = "杭州别名茶饮有限公司"
        let cases: [(Data, String, String)] = [
            (permitApplication(f, uscc: USCC.generate(region: "330106", sequence: 5), xklx: "SPJY"), "E5001", "tyshxydm"),
            (permitApplication(renamed, uscc: uscc, xklx: "SPJY", attempt: 2), "E5002", "qymc"),
            (permitApplication(f, uscc: uscc, xklx: "JYXK"), "E5003", "xklx"),
            (permitApplication(f, uscc: uscc, xklx: "SPJY", clqd: materialList(f), attempt: 3), "E3101", "clqd"),
            (permitApplication(f, uscc: uscc, xklx: "GGWS", clqd: [.init(cllx: "lease-contract", sftj: false), .init(cllx: "premises-layout", sftj: true)]),
             "E3101", "clqd[0].sftj"),
        ]
        for (request, code, field) in cases {
            let h = dept.receive(request, at: monday)
            #expect(h.outcome == .rejected(code: code, field: field))
            #expect(string(h.reply, "cwzd") == field)
        }
        let missing = dept.receive(permitApplication(f, uscc: uscc, xklx: "SPJY", clqd: materialList(f), attempt: 4), at: monday)
        #expect(string(missing.reply, "jgms")?.contains("premises-layout") == true)
        #expect(!dept.ledger.contains { $0.kind == "permit-issued" })
        // A YBBA filing needs no premises layout; a second one while the first is active is refused.
        #expect(dept.receive(permitApplication(f, uscc: uscc, xklx: "YBBA", clqd: materialList(f)), at: monday).outcome == .completed)
        let twice = dept.receive(permitApplication(f, uscc: uscc, xklx: "YBBA", attempt: 2), at: monday)
        #expect(twice.outcome == .rejected(code: "E5004", field: "xklx"))
    }

    @Test func revokedPermitCanBeAppliedForAgain() throws {
        var (dept, _, uscc) = try registeredSample()
        let xkzbh = try #require(string(dept.receive(permitApplication(f, uscc: uscc, xklx: "YBBA"), at: monday).reply, "xkzbh"))
        let revoked = dept.receive(undo(Registration.self, Registration.PermitRevocation(xkzbh: xkzbh, cxyy: "saga compensation"), id: "x1"), at: days(1))
        #expect(string(revoked.reply, "cxrq") == "2026-03-03")
        #expect(revoked.effects.map(\.kind) == ["permit-revoked"])
        #expect(revoked.effects.first?.data == ["xklx": "YBBA", "tyshxydm": uscc, "cxyy": "saga compensation"])
        let again = dept.receive(undo(Registration.self, Registration.PermitRevocation(xkzbh: xkzbh, cxyy: "again"), id: "x2"), at: days(2))
        #expect(again.outcome == .completed && again.effects.isEmpty)
        #expect(string(again.reply, "cxrq") == "2026-03-03") // the first date
        let renewed = dept.receive(permitApplication(f, uscc: uscc, xklx: "YBBA", attempt: 2), at: days(2))
        #expect(renewed.outcome == .completed)
        #expect(string(renewed.reply, "xkzbh") == "YB33010626000002")
    }
}

@Suite struct CompensationTests {
    let f = sampleForm

    @Test func nameReleaseFreesTheName() throws {
        var dept = Hub().registration
        let mcblh = try #require(string(dept.receive(nameReservation(f), at: monday).reply, "mcblh"))
        let first = dept.receive(undo(Registration.self, Registration.NameRelease(mcblh: mcblh, cxyy: "saga compensation"), id: "m1"), at: minutes(10))
        #expect(first.outcome == .completed)
        #expect(string(first.reply, "cxrq") == "2026-03-02")
        #expect(first.effects.map(\.kind) == ["name-released"])
        #expect(first.effects.first?.key == mcblh)
        let again = dept.receive(undo(Registration.self, Registration.NameRelease(mcblh: mcblh, cxyy: "again"), id: "m2"), at: days(1))
        #expect(again.outcome == .completed && again.effects.isEmpty)
        #expect(string(again.reply, "cxrq") == "2026-03-02")
        // The name is free for another applicant, and the released reservation registers nothing.
        var other = f
        other.applicationId = "APP-2"
        #expect(dept.receive(nameReservation(other), at: days(1)).outcome == .completed)
        #expect(dept.receive(establishment(f, reservation: mcblh), at: days(1)).outcome == .rejected(code: "E3001", field: "mcblh"))
    }

    @Test func reservationInUseIsNotReleased() throws {
        var (dept, mcblh, _) = try registeredSample()
        let h = dept.receive(undo(Registration.self, Registration.NameRelease(mcblh: mcblh, cxyy: "x"), id: "m1"), at: monday)
        #expect(h.outcome == .rejected(code: "E3006", field: "mcblh"))
        #expect(string(h.reply, "cwzd") == "mcblh")
        #expect(!dept.ledger.contains { $0.kind == "name-released" })
    }

    /// A late release must not free a name that, after the reservation expired, another applicant holds.
    @Test func lateReleaseLeavesTheNewHolder() throws {
        let sim = DepartmentSimulator(model: Registration(reference: reference, reservationDays: 30), preset: .noFaults)
        var dept = RunningDepartment(sim)
        let mcblh = try #require(string(dept.receive(nameReservation(f), at: monday).reply, "mcblh"))
        var second = f, third = f
        second.applicationId = "APP-2"
        third.applicationId = "APP-3"
        #expect(dept.receive(nameReservation(second), at: days(31)).outcome == .completed)
        #expect(dept.receive(undo(Registration.self, Registration.NameRelease(mcblh: mcblh, cxyy: "x"), id: "m1"), at: days(32)).effects.count == 1)
        #expect(dept.receive(nameReservation(third), at: days(32)).outcome == .rejected(code: "E2005", field: "qymc"))
    }

    @Test func deregistrationReleasesTheNameForGood() throws {
        var (dept, mcblh, uscc) = try registeredSample()
        let first = dept.receive(undo(Registration.self, Registration.Deregistration(tyshxydm: uscc, zxyy: "saga compensation"), id: "z1"), at: days(1))
        #expect(string(first.reply, "zxrq") == "2026-03-03")
        #expect(first.effects.map(\.kind) == ["enterprise-deregistered", "name-released"])
        #expect(first.effects.map(\.key) == [uscc, mcblh])
        // The saga's next compensation, MCCX, finds nothing left to undo.
        let release = dept.receive(undo(Registration.self, Registration.NameRelease(mcblh: mcblh, cxyy: "x"), id: "m1"), at: days(1))
        #expect(release.outcome == .completed && release.effects.isEmpty)
        let again = dept.receive(undo(Registration.self, Registration.Deregistration(tyshxydm: uscc, zxyy: "x"), id: "z2"), at: days(2))
        #expect(again.outcome == .completed && again.effects.isEmpty)
        #expect(string(again.reply, "zxrq") == "2026-03-03")
        #expect(dept.receive(permitApplication(f, uscc: uscc, xklx: "YBBA"), at: days(2)).outcome == .rejected(code: "E5001", field: "tyshxydm"))
        var other = f
        other.applicationId = "APP-2"
        #expect(dept.receive(nameReservation(other), at: days(2)).outcome == .completed)
    }

    @Test func taxCompensations() throws {
        var tax = Hub().tax
        let uscc = USCC.generate(region: "330106", sequence: 7)
        let djxh = try #require(string(tax.receive(taxRegistration(f, uscc: uscc), at: monday).reply, "djxh"))
        _ = tax.receive(invoiceQuota(f, uscc: uscc, djxh: djxh), at: monday)
        let issue = { (id: String) in Tax.request(Tax.UKeyIssuance(nsrsbh: uscc, djxh: djxh), requestId: id, sagaId: "s", step: "ukey") }
        let sbbh = try #require(string(tax.receive(issue("k1"), at: monday).reply, "sbbh"))
        let revoked = tax.receive(undo(Tax.self, Tax.UKeyRevocation(sbbh: sbbh, zxyy: "saga compensation"), id: "r1"), at: days(1))
        #expect(string(revoked.reply, "zxrq") == "2026-03-03")
        #expect(revoked.effects.map(\.kind) == ["tax-ukey-revoked"])
        #expect(revoked.effects.first?.data["fpzldm"] == "026")
        // Invoices are cancelled with the key: a new key needs 票种核定 again.
        #expect(tax.receive(issue("k2"), at: days(1)).outcome == .rejected(code: "2007", field: "nsrsbh"))
        #expect(tax.receive(invoiceQuota(f, uscc: uscc, djxh: djxh, attempt: 2), at: days(1)).outcome == .completed)
        #expect(try #require(string(tax.receive(issue("k3"), at: days(1)).reply, "sbbh")) != sbbh)

        let deregistered = tax.receive(undo(Tax.self, Tax.Deregistration(nsrsbh: uscc, zxyy: "saga compensation"), id: "d1"), at: days(2))
        #expect(string(deregistered.reply, "zxrq") == "2026-03-04")
        #expect(deregistered.effects.map(\.kind) == ["taxpayer-deregistered"])
        #expect(tax.receive(invoiceQuota(f, uscc: uscc, djxh: djxh, attempt: 3), at: days(2)).outcome == .rejected(code: "2003", field: "nsrsbh"))
        let again = tax.receive(undo(Tax.self, Tax.Deregistration(nsrsbh: uscc, zxyy: "x"), id: "d2"), at: days(3))
        #expect(again.effects.isEmpty && string(again.reply, "zxrq") == "2026-03-04")
    }

    @Test func employerDeregistration() throws {
        var social = Hub().social
        let uscc = USCC.generate(region: "330106", sequence: 7)
        let aab001 = try #require(string(social.receive(employerRegistration(f, uscc: uscc), at: monday).reply, "aab001"))
        let ended = social.receive(undo(SocialSecurity.self, SocialSecurity.EmployerDeregistration(aab001: aab001, zxyy: "saga compensation"), id: "e1"), at: days(1))
        #expect(string(ended.reply, "errcode") == "0")
        #expect(string(ended.reply, "aae031") == "20260303")
        #expect(ended.effects.map(\.kind) == ["employer-deregistered"])
        #expect(ended.effects.first?.data["aab998"] == uscc)
        let again = social.receive(undo(SocialSecurity.self, SocialSecurity.EmployerDeregistration(aab001: aab001, zxyy: "x"), id: "e2"), at: days(2))
        #expect(again.effects.isEmpty && string(again.reply, "aae031") == "20260303")
        // The employer may register again, under a new 单位编号.
        let register = SocialSecurity.request(SocialSecurity.EmployerRegistration(aab998: uscc, aab004: "x", aab301: "330106", aab013: "x", aae006: "x", aae140: ["110"], yjcbrs: 1),
                                              requestId: "ss2", sagaId: "s", step: "ss")
        let renewed = social.receive(register, at: days(2))
        #expect(renewed.outcome == .completed)
        #expect(string(renewed.reply, "aab001") != aab001)
    }

    @Test func accountClosingFindsTheAccountByNumber() throws {
        var bank = Hub().bank
        let uscc = USCC.generate(region: "330106", sequence: 7)
        let number = try #require((json(bank.receive(accountOpening(f, uscc: uscc), at: monday).reply)["Acct"] as? [String: Any])?["Id"] as? String)
        let wrongHolder = Bank.request(Bank.AccountClosing(Acct: .init(Id: number), USCC: USCC.generate(region: "330106", sequence: 8)), requestId: "c1", sagaId: "s", step: "undo")
        #expect(bank.receive(wrongHolder, at: monday).outcome == .rejected(code: "AC01", field: "Acct.Id"))
        let closing = Bank.request(Bank.AccountClosing(Acct: .init(Id: number)), requestId: "c2", sagaId: "s", step: "undo")
        #expect(json(closing)["USCC"] == nil)
        let closed = bank.receive(closing, at: monday)
        #expect(closed.outcome == .completed)
        #expect(closed.effects.first?.data["USCC"] == uscc)
    }

    /// Every new action, replayed with the same request id: the same bytes, no second effect.
    /// (Each entry works on its own copy of the department as it was when listed.)
    @Test func compensationsReplayWithoutASecondEffect() throws {
        var hub = Hub()
        let (registration, _, uscc) = try registeredSample()
        hub.registration = registration
        var other = f
        other.applicationId = "APP-2"
        other.company.tradeName = "云杉"
        other.company.proposedName = "杭州云杉茶饮有限公司"
        let otherReservation = try #require(string(hub.registration.receive(nameReservation(other), at: monday).reply, "mcblh"))
        let xkzbh = try #require(string(hub.registration.receive(permitApplication(f, uscc: uscc, xklx: "YBBA"), at: monday).reply, "xkzbh"))
        let djxh = try #require(string(hub.tax.receive(taxRegistration(f, uscc: uscc), at: monday).reply, "djxh"))
        _ = hub.tax.receive(invoiceQuota(f, uscc: uscc, djxh: djxh), at: monday)
        let sbbh = try #require(string(hub.tax.receive(ukey(f, uscc: uscc, djxh: djxh), at: monday).reply, "sbbh"))
        let aab001 = try #require(string(hub.social.receive(employerRegistration(f, uscc: uscc), at: monday).reply, "aab001"))

        var endpoints: [(any DepartmentEndpoint, Data, [String])] = [
            (hub.registration, permitApplication(f, uscc: uscc, xklx: "GGWS", clqd: materialsWithLayout), ["permit-issued"]),
            (hub.registration, undo(Registration.self, Registration.PermitRevocation(xkzbh: xkzbh, cxyy: "c"), id: "1"), ["permit-revoked"]),
            (hub.registration, undo(Registration.self, Registration.NameRelease(mcblh: otherReservation, cxyy: "c"), id: "2"), ["name-released"]),
            (hub.registration, undo(Registration.self, Registration.Deregistration(tyshxydm: uscc, zxyy: "c"), id: "3"), ["enterprise-deregistered", "name-released"]),
            (hub.tax, undo(Tax.self, Tax.UKeyRevocation(sbbh: sbbh, zxyy: "c"), id: "4"), ["tax-ukey-revoked"]),
            (hub.tax, undo(Tax.self, Tax.Deregistration(nsrsbh: uscc, zxyy: "c"), id: "5"), ["taxpayer-deregistered"]),
            (hub.social, undo(SocialSecurity.self, SocialSecurity.EmployerDeregistration(aab001: aab001, zxyy: "c"), id: "6"), ["employer-deregistered"]),
        ]
        for i in endpoints.indices {
            let (request, kinds) = (endpoints[i].1, endpoints[i].2)
            let before = endpoints[i].0.ledger.count
            let first = endpoints[i].0.receive(request, at: days(1))
            let second = endpoints[i].0.receive(request, at: days(2))
            #expect(first.effects.map(\.kind) == kinds, "\(kinds)")
            #expect(second.replayed && second.reply == first.reply, "\(kinds)")
            #expect(second.effects.isEmpty)
            #expect(endpoints[i].0.ledger.count == before + kinds.count, "\(kinds)")
        }
    }

    /// Compensating what a department never did succeeds and changes nothing.
    @Test func compensatingTheUnknownSucceedsWithNoEffect() {
        let hub = Hub()
        let stranger = USCC.generate(region: "330106", sequence: 99)
        let cases: [(any DepartmentEndpoint, Data, String, String)] = [
            (hub.registration, undo(Registration.self, Registration.NameRelease(mcblh: "330106MC2026999999", cxyy: "c"), id: "1"), "cxrq", "2026-03-02"),
            (hub.registration, undo(Registration.self, Registration.Deregistration(tyshxydm: stranger, zxyy: "c"), id: "2"), "zxrq", "2026-03-02"),
            (hub.registration, undo(Registration.self, Registration.PermitRevocation(xkzbh: "JY23301069999999", cxyy: "c"), id: "3"), "cxrq", "2026-03-02"),
            (hub.tax, undo(Tax.self, Tax.Deregistration(nsrsbh: stranger, zxyy: "c"), id: "4"), "zxrq", "2026-03-02"),
            (hub.tax, undo(Tax.self, Tax.UKeyRevocation(sbbh: "661299999999", zxyy: "c"), id: "5"), "zxrq", "2026-03-02"),
            (hub.social, undo(SocialSecurity.self, SocialSecurity.EmployerDeregistration(aab001: "330106999999", zxyy: "c"), id: "6"), "aae031", "20260302"),
        ]
        for (endpoint, request, dateField, date) in cases {
            var dept = endpoint
            let h = dept.receive(request, at: monday)
            #expect(h.outcome == .completed, "\(h.meta?.action ?? "")")
            #expect(h.effects.isEmpty && dept.ledger.isEmpty)
            #expect(string(h.reply, dateField) == date)
        }
    }
}

@Suite struct FactoryTests {
    @Test func makeDepartmentBuildsEachAgencysSimulator() throws {
        #expect(DepartmentProfile.Preset(rawValue: "no-faults") == .noFaults)
        let hub = Hub()
        let uscc = USCC.generate(region: "330106", sequence: 7)
        let built: [Agency: (any DepartmentEndpoint, Data)] = [
            .businessRegistration: (hub.registration, nameReservation(sampleForm)), .sealEngraving: (hub.seals, engraving(sampleForm, uscc: uscc)),
            .tax: (hub.tax, taxRegistration(sampleForm, uscc: uscc)), .socialSecurity: (hub.social, employerRegistration(sampleForm, uscc: uscc)),
            .bank: (hub.bank, accountOpening(sampleForm, uscc: uscc)),
        ]
        for agency in Agency.builtIn {
            var (known, request) = try #require(built[agency])
            var made = makeDepartment(agency, reference: reference, preset: .noFaults, seed: 2026)!
            #expect(made.agency == agency)
            let a = made.receive(request, at: monday), b = known.receive(request, at: monday)
            #expect(a.outcome == .completed, "\(agency)")
            #expect(a.reply == b.reply && a.latencyMinutes == b.latencyMinutes, "\(agency)")
        }
        let custom = makeDepartment(.businessRegistration, reference: reference, preset: .flaky, seed: 7, reservationDays: 10)!
        let running = try #require(custom as? RunningDepartment<Registration>)
        #expect(running.simulator.profile == .preset(.flaky, latency: Registration.typicalLatency, seed: 7))
        #expect(running.simulator.model.reservationDays == 10)
    }
}
