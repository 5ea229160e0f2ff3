import Foundation
import Testing
@testable import Departments

/// Runs the sample form of docs/application-form.md through all five departments.
@Suite struct HappyPathTests {
    @Test func enterpriseOpeningThroughAllFiveDepartments() throws {
        var hub = Hub()
        let f = sampleForm

        let name = hub.registration.receive(nameReservation(f), at: monday)
        #expect(name.outcome == .completed)
        #expect(string(name.reply, "jgdm") == "00")
        #expect(string(name.reply, "wbywh") == "saga-APP-20260302-000001")
        let mcblh = try #require(string(name.reply, "mcblh"))
        #expect(mcblh == "330106MC2026000001")
        #expect(string(name.reply, "blqz") == "2026-04-30")

        let reg = hub.registration.receive(establishment(f, reservation: mcblh), at: minutes(30))
        #expect(reg.outcome == .completed)
        let uscc = try #require(string(reg.reply, "tyshxydm"))
        #expect(USCC.isValid(uscc))
        #expect(uscc.hasPrefix("91330106MA"))
        #expect(string(reg.reply, "djjg") == "杭州市西湖区市场监督管理局")
        let licence = try #require(json(reg.reply)["dzyyzz"] as? [String: Any])
        #expect(licence["fzrq"] as? String == "2026-03-02")
        #expect((licence["yzm"] as? String)?.count == 8)
        #expect((licence["ewmnr"] as? String)?.contains(uscc) == true)

        let seals = hub.seals.receive(engraving(f, uscc: uscc), at: minutes(60))
        #expect(string(seals.reply, "RET_CODE") == "0000")
        let list = try #require(json(seals.reply)["SEAL_LIST"] as? [[String: Any]])
        #expect(list.map { $0["SEAL_TYPE"] as? String } == ["01", "02", "03", "05"])
        #expect(list.last?["SEAL_TEXT"] as? String == "张伟")
        #expect(Set(list.compactMap { $0["RECORD_NO"] as? String }).count == 4)

        let tax = hub.tax.receive(taxRegistration(f, uscc: uscc), at: minutes(60))
        #expect(string(tax.reply, "fhdm") == "0000")
        let djxh = try #require(string(tax.reply, "djxh"))
        #expect(djxh.count == 20)
        #expect(string(tax.reply, "zgswjgmc") == "国家税务总局杭州市西湖区税务局")
        let quota = hub.tax.receive(invoiceQuota(f, uscc: uscc, djxh: djxh), at: minutes(90))
        #expect((json(quota.reply)["hdjg"] as? [[String: Any]])?.first?["fpzldm"] as? String == "026")
        let key = hub.tax.receive(ukey(f, uscc: uscc, djxh: djxh), at: minutes(120))
        #expect(string(key.reply, "sbbh")?.count == 12)

        let social = hub.social.receive(employerRegistration(f, uscc: uscc), at: minutes(60))
        #expect(string(social.reply, "errcode") == "0")
        #expect(string(social.reply, "aab001")?.hasPrefix("330106") == true)

        let bank = hub.bank.receive(accountOpening(f, uscc: uscc), at: minutes(120))
        #expect(string(bank.reply, "Sts") == "ACPT")
        #expect(string(bank.reply, "OrgnlMsgId") == "saga-APP-20260302-000001/bank-account/1")
        let account = try #require(json(bank.reply)["Acct"] as? [String: Any])
        #expect((account["Id"] as? String)?.count == 19) // ICBC
        #expect((account["BscAcctNb"] as? String)?.hasPrefix("J3301") == true)

        #expect(hub.ledger.map(\.kind) == [
            "name-reserved", "enterprise-registered", "e-licence-issued",
            "seal-engraved", "seal-engraved", "seal-engraved", "seal-engraved",
            "taxpayer-registered", "invoice-types-approved", "tax-ukey-issued", "employer-registered", "account-opened",
        ])
        #expect(hub.ledger.allSatisfy { $0.sagaId == "saga-APP-20260302-000001" })
    }
}

@Suite struct IdempotencyTests {
    let sim = DepartmentSimulator(model: BusinessRegistration(reference: reference), preset: .noFaults)

