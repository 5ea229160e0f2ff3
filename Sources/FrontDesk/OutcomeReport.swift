import Foundation
import Messaging
import SagaEngine

/// What the seed manifest says an application should come to.
public struct Expectation: Sendable, Equatable {
    /// `complete`, `rejected` or `supplement-needed`.
    public var expected: String
    public var reason: String?
    /// JSON path into the form of the defect.
    public var field: String?
    /// For a duplicate name: the earlier application that proposed the same name.
    public var duplicateOf: String?

    /// `seeds/applications/manifest.json`'s `applications`.
    public static func load(manifest: URL) throws -> [String: Expectation] {
        let json = try ConfigFile.json(manifest, setting: "--manifest")
        var out: [String: Expectation] = [:]
        for (id, e) in json["applications"]?.objectValue ?? [:] {
            out[id] = Expectation(expected: e["expected"]?.stringValue ?? "complete", reason: e["reason"]?.stringValue,
                                  field: e["field"]?.stringValue, duplicateOf: e["duplicateOf"]?.stringValue)
        }
        return out
    }

    /// Two applications proposing one name: the registry grants it to whichever request reaches it
    /// first. The manifest expects submission order, but the hub orders messages per application
    /// only (the saga id is the key), so after an outage the later one can win. Where that happened
    /// the two expectations swap; the swapped pairs (winner, loser) are returned so that a report
    /// can show them.
    public static func settlingNameRaces(_ expectations: [String: Expectation], trails: [String: SagaTrail])
        -> (expectations: [String: Expectation], reordered: [(winner: String, loser: String)]) {
        var out = expectations
        var reordered: [(String, String)] = []
        for (later, e) in expectations.sorted(by: { $0.key < $1.key }) {
            guard e.reason == "duplicate-name", let earlier = e.duplicateOf,
                  trails[later]?.finished?.status == "completed",
                  trails[earlier]?.rejection?.detail.hasPrefix("NAME_CONFLICT") == true else { continue }
            out[earlier] = Expectation(expected: "rejected", reason: e.reason, field: e.field, duplicateOf: later)
            out[later] = Expectation(expected: "complete")
            reordered.append((later, earlier))
        }
        return (out, reordered)
    }
}

/// The demo's outcome: what happened to every application, measured on the business calendar.
public struct OutcomeReport: Sendable {
    public struct Rejection: Sendable, Equatable {
        public var sagaId: String
        public var step: String
        public var code: String
        /// The form field at fault (`$.legalRepresentative.idNumber`), when the agency named one.
        public var field: String?
        public var reason: String
    }

    public var total = 0
    public var valid = 0
    public var completedInTime = 0
    public var completedLate = 0
    public var validNotCompleted: [String] = []
    public var supplemented = 0
    public var supplementExpected = 0
    public var invalid = 0
    public var rejections: [Rejection] = []
    /// Invalid applications not rejected with a named field (should be empty).
    public var invalidNotRejected: [String] = []
    public var manualCases: [(sagaId: String, step: String, detail: String)] = []
    /// Name races the later application won (see `Expectation.settlingNameRaces`).
    public var nameRacesReordered: [(winner: String, loser: String)] = []
    public var endToEndHours: [Double] = []
    public var stepHours: [String: [Double]] = [:]
    public var stepAgency: [String: String] = [:]
    public var stepOrder: [String] = []
    /// Sagas per bundle version (`enterprise-opening v2`: new sagas get the newest version,
    /// running ones keep theirs), with how many completed.
    public var bundleVersions: [(bundle: String, sagas: Int, completed: Int)] = []

    /// Share of valid applications completed within their bundle's SLA (`sla.workingDays` of the
    /// version the saga ran; one working day when the bundle is unknown), 0…1.
    public var onTimeShare: Double { valid == 0 ? 0 : Double(completedInTime) / Double(valid) }

