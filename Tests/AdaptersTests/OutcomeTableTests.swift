import FrontDesk
import Foundation
import Messaging
import SagaEngine
import Testing

@Suite("The demo's outcome table (no broker)")
struct OutcomeTableTests {
    /// Rows with Chinese labels (容缺, 办不成事) line up with the others: the count column ends at
    /// the same terminal column on every row (CJK characters take two columns).
    @Test func cjkLabelsLineUp() throws {
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let calendar = try BusinessCalendar.load(repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json"))
        let text = OutcomeReport(trails: [:], expectations: [:], library: library, calendar: calendar).render()
        let rows = text.split(separator: "\n").map(String.init).filter { $0.contains("容缺") || $0.contains("办不成事") || $0.hasPrefix("applications") }
        #expect(rows.count >= 3, "\(text)")
        // These labels hold no digit: the first number on the row is the count; where it ends must agree.
        let ends = try rows.map { line -> Int in
            let match = try #require(line.firstMatch(of: /^[^0-9]*[0-9]+/), "\(line)")
            return displayWidth(String(line[match.range]))
        }
        #expect(Set(ends).count == 1, "\(rows) → \(ends)")
    }
}
