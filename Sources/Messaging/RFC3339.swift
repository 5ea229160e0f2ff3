import Foundation
import SagaEngine

/// RFC 3339 date-times (`2026-03-02T09:15:00+08:00`, `2026-03-02T01:15:00.250Z`), by hand:
/// `ISO8601DateFormatter` accepts forms RFC 3339 forbids and rejects some it allows.
/// Used for `ce_time`, the DLQ timestamps and the schema format `date-time`.
public enum RFC3339 {
    /// UTC, always with milliseconds: fixed width, sorts as text.
    public static func format(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())  // nearest: binary doubles miss exact ms
        let days = ms >= 0 ? ms / CivilDate.msPerDay : (ms - CivilDate.msPerDay + 1) / CivilDate.msPerDay
        let inDay = ms - days * CivilDate.msPerDay
        func pad(_ v: Int64, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        return "\(CivilDate(dayNumber: days))T\(pad(inDay / 3_600_000, 2)):\(pad(inDay / 60_000 % 60, 2)):"
            + "\(pad(inDay / 1000 % 60, 2)).\(pad(inDay % 1000, 3))Z"
    }

    /// Nil unless `text` is a complete RFC 3339 `date-time` with an explicit offset and a `T`
    /// (or `t`) between date and time, as JSON Schema's `date-time` requires; otherwise as
    /// `Instant(rfc3339:)`.
    public static func parse(_ text: String) -> Date? {
        guard text.utf8.count > 10, text.utf8[text.utf8.index(text.utf8.startIndex, offsetBy: 10)] != UInt8(ascii: " "),
              let instant = Instant(rfc3339: text) else { return nil }
        return Date(timeIntervalSince1970: Double(instant.ms) / 1000)
    }
}
