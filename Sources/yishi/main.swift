import Foundation
import Messaging
import Operations
import YishiKafka

// yishi: the operators' and integrators' command line. Each command group registers here;
// later groups (sagas, cases, dlq, lag, orchestrator, demo) are added to this table.
let groups: [CommandGroup] = [demoGroup, statusGroup, sagasGroup, progressGroup, casesGroup, dlqGroup, lagGroup, reportGroup, auditGroup, bundlesGroup,
                              adaptersGroup, orchestratorGroup, adapterGroup, departmentGroup, frontdeskGroup, hubGroup]

let groupWidth = (groups.map(\.name.count).max() ?? 0) + 2

let topHelp = """
    Usage: yishi <group> <command> [options]

    Yishi (一事): one application, one saga, five agencies.

    Groups:
    \(groups.map { "  " + $0.name.padding(toLength: groupWidth, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n"))

    Run 'yishi <group> --help' for its commands.

    Exit codes: 0 ok; 1 not found, refused or problems found; 2 usage or configuration (a flag,
    variable, file or directory that cannot work: the one line names it); 3 broker or
    orchestrator unreachable (or no answer in time). Operator commands: docs/cli.md.

    \(Environment.globalOptionsHelp)
    """

@MainActor func main(_ argv: [String]) -> Int32 {
    var args = Arguments(argv)
    let help = args.flag("--help", "-h")
    // Where a usage error sends the reader: the most specific help known so far.
    var helpCommand = "yishi --help"
    do {
        try SecurityOptions.refuseSecrets(in: args.tokens)
        guard let groupName = args.next() else {
            print(topHelp)
            return help ? Exit.ok : Exit.usage
        }
        if groupName == "help" { print(topHelp); return Exit.ok }
        guard let group = groups.first(where: { $0.name == groupName }) else { throw UsageError("unknown command group '\(groupName)'") }
        helpCommand = "yishi \(group.name) --help"
        routeKafkaLog(service: ["orchestrator", "adapter", "department", "frontdesk"].contains(group.name))
        var commandName = args.tokens.first.flatMap { name in group.commands.contains { $0.name == name } ? name : nil }
        if commandName != nil {
            _ = args.next()
        } else if let fallback = group.defaultCommand {
            commandName = fallback.name  // `yishi lag`, `yishi cases --json`
        } else {
            guard let next = args.next() else {
                print(group.help)
                return help ? Exit.ok : Exit.usage
            }
            commandName = next
        }
        guard let commandName, let command = group.commands.first(where: { $0.name == commandName }) else {
            throw UsageError("unknown command '\(groupName) \(commandName ?? "")'")
        }
        if help { print(command.help); return Exit.ok }
        helpCommand = "yishi \(group.name) \(command.name) --help"
        let env = try Environment.read(&args)
        return try command.run(&args, env)
    } catch let e as OperationsError {
        printError("yishi: \(e)")
        return e.exitCode
    } catch let e as KafkaSecurityError {
        printError("yishi: Kafka security settings: \(e.message)")
        return Exit.usage
    } catch let e as KafkaError where e.kind == .authentication || (e.isConfiguration && e.isSecurityProperty) {
        printError("yishi: \(e)")
        return Exit.usage
    } catch let e as UsageError {
        printError("yishi: \(e.message) (see '\(helpCommand)')")
        return Exit.usage
    } catch {
        if let problem = configurationProblem(error) {
            printError("yishi: \(problem)")
            return Exit.usage
        }
        printError("yishi: \(plainWords(error))")
        return Exit.problems
    }
}

/// librdkafka's own log lines: into a service's JSON log (component `librdkafka`, its FAIL and
/// other error lines as warnings), dropped for operator commands, whose one-line message says
/// what failed. No raw `%3|…|FAIL|…` line reaches an operator's terminal.
func routeKafkaLog(service: Bool) {
    guard service else { KafkaLog.quiet(); return }
    let log = JSONLog(component: "librdkafka")
    KafkaLog.route { level, facility, client, message in
        log.write(level <= 4 ? .warn : level <= 6 ? .info : .debug, message, ["facility": facility, "client": client])
    }
}

extension KafkaError {
    /// A rejected `security.protocol`, `sasl.*` or `ssl.*` property (e.g. an unreadable CA file).
    var isSecurityProperty: Bool {
        guard case .configuration(let property) = kind else { return false }
        return property.hasPrefix("ssl") || property.hasPrefix("sasl") || property.hasPrefix("security") || message.contains("ssl.")
    }
}

exit(main(Array(CommandLine.arguments.dropFirst())))
