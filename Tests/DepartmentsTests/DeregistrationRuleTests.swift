import Foundation
import Testing
@testable import Departments

/// The rules behind 企业注销 and 免申即享 in the simulated departments: 清税 is refused while tax
/// is owed, an account with money on it is not closed, a subsidy is matched and paid once.
@Suite struct DeregistrationRuleTests {
    let f = sampleForm

    @Test func clearanceIsRefusedWithArrearsUntilAPaymentReceiptComes() throws {
        var tax = Hub().tax
        let uscc = USCC.generate(region: "330106", sequence: 7)
        _ = tax.receive(taxRegistration(f, uscc: uscc), at: monday)
        tax.amendBooks { $0.taxpayers[uscc]?.arrears = 1_200 }
        let refused = tax.receive(Tax.request(Tax.Deregistration(nsrsbh: uscc, zxyy: "企业注销"), requestId: "q1", sagaId: "d", step: "tax-clearance"), at: days(1))
        #expect(refused.outcome == .rejected(code: Tax.arrearsCode, field: "nsrsbh"))
        #expect(string(refused.reply, "fhxx")?.contains("1200") == true)
        #expect(refused.effects.isEmpty)
        let cleared = tax.receive(Tax.request(Tax.Deregistration(nsrsbh: uscc, zxyy: "企业注销", jkpzh: "JK-1"), requestId: "q2", sagaId: "d", step: "tax-clearance"), at: days(1))
        #expect(cleared.outcome == .completed)
        #expect(cleared.effects.map(\.kind) == ["arrears-paid", "taxpayer-deregistered"])
        #expect(tax.state.books.taxpayers[uscc]?.arrears == 0)
    }

    @Test func accountWithABalanceIsClosedOnlyWithATransferInstruction() throws {
        var bank = Hub().bank
        let uscc = USCC.generate(region: "330106", sequence: 7)
        let number = try #require((json(bank.receive(accountOpening(f, uscc: uscc), at: monday).reply)["Acct"] as? [String: Any])?["Id"] as? String)
        bank.amendBooks { $0.accounts[number]?.balance = 123_456 }
        let refused = bank.receive(Bank.request(Bank.AccountClosing(Acct: .init(Id: number), USCC: uscc), requestId: "c1", sagaId: "d", step: "close"), at: days(1))
        #expect(refused.outcome == .rejected(code: Bank.balanceNotZeroCode, field: "XfrAcct"))
        #expect(bank.state.books.accounts[number]?.closedOn == nil)
        let closed = bank.receive(Bank.request(Bank.AccountClosing(Acct: .init(Id: number), USCC: uscc, XfrAcct: "6222000011112222"), requestId: "c2", sagaId: "d", step: "close"), at: days(1))
        #expect(closed.outcome == .completed)
        #expect(closed.effects.map(\.kind) == ["balance-transferred", "account-closed"])
        #expect(closed.effects.first?.data["fen"] == "123456")
    }

    @Test func startupSubsidyIsMatchedPaidAndNotifiedOnce() throws {
        var social = Hub().social
        let uscc = USCC.generate(region: "330106", sequence: 7)
        let match = { (id: String) in SocialSecurity.request(SocialSecurity.SubsidyMatch(aab998: uscc), requestId: id, sagaId: "b", step: "eligibility-match") }
        #expect(social.receive(match("m0"), at: monday).outcome == .rejected(code: "4201", field: "aab998"))  // not insured yet
        _ = social.receive(employerRegistration(f, uscc: uscc), at: monday)
        let matched = social.receive(match("m1"), at: monday)
        let zgbh = try #require(string(matched.reply, "zgbh"))
        #expect(json(matched.reply)["btje"] as? Int == SocialSecurity.startupSubsidyYuan)
        let pay = { (id: String) in SocialSecurity.request(SocialSecurity.SubsidyPayment(aab998: uscc, zgbh: zgbh, btje: 5_000), requestId: id, sagaId: "b", step: "payment") }
        let paid = social.receive(pay("p1"), at: monday)
        let ffbh = try #require(string(paid.reply, "ffbh"))
        #expect(paid.effects.map(\.kind) == ["subsidy-paid"])
        #expect(social.receive(pay("p2"), at: monday).outcome == .rejected(code: "4202", field: "zgbh"))  // never twice
        #expect(social.receive(match("m2"), at: monday).outcome == .rejected(code: "4202", field: "aab998"))
        let told = social.receive(SocialSecurity.request(SocialSecurity.SubsidyNotice(aab998: uscc, zgbh: zgbh, ffbh: ffbh), requestId: "n1", sagaId: "b", step: "notification"), at: monday)
        #expect(told.outcome == .completed)
    }
}