    @Test func sameRequestTwiceGivesSameBytesAndOneEffect() {
        let request = nameReservation(sampleForm)
        let (s1, first) = sim.handle(sim.initialState, request: request, now: monday)
        let (s2, second) = sim.handle(s1, request: request, now: minutes(5))
        #expect(first.reply == second.reply)
        #expect(!first.replayed)
        #expect(second.replayed)
        #expect(second.effects.isEmpty)
        #expect(s2.ledger.count == 1)
        #expect(s2.books == s1.books)
    }

    @Test func keyOrderDoesNotMatterButContentDoes() throws {
        let request = nameReservation(sampleForm)
        let (s1, first) = sim.handle(sim.initialState, request: request, now: monday)
        let reordered = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: request), options: [])
        let (_, again) = sim.handle(s1, request: reordered, now: monday)
        #expect(again.replayed)
        #expect(again.reply == first.reply)

        var changed = try #require(JSONSerialization.jsonObject(with: request) as? [String: Any])
        changed["hydm"] = "I6513"
        let (s3, conflict) = sim.handle(s1, request: try JSONSerialization.data(withJSONObject: changed), now: monday)
        #expect(conflict.outcome == .conflict(code: "E9101"))
        #expect(string(conflict.reply, "jgdm") == "E9101")
        #expect(s3.ledger.count == 1)
    }

    @Test func rejectionsAreMemoizedToo() {
        var form = sampleForm
        form.company.tradeName = "中华"
        form.company.proposedName = "杭州中华茶饮有限公司"
        let (s1, first) = sim.handle(sim.initialState, request: nameReservation(form), now: monday)
        #expect(first.outcome == .rejected(code: "E2001", field: "zh"))
        let (_, second) = sim.handle(s1, request: nameReservation(form), now: monday)
        #expect(second.replayed)
        #expect(second.reply == first.reply)
    }

    @Test func transientFaultsAreRetryableAndNotMemoized() {
        var profile = sim.profile
        profile.transientFaultRate = 1
        let failing = DepartmentSimulator(model: sim.model, profile: profile)
        let request = nameReservation(sampleForm)
        let (s1, fault) = failing.handle(failing.initialState, request: request, now: monday)
        guard case .transientFault(let code) = fault.outcome else { Issue.record("expected a fault, got \(fault.outcome)"); return }
        #expect(BusinessRegistration.transientCodes.contains(code))
        #expect(string(fault.reply, "jgdm") == code)
        #expect(s1.ledger.isEmpty)
        // The same request id, delivered again once the department has recovered, is processed.
        let (s2, ok) = sim.handle(s1, request: request, now: minutes(10))
        #expect(ok.outcome == .completed)
        #expect(!ok.replayed)
        #expect(s2.ledger.count == 1)
    }

    @Test func lostReplyIsAnsweredOnRedelivery() {
        var profile = sim.profile
        profile.lostReplyRate = 1
        let lossy = DepartmentSimulator(model: sim.model, profile: profile)
        let request = nameReservation(sampleForm)
        let (s1, first) = lossy.handle(lossy.initialState, request: request, now: monday)
        #expect(first.replyLost)
        #expect(s1.ledger.count == 1) // the work was done
        let (s2, second) = lossy.handle(s1, request: request, now: minutes(30))
        #expect(!second.replyLost)
        #expect(second.replayed)
        #expect(second.reply == first.reply)
        #expect(s2.ledger.count == 1)
    }

    @Test func manualReviewRejection() {
        var profile = sim.profile
        profile.manualRejectionRate = 1
        let strict = DepartmentSimulator(model: sim.model, profile: profile)
        let (state, h) = strict.handle(strict.initialState, request: nameReservation(sampleForm), now: monday)
        #expect(h.outcome == .rejected(code: "E4001", field: nil))
        #expect(state.ledger.isEmpty)
    }

    @Test func unreadableMessagesGetNoReply() {
        let (state, h) = sim.handle(sim.initialState, request: Data("not json".utf8), now: monday)
        #expect(h.reply == nil)
        #expect(h.meta == nil)
        if case .unreadable = h.outcome {} else { Issue.record("expected unreadable, got \(h.outcome)") }
        #expect(state == sim.initialState)
    }

    @Test func snapshotRestoresTheWholeState() throws {
        var running = RunningDepartment(sim)
        let first = running.receive(nameReservation(sampleForm), at: monday)
        let snapshot = try running.snapshot()
        var restored = RunningDepartment(sim)
        try restored.restore(snapshot)
        #expect(restored.state == running.state)
        let again = restored.receive(nameReservation(sampleForm), at: monday)
        #expect(again.replayed)
        #expect(again.reply == first.reply)
    }

    @Test func everyDepartmentReplaysIdentically() throws {
        let hub = Hub()
        let f = sampleForm
        let uscc = USCC.generate(region: f.region, sequence: 42)
        var endpoints: [(any DepartmentEndpoint, Data)] = [
            (hub.seals, engraving(f, uscc: uscc)), (hub.tax, taxRegistration(f, uscc: uscc)),
            (hub.social, employerRegistration(f, uscc: uscc)), (hub.bank, accountOpening(f, uscc: uscc)),
        ]
        for i in endpoints.indices {
            let first = endpoints[i].0.receive(endpoints[i].1, at: monday)
            let second = endpoints[i].0.receive(endpoints[i].1, at: minutes(1))
            #expect(first.outcome == .completed, "\(endpoints[i].0.agency)")
            #expect(second.replayed && second.reply == first.reply, "\(endpoints[i].0.agency)")
            #expect(endpoints[i].0.ledger.count == Set(endpoints[i].0.ledger.map(\.key)).count)
            #expect(!endpoints[i].0.ledger.isEmpty)
        }
    }
}

