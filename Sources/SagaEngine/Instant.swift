import Foundation

/// A point in time as milliseconds since the Unix epoch (UTC). The engine never reads a clock:
/// every instant arrives inside an input, which is what makes replays exact.
public struct Instant: Codable, Comparable, Hashable, Sendable, CustomStringConvertible {
    public var ms: Int64

    public init(ms: Int64) { self.ms = ms }

    public init(from decoder: any Decoder) throws { ms = try decoder.singleValueContainer().decode(Int64.self) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(ms)
    }

    public static func < (a: Instant, b: Instant) -> Bool { a.ms < b.ms }
    /// `a` moved by `d` ms, saturating at the ends of Int64 (a duration read from a message
    /// must not trap the process).
    public static func + (a: Instant, d: Int64) -> Instant {
        let (sum, overflow) = a.ms.addingReportingOverflow(d)
        return Instant(ms: overflow ? (d > 0 ? .max : .min) : sum)
    }

    public var description: String { rfc3339(offsetMinutes: 480) }

    /// `2026-03-02T09:15:00+08:00` (or `Z` for offset 0), with milliseconds only when non-zero.
    public func rfc3339(offsetMinutes: Int) -> String {
        // An instant read from a message may be anywhere in Int64: beyond ±10,000 years it is
        // written as that bound rather than trap in the calendar arithmetic.
        let bound = BusinessCalendar.walkableMs
        let local = min(max(ms, -bound), bound) + Int64(offsetMinutes) * 60_000
        let day = floorDiv(local, CivilDate.msPerDay)
        let inDay = local - day * CivilDate.msPerDay
        let d = CivilDate(dayNumber: day)
        let h = inDay / 3_600_000, m = inDay / 60_000 % 60, s = inDay / 1000 % 60, frac = inDay % 1000
        var out = d.description + "T" + pad(h) + ":" + pad(m) + ":" + pad(s)
        if frac != 0 { out += "." + String(String(frac + 1000).dropFirst()) }
        if offsetMinutes == 0 { return out + "Z" }
        let sign = offsetMinutes < 0 ? "-" : "+"
        return out + sign + pad(Int64(abs(offsetMinutes) / 60)) + ":" + pad(Int64(abs(offsetMinutes) % 60))
    }

    /// Parses RFC 3339 with an explicit offset (`Z` or `±HH:MM`); fractional seconds optional,
    /// finer than a millisecond truncated; a leap second (`:60`, only at 23:59 UTC) reads as `:59.999`; a space in
    /// place of the `T` is accepted (RFC 3339 §5.6 allows it for readability).
    public init?(rfc3339 text: String) {
        // Read in place (native strings are contiguous UTF-8): copying into an array cost an allocation.
        var text = text
        guard let ms = text.withUTF8({ Self.parseRFC3339($0) }) else { return nil }
        self.ms = ms
    }

    private static func parseRFC3339(_ u: UnsafeBufferPointer<UInt8>) -> Int64? {
        func num(_ from: Int, _ len: Int) -> Int64? {
            guard from + len <= u.count else { return nil }
            var v: Int64 = 0
            for c in u[from..<from + len] {
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            return v
        }
        guard u.count >= 20, u[4] == 45, u[7] == 45, u[10] == 84 || u[10] == 116 || u[10] == 32, u[13] == 58, u[16] == 58,
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let s = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        let date = CivilDate(year: Int(y), month: Int(mo), day: Int(d))
        guard CivilDate(dayNumber: date.dayNumber) == date else { return nil }  // 2026-04-31, 2025-02-29
        var i = 19
        var millis: Int64 = 0
        if u[i] == 46 {
            i += 1
            var digits = 0
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                if digits < 3 { millis = millis * 10 + Int64(u[i] - 48) }
                digits += 1; i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 { for _ in digits..<3 { millis *= 10 } }
        }
        guard i < u.count else { return nil }
        var offset: Int64 = 0
        if u[i] == 90 || u[i] == 122 { guard i + 1 == u.count else { return nil } }
        else {
            guard u[i] == 43 || u[i] == 45, i + 6 == u.count, u[i + 3] == 58, let oh = num(i + 1, 2), let om = num(i + 4, 2),
                  oh < 24, om < 60 else { return nil }
            offset = (oh * 60 + om) * (u[i] == 45 ? -1 : 1)
        }
        // RFC 3339 §5.7: a leap second is only ever inserted as the last second of a UTC day, so
        // `:60` is valid only where the time, converted to UTC, is 23:59 (e.g. `15:59:60-08:00`).
        if s == 60 {
            let utcMinute = ((h * 60 + mi - offset) % 1440 + 1440) % 1440
            guard utcMinute == 23 * 60 + 59 else { return nil }
        }
        let (second, fraction) = s == 60 ? (Int64(59), Int64(999)) : (s, millis)
        return date.dayNumber * CivilDate.msPerDay + ((h * 60 + mi) * 60 + second) * 1000 + fraction - offset * 60_000
    }
}

private func pad(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// A proleptic Gregorian date; day numbers count days since 1970-01-01 (Howard Hinnant's algorithm),
/// so the calendar needs no time-zone database.
public struct CivilDate: Hashable, Sendable, CustomStringConvertible {
    public static let msPerDay: Int64 = 86_400_000
    public var year: Int, month: Int, day: Int

    public init(year: Int, month: Int, day: Int) { self.year = year; self.month = month; self.day = day }

    public init(dayNumber z0: Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), month: Int(m), day: Int(d))
    }

    public var dayNumber: Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = Int64(month > 2 ? month - 3 : month + 9)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// 0 = Sunday … 6 = Saturday.
    public var weekday: Int { Int(((dayNumber % 7) + 11) % 7) }

    /// Parses `YYYY-MM-DD`, rejecting impossible dates such as 2026-02-30.
    public init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), (1...31).contains(d) else { return nil }
        self.init(year: y, month: m, day: d)
        guard CivilDate(dayNumber: dayNumber) == self else { return nil }
    }

    public var description: String {
        let y = String(year), m = month < 10 ? "0\(month)" : "\(month)", d = day < 10 ? "0\(day)" : "\(day)"
        return y + "-" + m + "-" + d
    }
}
