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
}
