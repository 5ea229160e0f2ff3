import Foundation
import SagaEngine
import Operations
import YishiKafka

var dlqGroup: CommandGroup { CommandGroup(
    name: "dlq", summary: "Dead letters: list, inspect, replay to the topic they came from.",
    commands: [ListDeadLetters.self, ShowDeadLetter.self, ReplayDeadLetters.self]) }

var lagGroup: CommandGroup { CommandGroup(
    name: "lag", summary: "Consumer-group lag per topic: the orchestrator on its inputs, each adapter on its commands.",
    commands: [ShowLag.self], defaultCommand: ShowLag.self) }

/// `--class C`, `--topic T` (origin topic, with or without the prefix): which dead letters.
struct DeadLetterFilter {
    var errorClass: String?
    var topic: String?

    static let help = """
          --class C              only this error class (not-json, schema, missing-header, wrong-source, …)
          --topic T              only dead letters from this origin topic (with or without the prefix)
        """

    static func read(_ args: inout Arguments) throws -> DeadLetterFilter {
        DeadLetterFilter(errorClass: try args.option("--class"), topic: try args.option("--topic"))
    }

    var isEmpty: Bool { errorClass == nil && topic == nil }

    func matches(_ e: DeadLetters.Entry, prefix: String) -> Bool {
        if let errorClass, e.errorClass != errorClass { return false }
        if let topic, e.originalTopic != topic, e.originalTopic != prefix + topic { return false }
        return true
    }
}

enum ListDeadLetters: Command {
    static let name = "list"
    static let summary = "every dead letter: origin topic/partition/offset, class, time, key and reason (masked)"
    static let help = """
        Usage: yishi dlq list [--class C] [--topic T] [options]

        Reads <prefix>dlq from the beginning to its end. ID is PARTITION:OFFSET on the DLQ.
        \(DeadLetterFilter.help)

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let filter = try DeadLetterFilter.read(&args)
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let letters = DeadLetters(hub: options.hub)
        let entries = try letters.read().map { DeadLetters.entry($0, detail: false, revealPII: options.revealPII) }
            .filter { filter.matches($0, prefix: options.hub.prefix) }
        try options.recordReveal(sagaIds: [])
        try options.emit(entries) { Render.deadLetters(entries, style: options.style) }
        return Exit.ok
    }
}

enum ShowDeadLetter: Command {
    static let name = "show"
    static let summary = "one dead letter: origin, reason, original headers and payload (masked)"
    static let help = """
        Usage: yishi dlq show ID [options]

        ID is PARTITION:OFFSET as `yishi dlq list` prints it.

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let rest = try args.positionals()
        guard rest.count == 1 else { throw UsageError("expected exactly one dead-letter ID (PARTITION:OFFSET)") }
        let letters = DeadLetters(hub: options.hub)
        let message = try letters.find(rest[0], in: letters.read())
        try options.recordReveal(sagaIds: message.keyString.map { [$0] } ?? [])
        let entry = DeadLetters.entry(message, detail: true, revealPII: options.revealPII)
        try options.emit(entry) { Render.deadLetter(entry, style: options.style) }
        return entry.problem == nil ? Exit.ok : Exit.problems
    }
}

