import Foundation
import Testing
@testable import SagaEngine

/// Instants and durations can arrive in messages (an audit event's `at`, a department's
/// latency, a bundle's duration text): calendar and duration arithmetic on any Int64 answers
/// instead of trapping (issue 10, kind 2).
@Suite struct ArithmeticOverflowTests {
    @Test("addWorkingTime with a huge duration or a far instant saturates, no trap")
    func addWorkingTimeHuge() {
        let start = at("2026-03-02T09:00:00+08:00")
        #expect(calendar.addWorkingTime(start, .max).ms == .max)
        #expect(calendar.addWorkingTime(Instant(ms: .max), 60_000).ms == .max)
        #expect(calendar.addWorkingTime(Instant(ms: .max - 5), 3_600_000).ms == .max)
        #expect(calendar.addWorkingTime(Instant(ms: .min), 60_000).ms == Int64.min + 60_000)
        // Ordinary values are unchanged: one working hour from Monday 09:00 is 10:00.
        #expect(calendar.addWorkingTime(start, 3_600_000) == at("2026-03-02T10:00:00+08:00"))
    }

    @Test("instant + duration saturates at the ends of Int64")
    func instantPlus() {
        #expect((Instant(ms: .max - 1) + 10).ms == .max)
        #expect((Instant(ms: .min + 1) + -10).ms == .min)
        #expect((Instant(ms: 5) + 10).ms == 15)
    }

    @Test("far instants print and count working time without trapping")
    func farInstants() {
        #expect(!Instant(ms: .max).description.isEmpty)
        #expect(!Instant(ms: .min).description.isEmpty)
        #expect(!calendar.localText(Instant(ms: .max)).isEmpty)
        _ = calendar.localDay(Instant(ms: .min))
        #expect(calendar.workingTime(from: Instant(ms: .max - 10), to: Instant(ms: .max)) == 0)
    }

    @Test("a duration that overflows milliseconds is not a duration")
    func durationOverflow() {
        #expect(DurationText.parse("999999999999d") == nil)
        #expect(DurationText.parse("999999999999m") == 59_999_999_999_940_000)
        #expect(DurationText.parse("2d") == 172_800_000)
    }
}
