import Foundation

/// Why an identifier (USCC, organization code, resident ID, phone number) is not valid.
/// Every case names what is wrong so a front desk or an operator can act on it.
public enum IdentifierError: Error, Sendable, Equatable, CustomStringConvertible {
    case wrongLength(expected: Int, got: Int)
    /// `position` is 1-based, as a clerk would count characters.
    case illegalCharacter(position: Int, character: Character)
    case badCheckDigit(expected: Character, got: Character)
    /// The organization code embedded in a USCC (positions 9–17) has a bad GB 11714 check digit.
    case badOrganizationCodeCheckDigit(expected: Character, got: Character)
    case badRegionCode(String)
    case badBirthDate(String)
    /// A birth date after the day of the check (both `YYYYMMDD`, Beijing time).
    case birthDateInFuture(String, today: String)
    case badMobilePrefix(String)

    public var description: String {
        switch self {
        case let .wrongLength(expected, got): "wrong length: expected \(expected) characters, got \(got)"
        case let .illegalCharacter(position, character): "illegal character '\(character)' at position \(position)"
        case let .badCheckDigit(expected, got): "bad check digit: expected \(expected), got \(got)"
        case let .badOrganizationCodeCheckDigit(expected, got):
            "bad organization code check digit (position 17): expected \(expected), got \(got)"
        case let .badRegionCode(code): "bad administrative division code \(code)"
        case let .badBirthDate(date): "bad birth date \(date)"
        case let .birthDateInFuture(date, today): "birth date \(date) is after today (\(today))"
        case let .badMobilePrefix(prefix): "not a mainland mobile number prefix: \(prefix)"
        }
    }
}

/// 统一社会信用代码, GB 32100-2015.
///
/// Layout: 1 registration authority (9 = market regulation) · 2 entity category (1 = enterprise,
/// 2 = individual business, 3 = farmers' cooperative) · 3–8 administrative division code ·
/// 9–17 organization code (GB 11714, its own check digit at 17) · 18 check digit.
public enum USCC {
    public static let alphabet = Array("0123456789ABCDEFGHJKLMNPQRTUWXY")
    /// 3^i mod 31 for i = 0…16.
    public static let weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

    /// The check character for the first 17 characters (which must be in `alphabet`).
    public static func checkCharacter(for body: String) throws(IdentifierError) -> Character {
        let chars = Array(body)
        guard chars.count == 17 else { throw .wrongLength(expected: 17, got: chars.count) }
        var sum = 0
        for (i, c) in chars.enumerated() {
            guard let v = alphabet.firstIndex(of: c) else { throw .illegalCharacter(position: i + 1, character: c) }
            sum += v * weights[i]
        }
        return alphabet[(31 - sum % 31) % 31]
    }

    public static func validate(_ code: String) throws(IdentifierError) {
        let chars = Array(code)
        guard chars.count == 18 else { throw .wrongLength(expected: 18, got: chars.count) }
        for (i, c) in chars.enumerated() where !alphabet.contains(c) {
            throw .illegalCharacter(position: i + 1, character: c)
        }
        let region = String(chars[2..<8])
        guard AdministrativeDivision.isPlausible(region) else { throw .badRegionCode(region) }
        let expected = try checkCharacter(for: String(chars[0..<17]))
        guard expected == chars[17] else { throw .badCheckDigit(expected: expected, got: chars[17]) }
        do {
            try OrganizationCode.validate(String(chars[8..<17]))
        } catch .badCheckDigit(let e, let g) {
            throw .badOrganizationCodeCheckDigit(expected: e, got: g)
        }
    }

    public static func isValid(_ code: String) -> Bool { (try? validate(code)) != nil }

    /// Checks a USCC that the registration authority itself issued: the registration step's
    /// output or an e-licence on the `licences` topic, which is what every department other than
    /// market regulation receives from the hub. Such a code is what the enterprise *has*, even when
    /// it does not follow GB 32100's check characters (codes issued before 2016, e.g.
    /// `91350203M0001QKT19`, are in use), so only its shape is enforced: 18 characters of the USCC
    /// alphabet with a plausible division code.
    /// - Returns: the check-character mismatch (`badCheckDigit` or `badOrganizationCodeCheckDigit`)
    ///   for the caller to record, or nil when the code follows the standard.
    /// - Throws: `wrongLength`, `illegalCharacter` or `badRegionCode`. Codes typed by applicants
    ///   go through `validate` instead.
    public static func validateIssued(_ code: String) throws(IdentifierError) -> IdentifierError? {
        do { try validate(code) } catch {
            switch error {
            case .badCheckDigit, .badOrganizationCodeCheckDigit: return error
            default: throw error
            }
        }
        return nil
    }