enum ReplayDeadLetters: Command {
    static let name = "replay"
    static let summary = "send dead letters back to their origin topic (original key, value, headers)"
    static let help = """
        Usage: yishi dlq replay ID... [--set-header NAME=VALUE]... [--remove-header NAME]... [options]
               yishi dlq replay --all [--class C] [--topic T] [--dry-run] [options]

        Produces each dead letter's original record (key, value, headers without yishi.dlq.*) to
        the topic it came from, marked yishi.dlq.replayed (the dead letter's position) and
        yishi.dlq.replayed.by (--as). An access record goes to <prefix>ops-audit first. A record
        that fails again comes back to the DLQ with its new origin. Replaying twice sends twice.
          --all                  every dead letter matching --class/--topic
          --dry-run              list what would be replayed; send nothing
          --set-header NAME=VALUE  replace every header NAME of the replayed records with VALUE
                                 (repeatable; names are case-sensitive, as in Kafka), e.g.
                                 --set-header content-type=application/json
          --remove-header NAME   drop every header NAME (repeatable), e.g. --remove-header Content-Type
                                 Repairs are applied before yishi.dlq.replayed is added and are
                                 recorded in the access record (headerChanges).
        \(DeadLetterFilter.help)

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let all = args.flag("--all")
        let dryRun = args.flag("--dry-run")
        let filter = try DeadLetterFilter.read(&args)
        var edits = DeadLetters.HeaderEdits()
        for text in try args.options("--set-header") {
            guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
                throw UsageError("--set-header wants NAME=VALUE, not '\(text)'")
            }
            edits.set.append((String(text[..<eq]), String(text[text.index(after: eq)...])))
        }
        edits.remove = try args.options("--remove-header")
        for name in edits.remove + edits.set.map(\.name) {
            guard !name.isEmpty else { throw UsageError("--remove-header needs a header name") }
            if name.hasPrefix("yishi.dlq.") { throw UsageError("\(name): the yishi.dlq.* headers are the DLQ's own and cannot be edited") }
        }
        let ids = try args.positionals()
        guard all != !ids.isEmpty else { throw UsageError("give dead-letter IDs, or --all (with --class/--topic to narrow)") }
        if !all && !filter.isEmpty { throw UsageError("--class and --topic narrow --all; with IDs, name the ones you want") }
        let letters = DeadLetters(hub: options.hub)
        let messages = try letters.read()
        let chosen = all
            ? messages.filter { filter.matches(DeadLetters.entry($0, detail: false, revealPII: false), prefix: options.hub.prefix) }
            : try ids.map { try letters.find($0, in: messages) }
        let entries = chosen.map { DeadLetters.entry($0, detail: false, revealPII: false) }
        struct Outcome: Encodable { var dryRun: Bool; var replayed: [DeadLetters.Entry] }
        if !dryRun, !chosen.isEmpty {
            let positions = chosen.map { "\($0.topic)[\($0.partition)]@\($0.offset)" }
            try AccessLog(hub: options.hub).record(.dlqReplay, command: options.commandLine, records: positions,
                                                   headerChanges: edits.descriptions)
            _ = try letters.replay(chosen, edits: edits)
        }
        if options.json {
            try printJSONValue(Outcome(dryRun: dryRun, replayed: entries), revealPII: false)
        } else {
            print(Render.deadLetters(entries, style: options.style))
            print(dryRun ? "DRY RUN: \(entries.count) dead letter(s) would be replayed; nothing sent" : "replayed \(entries.count) dead letter(s) to their origin topics")
        }
        return Exit.ok
    }
}

enum ShowLag: Command {
    static let name = "show"
    static let summary = "lag per consumer group and topic"
    static let help = """
        Usage: yishi lag [show] [--group G]... [options]

        For the orchestrator group (on applications, ops, events.*), each adapter group
        <prefix>adapter.<agency> (on commands.<agency> and dept.<agency>.replies) and each department
        gateway group <prefix>dept.<agency> (on dept.<agency>.requests): partitions with a committed offset and
        the lag: the records not yet consumed, counted by reading each partition (read_committed)
        from the group's committed offset to its end, summed over partitions. The hub writes in
        transactions, and each commit marker takes an offset without being a record: counting
        records, an idle group shows 0 (high watermark − committed would show 1 per partition).
        Beyond 20,000 records per partition the rest is estimated from the high watermark and the
        figure is marked ~ (--json: "exact": false). On Tansu 0.6.0 records of aborted
        transactions reach read_committed consumers, so they count there. --group G adds a group;
        its topics are the hub topics where it has committed offsets. --json has every partition.
          --group G              another consumer group (repeatable)

        \(OperatorOptions.help)
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let extra = try args.options("--group")
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let probe = LagProbe(hub: options.hub)
        var rows: [LagProbe.Row] = []
        let agencies = try CatalogueSet.load(directory: env.cataloguesDir).ids
        rows += try probe.lag(probe.knownGroups(agencies: agencies))
        let hubTopics = HubTopics.all(prefix: "", partitions: 1, agencies: agencies).map(\.name)
        for group in extra {
            rows += try probe.lag(group: group, topics: hubTopics).filter { $0.committedPartitions > 0 }
        }
        if options.json {
            struct Report: Encodable { var rows: [LagProbe.Row]; var caveat: String }
            try printJSONValue(Report(rows: rows, caveat: LagProbe.caveat), revealPII: false)
        } else {
            print(Render.lag(rows, style: options.style))
        }
        return Exit.ok
    }
}
