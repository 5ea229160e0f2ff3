import Foundation
import Testing
@testable import Departments

@Suite struct NameRuleTests {
    let rules = NameRules(reference: reference)
    func name(_ full: String, _ trade: String, _ industry: String, _ form: String) -> EnterpriseName {
        EnterpriseName(fullName: full, tradeName: trade, industryWord: industry, organizationForm: form)
    }

    @Test func acceptsWellFormedNames() {
        #expect(rules.violations(of: sampleForm.enterpriseName, region: "330106", entityType: .limitedLiability).isEmpty)
        #expect(rules.violations(of: name("北京市星河科技股份有限公司", "星河", "科技", "股份有限公司"), region: "110105", entityType: .jointStock).isEmpty)
        #expect(rules.violations(of: name("上海青禾美发店", "青禾", "美发", "店"), region: "310104", entityType: .individualBusiness).isEmpty)
    }

    @Test func reportsEachBrokenRule() {
        func rules(_ n: EnterpriseName, _ region: String = "330106", _ type: EntityType = .limitedLiability) -> [NameViolation.Rule] {
            self.rules.violations(of: n, region: region, entityType: type).map(\.rule)
        }
        #expect(rules(name("杭州云栖茶饮有限公司", "云栖", "茶饮", "有限公司"), "990101") == [.unknownRegion])
        #expect(rules(name("上海云栖茶饮有限公司", "云栖", "茶饮", "有限公司")) == [.structure])
        #expect(rules(name("杭州云茶饮有限公司", "云", "茶饮", "有限公司")) == [.tradeName])
        #expect(rules(name("杭州AB茶饮有限公司", "AB", "茶饮", "有限公司")) == [.tradeName])
        #expect(rules(name("杭州西湖茶饮有限公司", "西湖", "茶饮", "有限公司")) == [.tradeName])
        #expect(rules(name("杭州云栖有限公司", "云栖", "", "有限公司")) == [.industryWord])
        #expect(rules(name("杭州云栖银行有限公司", "云栖", "银行", "有限公司")) == [.forbiddenWord])
        #expect(rules(name("杭州云栖茶饮股份有限公司", "云栖", "茶饮", "股份有限公司")) == [.organizationForm])
        #expect(rules(name("杭州云栖茶饮店", "云栖", "茶饮", "店"), "330106", .partnership) == [.organizationForm])
    }

    @Test func forbiddenWordsNameTheWord() {
        let v = rules.violations(of: name("杭州最美茶饮有限公司", "最美", "茶饮", "有限公司"), region: "330106", entityType: .limitedLiability)
        #expect(v.count == 1)
        #expect(v.first?.word == "最")
        #expect(v.first?.part == .tradeName)
        #expect(v.first?.message.contains("superlative") == true)
    }

    @Test func forbiddenWordListIsRealistic() {
        let words = Set(reference.forbiddenWords.map(\.word))
        for w in ["中国", "中华", "国家", "全国", "国际", "第一", "最", "特供", "央企"] { #expect(words.contains(w), "\(w)") }
        #expect(Set(reference.forbiddenWords.map(\.category)).count >= 5)
    }

    @Test func regionsAreRealDivisionCodes() {
        #expect(reference.regions.count >= 40)
        #expect(reference.regions.values.allSatisfy { AdministrativeDivision.isPlausible($0.code) && !$0.namePrefixes.isEmpty })
        #expect(reference.regions["330106"]?.district == "西湖区")
        #expect(reference.regions["110105"]?.locality == "北京市朝阳区")
    }

    @Test func uniquenessIgnoresOrganizationFormAndExpires() {
        var registry = NameRegistry()
        let a = name("杭州云栖茶饮有限公司", "云栖", "茶饮", "有限公司")
        let b = name("杭州云栖茶饮有限责任公司", "云栖", "茶饮", "有限责任公司")
        let c = name("杭州云栖科技有限公司", "云栖", "科技", "有限公司")
        registry.reserve(key: a.uniquenessKey(region: "330106"), fullName: a.fullName, reservation: "R1", until: days(60))
        #expect(registry.holder(of: b.uniquenessKey(region: "330106"), at: days(1))?.reservation == "R1")
        #expect(registry.holder(of: c.uniquenessKey(region: "330106"), at: days(1)) == nil)
        #expect(registry.holder(of: a.uniquenessKey(region: "330105"), at: days(1)) == nil)
        #expect(registry.holder(of: a.uniquenessKey(region: "330106"), at: days(61)) == nil)
        registry.markRegistered(key: a.uniquenessKey(region: "330106"))
        #expect(registry.holder(of: a.uniquenessKey(region: "330106"), at: days(400)) != nil)
    }
}

@Suite struct RegistrationRejectionTests {
    let sim = DepartmentSimulator(model: BusinessRegistration(reference: reference, reservationDays: 30), preset: .noFaults)