    /// A valid USCC for a new enterprise registered by market regulation (`9`) in `region`.
    /// The organization code is `MA` followed by `sequence` in base 31 over the USCC alphabet
    /// (the shape market regulators have issued since 2015), then its GB 11714 check digit.
    public static func generate(region: String, sequence: Int, category: Character = "1") -> String {
        precondition(region.count == 6 && region.allSatisfy(\.isASCIIDigit), "region must be 6 digits")
        precondition(sequence >= 0 && sequence < 887_503_681, "sequence out of range (31^6)")
        var digits: [Character] = []
        var n = sequence
        for _ in 0..<6 { digits.append(alphabet[n % 31]); n /= 31 }
        let orgBody = "MA" + String(digits.reversed())
        let org = orgBody + String(try! OrganizationCode.checkCharacter(for: orgBody))
        let body = "9" + String(category) + region + org
        return body + String(try! checkCharacter(for: body))
    }
}

/// 组织机构代码, GB 11714-1997: 8 body characters (digits, capital letters) and a check character.
public enum OrganizationCode {
    public static let weights = [3, 7, 9, 10, 5, 8, 4, 2]

    static func value(of c: Character) -> Int? {
        if let d = c.wholeNumberValue, c.isASCII { return d }
        guard c.isASCII, c.isUppercase, let a = c.asciiValue else { return nil }
        return Int(a) - 55 // A = 10 … Z = 35
    }

    public static func checkCharacter(for body: String) throws(IdentifierError) -> Character {
        let chars = Array(body)
        guard chars.count == 8 else { throw .wrongLength(expected: 8, got: chars.count) }
        var sum = 0
        for (i, c) in chars.enumerated() {
            guard let v = value(of: c) else { throw .illegalCharacter(position: i + 1, character: c) }
            sum += v * weights[i]
        }
        switch 11 - sum % 11 {
        case 10: return "X"
        case 11: return "0"
        case let d: return Character(String(d))
        }
    }

    public static func validate(_ code: String) throws(IdentifierError) {
        let chars = Array(code)
        guard chars.count == 9 else { throw .wrongLength(expected: 9, got: chars.count) }
        let expected = try checkCharacter(for: String(chars[0..<8]))
        guard expected == chars[8] else { throw .badCheckDigit(expected: expected, got: chars[8]) }
    }
}

/// 公民身份号码, GB 11643-1999: 6-digit address code · 8-digit birth date · 3-digit sequence
/// (odd = male) · check character (ISO 7064 MOD 11-2).
///
/// The same 18-character layout and check character serve the other identity document numbers
/// the State issues today, which differ only in the address code:
/// - 港澳台居民居住证 (residence permits for Hong Kong, Macao and Taiwan residents, 国办发〔2018〕81号):
///   address code `810000` (Hong Kong), `820000` (Macao), `830000` (Taiwan);
/// - 外国人永久居留身份证 (2023 edition, 国家移民管理局公告 2023): `9`, the two-digit province code of
///   the issuing place, a three-digit nationality code, then birth date, sequence and check
///   character as above.
/// A birth date must be a real date no later than the day of the check (Beijing time): a
/// document is never issued to someone not yet born.
public enum ResidentID {
    public static let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    static let checkMap = Array("10X98765432")
    /// Address codes of the residence permits for Hong Kong, Macao and Taiwan residents.
    public static let residencePermitCodes: Set<String> = ["810000", "820000", "830000"]

    public static func checkCharacter(for body: String) throws(IdentifierError) -> Character {
        let chars = Array(body)
        guard chars.count == 17 else { throw .wrongLength(expected: 17, got: chars.count) }
        var sum = 0
        for (i, c) in chars.enumerated() {
            guard c.isASCIIDigit, let d = c.wholeNumberValue else { throw .illegalCharacter(position: i + 1, character: c) }
            sum += d * weights[i]
        }
        return checkMap[sum % 11]
    }

