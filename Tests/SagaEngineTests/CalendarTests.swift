import Foundation
import Testing
@testable import SagaEngine

@Suite struct CalendarTests {
    let oneDay = calendar.workingMsPerDay

    @Test func workingDayIsSevenHours() {
        #expect(oneDay == 7 * 3_600_000)  // 09:00–12:00 and 13:30–17:30
        #expect(calendar.years == 2025...2027)
        #expect(calendar.provisionalYears == [2027])
    }

    @Test(arguments: [
        // Ordinary Monday morning: 7 working hours later is Tuesday, same time.
        ("2026-03-02T09:15:00+08:00", "2026-03-03T09:15:00+08:00"),
        // Friday 16:00 before the National Day break, with Sunday 2026-09-20 an adjusted working day (调休).
        ("2026-09-18T16:00:00+08:00", "2026-09-20T16:00:00+08:00"),
        // Thursday 16:00 before May Day (05-01…05-05 off): the clock resumes on Wednesday.
        ("2026-04-30T16:00:00+08:00", "2026-05-06T16:00:00+08:00"),
        // Friday before the Spring Festival: Saturday 02-14 is a working day, then 02-15…02-23 are off.
        ("2026-02-13T16:00:00+08:00", "2026-02-14T16:00:00+08:00"),
        ("2026-02-14T16:00:00+08:00", "2026-02-24T16:00:00+08:00"),
        // 2025: Friday 01-24, Sunday 01-26 is a 调休 working day.
        ("2025-01-24T16:00:00+08:00", "2025-01-26T16:00:00+08:00"),
        // Last day before the 8-day 2025 National Day / Mid-Autumn break.
        ("2025-09-30T16:00:00+08:00", "2025-10-09T16:00:00+08:00"),
        // After hours: the clock starts next working morning and ends exactly at closing time.
        ("2026-03-02T20:00:00+08:00", "2026-03-03T17:30:00+08:00"),
        // Lunch break does not count.
        ("2026-03-02T12:30:00+08:00", "2026-03-03T12:00:00+08:00"),
        // Provisional 2027: Friday before Qingming (Monday 04-05).
        ("2027-04-02T16:00:00+08:00", "2027-04-06T16:00:00+08:00"),
        // Same instant written in UTC.
        ("2026-03-02T01:15:00Z", "2026-03-03T09:15:00+08:00"),
    ])
    func oneWorkingDayDeadline(submitted: String, deadline: String) {
        let got = calendar.addWorkingTime(at(submitted), oneDay)
        #expect(got == at(deadline), "got \(got)")
        #expect(calendar.workingTime(from: at(submitted), to: got) == oneDay)
    }

    @Test func workingDaysHolidaysAndAdjustedDays() {
        func day(_ s: String) -> Bool { calendar.isWorkingDay(CivilDate(s)!) }
        #expect(day("2025-01-26") && day("2026-10-10") && day("2026-01-04"))        // 调休 weekend days
        #expect(!day("2025-10-08") && !day("2026-02-23") && !day("2026-01-02"))    // holidays on weekdays
        #expect(!day("2026-03-07") && day("2026-03-06"))                           // plain Saturday / Friday
        #expect(!day("2027-05-04") && !day("2027-10-05"))                          // provisional make-up days
        #expect(day("2028-06-01") && !day("2028-06-03"))                           // beyond the file: weekends only
    }

    @Test func holidayCountsMatchTheNotices() throws {
        let f = try JSONDecoder().decode(CalendarFile.self, from: Data(contentsOf: repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json")))
        func days(_ y: Int) -> Int {
            f.years.first { $0.year == y }!.holidays.reduce(0) { $0 + Int(CivilDate($1.to)!.dayNumber - CivilDate($1.from)!.dayNumber) + 1 }
        }
        #expect(days(2025) == 28)
        #expect(days(2026) == 33)
        #expect(f.years.map(\.status) == ["published", "published", "provisional"])
    }

    @Test func instantsAndDates() {
        #expect(at("2026-03-02T09:15:00+08:00").ms == 1_772_414_100_000)
        #expect(at("2026-03-02T09:15:00.250+08:00").ms == 1_772_414_100_250)
        #expect(at("2026-03-02T09:15:00+08:00").description == "2026-03-02T09:15:00+08:00")
        #expect(Instant(rfc3339: "2026-03-02 09:15") == nil)
        #expect(Instant(rfc3339: "2026-03-02 09:15:00+08:00") == Instant(rfc3339: "2026-03-02T09:15:00+08:00"))
        #expect(Instant(rfc3339: "2026-02-29T09:15:00+08:00") == nil && Instant(rfc3339: "2026-03-02T09:15:00+08:60") == nil)
        #expect(Instant(rfc3339: "2016-12-31T23:59:60Z")?.ms == 1_483_228_799_999)
        #expect(CivilDate("2026-02-29") == nil)
        #expect(CivilDate("2026-09-20")!.weekday == 0)
        #expect(DurationText.parse("90s") == 90_000 && DurationText.parse("1.5h") == nil && DurationText.parse("0m") == nil)
        #expect(DurationText.format(5_400_000) == "90m")
    }
}