    func reserved() -> (DepartmentState<BusinessRegistration.Books>, String) {
        let (s, h) = sim.handle(sim.initialState, request: nameReservation(sampleForm), now: monday)
        return (s, string(h.reply, "mcblh")!)
    }

    @Test func expiredReservation() {
        let (s, mcblh) = reserved()
        let (_, h) = sim.handle(s, request: establishment(sampleForm, reservation: mcblh), now: days(31))
        #expect(h.outcome == .rejected(code: "E3002", field: "mcblh"))
        #expect(string(h.reply, "cwzd") == "mcblh")
    }

    @Test func expiredNameCanBeReservedAgain() {
        let (s, _) = reserved()
        var other = sampleForm
        other.applicationId = "APP-20260415-000001"
        let (_, early) = sim.handle(s, request: nameReservation(other), now: days(10))
        #expect(early.outcome == .rejected(code: "E2005", field: "qymc"))
        let (_, late) = sim.handle(s, request: nameReservation(other), now: days(31))
        #expect(late.outcome == .completed)
    }

    @Test func unknownReservationAndBadID() {
        let (s, mcblh) = reserved()
        #expect(sim.handle(s, request: establishment(sampleForm, reservation: "330106MC2026999999"), now: monday).1.outcome
            == .rejected(code: "E3001", field: "mcblh"))
        var bad = sampleForm
        bad.legalRepresentative.idNumber = "110105194912310021"
        let (_, h) = sim.handle(s, request: establishment(bad, reservation: mcblh), now: monday)
        #expect(h.outcome == .rejected(code: "E3004", field: "fddbr.zjhm"))
        #expect(string(h.reply, "jgms")?.contains("expected X, got 1") == true)
    }

    @Test func reservationIsUsedOnce() {
        let (s1, mcblh) = reserved()
        let (s2, first) = sim.handle(s1, request: establishment(sampleForm, reservation: mcblh), now: monday)
        #expect(first.outcome == .completed)
        var again = sampleForm
        again.applicationId = "APP-20260302-000099"
        #expect(sim.handle(s2, request: establishment(again, reservation: mcblh), now: monday).1.outcome == .rejected(code: "E3006", field: "mcblh"))
    }

    @Test func formatErrorsNameTheField() throws {
        var message = try #require(JSONSerialization.jsonObject(with: nameReservation(sampleForm)) as? [String: Any])
        message.removeValue(forKey: "zh")
        let (_, missing) = sim.handle(sim.initialState, request: try JSONSerialization.data(withJSONObject: message), now: monday)
        #expect(missing.outcome == .rejected(code: "E1001", field: "zh"))
        message["zh"] = 42
        let (_, mistyped) = sim.handle(sim.initialState, request: try JSONSerialization.data(withJSONObject: message), now: monday)
        #expect(mistyped.outcome == .rejected(code: "E1001", field: "zh"))
        message["ywlx"] = "BGDJ" // 变更登记: not offered
        let (_, unknown) = sim.handle(sim.initialState, request: try JSONSerialization.data(withJSONObject: message), now: monday)
        #expect(unknown.outcome == .rejected(code: "E1002", field: nil))
    }
}

@Suite struct DepartmentRejectionTests {
    let f = sampleForm
    let uscc = USCC.generate(region: "330106", sequence: 7)

