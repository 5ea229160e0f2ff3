import Foundation
import Operations

var auditGroup: CommandGroup { CommandGroup(
    name: "audit",
    summary: "Check the tamper-evident audit trail (全程留痕) of the sagas.",
    commands: [AuditVerify.self]) }

enum AuditVerify: Command {
    static let name = "verify"
    static let summary = "recompute each saga's hash chain on saga-events and name the first broken link"
    static let help = """
        Usage: yishi audit verify SAGA... [options]
               yishi audit verify --all [options]

        Every record the orchestrator writes to <prefix>saga-events for a saga carries a link of
        the saga's hash chain: yishi-chain = H(yishi-chain-prev ‖ type 0x00 key 0x00 value), from a
        genesis value derived from the saga id and its bundle version; yishi-chain-alg names H:
        sm3 (GB/T 32905-2016, the default) or sha-256 (FIPS 180-4). The saga's state on
        <prefix>saga-state and the records on <prefix>audit-heads keep the chain's last link and
        length, written in the same transaction as the records.

        This command reads saga-state and audit-heads, then saga-events (the partitions of the
        sagas named, or all with --all), recomputes each chain and reports per saga: intact,
        broken (the first broken link: its position, where it is, and its kind: changed, removed,
        inserted, reordered; a missing tail is "removed"), or unchained (records written before
        the chain existed; such records before a saga's first chained one are counted, not
        broken). Foreign records (no key, no ce_type) and malformed ones (unreadable chain
        headers or heads) are listed with topic, partition and offset, and verification goes on.
        Records written while it reads lie beyond the recorded heads and are noted, not broken.

          --all                  every saga on the topics
        \(OperatorOptions.help)

        Exit codes here: 0 every chain intact (unchained sagas and listed foreign records allowed);
        1 a chain is broken, or a SAGA named has no records; 2 usage; 3 broker unreachable.
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let all = args.flag("--all")
        let ids = try args.positionals()
        if all && !ids.isEmpty { throw UsageError("give SAGA ids or --all, not both") }
        if !all && ids.isEmpty { throw UsageError("name the sagas to verify, or --all") }
        for id in ids where id.isEmpty || id.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw UsageError("not a saga id: \(String(reflecting: id))")
        }
        let skipped = SkipLog()
        let report = try AuditTrailReader(hub: options.hub, skipped: skipped).verify(sagas: all ? nil : ids)
        if options.json {
            try printJSON(report)
        } else {
            print(render(report))
        }
        for note in skipped.all { printError("note: \(note)") }
        return report.ok ? Exit.ok : Exit.problems
    }

    static func render(_ report: AuditVerifier.Report) -> String {
        var lines: [String] = []
        let algorithms = Set(report.sagas.compactMap(\.algorithm)).sorted().joined(separator: ", ")
        lines.append("\(report.sagas.count) saga(s): \(report.intact) intact, \(report.broken) broken, \(report.unchained) unchained"
                     + (algorithms.isEmpty ? "" : " (chain \(algorithms))"))
        for saga in report.sagas where saga.status != .intact || !saga.notes.isEmpty || saga.unchained > 0 {
            var line = "\(saga.status.rawValue.uppercased().padding(toLength: 9, withPad: " ", startingAt: 0)) \(saga.sagaId): "
                + "\(saga.records) record(s), \(saga.verified) link(s) verified"
            if saga.unchained > 0 { line += ", \(saga.unchained) unchained (written before the chain existed)" }
            lines.append(line)
            if let b = saga.firstBreak {
                lines.append("          first broken link: \(b.kind.rawValue) at position \(b.position): \(b.detail)")
            }
            for note in saga.notes { lines.append("          note: \(note)") }
        }
        for id in report.notFound { lines.append("NOT FOUND \(id): no record on saga-events, saga-state or audit-heads") }
        for p in report.problems { lines.append("SKIPPED   \(p.topic)[\(p.partition)]@\(p.offset): \(p.reason)") }
        lines.append(report.ok ? "all chains intact" : "audit trail NOT intact")
        return lines.joined(separator: "\n")
    }
}
