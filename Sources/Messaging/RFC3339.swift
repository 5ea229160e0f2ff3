import Foundation

/// RFC 3339 date-times (`2026-03-02T09:15:00+08:00`, `2026-03-02T01:15:00.250Z`), by hand:
/// `ISO8601DateFormatter` accepts forms RFC 3339 forbids and rejects some it allows.
/// Used for `ce_time`, the DLQ timestamps and the schema format `date-time`.
public enum RFC3339 {
    /// UTC, always with milliseconds: fixed width, sorts as text.
    public static func format(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())  // nearest: binary doubles miss exact ms
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let inDay = ms - days * 86_400_000
        let (y, m, d) = civil(fromDays: days)
        func pad(_ v: Int64, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(inDay / 3_600_000, 2)):\(pad(inDay / 60_000 % 60, 2)):"
            + "\(pad(inDay / 1000 % 60, 2)).\(pad(inDay % 1000, 3))Z"
    }

    /// Nil unless `text` is a complete RFC 3339 `date-time` with an explicit offset.
    /// Fractions finer than a millisecond are truncated; a leap second (`:60`) is accepted as `:59.999`.
    public static func parse(_ text: String) -> Date? {
        let u = Array(text.utf8)
        func num(_ from: Int, _ len: Int) -> Int64? {
            guard from + len <= u.count else { return nil }
            var v: Int64 = 0
            for c in u[from..<from + len] {
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            return v
        }
        guard u.count >= 20, u[4] == 45, u[7] == 45, u[10] == 84 || u[10] == 116, u[13] == 58, u[16] == 58,
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
              let s = num(17, 2), (1...12).contains(mo), d >= 1, d <= daysIn(month: mo, year: y), h < 24, mi < 60, s <= 60
        else { return nil }
        var i = 19
        var millis: Int64 = 0
        if u[i] == 46 {  // "."
            i += 1
            var digits = 0
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                if digits < 3 { millis = millis * 10 + Int64(u[i] - 48) }
                digits += 1; i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offsetMinutes: Int64 = 0
        if i < u.count, u[i] == 90 || u[i] == 122 {  // Z z
            i += 1
        } else if i < u.count, u[i] == 43 || u[i] == 45, u.count == i + 6, u[i + 3] == 58,
                  let oh = num(i + 1, 2), let om = num(i + 4, 2), oh < 24, om < 60 {
            offsetMinutes = (oh * 60 + om) * (u[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == u.count else { return nil }
        let (second, fraction) = s == 60 ? (Int64(59), Int64(999)) : (s, millis)
        let ms = ((days(fromCivil: y, mo, d) * 24 + h) * 60 + mi - offsetMinutes) * 60_000 + second * 1000 + fraction
        return Date(timeIntervalSince1970: Double(ms) / 1000)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's civil-date algorithms (proleptic Gregorian).
    static func days(fromCivil y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, m, d)
    }
}
