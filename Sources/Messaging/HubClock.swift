import Foundation
import SagaEngine

/// The hub's notion of now. Real time in production; in demos and tests a
/// virtual clock runs `speed` times faster from a chosen start, so a working
/// day passes in seconds. Time reaches the engine only as input instants.
public struct HubClock: Sendable {
    public let start: Instant
    public let speed: Double
    public let wallStart: Date

    public static var real: HubClock { HubClock(start: Instant(ms: Int64(Date().timeIntervalSince1970 * 1000)), speed: 1) }

    public init(start: Instant, speed: Double, wallStart: Date = Date()) {
        self.start = start
        self.speed = speed
        self.wallStart = wallStart
    }

    public func now() -> Instant {
        Instant(ms: start.ms + Int64(Date().timeIntervalSince(wallStart) * 1000 * speed))
    }
}

extension Instant {
    /// The same instant as a Foundation date (for `ce_time`).
    public var date: Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
