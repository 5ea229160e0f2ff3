import Foundation

/// The calendar file under `seeds/calendar/` (see docs/bundle-format.md).
public struct CalendarFile: Codable, Sendable {
    public struct Period: Codable, Sendable { public var from: String; public var to: String }
    public struct Holiday: Codable, Sendable { public var name: String; public var from: String; public var to: String }
    public struct Workday: Codable, Sendable { public var date: String; public var name: String }
    public struct Year: Codable, Sendable {
        public var year: Int
        /// `published` (State Council notice) or `provisional` (derived from the statutory rules).
        public var status: String
        public var source: String
        public var holidays: [Holiday]
        public var workdays: [Workday]
    }
    public var name: String
    public var timeZone: String
    public var utcOffsetMinutes: Int
    public var workingHours: [Period]
    public var years: [Year]
}

/// A seed or catalogue file that cannot be used; the message names the file.
public struct LoadError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Working time on a fixed-offset business calendar: working hours on working days, where a
/// working day is Monday–Friday minus statutory holidays plus adjusted working days (调休).
/// Asia/Shanghai has had no DST since 1991, so a fixed UTC+8 offset replaces the tz database.
public struct BusinessCalendar: Sendable {
    /// Every field lives in one immutable box, so a copy of the calendar (the engine holds one
    /// per `apply`) is a single retain instead of one per collection.
    private final class Storage: Sendable {
        let name: String
        let offsetMs: Int64
        let periods: [(start: Int64, end: Int64)]
        let workingMsPerDay: Int64
        let holidays: Set<Int64>
        let workdays: Set<Int64>
        let years: ClosedRange<Int>
        let coveredYears: Set<Int>
        let workingDayTable: [Bool]
        let workingDayTableStart: Int64
        let trustedDays: Range<Int64>
        let provisionalYears: [Int]

        init(name: String, offsetMs: Int64, periods: [(start: Int64, end: Int64)], holidays: Set<Int64>, workdays: Set<Int64>,
             years: ClosedRange<Int>, coveredYears: Set<Int>, workingDayTable: [Bool], workingDayTableStart: Int64,
             trustedDays: Range<Int64>, provisionalYears: [Int]) {
            self.name = name
            self.offsetMs = offsetMs
            self.periods = periods
            workingMsPerDay = periods.reduce(0) { $0 + $1.end - $1.start }
            self.holidays = holidays
            self.workdays = workdays
            self.years = years
            self.coveredYears = coveredYears
            self.workingDayTable = workingDayTable
            self.workingDayTableStart = workingDayTableStart
            self.trustedDays = trustedDays
            self.provisionalYears = provisionalYears
        }
    }
    private let storage: Storage

    /// The calendar file's `name` (e.g. `cn-mainland`).
    public var name: String { storage.name }
    /// The fixed offset of local time from UTC (ms; 28,800,000 for UTC+8).
    public var offsetMs: Int64 { storage.offsetMs }
    /// Working periods as [start, end) milliseconds after local midnight, ascending.
    public var periods: [(start: Int64, end: Int64)] { storage.periods }
    /// Statutory holidays, as local day numbers (days since 1970-01-01).
    public var holidays: Set<Int64> { storage.holidays }
    /// Adjusted working days (调休) on weekends, as local day numbers.
    public var workdays: Set<Int64> { storage.workdays }
    /// From the first to the last year the file lists; see `coveredYears` for which it covers.
    public var years: ClosedRange<Int> { storage.years }
    /// Years whose holidays and adjusted working days (调休) the file lists. Outside them the
    /// calendar knows only weekends, so working time computed there is a guess: see `gaps`.
    public var coveredYears: Set<Int> { storage.coveredYears }
    /// `isWorkingDay` precomputed for every day from the first listed year (or date) to the last:
    /// one array read instead of two set lookups and a weekday computation per day walked.
    private var workingDayTable: [Bool] { storage.workingDayTable }
    private var workingDayTableStart: Int64 { storage.workingDayTableStart }
    /// Day numbers [start, end) of the longest run of covered, published years: `gaps` between
    /// two instants inside it is empty without computing years.
    private var trustedDays: Range<Int64> { storage.trustedDays }
    /// Covered years whose status is not `published` (derived from the statutory rules before the
    /// State Council's notice): their holidays may still move.
    public var provisionalYears: [Int] { storage.provisionalYears }

