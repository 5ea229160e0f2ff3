import Foundation
import Testing
@testable import Departments

/// Bank acquiring merchants: mrch.001 onboarding (收单商户入网), mrch.002 offboarding (its compensation).
@Suite struct MerchantTests {
    let uscc = USCC.generate(region: "330106", sequence: 7)

    /// The bank with the sample form's basic account opened for `uscc`; returns its number.
    func bankWithAccount() throws -> (RunningDepartment<Bank>, String) {
        var bank = Hub().bank
        let reply = bank.receive(accountOpening(sampleForm, uscc: uscc), at: monday).reply
        return (bank, try #require((json(reply)["Acct"] as? [String: Any])?["Id"] as? String))
    }

    func onboarding(uscc: String? = nil, name: String = "杭州云杉便利店", account: String, id: String = "m1") -> Data {
        Bank.request(Bank.MerchantOnboarding(Mrchnt: .init(Nm: name, USCC: uscc ?? self.uscc, Adr: "杭州市西湖区文三路 1 号"), SttlmAcct: .init(Id: account)),
                     requestId: id, sagaId: "s", step: "merchant")
    }

    func offboarding(_ merchant: String, id: String) -> Data {
        Bank.request(Bank.MerchantOffboarding(Mrchnt: .init(MrchntId: merchant)), requestId: id, sagaId: "s", step: "undo")
    }

    func merchant(_ h: Handling) -> [String: Any] { json(h.reply)["Mrchnt"] as? [String: Any] ?? [:] }

    /// Request and reply conform to the action's schemas in adapters/bank/native/.
    func expectSchemas(_ request: Data, _ h: Handling, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let action = try #require(h.meta?.action)
        #expect(schemaErrors(try JSONSerialization.jsonObject(with: request), try nativeSchema(.bank, action, "request")).isEmpty, sourceLocation: sourceLocation)
        #expect(schemaErrors(try JSONSerialization.jsonObject(with: h.reply!), try nativeSchema(.bank, action, "reply")).isEmpty, sourceLocation: sourceLocation)
    }

    @Test func onboardingAndOffboarding() throws {
        var (bank, account) = try bankWithAccount()
        let request = onboarding(account: account)
        let on = bank.receive(request, at: monday)
        try expectSchemas(request, on)
        #expect(on.outcome == .completed)
        #expect(string(on.reply, "Sts") == "ACPT")
        let id = try #require(merchant(on)["MrchntId"] as? String)
        #expect(id == "8" + "330106" + "5411" + "0001" && id.count == 15)
        #expect(merchant(on)["OnbrdgDt"] as? String == "2026-03-02")
        #expect(on.effects.map(\.kind) == ["merchant-onboarded"] && on.effects.first?.key == id)
        #expect(on.effects.first?.data == ["USCC": uscc, "SttlmAcct": account])

        // Replay: the same bytes, no second effect.
        let replay = bank.receive(request, at: days(1))
        #expect(replay.replayed && replay.reply == on.reply && replay.effects.isEmpty)
        #expect(bank.ledger.filter { $0.kind == "merchant-onboarded" }.count == 1)

        let offRequest = offboarding(id, id: "o1")
        let off = bank.receive(offRequest, at: days(1))
        try expectSchemas(offRequest, off)
        #expect(off.outcome == .completed && off.effects.map(\.kind) == ["merchant-offboarded"])
        #expect(off.effects.first?.key == id && off.effects.first?.data["USCC"] == uscc)
        #expect(merchant(off)["MrchntId"] as? String == id && merchant(off)["OffbrdgDt"] as? String == "2026-03-03")
        let offReplay = bank.receive(offRequest, at: days(2))
        #expect(offReplay.replayed && offReplay.reply == off.reply && offReplay.effects.isEmpty)
        // Offboarding again (new request id): accepted, first date, no effect.
        let again = bank.receive(offboarding(id, id: "o2"), at: days(2))
        #expect(again.outcome == .completed && again.effects.isEmpty)
        #expect(merchant(again)["OffbrdgDt"] as? String == "2026-03-03")
        #expect(bank.ledger.filter { $0.kind == "merchant-offboarded" }.count == 1)

        // Once offboarded, the enterprise may onboard again, under a new 商户编号.
        let renewed = bank.receive(onboarding(account: account, id: "m2"), at: days(2))
        #expect(renewed.outcome == .completed)
        #expect(merchant(renewed)["MrchntId"] as? String == "833010654110002")
    }

    @Test func rejectionsNameTheirField() throws {
        var (bank, account) = try bankWithAccount()
        let stranger = USCC.generate(region: "330106", sequence: 8)
        // Malformed (division code 99…): refused. A mere check-character mismatch is not (an
        // issued code, see IssuedCodeTests).
        let badUSCC = "9199" + uscc.dropFirst(4)
        let cases: [(Data, String, String)] = [
            (onboarding(uscc: badUSCC, account: account, id: "r1"), "RR05", "Mrchnt.USCC"),
            (onboarding(name: "", account: account, id: "r2"), "RR03", "Mrchnt.Nm"),
            (onboarding(account: "1202330100000000099", id: "r3"), "AC01", "SttlmAcct.Id"), // no such account
            (onboarding(uscc: stranger, account: account, id: "r4"), "AC01", "SttlmAcct.Id"), // someone else's account
        ]
        for (request, code, field) in cases {
            let h = bank.receive(request, at: monday)
            #expect(h.outcome == .rejected(code: code, field: field), "\(code) \(field)")
            #expect(string(h.reply, "Sts") == "RJCT" && string(h.reply, "RsnCd") == code && string(h.reply, "ErrFld") == field)
            try expectSchemas(request, h)
        }
        #expect(bank.receive(onboarding(account: account, id: "ok"), at: monday).outcome == .completed)
        let dupl = onboarding(account: account, id: "r5")
        let h = bank.receive(dupl, at: monday)
        #expect(h.outcome == .rejected(code: "DUPL", field: "Mrchnt.USCC"))
        try expectSchemas(dupl, h)
        #expect(bank.ledger.filter { $0.kind == "merchant-onboarded" }.count == 1)
    }

    @Test func offboardingTheUnknownSucceedsWithNoEffect() throws {
        var bank = Hub().bank
        let request = offboarding("833010654119999", id: "o1")
        let h = bank.receive(request, at: monday)
        try expectSchemas(request, h)
        #expect(h.outcome == .completed && string(h.reply, "Sts") == "ACPT")
        #expect(h.effects.isEmpty && bank.ledger.isEmpty)
        #expect(merchant(h)["MrchntId"] as? String == "833010654119999" && merchant(h)["OffbrdgDt"] as? String == "2026-03-02")
    }

    @Test func onboardingAfterTheAccountIsClosed() throws {
        var (bank, account) = try bankWithAccount()
        let closing = Bank.request(Bank.AccountClosing(Acct: .init(Id: account)), requestId: "c1", sagaId: "s", step: "undo")
        #expect(bank.receive(closing, at: monday).outcome == .completed)
        let h = bank.receive(onboarding(account: account), at: monday)
        #expect(h.outcome == .rejected(code: "AC01", field: "SttlmAcct.Id"))
        #expect(h.effects.isEmpty && !bank.ledger.contains { $0.kind == "merchant-onboarded" })
    }
}