    @Test func seals() {
        var seals = Hub().seals
        #expect(seals.receive(engraving(f, uscc: "91990106MA00000000"), at: monday).outcome == .rejected(code: "2001", field: "USCC"))
        #expect(seals.receive(engraving(f, uscc: uscc, attempt: 2), at: monday).outcome == .completed)
        let again = SealEngraving.request(SealEngraving.Engrave(USCC: uscc, UNIT_NAME: f.company.proposedName, REGION_CODE: f.region,
                                                                LEGAL_REP_NAME: nil, SEALS: ["04", "01"]), requestId: "r2", sagaId: "s", step: "seals")
        #expect(seals.receive(again, at: monday).outcome == .rejected(code: "2003", field: "SEALS[1]"))
        let noName = SealEngraving.request(SealEngraving.Engrave(USCC: USCC.generate(region: "330106", sequence: 8), UNIT_NAME: "x", REGION_CODE: "330106",
                                                                 LEGAL_REP_NAME: nil, SEALS: ["05"]), requestId: "r3", sagaId: "s", step: "seals")
        #expect(seals.receive(noName, at: monday).outcome == .rejected(code: "2004", field: "LEGAL_REP_NAME"))
        let unknown = SealEngraving.request(SealEngraving.Engrave(USCC: uscc, UNIT_NAME: "x", REGION_CODE: "330106", LEGAL_REP_NAME: nil, SEALS: ["09"]),
                                            requestId: "r4", sagaId: "s", step: "seals")
        #expect(seals.receive(unknown, at: monday).outcome == .rejected(code: "2002", field: "SEALS[0]"))
    }

    @Test func sealCancellationIsTheCompensation() throws {
        var seals = Hub().seals
        _ = seals.receive(engraving(f, uscc: uscc), at: monday)
        let cancel = { (id: String) in SealEngraving.request(SealEngraving.Cancel(USCC: self.uscc, REASON: "saga compensation"), requestId: id, sagaId: "s", step: "seals-undo") }
        let first = seals.receive(cancel("c1"), at: minutes(10))
        #expect((json(first.reply)["CANCELLED"] as? [String])?.count == 4)
        #expect(first.effects.map(\.kind) == Array(repeating: "seal-cancelled", count: 4))
        let second = seals.receive(cancel("c2"), at: minutes(20))
        #expect(second.outcome == .completed)
        #expect((json(second.reply)["CANCELLED"] as? [String]) == [])
        #expect(seals.ledger.filter { $0.kind == "seal-cancelled" }.count == 4)
        // After cancellation the unit may have seals engraved again.
        let fresh = SealEngraving.request(SealEngraving.Engrave(USCC: uscc, UNIT_NAME: f.company.proposedName, REGION_CODE: f.region, LEGAL_REP_NAME: nil, SEALS: ["01"]),
                                          requestId: "e2", sagaId: "s", step: "seals")
        #expect(seals.receive(fresh, at: minutes(30)).outcome == .completed)
    }

    @Test func tax() throws {
        var tax = Hub().tax
        #expect(tax.receive(invoiceQuota(f, uscc: uscc, djxh: "1"), at: monday).outcome == .rejected(code: "2003", field: "nsrsbh"))
        let reg = tax.receive(taxRegistration(f, uscc: uscc), at: monday)
        let djxh = try #require(string(reg.reply, "djxh"))
        let again = Tax.request(Tax.Registration(nsrsbh: uscc, nsrmc: "x", xzqhdm: "330106", hydm: "F5123", djzclx: "173", zzsnsrlx: "2",
                                                 fddbrxm: "张伟", fddbrsfzjhm: "11010519491231002X", scjydz: "x"), requestId: "t2", sagaId: "s", step: "tax")
        #expect(tax.receive(again, at: monday).outcome == .rejected(code: "2002", field: "nsrsbh"))
        #expect(tax.receive(ukey(f, uscc: uscc, djxh: djxh), at: monday).outcome == .rejected(code: "2007", field: "nsrsbh"))
        let tooHigh = Tax.request(Tax.InvoiceQuota(nsrsbh: uscc, djxh: djxh, pzxx: [.init(fpzldm: "82", dzkpxe: 1_000_000)]), requestId: "t3", sagaId: "s", step: "inv")
        #expect(tax.receive(tooHigh, at: monday).outcome == .rejected(code: "2006", field: "pzxx[0].dzkpxe"))
        let wrongDjxh = Tax.request(Tax.InvoiceQuota(nsrsbh: uscc, djxh: "0", pzxx: [.init(fpzldm: "82", dzkpxe: 1_000)]), requestId: "t4", sagaId: "s", step: "inv")
        #expect(tax.receive(wrongDjxh, at: monday).outcome == .rejected(code: "2004", field: "djxh"))
        #expect(tax.receive(invoiceQuota(f, uscc: uscc, djxh: djxh, attempt: 2), at: monday).outcome == .completed)
        // The earlier request id replays its rejection; a new one is decided afresh.
        #expect(tax.receive(ukey(f, uscc: uscc, djxh: djxh), at: monday).replayed)
        let issue = { (id: String) in Tax.request(Tax.UKeyIssuance(nsrsbh: self.uscc, djxh: djxh), requestId: id, sagaId: "s", step: "ukey") }
        #expect(tax.receive(issue("t5"), at: monday).outcome == .completed)
        #expect(tax.receive(issue("t6"), at: monday).outcome == .rejected(code: "2008", field: "nsrsbh"))
    }

