import Foundation
import Testing
@testable import Departments

/// Published valid codes (real enterprises' USCCs, GB 11643's own example ID numbers).
let publishedUSCCs = ["91350100M000100Y43", "91110000802100433B"]
let publishedIDs = ["11010519491231002X", "440524188001010014"]

/// Every single-character change of `code` to another character of `alphabet`.
func mutations(of code: String, over alphabet: [Character]) -> [String] {
    let chars = Array(code)
    return chars.indices.flatMap { i in
        alphabet.filter { $0 != chars[i] }.map { c in
            var m = chars; m[i] = c; return String(m)
        }
    }
}

@Suite struct USCCTests {
    @Test(arguments: publishedUSCCs) func publishedCodesAreValid(code: String) throws {
        try USCC.validate(code)
        try OrganizationCode.validate(String(Array(code)[8..<17]))
    }

    @Test func checkCharacterMatchesPublished() throws {
        #expect(try USCC.checkCharacter(for: "91350100M000100Y4") == "3")
        #expect(try USCC.checkCharacter(for: "91110000802100433") == "B")
        #expect(try OrganizationCode.checkCharacter(for: "M000100Y") == "4")
        #expect(try OrganizationCode.checkCharacter(for: "80210043") == "3")
    }

    @Test(arguments: publishedUSCCs) func everySingleCharacterMutationIsRejected(code: String) {
        let all = mutations(of: code, over: USCC.alphabet)
        #expect(all.count == 18 * 30)
        let accepted = all.filter(USCC.isValid)
        #expect(accepted.isEmpty, "accepted mutations: \(accepted)")
    }

    @Test func errorsNameWhatIsWrong() {
        #expect(throws: IdentifierError.wrongLength(expected: 18, got: 17)) { try USCC.validate("91350100M000100Y4") }
        #expect(throws: IdentifierError.illegalCharacter(position: 9, character: "I")) { try USCC.validate("91350100I000100Y43") }
        #expect(throws: IdentifierError.illegalCharacter(position: 18, character: "Z")) { try USCC.validate("91350100M000100Y4Z") }
        #expect(throws: IdentifierError.badCheckDigit(expected: "3", got: "4")) { try USCC.validate("91350100M000100Y44") }
        #expect(throws: IdentifierError.badRegionCode("990100")) { try USCC.validate("91990100M000100Y43") }
    }

    @Test func embeddedOrganizationCodeIsChecked() throws {
        // Organization code check digit changed (4 → 5) and the USCC check digit recomputed.
        let body = "91350100M000100Y5"
        let code = body + String(try USCC.checkCharacter(for: body))
        #expect(throws: IdentifierError.badOrganizationCodeCheckDigit(expected: "4", got: "5")) { try USCC.validate(code) }
    }

    @Test func organizationCodeMapsTenToXAndElevenToZero() throws {
        #expect(try OrganizationCode.checkCharacter(for: "00000001") == "9") // sum 2: 11 - 2
        #expect(try OrganizationCode.checkCharacter(for: "00000005") == "1") // sum 10: 11 - 10
        #expect(try OrganizationCode.checkCharacter(for: "00000006") == "X") // sum 12: 11 - 1 = 10 → X
        #expect(try OrganizationCode.checkCharacter(for: "00000000") == "0") // sum 0: 11 → 0
        #expect(throws: IdentifierError.illegalCharacter(position: 3, character: "a")) { try OrganizationCode.checkCharacter(for: "00a00000") }
    }

    /// A Xiamen enterprise registered before 2016 whose code does not follow the check character:
    /// refused when typed by an applicant, accepted (with the mismatch returned) as an issued code.
    @Test func issuedCodesAreNotRefusedForTheirCheckCharacter() throws {
        #expect(!USCC.isValid("91350203M0001QKT19"))
        let mismatch = try USCC.validateIssued("91350203M0001QKT19")
        #expect(mismatch != nil)
        #expect(try USCC.validateIssued(publishedUSCCs[0]) == nil)
        #expect(throws: IdentifierError.wrongLength(expected: 18, got: 17)) { try USCC.validateIssued("91350203M0001QKT1") }
        #expect(throws: IdentifierError.illegalCharacter(position: 9, character: "I")) { try USCC.validateIssued("91350203I0001QKT19") }
        #expect(throws: IdentifierError.badRegionCode("990203")) { try USCC.validateIssued("91990203M0001QKT19") }
    }

    @Test func generatedCodesAreValidAndDistinct() {
        let codes = (0..<2_000).map { USCC.generate(region: "330106", sequence: $0 * 7_919) }
        #expect(codes.allSatisfy(USCC.isValid))
        #expect(Set(codes).count == codes.count)
        #expect(codes.allSatisfy { $0.hasPrefix("91330106MA") })
        #expect(USCC.generate(region: "110105", sequence: 1, category: "2").hasPrefix("92110105"))
    }
}