    /// `2026-03-02 09:30` in the calendar's time zone.
    public func localText(_ t: Instant) -> String {
        let local = Self.clamped(t) + offsetMs
        let day = floorDiv(local, CivilDate.msPerDay)
        let minutes = Int((local - day * CivilDate.msPerDay) / 60_000)
        let date = CivilDate(dayNumber: day)
        // A four-digit year (every instant a saga meets) is written as 16 ASCII bytes into one
        // allocation; concatenating the parts cost ~3,700 instructions per call.
        if date.year >= 1000, date.year <= 9999 {
            return String(unsafeUninitializedCapacity: 16) { b in
                func put(_ at: Int, _ n: Int, digits: Int) {
                    var n = n
                    for k in stride(from: at + digits - 1, through: at, by: -1) { b[k] = UInt8(48 + n % 10); n /= 10 }
                }
                put(0, date.year, digits: 4)
                b[4] = 45  // -
                put(5, date.month, digits: 2)
                b[7] = 45
                put(8, date.day, digits: 2)
                b[10] = 32  // space
                put(11, minutes / 60, digits: 2)
                b[13] = 58  // :
                put(14, minutes % 60, digits: 2)
                return 16
            }
        }
        // Two digits each (0–23, 0–59), built directly: String(format:) cost ~15,000 instructions.
        func two(_ n: Int) -> String { n < 10 ? "0" + String(n) : String(n) }
        return "\(date) " + two(minutes / 60) + ":" + two(minutes % 60)
    }

    /// Working time per working day (ms): the sum of the working periods.
    public var workingMsPerDay: Int64 { storage.workingMsPerDay }

