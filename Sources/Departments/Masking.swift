import Foundation

/// Masks personal data (names, ID numbers, phone numbers) for logs and CLI output.
/// Unmasked values are only shown when an authorised operator explicitly asks for them.
public enum PersonalDataMask {
    /// `11010519491231002X` → `110105********002X`: keeps the address code and the last four.
    public static func idNumber(_ id: String) -> String {
        let c = Array(id)
        guard c.count >= 12 else { return String(repeating: "*", count: c.count) }
        return String(c.prefix(6)) + String(repeating: "*", count: c.count - 10) + String(c.suffix(4))
    }

    /// `13800138000` → `138****8000`.
    public static func phone(_ phone: String) -> String {
        let c = Array(phone)
        guard c.count >= 8 else { return String(repeating: "*", count: c.count) }
        return String(c.prefix(3)) + String(repeating: "*", count: c.count - 7) + String(c.suffix(4))
    }

    /// `张伟` → `张*`, `欧阳娜娜` → `欧***`: keeps the first character only.
    public static func name(_ name: String) -> String {
        guard let first = name.first else { return "" }
        return String(first) + String(repeating: "*", count: max(1, name.count - 1))
    }

    // Digits on either side mean a longer number (登记序号, account number), not an ID or a phone.
    private static let idPattern = try! NSRegularExpression(pattern: "(?<![0-9])([0-9]{17}[0-9Xx])(?![0-9])")
    // An optional 86 country code in front of the number (`+8613800138000`).
    private static let phonePattern = try! NSRegularExpression(pattern: "(?<![0-9])(?:86)?(1[3-9][0-9]{9})(?![0-9])")

    /// Masks every resident ID number (17 digits + digit or X) and every mobile number inside
    /// free text, such as a log line or a native message: `身份证 110105********002X 电话 138****8000`.
    public static func scrub(_ text: String) -> String {
        var out = text
        for (pattern, mask) in [(idPattern, idNumber), (phonePattern, phone)] {
            let matches = pattern.matches(in: out, range: NSRange(out.startIndex..., in: out))
            for m in matches.reversed() {
                guard let r = Range(m.range(at: 1), in: out) else { continue }
                out.replaceSubrange(r, with: mask(String(out[r])))
            }
        }
        return out
    }
}
