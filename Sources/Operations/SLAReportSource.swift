import Foundation
import Messaging
import SagaEngine

/// The period of a report: whole days `from`…`to` (both included) in a calendar's zone.
public struct ReportPeriod: Sendable, Equatable {
    public var from: CivilDate
    public var to: CivilDate

    /// Parses `YYYY-MM-DD` days. Throws `ReportPeriod.Problem` naming the bad option: an
    /// impossible date, or `from` after `to`.
    public init(from: String, to: String) throws {
        guard let f = CivilDate(from) else { throw Problem(message: "--from '\(from)' is not a date (YYYY-MM-DD)") }
        guard let t = CivilDate(to) else { throw Problem(message: "--to '\(to)' is not a date (YYYY-MM-DD)") }
        guard f.dayNumber <= t.dayNumber else { throw Problem(message: "--from \(f) is after --to \(t)") }
        self.from = f
        self.to = t
    }

    public struct Problem: Error, CustomStringConvertible { public var message: String; public var description: String { message } }

    /// True when `instant` falls on one of the period's days in `calendar`'s zone.
    public func contains(_ instant: Instant, on calendar: BusinessCalendar) -> Bool {
        (from.dayNumber...to.dayNumber).contains(calendar.localDay(instant))
    }
}

extension SLAReport {
    /// Groups audit events by saga and pairs each saga with its bundle, calendar, SLA start and
    /// deadline: from its `saga-state` record when there is one, else from its `submitted`
    /// event (instant of receipt; `<bundle> v<version>` in its detail). Sagas whose bundle
    /// version is not in `library`, or with no `submitted` event and no state, are reported in
    /// `skipped` and left out; so are sagas outside `period` or not of `bundle`. A repeated event
    /// (same saga, seq, kind, step and attempt) counts once.
    public static func inputs(events: [AuditEvent], states: [SagaState], library: BundleLibrary, period: ReportPeriod, bundle: String?,
                              skipped: SkipLog) -> [Input] {
        var bySaga: [String: [AuditEvent]] = [:]
        var order: [String] = []
        // An audit event is identified by saga, seq, kind, step and attempt: a record written twice
        // (a producer retry outside a transaction, a topic copied over itself) counts once.
        var seen = Set<String>()
        for e in events {
            guard e.kind == .inputIgnored || seen.insert("\(e.sagaId)/\(e.seq)/\(e.kind.rawValue)/\(e.step ?? "")/\(e.attempt ?? 0)").inserted
            else { continue }
            if bySaga[e.sagaId] == nil { order.append(e.sagaId) }
            bySaga[e.sagaId, default: []].append(e)
        }
        let stateOf = Dictionary(states.map { ($0.sagaId, $0) }, uniquingKeysWith: { _, b in b })
        var out: [Input] = []
        for id in order {
            let trail = bySaga[id]!
            let submitted = trail.first { $0.kind == .submitted }
            var bundleId: String?, version: Int?, start: Instant?, deadline: Instant?
            if let s = stateOf[id], s.status != .new {
                bundleId = s.bundleId; version = s.bundleVersion; start = s.submittedAt; deadline = s.deadline
            } else if let submitted {
                let words = (submitted.detail ?? "").split(separator: " ")
                if words.count >= 2, words[1].hasPrefix("v") {
                    bundleId = String(words[0]); version = Int(words[1].dropFirst().trimmingCharacters(in: CharacterSet(charactersIn: ",")))
                }
                start = submitted.at
            }
            guard let bundleId, let version, let start else {
                if submitted != nil || stateOf[id] != nil { skipped.add("saga \(id): no bundle in its submitted event or state; left out") }
                continue  // events of a saga submitted before the topic's retention: nothing to time from
            }
            if let bundle, bundle != bundleId { continue }
            guard let b = library.bundle(bundleId, version: version), let calendar = library.calendar(for: b) else {
                skipped.add("saga \(id): runs \(bundleId) v\(version), which is not in the bundle directory; left out")
                continue
            }
            guard period.contains(start, on: calendar) else { continue }
            out.append(Input(sagaId: id, bundle: b, calendar: calendar, slaStart: start, deadline: deadline, events: trail))
        }
        return out
    }

    /// Every audit event of `saga-events` (all partitions, in offset order per partition);
    /// records that do not decode are skipped and reported in `skipped`.
    public static func readAudit(hub: Hub, skipped: SkipLog) throws -> [AuditEvent] {
        let topic = hub.topic("saga-events")
        let count = try hub.partitions("saga-events")
        return Changelog.auditEvents(try TopicReader(hub: hub).read(topic: topic, partitions: Array(0..<count)), skipped: skipped)
    }
}