/// The instant of the checks below: 2026-03-02 09:00 Beijing time (a fixed hub-clock instant,
/// never the machine clock).
let checkDay = Date(timeIntervalSince1970: 1_772_413_200)

@Suite struct ResidentIDTests {
    /// 港澳台居民居住证: address codes 810000, 820000, 830000 (国办发〔2018〕81号).
    @Test func residencePermitsForHongKongMacaoAndTaiwanResidentsAreAccepted() throws {
        try ResidentID.validate("830000199001010020", asOf: checkDay)
        for region in ["810000", "820000"] {
            try ResidentID.validate(ResidentID.generate(region: region, birthDate: "19850612", sequence: 17), asOf: checkDay)
        }
        // Only the permit codes: no other 81/82/83 division exists.
        #expect(throws: IdentifierError.badRegionCode("830100")) {
            try ResidentID.validate(ResidentID.generate(region: "830100", birthDate: "19900101", sequence: 2), asOf: checkDay)
        }
    }

    /// 外国人永久居留身份证 (2023): 9 · issuing province · nationality code.
    @Test func foreignersPermanentResidenceNumbersAreAccepted() throws {
        try ResidentID.validate(ResidentID.generate(region: "931840", birthDate: "19800101", sequence: 1), asOf: checkDay)
        #expect(throws: IdentifierError.badRegionCode("999840")) {
            try ResidentID.validate(ResidentID.generate(region: "999840", birthDate: "19800101", sequence: 1), asOf: checkDay)
        }
    }

    /// Born 2099: after the day of the check, whatever the machine's clock says; the same number
    /// checked at an instant after its birth date passes (the check is deterministic in `asOf`).
    @Test func birthDateAfterTheInstantOfTheCheckIsRejected() throws {
        #expect(throws: IdentifierError.birthDateInFuture("20990101", today: "20260302")) {
            try ResidentID.validate("33010620990101001X", asOf: checkDay)
        }
        try ResidentID.validate("33010620990101001X", asOf: Date(timeIntervalSince1970: 4_102_444_800 + 86_400 * 366))
        // The day is Beijing's: 2026-03-01 16:00 UTC is already 2026-03-02 there.
        let born = ResidentID.generate(region: "330106", birthDate: "20260302", sequence: 11)
        try ResidentID.validate(born, asOf: Date(timeIntervalSince1970: 1_772_380_800))
        #expect(!ResidentID.isValid(born, asOf: Date(timeIntervalSince1970: 1_772_380_800 - 3600)))
    }

    @Test(arguments: publishedIDs) func publishedNumbersAreValid(id: String) throws {
        try ResidentID.validate(id, asOf: checkDay)
    }

    @Test(arguments: publishedIDs) func everySingleCharacterMutationIsRejected(id: String) {
        let alphabet = Array("0123456789X")
        let accepted = mutations(of: id, over: alphabet).filter { ResidentID.isValid($0, asOf: checkDay) }
        #expect(accepted.isEmpty, "accepted mutations: \(accepted)")
    }

    @Test func errorsNameWhatIsWrong() {
        #expect(throws: IdentifierError.wrongLength(expected: 18, got: 15)) { try ResidentID.validate("110105491231002", asOf: checkDay) }
        #expect(throws: IdentifierError.illegalCharacter(position: 5, character: "X")) { try ResidentID.validate("1101X519491231002X", asOf: checkDay) }
        #expect(throws: IdentifierError.badCheckDigit(expected: "X", got: "1")) { try ResidentID.validate("110105194912310021", asOf: checkDay) }
        #expect(throws: IdentifierError.badBirthDate("19490231")) {
            try ResidentID.validate(ResidentID.generate(region: "110105", birthDate: "19490231", sequence: 2), asOf: checkDay)
        }
        #expect(throws: IdentifierError.badRegionCode("990105")) {
            try ResidentID.validate(ResidentID.generate(region: "990105", birthDate: "19491231", sequence: 2), asOf: checkDay)
        }
    }

    @Test func leapDays() {
        #expect(ResidentID.isValid(ResidentID.generate(region: "330106", birthDate: "20000229", sequence: 11), asOf: checkDay))
        #expect(!ResidentID.isValid(ResidentID.generate(region: "330106", birthDate: "19000229", sequence: 11), asOf: checkDay))
        #expect(!ResidentID.isValid(ResidentID.generate(region: "330106", birthDate: "19991301", sequence: 11), asOf: checkDay))
    }
}

@Suite struct PhoneTests {
    @Test func mobileNumbers() {
        #expect(MobilePhone.isValid("13800138000"))
        #expect(MobilePhone.isValid("19912345678"))
        #expect(!MobilePhone.isValid("12800138000"))
        #expect(!MobilePhone.isValid("1380013800"))
        #expect(throws: IdentifierError.illegalCharacter(position: 4, character: "-")) { try MobilePhone.validate("138-0138000") }
    }
}