@Suite struct LatencyTests {
    @Test func samplingIsDeterministicPerSeedAndRequest() {
        let a = DepartmentSimulator(model: Bank(), preset: .default, seed: 7)
        let b = DepartmentSimulator(model: Bank(), preset: .default, seed: 7)
        let c = DepartmentSimulator(model: Bank(), preset: .default, seed: 8)
        let f = sampleForm
        let uscc = USCC.generate(region: f.region, sequence: 1)
        var differs = 0
        for i in 0..<50 {
            let request = Bank.request(Bank.AccountClosing(Acct: .init(Id: "x"), USCC: uscc), requestId: "r\(i)", sagaId: "s", step: "close")
            let la = a.handle(a.initialState, request: request, now: monday).1.latencyMinutes
            #expect(la == b.handle(b.initialState, request: request, now: monday).1.latencyMinutes)
            if la != c.handle(c.initialState, request: request, now: monday).1.latencyMinutes { differs += 1 }
            #expect((5...60).contains(la))
        }
        #expect(differs > 25)
    }

    @Test func triangularDistributionShape() {
        let d = LatencyDistribution(min: 10, mode: 20, max: 100)
        #expect(d.sample(0) == 10)
        #expect(d.sample(0.999_999) == 100)
        #expect(d.sample(0.111) == 20) // the mode sits at F = (20 - 10) / (100 - 10)
        #expect(d.sample(0.5) == 40) // 100 - √(0.5 · 90 · 80)
        let samples = (0..<10_000).map { d.sample(StableRandom.uniform(seed: 1, "\($0)")) }
        let mean = Double(samples.reduce(0, +)) / Double(samples.count)
        #expect(abs(mean - (10 + 20 + 100) / 3.0) < 1.5)
    }

    @Test func presetsDiffer() {
        let typical = Bank.typicalLatency
        let flaky = DepartmentProfile.preset(.flaky, latency: typical)
        let none = DepartmentProfile.preset(.noFaults, latency: typical)
        #expect(none.transientFaultRate == 0 && none.lostReplyRate == 0 && none.manualRejectionRate == 0)
        #expect(flaky.transientFaultRate > DepartmentProfile.preset(.default, latency: typical).transientFaultRate)
        #expect(flaky.latency(for: "acmt.007").max == 3 * typical["acmt.007"]!.max)
    }

    @Test func flakyFaultRateIsRoughlyAsConfigured() {
        let sim = DepartmentSimulator(model: SocialSecurity(reference: reference), preset: .flaky)
        var faults = 0
        for i in 0..<1_000 {
            let r = SocialSecurity.request(SocialSecurity.EmployerRegistration(aab998: "x", aab004: "", aab301: "", aab013: "", aae006: "", aae140: [], yjcbrs: 0),
                                           requestId: "r\(i)", sagaId: "s", step: "ss")
            if case .transientFault = sim.handle(sim.initialState, request: r, now: monday).1.outcome { faults += 1 }
        }
        #expect((100...200).contains(faults))
    }
}
