import Foundation

extension Render {
    /// `yishi status` as text: groups table, sagas, dead letters, and what needs attention.
    public static func hubStatus(_ s: HubStatus, style: Style) -> String {
        var out: [String] = []
        var table = Table(["GROUP", "ROLE", "STATE", "MEMBERS", "WAITING", "NOTE"])
        for g in s.groups {
            let role = g.role + (g.agency.map { " \($0)" } ?? "")
            let members = g.members.isEmpty ? "0" : "\(g.members.count) (\(g.members.map(\.label).joined(separator: ", ")))"
            let note = g.members.isEmpty && g.role != "other" ? "no live member"
                : (g.stalled ? "not consuming for \(g.oldestWaitingSeconds ?? 0) s" : "")
            table.add([Cell(g.group), Cell(role), Cell(g.state), Cell(members, g.members.isEmpty ? .red : nil),
                       Cell((g.lagExact ? "" : "~") + String(g.lag), g.lag > 0 ? .yellow : nil), Cell(note, .red)])
        }
        out.append(style.paint("Consumer groups", .bold))
        out.append(table.render(style))
        if let q = s.sagas {
            out.append("")
            out.append(style.paint("Sagas", .bold) + " (\(q.total)\(q.more ? "+, first 10000 read" : ""); source: \(q.source))")
            let statuses = q.byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: " · ")
            out.append("  by status       " + (statuses.isEmpty ? "none" : statuses))
            let agencies = q.waitingOnAgency.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: " · ")
            out.append("  waiting on      " + (agencies.isEmpty ? "no agency" : agencies))
            out.append("  SLA             \(q.atRisk) at risk · \(q.overdue) overdue")
            out.append("  operator queue  \(q.manualCases) 办不成事 case(s) · \(q.pausedSagas) paused saga(s) · \(q.heldSteps) held step(s) · \(q.waitingSupplement) 容缺 step(s) waiting for the applicant")
        }
        if let d = s.deadLetters {
            let topics = d.byOriginTopic.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: " · ")
            out.append("")
            out.append(style.paint("Dead letters", .bold) + " since \(d.since): \(d.count)" + (topics.isEmpty ? "" : " (\(topics))"))
        }
        out.append("")
        if s.attention.isEmpty {
            out.append(style.paint("Nothing needs attention.", .green))
        } else {
            out.append(style.paint("Needs attention", .red))
            for line in s.attention { out.append("  - " + line) }
        }
        out.append(style.paint("WAITING = records not yet consumed by the group (transaction markers not counted; ~ = estimate)", .dim))
        return out.joined(separator: "\n")
    }
}