    public init(trails: [String: SagaTrail], expectations: [String: Expectation], library: BundleLibrary, calendar: BusinessCalendar) {
        let dayMs = Double(calendar.workingMsPerDay)
        let (expectations, reordered) = Expectation.settlingNameRaces(expectations, trails: trails)
        nameRacesReordered = reordered
        for (id, trail) in trails.sorted(by: { $0.key < $1.key }) {
            total += 1
            let version = "\(trail.bundleId ?? "?") v\(trail.bundleVersion.map(String.init) ?? "?")"
            if let i = bundleVersions.firstIndex(where: { $0.bundle == version }) {
                bundleVersions[i].sagas += 1
                if trail.finished?.status == "completed" { bundleVersions[i].completed += 1 }
            } else {
                bundleVersions.append((version, 1, trail.finished?.status == "completed" ? 1 : 0))
            }
            let expected = expectations[id] ?? Expectation(expected: "complete")
            let bundle = library.bundles.first { trail.bundleId == $0.id && trail.bundleVersion == $0.version }
            let hours: Double? = {
                guard let s = trail.submittedAt, let f = trail.finished, f.status == "completed" else { return nil }
                return Double(calendar.workingTime(from: s, to: f.at)) / 3_600_000
            }()
            if let hours { endToEndHours.append(hours) }
            for span in trail.stepSpans {
                stepHours[span.step, default: []].append(Double(calendar.workingTime(from: span.dispatched, to: span.succeeded)) / 3_600_000)
                if let step = bundle?.definition.steps.first(where: { $0.id == span.step }) {
                    stepAgency[span.step] = step.agency
                    if !stepOrder.contains(span.step) { stepOrder.append(span.step) }
                }
            }
            manualCases += trail.manualCases.map { (id, $0.step, $0.detail) }
            if trail.supplements > 0, trail.finished?.status == "completed" { supplemented += 1 }
            if expected.expected == "supplement-needed" { supplementExpected += 1 }
            if expected.expected == "rejected" {
                invalid += 1
                if let r = trail.rejection {
                    let rejection = Self.rejection(id, r.step, r.detail, bundle: bundle)
                    rejections.append(rejection)
                    if rejection.field == nil || trail.finished?.status == "completed" { invalidNotRejected.append(id) }
                } else {
                    invalidNotRejected.append(id)
                }
                continue
            }
            valid += 1
            if let hours {
                // Each bundle's own SLA (working time on the calendar), not a fixed day.
                let limit = bundle.map { Double($0.slaWorkingMs) } ?? dayMs
                if hours * 3_600_000 <= limit { completedInTime += 1 } else { completedLate += 1 }
            } else {
                validNotCompleted.append(id)
            }
        }
    }

    /// Splits the engine's `CODE: reason (field)` and maps the step input field back to the form.
    static func rejection(_ sagaId: String, _ step: String, _ detail: String, bundle: CompiledBundle?) -> Rejection {
        var code = detail, reason = "", field: String?
        if let colon = detail.range(of: ": ") {
            code = String(detail[..<colon.lowerBound])
            reason = String(detail[colon.upperBound...])
        }
        if reason.hasSuffix(")"), let open = reason.range(of: " ($.", options: .backwards) {
            let inputField = String(reason[reason.index(open.lowerBound, offsetBy: 2)..<reason.index(before: reason.endIndex)])
            reason = String(reason[..<open.lowerBound])
            field = formPath(of: inputField, step: step, bundle: bundle) ?? inputField
        }
        return Rejection(sagaId: sagaId, step: step, code: code, field: field, reason: reason)
    }

    /// `$.legalRepresentative.idNumber` of step `registration` → the form path its mapping reads
    /// (`$.legalRepresentative.idNumber` of the form), through the bundle's input mapping.
    static func formPath(of inputField: String, step: String, bundle: CompiledBundle?) -> String? {
        guard let mapping = bundle?.definition.steps.first(where: { $0.id == step })?.input else { return nil }
        var parts = inputField.dropFirst(2).split(separator: ".").map(String.init)
        guard !parts.isEmpty else { return nil }
        var node: JSONValue? = mapping[parts.removeFirst().split(separator: "[").first.map(String.init) ?? ""]
        var rest = parts
        while let n = node, case .object = n, !rest.isEmpty { node = n[rest.removeFirst()] }
        guard let source = node?.stringValue, source.hasPrefix("$.form") else { return nil }
        // Below an array element (`shareholders[1].idNumber`) the rest of the path follows the source.
        let suffix = inputField.dropFirst(2).split(separator: ".", maxSplits: 1).first.map { first in
            first.contains("[") ? String(first[first.firstIndex(of: "[")!...]) : ""
        } ?? ""
        return "$" + source.dropFirst("$.form".count) + suffix + (rest.isEmpty ? "" : "." + rest.joined(separator: "."))
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
    }

