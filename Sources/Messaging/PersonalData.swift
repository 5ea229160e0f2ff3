import SagaEngine

/// Masks personal data (resident ID numbers, mobile phone numbers, personal names) in text and
/// JSON, for log lines and operator output. The same style as the department simulators:
/// `110105********002X`, `138****8000`, `张*`.
///
/// Two rules, applied together:
/// - by field name: `idNumber`-like and `phone`/`mobile`-like fields are masked whatever their
///   shape; a `name` under a person (`legalRepresentative`, `shareholders`, `contact`, …) and
///   person-prefixed names (`legalRepresentativeName`, `contactName`, …) are masked as names;
/// - by value pattern, in every string: an 18-character resident-ID-like token (6 digits, a
///   plausible birth date, 3 digits, a digit or X) and an 11-digit mobile number (`1[3-9]…`,
///   also after the country code 86), each not touching other digits.
public enum PersonalData {
    /// `11010519491231002X` → `110105********002X`: keeps the address code and the last four.
    public static func maskIdNumber(_ id: String) -> String { keep(id, first: 6, fromLength: 12) }

    /// `13800138000` → `138****8000`.
    public static func maskPhone(_ phone: String) -> String { keep(phone, first: 3, fromLength: 8) }

    /// `6222021234567890123` → `6222***********0123`: a bank account keeps its first and last
    /// four digits (idempotent: an already masked number stays as it is).
    public static func maskAccount(_ account: String) -> String { keep(account, first: 4, fromLength: 9) }

    /// `value` with all but its first `first` and last four characters starred; all starred when
    /// it is shorter than `fromLength`.
    private static func keep(_ value: String, first: Int, fromLength: Int) -> String {
        let c = Array(value)
        guard c.count >= fromLength else { return String(repeating: "*", count: c.count) }
        return String(c.prefix(first)) + String(repeating: "*", count: c.count - first - 4) + String(c.suffix(4))
    }

    /// `张伟` → `张*`, `欧阳娜娜` → `欧***`: keeps the first character only.
    public static func maskName(_ name: String) -> String {
        guard let first = name.first else { return "" }
        return String(first) + String(repeating: "*", count: max(1, name.count - 1))
    }

    /// Masks every ID-number-like and mobile-number-like token in free text.
    public static func maskText(_ text: String) -> String {
        // Fast path: fewer than 11 digits cannot hold a token.
        var digits = 0
        for b in text.utf8 where b >= 48 && b <= 57 { digits += 1 }
        guard digits >= 11 else { return text }
        var chars = Array(text)
        var i = 0
        func isDigit(_ k: Int) -> Bool { k >= 0 && k < chars.count && chars[k].isASCII && chars[k].isNumber }
        while i < chars.count {
            guard isDigit(i), !isDigit(i - 1) else { i += 1; continue }
            var run = i
            while isDigit(run) { run += 1 }
            let length = run - i
            if length == 17, run < chars.count, chars[run] == "X" || chars[run] == "x", !isDigit(run + 1), looksLikeID(chars[i...run]) {
                for k in i + 6..<run - 3 { chars[k] = "*" }
                i = run + 1
            } else if length == 18, looksLikeID(chars[i..<run]) {
                for k in i + 6..<run - 4 { chars[k] = "*" }
                i = run
            } else if length == 11 || length == 13 && chars[i] == "8" && chars[i + 1] == "6",
                      case let m = run - 11, chars[m] == "1", let second = chars[m + 1].wholeNumberValue, second >= 3 {
                // A mobile number, possibly with the country code in front (`+8613800138000`).
                for k in m + 3..<m + 7 { chars[k] = "*" }
                i = run
            } else {
                i = run
            }
        }
        return String(chars)
    }

    /// 18 characters: address code (first digit 1–9), birth date 18xx–20xx with a real month and
    /// day, sequence, check character. Rules out USCCs and timestamps that are merely 18 digits.
    static func looksLikeID(_ c: ArraySlice<Character>) -> Bool {
        let s = Array(c)
        guard s.count == 18, s[0] != "0" else { return false }
        func n(_ from: Int, _ len: Int) -> Int? { Int(String(s[from..<from + len])) }
        guard let year = n(6, 4), let month = n(10, 2), let day = n(12, 2) else { return false }
        return (1800...2099).contains(year) && (1...12).contains(month) && (1...31).contains(day)
    }

    enum FieldKind { case id, phone, name }

    static let people: Set<String> = ["legalrepresentative", "shareholder", "shareholders", "contact", "applicant", "person",
                                      "holder", "agent", "director", "supervisor", "employee", "employees", "insured", "principal"]

    static func kind(ofKey key: String, parent: String?) -> FieldKind? {
        let k = key.lowercased()
        if k.contains("idnumber") || k.contains("idno") || k.contains("idcard") || k.contains("certno") { return .id }
        if k.contains("phone") || k.contains("mobile") || k == "tel" || k.hasSuffix("telephone") { return .phone }
        if k == "name", let parent, people.contains(parent.lowercased()) { return .name }
        if k.hasSuffix("name"), k.count > 4, people.contains(String(k.dropLast(4))) { return .name }
        return nil
    }

    /// A copy of `value` with personal data masked (see the type's rules). `parent` is the key
    /// the value sits under, if any (a `name` is personal only under a person).
    public static func mask(_ value: JSONValue, key: String? = nil, parent: String? = nil) -> JSONValue {
        switch value {
        case .string(let s):
            if let key, let kind = kind(ofKey: key, parent: parent) {
                switch kind {
                case .id: return .string(maskIdNumber(s))
                case .phone: return .string(maskPhone(s))
                case .name: return .string(maskName(s))
                }
            }
            return .string(maskText(s))
        case .object(let fields):
            var out: [String: JSONValue] = [:]
            for (k, v) in fields { out[k] = mask(v, key: k, parent: key) }
            return .object(out)
        case .array(let items):
            // Elements of `shareholders` are people: their `name` is masked.
            return .array(items.map { mask($0, key: key, parent: parent) })
        case .number(let n):
            // An ID or phone stored as a number: mask as text.
            if let key, kind(ofKey: key, parent: parent) != nil, n.rounded() == n {
                return mask(.string(String(format: "%.0f", n)), key: key, parent: parent)
            }
            return value
        default:
            return value
        }
    }

    /// The value at a form path (`$.legalRepresentative.idNumber` as components), masked by the
    /// path's last key and its parent.
    public static func mask(_ value: JSONValue, atPath path: [String]) -> JSONValue {
        mask(value, key: path.last, parent: path.count >= 2 ? path[path.count - 2] : nil)
    }
}
