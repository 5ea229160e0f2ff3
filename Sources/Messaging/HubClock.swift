import Foundation
import SagaEngine

/// The hub's notion of now. Real time in production; in demos and tests a
/// virtual clock runs `speed` times faster from a chosen start, so a working
/// day passes in seconds. Time reaches the engine only as input instants.
///
/// With a business calendar the virtual clock counts working time only: nights,
/// weekends and holidays pass in an instant, so a simulated week of 一件事 work
/// is not spent waiting for mornings. Every process of one hub must use the same
/// start, speed, wall start and calendar.
public struct HubClock: Sendable {
    public let start: Instant
    public let speed: Double
    public let wallStart: Date
    /// When set, virtual time advances through this calendar's working hours only.
    public let workingHours: BusinessCalendar?

    public static var real: HubClock { HubClock(start: Instant(ms: Int64(Date().timeIntervalSince1970 * 1000)), speed: 1) }

    public init(start: Instant, speed: Double, wallStart: Date = Date(), workingHours: BusinessCalendar? = nil) {
        self.start = start
        self.speed = speed
        self.wallStart = wallStart
        self.workingHours = workingHours
    }

    public func now() -> Instant {
        let elapsed = Int64(Date().timeIntervalSince(wallStart) * 1000 * speed)
        guard let calendar = workingHours else { return Instant(ms: start.ms + elapsed) }
        return calendar.addWorkingTime(start, max(0, elapsed))
    }
}

extension Instant {
    /// The same instant as a Foundation date (for `ce_time`).
    public var date: Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
