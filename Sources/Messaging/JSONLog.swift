import Foundation
import Synchronization

/// Structured log lines, one JSON object per line on standard error:
/// `{"ts":"…","level":"info","component":"orchestrator","msg":"assigned",…}`.
/// Every value (and the message) goes through `PersonalData.maskText` on the way out, so no
/// line carries a full ID or mobile number whatever a caller passes (names: callers mask them).
public struct JSONLog: Sendable {
    public enum Level: String, Sendable, Comparable {
        case debug, info, warn, error
        var rank: Int { switch self { case .debug: 0; case .info: 1; case .warn: 2; case .error: 3 } }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }

    public let component: String
    public let minimum: Level
    private let sink: @Sendable (String) -> Void

    public init(component: String, minimum: Level = .info, sink: (@Sendable (String) -> Void)? = nil) {
        self.component = component
        self.minimum = minimum
        self.sink = sink ?? { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    public func debug(_ message: String, _ fields: [String: String] = [:]) { write(.debug, message, fields) }
    public func info(_ message: String, _ fields: [String: String] = [:]) { write(.info, message, fields) }
    public func warn(_ message: String, _ fields: [String: String] = [:]) { write(.warn, message, fields) }
    public func error(_ message: String, _ fields: [String: String] = [:]) { write(.error, message, fields) }

    public func write(_ level: Level, _ message: String, _ fields: [String: String]) {
        guard level >= minimum else { return }
        var object = fields.mapValues(PersonalData.maskText)
        object["ts"] = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!,
                                                   formatOptions: [.withInternetDateTime, .withFractionalSeconds])
        object["level"] = level.rawValue
        object["component"] = component
        object["msg"] = PersonalData.maskText(message)
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        sink(String(decoding: data, as: UTF8.self))
    }
}
