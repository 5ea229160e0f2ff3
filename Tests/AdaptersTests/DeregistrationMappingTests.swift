import Adapters
import Departments
import Foundation
import Messaging
import SagaEngine
import Testing
import YishiTestSupport

/// 企业注销 through the adapters' mappings and the simulated departments: the refusals the
/// departments give (tax owed, money on the account) reach the hub as 容缺 the applicant answers,
/// and the supplement carries what the department needs.
@Suite struct DeregistrationMappingTests {
    let monday = Date(timeIntervalSince1970: 1_772_413_200)
    let uscc = USCC.generate(region: "330106", sequence: 7)

    func run<M: DepartmentModel>(_ t: Translator, _ dept: inout RunningDepartment<M>, _ action: String, step: String, payload: JSONValue,
                                 revision: Int = 0) throws -> CanonicalEvent {
        var cmd = command(action, step: step, payload: payload)
        if case .object(var o) = cmd { o["requestId"] = .string("D-1/\(step)/r\(revision)"); o["revision"] = .number(Double(revision)); cmd = .object(o) }
        guard case .request(let request) = t.start(command: cmd) else { throw SetupError("no request for \(action)") }
        let handling = dept.receive(Data(request.message.text().utf8), at: monday)
        let reply = try JSONValue.parse(try #require(handling.reply))
        guard case .event(let event) = try t.finish(reply: reply, context: request.context) else { throw SetupError("no event for \(action)") }
        return event
    }

    @Test func clearanceWithArrearsAsksForThePaymentReceiptThenClears() throws {
        let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
        var tax = RunningDepartment(DepartmentSimulator(model: Tax(reference: reference), preset: .noFaults))
        _ = tax.receive(Tax.request(Tax.Registration(nsrsbh: uscc, nsrmc: "杭州云栖茶饮有限公司", xzqhdm: "330106", hydm: "F5123", djzclx: "173",
                                                     zzsnsrlx: "2", fddbrxm: "张伟", fddbrsfzjhm: "11010519491231002X", scjydz: "杭州"),
                                    requestId: "r0", sagaId: "o", step: "tax"), at: monday)
        tax.amendBooks { $0.taxpayers[uscc]?.arrears = 800 }
        let t = try translator("tax")
        var payload: [String: JSONValue] = ["uscc": .string(uscc), "reason": "决议解散", "materials": .array([])]
        let asked = try run(t, &tax, "clear-tax", step: "tax-clearance", payload: .object(payload))
        #expect(asked.type == MessageType.supplementNeeded, "\(asked.payload)")
        #expect(asked.payload["materials"] == ["tax-payment-receipt"])
        payload["supplements"] = ["tax-payment-receipt": ["receiptNo": "JK-2026-0001"]]
        let cleared = try run(t, &tax, "clear-tax", step: "tax-clearance", payload: .object(payload), revision: 1)
        #expect(cleared.type == MessageType.stepSucceeded, "\(cleared.payload)")
        #expect(cleared.payload["outputs"]?["clearedAt"] == "2026-03-02")
        #expect(tax.ledger.contains { $0.kind == "arrears-paid" && $0.data["jkpzh"] == "JK-2026-0001" })
    }

    @Test func closureWithABalanceAsksForATransferInstructionThenCloses() throws {
        var bank = RunningDepartment(DepartmentSimulator(model: Bank(), preset: .noFaults))
        let t = try translator("bank")
        let opened = try run(t, &bank, "open-basic-account", step: "bank-account", payload: .object([
            "uscc": .string(uscc), "approvedName": "杭州云栖茶饮有限公司", "bankCode": "ICBC", "branchName": "中国工商银行杭州文三路支行",
            "legalRepresentativeName": "张伟", "legalRepresentativeIdNumber": "11010519491231002X", "companySealCode": "S1",
            "financeSealCode": "S2", "address": "杭州", "legalRepresentativePhone": "13800138000"]))
        let account = try #require(opened.payload["outputs"]?["accountNumber"]?.stringValue, "\(opened.payload)")
        bank.amendBooks { $0.accounts[account]?.balance = 52_000 }
        var payload: [String: JSONValue] = ["accountNumber": .string(account), "uscc": .string(uscc), "materials": .array([])]
        let asked = try run(t, &bank, "close-settlement-account", step: "bank-account-closure", payload: .object(payload))
        #expect(asked.type == MessageType.supplementNeeded, "\(asked.payload)")
        #expect(asked.payload["materials"] == ["balance-transfer-instruction"])
        payload["supplements"] = ["balance-transfer-instruction": ["toAccount": "6222000011112222"]]
        let closed = try run(t, &bank, "close-settlement-account", step: "bank-account-closure", payload: .object(payload), revision: 1)
        #expect(closed.type == MessageType.stepSucceeded, "\(closed.payload)")
        #expect(closed.payload["outputs"]?["closedOn"] == "2026-03-02")
    }

    @Test func subsidyMatchBeforeTheEmployerIsInsuredIsRetryableThenPaysOnce() throws {
        let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
        var social = RunningDepartment(DepartmentSimulator(model: SocialSecurity(reference: reference), preset: .noFaults))
        let t = try translator("social-security")
        let early = try run(t, &social, "match-startup-subsidy", step: "eligibility-match", payload: ["uscc": .string(uscc)])
        #expect(early.type == MessageType.stepFailed && early.payload["code"] == "NOT_INSURED_YET", "\(early.payload)")
        _ = social.receive(SocialSecurity.request(SocialSecurity.EmployerRegistration(aab998: uscc, aab004: "杭州云栖茶饮有限公司", aab301: "330106",
                                                                                      aab013: "张伟", aae006: "杭州", aae140: ["110"], yjcbrs: 3),
                                                  requestId: "ss1", sagaId: "o", step: "social-security"), at: monday)
        let matched = try run(t, &social, "match-startup-subsidy", step: "eligibility-match", payload: ["uscc": .string(uscc)], revision: 1)
        let outputs = try #require(matched.payload["outputs"], "\(matched.payload)")
        #expect(outputs["amount"] == 5000)
        let paid = try run(t, &social, "pay-startup-subsidy", step: "payment",
                           payload: ["uscc": .string(uscc), "eligibilityNo": outputs["eligibilityNo"]!, "amount": outputs["amount"]!])
        let paymentNo = try #require(paid.payload["outputs"]?["paymentNo"], "\(paid.payload)")
        let told = try run(t, &social, "notify-benefit", step: "notification",
                           payload: ["uscc": .string(uscc), "eligibilityNo": outputs["eligibilityNo"]!, "paymentNo": paymentNo])
        #expect(told.type == MessageType.stepSucceeded && told.payload["outputs"]?["noticeNo"] != nil, "\(told.payload)")
        // Another matching run (a second saga for the same enterprise) is refused for good.
        let again = try run(t, &social, "match-startup-subsidy", step: "eligibility-match", payload: ["uscc": .string(uscc)], revision: 2)
        #expect(again.type == MessageType.stepRejected && again.payload["code"] == "NOT_ELIGIBLE", "\(again.payload)")
    }

    @Test func everyNewActionIsMapped() throws {
        for agency in ["tax", "bank", "social-security", "seal-engraving", "business-registration"] {
            _ = try translator(agency)  // loading refuses a catalogue action without a mapping
        }
    }
}
