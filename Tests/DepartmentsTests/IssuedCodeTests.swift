import Foundation
import Testing
@testable import Departments

/// A USCC the registration authority issued is what the enterprise has: the departments that
/// receive it from the hub (registration output, `licences` topic) do not refuse it for its GB
/// 32100 check character; the mismatch is recorded in the ledger. Codes typed by applicants are
/// checked strictly at the front desk.
@Suite struct IssuedCodeTests {
    /// A Xiamen enterprise registered before 2016; its code does not follow the check character.
    static let legacy = "91350203M0001QKT19"

    func expectRecorded(_ h: Handling, _ kind: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(h.outcome == .completed, "\(String(decoding: h.reply ?? Data(), as: UTF8.self))", sourceLocation: sourceLocation)
        let effect = h.effects.first { $0.kind == kind }
        #expect(effect?.data["usccCheck"]?.contains("check digit") == true, "\(h.effects)", sourceLocation: sourceLocation)
    }

    @Test func sealTaxSocialSecurityAndBankAcceptAnIssuedCodeAndRecordTheMismatch() throws {
        var hub = Hub()
        expectRecorded(hub.seals.receive(engraving(sampleForm, uscc: Self.legacy), at: monday), "seal-engraved")
        expectRecorded(hub.tax.receive(taxRegistration(sampleForm, uscc: Self.legacy), at: monday), "taxpayer-registered")
        expectRecorded(hub.social.receive(employerRegistration(sampleForm, uscc: Self.legacy), at: monday), "employer-registered")
        let opened = hub.bank.receive(accountOpening(sampleForm, uscc: Self.legacy), at: monday)
        expectRecorded(opened, "account-opened")
        let account = try #require((json(opened.reply)["Acct"] as? [String: Any])?["Id"] as? String)
        let onboarding = Bank.request(Bank.MerchantOnboarding(Mrchnt: .init(Nm: "厦门老字号", USCC: Self.legacy, Adr: "厦门市思明区"),
                                                              SttlmAcct: .init(Id: account)),
                                      requestId: "m1", sagaId: "s", step: "merchant")
        expectRecorded(hub.bank.receive(onboarding, at: monday), "merchant-onboarded")
        // A code that follows the standard leaves no note.
        let good = USCC.generate(region: "330106", sequence: 99)
        #expect(hub.seals.receive(engraving(sampleForm, uscc: good, attempt: 2), at: monday).effects.allSatisfy { $0.data["usccCheck"] == nil })
    }

    @Test func aMalformedCodeIsStillRefused() {
        var hub = Hub()
        let h = hub.seals.receive(engraving(sampleForm, uscc: "91350203M0001QKT1"), at: monday)
        #expect(h.outcome == .rejected(code: "2001", field: "USCC"))
    }

    @Test func aCodeTypedByTheApplicantIsCheckedStrictly() {
        var form = sampleForm
        form.company.uscc = Self.legacy
        let findings = FrontDeskCheck(reference: reference).findings(form, asOf: monday)
        #expect(findings.map(\.code) == ["uscc"])
        #expect(findings.first?.field == "$.company.uscc")
    }
}
