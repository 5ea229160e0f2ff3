/// Durations in bundle files are written `500ms`, `90s`, `15m`, `4h` or `1d` (24 h of wall time);
/// one unit per value keeps them unambiguous and easy to grep.
public enum DurationText {
    /// Milliseconds, or nil when the text is not a positive whole number followed by a unit.
    public static func parse(_ text: String) -> Int64? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 12, let n = Int64(digits), n > 0 else { return nil }
        let unit: Int64
        switch text.dropFirst(digits.count) {
        case "ms": unit = 1
        case "s": unit = 1000
        case "m": unit = 60_000
        case "h": unit = 3_600_000
        case "d": unit = 86_400_000
        default: return nil
        }
        // 12 digits of days overflow Int64 milliseconds: such a duration is not a duration.
        let (ms, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : ms
    }

    /// The inverse, choosing the largest exact unit.
    public static func format(_ ms: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where ms % size == 0 && ms >= size {
            return "\(ms / size)\(unit)"
        }
        return "\(ms)ms"
    }
}
