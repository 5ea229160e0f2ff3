import Adapters
import DepartmentService
import Departments
import Foundation
import Messaging
import SagaEngine

var adapterGroup: CommandGroup { CommandGroup(
    name: "adapter",
    summary: "Run an agency adapter (canonical topics <-> the department's native topics).",
    commands: [AdapterRun.self]) }

var departmentGroup: CommandGroup { CommandGroup(
    name: "department",
    summary: "Run a department simulator on Kafka, or check a department system against the hub's contract.",
    commands: [DepartmentRun.self, DepartmentCheckCommand.self]) }

/// `--agency` for adapter and department commands.
func readAgency(_ args: inout Arguments) throws -> Agency {
    guard let text = try args.option("--agency") else { throw UsageError("--agency is required (\(Agency.allCases.map(\.rawValue).joined(separator: ", ")))") }
    guard let agency = Agency(rawValue: text) else {
        throw UsageError("unknown agency '\(text)'; one of \(Agency.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return agency
}

extension KafkaOptions {
    func connection(clock: HubClock) -> HubConnection {
        var c = HubConnection(bootstrap: bootstrap)
        c.prefix = prefix
        c.partitions = partitions
        c.clock = clock
        c.kafka = properties
        c.security = security
        if let ms = ProcessInfo.processInfo.environment["YISHI_SESSION_TIMEOUT_MS"].flatMap(Int.init) { c.sessionTimeoutMs = ms }
        return c
    }
}

struct AdapterRun: Command {
    static let name = "run"
    static let summary = "translate commands.<agency> to dept.<agency>.requests and replies to events.<agency> (until SIGTERM)"
    static let help = """
        Usage: yishi adapter run --agency AGENCY --bootstrap HOST:PORT [options]

        Runs one agency adapter: exactly-once consume-transform-produce between the hub's
        canonical topics and the department's native ones, driven by
        adapters/<agency>/mapping.json. Instances of one agency share its consumer group
        (<prefix>adapter.<agency>); the transactional id derives from --instance, so a restarted
        instance fences the one it replaces. Logs are JSON lines on standard error.

        Options:
          --agency A             business-registration, seal-engraving, tax, social-security, bank
          --instance ID          stable instance id (env YISHI_INSTANCE, default 1)
          --repository DIR       where adapters/ and schemas/ are (default: the working directory)
        \(KafkaOptions.help)
        \(ClockOptions.help)
        \(HTTPOptions.help)

        Environment: YISHI_SESSION_TIMEOUT_MS (default 10000).
        Exit codes: 0 stopped by signal (SIGTERM/SIGINT: the open transaction finished or aborted, the
        group left, within 10 s), 1 fatal error (mapping, broker, fenced; or the stop hung for 9 s), 2 usage
        or Kafka security settings refused (wrong password, unknown user, untrusted certificate).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let agency = try readAgency(&args)
        let kafka = try KafkaOptions.read(&args)
        let instance = try args.option("--instance") ?? ProcessInfo.processInfo.environment["YISHI_INSTANCE"] ?? "1"
        let repository = URL(fileURLWithPath: try args.option("--repository") ?? FileManager.default.currentDirectoryPath)
        let clock = try ClockOptions.read(&args, env)
        let http = try HTTPOptions.read(&args)
        _ = try args.positionals()
        let service = try AdapterService(agency: agency.rawValue, connection: kafka.connection(clock: clock), instanceId: instance,
                                         repository: repository)
        let endpoints = try HTTPOptions.serve(http, registry: service.metrics.registry, health: service.metrics.health)
        defer { endpoints?.stop() }
        let signals = stopOnSignals { service.stop() }
        defer { withExtendedLifetime(signals) {} }
        try service.run()
        return Exit.ok
    }
}

struct DepartmentRun: Command {
    static let name = "run"
    static let summary = "simulate a department: answer dept.<agency>.requests on dept.<agency>.replies (until SIGTERM)"
    static let help = """
        Usage: yishi department run --agency AGENCY --bootstrap HOST:PORT [options]

        Runs a department simulator as a Kafka service: validation as the real department does it
        (name rules, USCC and ID check digits, ...), latency in working minutes on the hub clock,
        transient faults, idempotency by request id, and an effect ledger. With --state, the books,
        the idempotency memo, the ledger and the replies not yet sent survive a restart.

        Options:
          --agency A             business-registration, seal-engraving, tax, social-security, bank
          --state FILE           checkpoint file (written after every batch, before the offsets are committed)
          --profile P            default (2% transient faults), no-faults, flaky (default: default)
          --seed N               seed of latency and fault sampling (default 2026)
          --reference DIR        reference data (default seeds/departments)
          --calendar NAME        business calendar for latencies (default cn-mainland)
          --instance ID          instance id (default 1)
        \(KafkaOptions.help)
        \(ClockOptions.help)
        \(HTTPOptions.help)

        Exit codes: 0 stopped by signal (SIGTERM/SIGINT: the current batch checkpointed and committed,
        the group left, within 10 s; replies not yet due survive only with --state), 1 fatal error
        (or the stop hung for 9 s), 2 usage or Kafka security settings refused.
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let agency = try readAgency(&args)
        let kafka = try KafkaOptions.read(&args)
        let state = try args.option("--state").map { URL(fileURLWithPath: $0) }
        let profileText = try args.option("--profile") ?? "default"
        guard let preset = DepartmentProfile.Preset(rawValue: profileText) else {
            throw UsageError("unknown --profile '\(profileText)'; one of \(DepartmentProfile.Preset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let seedText = try args.option("--seed") ?? "2026"
        guard let seed = UInt64(seedText) else { throw UsageError("--seed must be a non-negative integer, not '\(seedText)'") }
        let reference = try ReferenceData.load(from: URL(fileURLWithPath: try args.option("--reference") ?? "seeds/departments"))
        let calendar = try BusinessCalendar.load(env.calendarsDir.appendingPathComponent((try args.option("--calendar") ?? "cn-mainland") + ".json"))
        let instance = try args.option("--instance") ?? "1"
        let clock = try ClockOptions.read(&args, env)
        let http = try HTTPOptions.read(&args)
        _ = try args.positionals()
        let service = try DepartmentService(agency: agency, connection: kafka.connection(clock: clock), instanceId: instance,
                                            endpoint: makeDepartment(agency, reference: reference, preset: preset, seed: seed),
                                            calendar: calendar, stateFile: state)
        let endpoints = try HTTPOptions.serve(http, registry: service.metrics.registry, health: service.metrics.health)
        defer { endpoints?.stop() }
        let signals = stopOnSignals { service.stop() }
        defer { withExtendedLifetime(signals) {} }
        try service.run()
        return Exit.ok
    }
}