    /// The table people read.
    public func render() -> String {
        func row(_ label: String, _ count: Int, _ note: String = "") -> String {
            label.padded(toWidth: 44) + String(count).leftPad(6) + (note.isEmpty ? "" : "   " + note)
        }
        func pct(_ n: Int, _ of: Int) -> String { of == 0 ? "" : String(format: "%5.1f %%", 100 * Double(n) / Double(of)) }
        var lines: [String] = []
        lines.append(row("applications", total))
        lines.append(row("  valid", valid))
        lines.append(row("    completed within their SLA", completedInTime, pct(completedInTime, valid)))
        lines.append(row("    completed, later than their SLA", completedLate, pct(completedLate, valid)))
        lines.append(row("    not completed", validNotCompleted.count, validNotCompleted.prefix(5).joined(separator: " ")))
        lines.append(row("    of which 容缺, done after a supplement", supplemented, "(manifest: \(supplementExpected))"))
        lines.append(row("  invalid", invalid))
        lines.append(row("    rejected, reason names the field", invalid - invalidNotRejected.count, pct(invalid - invalidNotRejected.count, invalid)))
        if !nameRacesReordered.isEmpty {
            lines.append(row("    name races won by the later application", nameRacesReordered.count,
                             nameRacesReordered.map { "\($0.winner) over \($0.loser)" }.joined(separator: ", ")))
        }
        lines.append(row("manual cases (办不成事)", manualCases.count))
        lines.append("")
        lines.append(String(format: "end to end, completed (working hours)   p50 %.2f   p95 %.2f   max %.2f",
                            Self.percentile(endToEndHours, 0.5), Self.percentile(endToEndHours, 0.95), endToEndHours.max() ?? 0))
        lines.append("")
        lines.append("bundle version".padded(toWidth: 44) + "sagas".leftPad(6) + "completed".leftPad(11))
        for b in bundleVersions.sorted(by: { $0.bundle < $1.bundle }) {
            lines.append(b.bundle.padded(toWidth: 44) + String(b.sagas).leftPad(6) + String(b.completed).leftPad(11))
        }
        lines.append("")
        lines.append("step".padded(toWidth: 24) + "agency".padded(toWidth: 24)
                     + "done".leftPad(6) + "p50 h".leftPad(8) + "p95 h".leftPad(8))
        for step in stepOrder {
            let h = stepHours[step] ?? []
            lines.append(step.padded(toWidth: 24) + (stepAgency[step] ?? "").padded(toWidth: 24)
                         + String(h.count).leftPad(6) + String(format: "%8.2f%8.2f", Self.percentile(h, 0.5), Self.percentile(h, 0.95)))
        }
        if !rejections.isEmpty {
            lines.append("")
            lines.append("rejected: application, step, code, field, reason")
            for r in rejections {
                lines.append("  \(r.sagaId)  \(r.step.padded(toWidth: 17)) \(r.code.padded(toWidth: 21)) \((r.field ?? "-").padded(toWidth: 31)) \(r.reason)")
            }
        }
        if !manualCases.isEmpty {
            lines.append("")
            lines.append("manual cases: application, step, detail")
            for m in manualCases { lines.append("  \(m.sagaId)  \(m.step)  \(m.detail)") }
        }
        return lines.joined(separator: "\n")
    }

    /// One saga's timeline: every audit event with its instant and working hours since submission.
    public static func timeline(_ trail: SagaTrail, calendar: BusinessCalendar) -> String {
        let start = trail.submittedAt ?? trail.events.first?.at ?? Instant(ms: 0)
        var lines = ["timeline of \(trail.sagaId) (\(trail.bundleId ?? "?") v\(trail.bundleVersion ?? 0)); hours are working hours since submission"]
        for e in trail.events where e.kind != .inputIgnored {
            let hours = Double(calendar.workingTime(from: start, to: e.at)) / 3_600_000
            let step = (e.step ?? "").padded(toWidth: 18)
            let attempt = e.attempt.map { "#\($0)" } ?? ""
            lines.append("  \(calendar.localText(e.at))  \(String(format: "%5.2f h", hours))  \(step) \(e.kind.rawValue)\(attempt.isEmpty ? "" : " " + attempt)\(e.detail.map { "  " + $0 } ?? "")")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
