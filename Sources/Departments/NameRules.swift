import Foundation

/// A county-level registration authority's division (GB/T 2260).
public struct Region: Codable, Sendable, Equatable {
    public var code: String
    public var province: String
    /// The prefecture-level city; for the four municipalities, the municipality itself.
    public var city: String
    public var district: String
    /// The 行政区划 forms a name registered here may begin with (`杭州`, `杭州市`).
    public var namePrefixes: [String]

    /// `杭州市西湖区`, `北京市朝阳区`: how the division appears in authority names.
    public var locality: String { city + district }
}

public struct ForbiddenWord: Codable, Sendable, Equatable {
    public var word: String
    /// approval-required, political, misleading, superlative, licence-required, foreign, illegal.
    public var category: String
    public var reason: String
}

/// Reference data shared by the simulators, loaded from `seeds/departments/`.
public struct ReferenceData: Sendable {
    public var regions: [String: Region]
    public var forbiddenWords: [ForbiddenWord]

    public init(regions: [Region], forbiddenWords: [ForbiddenWord]) {
        self.regions = Dictionary(regions.map { ($0.code, $0) }, uniquingKeysWith: { a, _ in a })
        self.forbiddenWords = forbiddenWords
    }

    /// Reads `regions.json` and `forbidden-words.json` from `directory` (normally `seeds/departments`).
    public static func load(from directory: URL) throws -> ReferenceData {
        struct Regions: Decodable { var regions: [Region] }
        struct Words: Decodable { var words: [ForbiddenWord] }
        let regions = try JSONDecoder().decode(Regions.self, from: Data(contentsOf: directory.appendingPathComponent("regions.json")))
        let words = try JSONDecoder().decode(Words.self, from: Data(contentsOf: directory.appendingPathComponent("forbidden-words.json")))
        return ReferenceData(regions: regions.regions, forbiddenWords: words.words)
    }
}

/// Entity types of the application form, with the codes each department uses for them.
public enum EntityType: String, Codable, Sendable, CaseIterable {
    case limitedLiability = "limited-liability"
    case jointStock = "joint-stock"
    case soleProprietorship = "sole-proprietorship"
    case partnership
    case individualBusiness = "individual-business"

    /// Organization forms (组织形式) a name of this entity type may end with.
    public var organizationForms: [String] {
        switch self {
        case .limitedLiability: ["有限公司", "有限责任公司"]
        case .jointStock: ["股份有限公司"]
        case .soleProprietorship: ["厂", "店", "中心", "工作室", "商行", "经营部"]
        case .partnership: ["合伙企业（普通合伙）", "合伙企业（有限合伙）"]
        case .individualBusiness: ["店", "馆", "部", "行", "坊", "中心", "工作室"]
        }
    }

    /// Enterprise type code used by business registration (`qylx`).
    public var registrationCode: String {
        switch self {
        case .limitedLiability: "1100"
        case .jointStock: "1200"
        case .soleProprietorship: "4540"
        case .partnership: "4530"
        case .individualBusiness: "9600"
        }
    }

    public init?(registrationCode: String) {
        guard let t = EntityType.allCases.first(where: { $0.registrationCode == registrationCode }) else { return nil }
        self = t
    }

    /// USCC entity category: 1 enterprise, 2 individual business.
    public var usccCategory: Character { self == .individualBusiness ? "2" : "1" }
}

/// The four parts of an enterprise name: 行政区划 + 字号 + 行业 + 组织形式.
public struct EnterpriseName: Sendable, Equatable {
    public var fullName: String
    public var tradeName: String
    public var industryWord: String
    public var organizationForm: String

    public init(fullName: String, tradeName: String, industryWord: String, organizationForm: String) {
        self.fullName = fullName; self.tradeName = tradeName
        self.industryWord = industryWord; self.organizationForm = organizationForm
    }

    /// Key for uniqueness: the same 字号 + 行业 within one registration authority is the same
    /// name, whatever the organization form (企业名称登记管理规定实施办法).
    public func uniquenessKey(region: String) -> String { "\(region)|\(tradeName)|\(industryWord)" }
}

/// A name rule that is broken; `field` is the part at fault.
public struct NameViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Rule: String, Sendable, Codable {
        case unknownRegion = "unknown-region"
        case structure
        case tradeName = "trade-name"
        case industryWord = "industry-word"
        case forbiddenWord = "forbidden-word"
        case organizationForm = "organization-form"
    }
    public enum Part: String, Sendable, Codable { case region, fullName, tradeName, industryWord, organizationForm }

    public var rule: Rule
    public var part: Part
    public var message: String
    /// For `forbiddenWord`: the word found.
    public var word: String?

    public var description: String { "\(rule.rawValue) (\(part.rawValue)): \(message)" }
}