    public init(file f: CalendarFile) throws {
        func clock(_ t: String) throws -> Int64 {
            let p = t.split(separator: ":")
            guard p.count == 2, let h = Int64(p[0]), let m = Int64(p[1]), (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else {
                throw LoadError(description: "\(f.name): bad clock time '\(t)' (want HH:MM)")
            }
            return (h * 60 + m) * 60_000
        }
        func day(_ t: String) throws -> Int64 {
            guard let d = CivilDate(t) else { throw LoadError(description: "\(f.name): bad date '\(t)' (want YYYY-MM-DD)") }
            return d.dayNumber
        }
        var periods: [(start: Int64, end: Int64)] = []
        for p in f.workingHours {
            let s = try clock(p.from), e = try clock(p.to)
            guard s < e, s >= (periods.last?.end ?? 0) else { throw LoadError(description: "\(f.name): working hours must be ascending, non-overlapping periods") }
            periods.append((s, e))
        }
        guard !periods.isEmpty, !f.years.isEmpty else { throw LoadError(description: "\(f.name): needs working hours and at least one year") }
        var hol = Set<Int64>(), work = Set<Int64>()
        for y in f.years {
            for h in y.holidays {
                let a = try day(h.from), b = try day(h.to)
                guard a <= b else { throw LoadError(description: "\(f.name): holiday \(h.name) ends before it starts") }
                for d in a...b { hol.insert(d) }
            }
            for w in y.workdays { work.insert(try day(w.date)) }
        }
        guard hol.isDisjoint(with: work) else { throw LoadError(description: "\(f.name): a date is both a holiday and a working day") }
        let ys = f.years.map(\.year)
        let years = ys.min()!...ys.max()!
        let provisionalYears = f.years.filter { $0.status != "published" }.map(\.year).sorted()
        let coveredYears = Set(ys)
        let firstDay = min(CivilDate(year: years.lowerBound, month: 1, day: 1).dayNumber, hol.union(work).min() ?? .max)
        let endDay = max(CivilDate(year: years.upperBound + 1, month: 1, day: 1).dayNumber, (hol.union(work).max() ?? .min) + 1)
        let table = (firstDay..<endDay).map { Self.isWorkingDay($0, holidays: hol, workdays: work) }
        var best: Range<Int64> = 0..<0
        var year = years.lowerBound
        while year <= years.upperBound {
            var end = year
            while end <= years.upperBound, coveredYears.contains(end), !provisionalYears.contains(end) { end += 1 }
            if end > year {
                let run = CivilDate(year: year, month: 1, day: 1).dayNumber..<CivilDate(year: end, month: 1, day: 1).dayNumber
                if run.count > best.count { best = run }
            }
            year = end + 1
        }
        storage = Storage(name: f.name, offsetMs: Int64(f.utcOffsetMinutes) * 60_000, periods: periods, holidays: hol, workdays: work,
                          years: years, coveredYears: coveredYears, workingDayTable: table, workingDayTableStart: firstDay,
                          trustedDays: best, provisionalYears: provisionalYears)
    }

    /// What the calendar does not know between two instants (local years of `from` … `to`).
    public struct Gaps: Equatable, Sendable {
        /// Years the file does not cover: only weekends count as non-working there.
        public var uncovered: [Int]
        /// Covered years that are provisional.
        public var provisional: [Int]
        public var isEmpty: Bool { uncovered.isEmpty && provisional.isEmpty }
    }

    /// The years from `from`'s local year to `to`'s that are not covered or only provisionally.
    /// Cheap when both fall in one published year (the common case: one comparison per end).
    public func gaps(from: Instant, to: Instant) -> Gaps {
        let a = localDay(min(from, to)), b = localDay(max(from, to))
        if trustedDays.contains(a), trustedDays.contains(b) { return Gaps(uncovered: [], provisional: []) }
        let first = CivilDate(dayNumber: a).year, last = CivilDate(dayNumber: b).year
        var out = Gaps(uncovered: [], provisional: [])
        for y in first...last {
            if !coveredYears.contains(y) { out.uncovered.append(y) }
            else if provisionalYears.contains(y) { out.provisional.append(y) }
        }
        return out
    }

    /// `cn-mainland does not cover 2028 (only weekends are non-working there); 2027 is provisional`,
    /// or nil when `gaps` is empty.
    public func describe(_ gaps: Gaps) -> String? {
        var parts: [String] = []
        if !gaps.uncovered.isEmpty {
            parts.append("calendar \(name) does not cover \(gaps.uncovered.map(String.init).joined(separator: ", ")) "
                         + "(holidays unknown: only weekends count as non-working there)")
        }
        if !gaps.provisional.isEmpty {
            parts.append("\(gaps.provisional.map(String.init).joined(separator: ", ")) provisional on calendar \(name)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// The calendar in `url`. `setting` names the flag that chose it, for the error.
    /// - Throws: `ConfigError` naming the file (and the setting) and what is wrong in it.
    public static func load(_ url: URL, setting: String? = nil) throws -> BusinessCalendar {
        let file = try ConfigFile.decode(CalendarFile.self, from: url, setting: setting)
        do { return try BusinessCalendar(file: file) } catch let e as LoadError {
            throw ConfigError(ConfigFile.name(url, setting) + ": " + e.description)
        }
    }

    /// Day number (days since 1970-01-01, local) of an instant.
    public func localDay(_ t: Instant) -> Int64 { floorDiv(Self.clamped(t) + offsetMs, CivilDate.msPerDay) }

    /// `t` (ms) held within ±`walkableMs`: instants read from messages may be anywhere in Int64,
    /// and the calendar's day arithmetic must not overflow on them.
    static func clamped(_ t: Instant) -> Int64 { min(max(t.ms, -walkableMs), walkableMs) }

    public func isWorkingDay(_ day: Int64) -> Bool {
        let k = day &- workingDayTableStart
        if k >= 0 && k < Int64(workingDayTable.count) { return workingDayTable[Int(k)] }
        return Self.isWorkingDay(day, holidays: holidays, workdays: workdays)
    }

    private static func isWorkingDay(_ day: Int64, holidays: Set<Int64>, workdays: Set<Int64>) -> Bool {
        if workdays.contains(day) { return true }
        if holidays.contains(day) { return false }
        let wd = CivilDate(dayNumber: day).weekday
        return wd != 0 && wd != 6
    }

    public func isWorkingDay(_ d: CivilDate) -> Bool { isWorkingDay(d.dayNumber) }

    /// The instant at which `workingMs` of working time has elapsed after `start`. Time outside
    /// working hours does not count, so a submission at 20:00 starts the clock next working morning.
    /// A deadline that lands exactly on a period end stays there (17:30, not 09:00 the next day).
    public func addWorkingTime(_ start: Instant, _ workingMs: Int64) -> Instant {
        // Instants and durations can come from messages: outside ±10,000 years the walk below
        // would overflow, so such an instant only moves by plain (saturating) addition.
        guard start.ms > -Self.walkableMs, start.ms < Self.walkableMs, workingMs < Self.walkableMs else { return start + max(0, workingMs) }
        let local = start.ms + offsetMs
        var day = floorDiv(local, CivilDate.msPerDay)
        var inDay = local - day * CivilDate.msPerDay
        var remaining = max(0, workingMs)
        // Bounded: ten years of days is far beyond any SLA and stops a broken calendar looping.
        for _ in 0..<3660 {
            if isWorkingDay(day) {
                for p in periods {
                    let from = max(p.start, inDay)
                    guard from < p.end else { continue }
                    let available = p.end - from
                    if remaining <= available { return Instant(ms: day * CivilDate.msPerDay + from + remaining - offsetMs) }
                    remaining -= available
                }
            }
            day += 1
            inDay = 0
        }
        return start + workingMs
    }

    /// Instants (ms from the epoch) and durations (ms) the day walk handles: about 10,000 years.
    static let walkableMs: Int64 = 315_569_520_000_000

    /// Working time between two instants (0 when `b <= a`).
    public func workingTime(from a: Instant, to b: Instant) -> Int64 {
        guard a < b else { return 0 }
        let a = Instant(ms: Self.clamped(a)), b = Instant(ms: Self.clamped(b))
        var total: Int64 = 0
        let firstDay = localDay(a), lastDay = localDay(b)
        var day = firstDay
        while day <= lastDay {
            if isWorkingDay(day) {
                let base = day * CivilDate.msPerDay - offsetMs
                for p in periods {
                    let s = max(base + p.start, a.ms), e = min(base + p.end, b.ms)
                    if e > s { total += e - s }
                }
            }
            day += 1
        }
        return total
    }
}
