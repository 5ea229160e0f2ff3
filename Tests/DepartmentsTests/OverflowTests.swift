import Foundation
import SagaEngine
import Testing
@testable import Departments

/// Amounts read from requests never trap a department (issue 10, kind 2): an overflow is a
/// business rejection naming the field.
@Suite struct OverflowTests {
    /// Two shareholders contributing 5,000,000,000,000,000,000 each against a registered capital of 1,000,000.
    var overflowing: ApplicationForm {
        var f = sampleForm
        f.company.registeredCapital = 1_000_000
        let first = f.shareholders[0]
        f.shareholders = [first, first]
        f.shareholders[0].contribution = 5_000_000_000_000_000_000
        f.shareholders[1].contribution = 5_000_000_000_000_000_000
        return f
    }

    @Test("establishment with contributions whose sum overflows → E3005 naming the contribution, no trap")
    func establishmentContributionOverflow() throws {
        var dept = Hub().registration
        let f = overflowing
        let mcblh = try #require(string(dept.receive(nameReservation(f), at: monday).reply, "mcblh"))
        let handling = dept.receive(establishment(f, reservation: mcblh), at: monday)
        #expect(handling.outcome == .rejected(code: "E3005", field: "gdxx[1].rjcze"))
        #expect(string(handling.reply, "jgms")?.contains("注册资本 1000000") == true)
        #expect(handling.effects.isEmpty)
    }

    @Test("the same request as the adapter writes it (JSON numbers rendered by JSONValue) is rejected the same way")
    func establishmentOverflowThroughAdapterJSON() throws {
        var dept = Hub().registration
        let f = overflowing
        let mcblh = try #require(string(dept.receive(nameReservation(f), at: monday).reply, "mcblh"))
        let asAdapterWrites = Data(try JSONValue.parse(establishment(f, reservation: mcblh)).text().utf8)
        let handling = dept.receive(asAdapterWrites, at: monday)
        #expect(handling.outcome == .rejected(code: "E3005", field: "gdxx[1].rjcze"))
    }

    @Test("the application form check reports the capital instead of trapping on the sum")
    func formCheckContributionOverflow() {
        let findings = FrontDeskCheck(reference: reference).findings(overflowing, asOf: monday)
        #expect(findings.contains { $0.code == "capital" && $0.field == "$.company.registeredCapital" })
    }

    @Test func checkedSum() {
        #expect(CheckedArithmetic.sum([1, 2, 3]) == 6)
        #expect(CheckedArithmetic.sum([Int.max, 1]) == nil)
        #expect(CheckedArithmetic.overflowIndex([5, Int.max - 5, 1, 2]) == 2)
        #expect(CheckedArithmetic.sum([Int.min, -1]) == nil)
    }
}
