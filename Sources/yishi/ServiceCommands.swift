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

/// `--agency` for adapter and department commands: one of the agencies with
/// `<adapters>/<agency>/catalogue.json` (the hub's agency list is the files', not the code's).
func readAgency(_ args: inout Arguments, adapters: URL) throws -> Agency {
    let known = try CatalogueSet.load(directory: adapters).ids
    guard let text = try args.option("--agency") else { throw UsageError("--agency is required (\(known.joined(separator: ", ")))") }
    guard known.contains(text) else {
        throw UsageError("unknown agency '\(text)': no \(adapters.appendingPathComponent(text).appendingPathComponent("catalogue.json").path); one of \(known.joined(separator: ", "))")
    }
    return Agency(text)
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
          --agency A             an agency with adapters/<A>/catalogue.json and mapping.json
                                 (the agency list is the files': see yishi adapters validate)
          --instance ID          stable instance id (env YISHI_INSTANCE, default 1)
          --repository DIR       where adapters/ and schemas/ are (default: the working directory)
        \(KafkaOptions.help)
        \(ClockOptions.help)
        \(HTTPOptions.help)

        Environment: YISHI_SESSION_TIMEOUT_MS (default 10000).
        Exit codes: 0 stopped by signal (SIGTERM/SIGINT: the open transaction finished or aborted, the
        group left, within 10 s), 1 fatal error (mapping, broker, fenced; or the stop hung for 9 s), 2 usage,
        configuration (--repository, its mapping or catalogue: one line naming the file) or Kafka security
        settings refused (wrong password, unknown user, untrusted certificate).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let repository = URL(fileURLWithPath: try args.option("--repository") ?? FileManager.default.currentDirectoryPath)
        try ConfigFile.checkDirectory(repository.appendingPathComponent("adapters"), setting: "--repository (its adapters/)")
        let agency = try readAgency(&args, adapters: repository.appendingPathComponent("adapters"))
        let kafka = try KafkaOptions.read(&args)
        let instance = try args.option("--instance") ?? ProcessInfo.processInfo.environment["YISHI_INSTANCE"] ?? "1"
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
        The five agencies of enterprise-opening v1 have simulators written in Swift; any other
        agency runs the configurable simulator described by adapters/<agency>/department.json
        (docs/departments.md, docs/adding-an-agency.md).

        Options:
          --agency A             an agency with adapters/<A>/catalogue.json
          --repository DIR       where adapters/ is (default: the working directory)
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
        (or the stop hung for 9 s), 2 usage, configuration (--state in a missing or unwritable directory,
        --reference, --calendar: one line naming it) or Kafka security settings refused.
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let repository = URL(fileURLWithPath: try args.option("--repository") ?? FileManager.default.currentDirectoryPath)
        let adapters = repository.appendingPathComponent("adapters")
        let agency = try readAgency(&args, adapters: adapters)
        let kafka = try KafkaOptions.read(&args)
        let state = try args.option("--state").map { URL(fileURLWithPath: $0) }
        // Checked now, not at the first batch: a department that cannot checkpoint must not join its group.
        if let state { try ConfigFile.checkWritable(state, setting: "--state") }
        let profileText = try args.option("--profile") ?? "default"
        guard let preset = DepartmentProfile.Preset(rawValue: profileText) else {
            throw UsageError("unknown --profile '\(profileText)'; one of \(DepartmentProfile.Preset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let seedText = try args.option("--seed") ?? "2026"
        guard let seed = UInt64(seedText) else { throw UsageError("--seed must be a non-negative integer, not '\(seedText)'") }
        let referenceDir = URL(fileURLWithPath: try args.option("--reference") ?? "seeds/departments")
        try ConfigFile.checkDirectory(referenceDir, setting: "--reference")
        for file in ["regions.json", "forbidden-words.json"] { _ = try ConfigFile.json(referenceDir.appendingPathComponent(file), setting: "--reference") }
        let reference: ReferenceData
        do { reference = try ReferenceData.load(from: referenceDir) } catch {
            throw ConfigError("--reference \(referenceDir.path): regions.json or forbidden-words.json: " + plainWords(error))
        }
        let calendarName = try args.option("--calendar") ?? "cn-mainland"
        let calendar = try BusinessCalendar.load(env.calendarsDir.appendingPathComponent(calendarName + ".json"), setting: "--calendar \(calendarName)")
        let instance = try args.option("--instance") ?? "1"
        let clock = try ClockOptions.read(&args, env)
        let http = try HTTPOptions.read(&args)
        _ = try args.positionals()
        let service = try DepartmentService(agency: agency, connection: kafka.connection(clock: clock), instanceId: instance,
                                            endpoint: departmentEndpoint(agency, adapters: adapters, reference: reference, preset: preset, seed: seed),
                                            calendar: calendar, stateFile: state)
        let endpoints = try HTTPOptions.serve(http, registry: service.metrics.registry, health: service.metrics.health)
        defer { endpoints?.stop() }
        let signals = stopOnSignals { service.stop() }
        defer { withExtendedLifetime(signals) {} }
        try service.run()
        return Exit.ok
    }
}