/// 企业名称登记管理规定 (2020) and its 实施办法 (2021), as far as a machine can check them.
public struct NameRules: Sendable {
    public let reference: ReferenceData
    public var tradeNameLength: ClosedRange<Int> = 2...10

    public init(reference: ReferenceData) { self.reference = reference }

    /// Every broken rule, most fundamental first; empty when the name is acceptable.
    public func violations(of name: EnterpriseName, region code: String, entityType: EntityType) -> [NameViolation] {
        var out: [NameViolation] = []
        guard let region = reference.regions[code] else {
            return [NameViolation(rule: .unknownRegion, part: .region, message: "no registration authority for division \(code)")]
        }
        let tail = name.tradeName + name.industryWord + name.organizationForm
        if !region.namePrefixes.contains(where: { $0 + tail == name.fullName }) {
            out.append(NameViolation(rule: .structure, part: .fullName,
                message: "name must be one of \(region.namePrefixes.map { "\($0)\(tail)" }.joined(separator: " / ")) (行政区划 + 字号 + 行业 + 组织形式)"))
        }
        let trade = Array(name.tradeName)
        if let bad = trade.firstIndex(where: { !$0.isHan }) {
            out.append(NameViolation(rule: .tradeName, part: .tradeName,
                message: "字号 must be Chinese characters; '\(trade[bad])' at position \(bad + 1) is not"))
        } else if !tradeNameLength.contains(trade.count) {
            out.append(NameViolation(rule: .tradeName, part: .tradeName,
                message: "字号 must have \(tradeNameLength.lowerBound)–\(tradeNameLength.upperBound) characters, has \(trade.count)"))
        } else if reference.regions.values.contains(where: { $0.namePrefixes.contains(name.tradeName) || $0.district == name.tradeName || String($0.district.dropLast()) == name.tradeName }) {
            out.append(NameViolation(rule: .tradeName, part: .tradeName,
                message: "字号 \(name.tradeName) is the name of an administrative division"))
        }
        if name.industryWord.isEmpty || !name.industryWord.allSatisfy(\.isHan) {
            out.append(NameViolation(rule: .industryWord, part: .industryWord,
                message: "行业 must be a non-empty Chinese industry wording, got '\(name.industryWord)'"))
        }
        for (part, text) in [(NameViolation.Part.tradeName, name.tradeName), (.industryWord, name.industryWord)] {
            for w in reference.forbiddenWords where text.contains(w.word) {
                out.append(NameViolation(rule: .forbiddenWord, part: part,
                    message: "contains forbidden word \(w.word) (\(w.category): \(w.reason))", word: w.word))
            }
        }
        if !entityType.organizationForms.contains(name.organizationForm) {
            out.append(NameViolation(rule: .organizationForm, part: .organizationForm,
                message: "组织形式 \(name.organizationForm) does not fit \(entityType.rawValue); allowed: \(entityType.organizationForms.joined(separator: ", "))"))
        }
        return out
    }
}

/// Names on record at the registration authorities: reserved (until expiry) or registered.
public struct NameRegistry: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var fullName: String
        /// The reservation number (名称保留号) that holds the name.
        public var reservation: String
        public var registered: Bool
        public var expiresAt: Date
    }

    public private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// The entry that blocks `key` at `now` (registered, or reserved and not expired).
    public func holder(of key: String, at now: Date) -> Entry? {
        guard let e = entries[key], e.registered || e.expiresAt > now else { return nil }
        return e
    }

    public mutating func reserve(key: String, fullName: String, reservation: String, until: Date) {
        entries[key] = Entry(fullName: fullName, reservation: reservation, registered: false, expiresAt: until)
    }

    public mutating func markRegistered(key: String) { entries[key]?.registered = true }

    /// Frees `key`, but only while `reservation` still holds it: after an expiry the name may
    /// have passed to someone else's reservation, which a late release must not touch.
    public mutating func release(key: String, reservation: String) {
        if entries[key]?.reservation == reservation { entries[key] = nil }
    }
}

extension Character {
    /// A CJK unified ideograph (basic block or extension A).
    var isHan: Bool {
        unicodeScalars.count == 1 && unicodeScalars.allSatisfy {
            (0x4E00...0x9FFF).contains($0.value) || (0x3400...0x4DBF).contains($0.value)
        }
    }
}