    /// Checks `id` as of the instant `now` (the hub's clock when it acts, so replays and virtual
    /// clocks decide alike): shape, address code, birth date (real, and not after `now`'s date in
    /// Beijing time), check character.
    /// - Throws: the first `IdentifierError` found (`birthDateInFuture` for a date after today).
    public static func validate(_ id: String, asOf now: Date) throws(IdentifierError) {
        let chars = Array(id)
        guard chars.count == 18 else { throw .wrongLength(expected: 18, got: chars.count) }
        for (i, c) in chars.enumerated() where !(c.isASCIIDigit || (i == 17 && c == "X")) {
            throw .illegalCharacter(position: i + 1, character: c)
        }
        let region = String(chars[0..<6])
        guard isIssuingCode(region) else { throw .badRegionCode(region) }
        let birth = String(chars[6..<14])
        guard isRealDate(birth) else { throw .badBirthDate(birth) }
        let today = CST.day(now, separator: "")
        guard birth <= today else { throw .birthDateInFuture(birth, today: today) }
        let expected = try checkCharacter(for: String(chars[0..<17]))
        guard expected == chars[17] else { throw .badCheckDigit(expected: expected, got: chars[17]) }
    }

    public static func isValid(_ id: String, asOf now: Date) -> Bool { (try? validate(id, asOf: now)) != nil }

    /// The first six characters of a number the State issues: a GB/T 2260 address code (mainland
    /// province prefix), a residence permit code (`810000`, `820000`, `830000`), or `9` + province
    /// code + nationality code (foreigners' permanent residence ID card, 2023 edition).
    public static func isIssuingCode(_ code: String) -> Bool {
        guard code.count == 6, code.allSatisfy(\.isASCIIDigit) else { return false }
        if residencePermitCodes.contains(code) { return true }
        if code.hasPrefix("9") { return AdministrativeDivision.provinces.contains(String(code.dropFirst().prefix(2))) }
        if code.hasPrefix("81") || code.hasPrefix("82") || code.hasPrefix("83") { return false }
        return AdministrativeDivision.isPlausible(code)
    }

    /// A valid ID number (used by seed generators and tests).
    public static func generate(region: String, birthDate: String, sequence: Int) -> String {
        let body = region + birthDate + String(format: "%03d", sequence % 1000)
        return body + String(try! checkCharacter(for: body))
    }

    /// YYYYMMDD, a real calendar date from 1800 on (GB 11643's own example is born in 1880).
    static func isRealDate(_ s: String) -> Bool {
        guard s.count == 8, let y = Int(s.prefix(4)), let m = Int(s.dropFirst(4).prefix(2)), let d = Int(s.suffix(2)),
              y >= 1800, (1...12).contains(m), d >= 1 else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return d <= days[m - 1]
    }
}

/// GB/T 2260 shape checks (the full directory is reference data, see `ReferenceData`).
public enum AdministrativeDivision {
    /// Province-level codes in use (11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71, 81, 82). Identity
    /// document numbers add 83 (Taiwan residents' residence permits): see `ResidentID.isIssuingCode`.
    public static let provinces: Set<String> = [
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
        "71", "81", "82",
    ]

    /// Six digits with a known province prefix. Old codes stay plausible: ID numbers keep the
    /// code of the place of first registration even after the division was renamed.
    public static func isPlausible(_ code: String) -> Bool {
        code.count == 6 && code.allSatisfy(\.isASCIIDigit) && provinces.contains(String(code.prefix(2)))
    }
}

/// Mainland mobile numbers: 11 digits, `1[3-9]` followed by 9 digits.
public enum MobilePhone {
    public static func validate(_ phone: String) throws(IdentifierError) {
        let chars = Array(phone)
        guard chars.count == 11 else { throw .wrongLength(expected: 11, got: chars.count) }
        for (i, c) in chars.enumerated() where !c.isASCIIDigit {
            throw .illegalCharacter(position: i + 1, character: c)
        }
        guard chars[0] == "1", ("3"..."9").contains(chars[1]) else { throw .badMobilePrefix(String(chars[0..<2])) }
    }

    public static func isValid(_ phone: String) -> Bool { (try? validate(phone)) != nil }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension Array where Element == EffectDraft {
    /// The effects with `check` (a check-character mismatch of an issued USCC, see
    /// `USCC.validateIssued`) recorded in each effect's data under `usccCheck`, so the ledger
    /// shows the department accepted a code that does not follow GB 32100.
    public func noting(usccCheck check: IdentifierError?) -> [EffectDraft] {
        guard let check else { return self }
        return map { var e = $0; e.data["usccCheck"] = check.description; return e }
    }
}
