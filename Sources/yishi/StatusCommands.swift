import Foundation
import Messaging
import Operations
import Orchestrator
import SagaEngine

var statusGroup: CommandGroup { CommandGroup(
    name: "status", summary: "One screen for the whole hub: groups and their members, lag, sagas, the operator's queue, dead letters.",
    commands: [HubStatusCommand.self], defaultCommand: HubStatusCommand.self) }

enum HubStatusCommand: Command {
    static let name = "show"
    static let summary = "groups with live members and lag, sagas by status and agency, operator queue, dead letters; exit 1 when something needs attention"
    static let help = """
        Usage: yishi status [show] [--since TIME] [--stall-after N] [options]

        One screen for the whole hub:
          - every hub consumer group (the orchestrator, <prefix>adapter.<agency>,
            <prefix>dept.<agency>, and any other group the broker lists under the prefix) with its
            state and live members (the group coordinator's answer: Kafka ListGroups and
            DescribeGroups) and the records waiting for it (counted as `yishi lag` counts them);
            a group with no live member, or whose committed offsets did not move while records
            wait, is named, with the department or adapter behind it;
          - sagas by status and by the agency they wait on, at-risk and overdue counts, open
            办不成事 cases, paused sagas and held steps (`yishi cases` lists them);
          - dead letters written since --since.
          --since TIME           count dead letters from TIME: RFC 3339, or a span back from now
                                 (30m, 2h, 1d); default 24h
          --stall-after N        a group with members is named when its oldest waiting record has
                                 waited N seconds (wall time) and its offsets do not move (default 10)
        Tansu 0.6.0 lists no group (ListGroups) and keeps a SIGKILLed member registered: there a
        dead process shows through --stall-after, not as a group without members.

        Exit codes: 0 nothing needs attention; 1 something does (each item is printed under
        "Needs attention", and in "attention" of --json); 2 usage; 3 broker or orchestrator
        unreachable.

        \(OperatorOptions.help)
        """

    /// `30m`, `2h`, `1d`, or an RFC 3339 time.
    static func since(_ text: String, now: Date) throws -> Date {
        if let date = RFC3339.parse(text) { return date }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let unit = text.last, let scale = units[unit], let n = Double(text.dropLast()), n >= 0 else {
            throw UsageError("--since must be an RFC 3339 time or a span such as 30m, 2h, 1d; got '\(text)'")
        }
        return now.addingTimeInterval(-n * scale)
    }

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let options = try OperatorOptions.read(&args)
        let from = try since(try args.option("--since") ?? "24h", now: Date())
        let stallText = try args.option("--stall-after") ?? "10"
        guard let stallAfter = Int64(stallText), stallAfter >= 0 else { throw UsageError("--stall-after takes whole seconds, not '\(stallText)'") }
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let library = try env.library()
        var sagas: HubStatus.Sagas?
        var letters: HubStatus.DeadLetterCount?
        var source = SagaSource(hub: options.hub, mode: options.source)
        // Sagas and dead letters are read between the two reads of the groups' committed offsets.
        let agencies = try CatalogueSet.load(directory: env.cataloguesDir).ids
        let groups = try HubStatus.groups(hub: options.hub, agencies: agencies, stallAfter: .seconds(stallAfter)) {
            let page = try source.list(SagaFilter(limit: 10_000), library: library)
            sagas = HubStatus.sagas(page.sagas, more: page.next != nil, library: library, source: source.answeredBy.rawValue)
            letters = HubStatus.deadLetters(try DeadLetters(hub: options.hub).read(), since: from)
        }
        options.notes(source)
        let status = HubStatus(groups: groups, sagas: sagas, deadLetters: letters)
        if options.json {
            try printJSONValue(status, revealPII: false)
        } else {
            print(Render.hubStatus(status, style: options.style))
        }
        return status.needsAttention ? Exit.problems : Exit.ok
    }
}