    @Test func socialSecurity() {
        var social = Hub().social
        #expect(social.receive(employerRegistration(f, uscc: uscc), at: monday).outcome == .completed)
        let again = SocialSecurity.request(SocialSecurity.EmployerRegistration(aab998: uscc, aab004: "x", aab301: "330106", aab013: "x", aae006: "x", aae140: ["110"], yjcbrs: 1),
                                           requestId: "ss2", sagaId: "s", step: "ss")
        #expect(social.receive(again, at: monday).outcome == .rejected(code: "4102", field: "aab998"))
        let badType = SocialSecurity.request(SocialSecurity.EmployerRegistration(aab998: USCC.generate(region: "330106", sequence: 9), aab004: "x", aab301: "330106",
                                                                                 aab013: "x", aae006: "x", aae140: ["110", "999"], yjcbrs: 1),
                                             requestId: "ss3", sagaId: "s", step: "ss")
        #expect(social.receive(badType, at: monday).outcome == .rejected(code: "4106", field: "aae140[1]"))
    }

    @Test func bankOpensOneBasicAccountAndClosesIt() throws {
        var bank = Hub().bank
        let opened = bank.receive(accountOpening(f, uscc: uscc), at: monday)
        let number = try #require((json(opened.reply)["Acct"] as? [String: Any])?["Id"] as? String)
        var other = f
        other.applicationId = "APP-2"
        other.bank.bankCode = "CMB"
        let second = bank.receive(accountOpening(other, uscc: uscc), at: monday)
        #expect(second.outcome == .rejected(code: "DUPL", field: "Org.USCC"))
        #expect(string(second.reply, "Sts") == "RJCT")
        #expect(string(second.reply, "RsnCd") == "DUPL")
        let close = { (id: String, account: String) in Bank.request(Bank.AccountClosing(Acct: .init(Id: account), USCC: self.uscc), requestId: id, sagaId: "s", step: "bank-undo") }
        // Undoing what never happened is harmless: no such account, nothing closed, success.
        let never = bank.receive(close("c0", "000"), at: monday)
        #expect(never.outcome == .completed && never.effects.isEmpty)
        let closed = bank.receive(close("c1", number), at: days(1))
        #expect((json(closed.reply)["Acct"] as? [String: Any])?["ClsgDt"] as? String == "2026-03-03")
        let again = bank.receive(close("c2", number), at: days(2))
        #expect(again.outcome == .completed)
        #expect((json(again.reply)["Acct"] as? [String: Any])?["ClsgDt"] as? String == "2026-03-03")
        #expect(bank.ledger.map(\.kind) == ["account-opened", "account-closed"])
        // The same request id replays the rejection; a new attempt after closing succeeds.
        #expect(bank.receive(accountOpening(other, uscc: uscc), at: days(3)).replayed)
        #expect(bank.receive(accountOpening(other, uscc: uscc, attempt: 2), at: days(3)).outcome == .completed)
    }

    @Test func bankRejectsBadIdentity() {
        var bank = Hub().bank
        var bad = f
        bad.legalRepresentative.idNumber = "110105194912310021"
        #expect(bank.receive(accountOpening(bad, uscc: uscc), at: monday).outcome == .rejected(code: "BE01", field: "Org.LglRep.IdNb"))
        #expect(bank.receive(accountOpening(f, uscc: "91990106MA00000000", attempt: 2), at: monday).outcome == .rejected(code: "RR05", field: "Org.USCC"))
    }
}
