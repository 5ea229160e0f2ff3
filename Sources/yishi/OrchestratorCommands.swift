import Dispatch
import Foundation
import YishiKafka
import Messaging
import Orchestrator
import SagaEngine

var orchestratorGroup: CommandGroup { CommandGroup(
    name: "orchestrator",
    summary: "Run the saga orchestrator on Kafka.",
    commands: [OrchestratorRun.self]) }

/// Connection settings shared by the commands that talk to Kafka.
struct KafkaOptions {
    var bootstrap: String
    var prefix: String
    var partitions: Int32
    /// Extra librdkafka properties (`--kafka-property`), e.g. `message.max.bytes` to match the broker.
    var properties: [String: String] = [:]
    /// SASL/TLS settings of every client the command creates.
    var security: KafkaSecurity = .none

    static let help = """
          --bootstrap HOST:PORT  Kafka bootstrap servers (env YISHI_BOOTSTRAP; required)
          --prefix P             topic prefix (env YISHI_TOPIC_PREFIX, default yishi.)
          --partitions N         partitions of saga-keyed topics (env YISHI_PARTITIONS, default 6)
          --kafka-property K=V   a librdkafka property for every client of the service (repeatable), e.g.
                                 message.max.bytes=1000000: the largest record it writes; bigger results are
                                 dead-lettered (too-large), operator lists paged
        \(SecurityOptions.help)
        """

    static func read(_ args: inout Arguments) throws -> KafkaOptions {
        let env = ProcessInfo.processInfo.environment
        guard let bootstrap = try args.option("--bootstrap") ?? env["YISHI_BOOTSTRAP"] else {
            throw UsageError("--bootstrap (or YISHI_BOOTSTRAP) is required")
        }
        let partitionsText = try args.option("--partitions") ?? env["YISHI_PARTITIONS"] ?? "6"
        guard let partitions = Int32(partitionsText), partitions > 0 else { throw UsageError("--partitions must be a positive number, not '\(partitionsText)'") }
        // Read later by `connection(clock:)`: checked here, so a typo is not silently the default.
        if let text = env["YISHI_SESSION_TIMEOUT_MS"], (Int(text) ?? 0) <= 0 {
            throw UsageError("YISHI_SESSION_TIMEOUT_MS must be a positive whole number of milliseconds, not '\(text)'")
        }
        var properties: [String: String] = [:]
        for pair in try args.options("--kafka-property") {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else { throw UsageError("--kafka-property wants KEY=VALUE, not '\(pair)'") }
            let key = String(pair[..<eq])
            // A command line is visible to every user of the machine (ps): secrets come from files or the environment.
            guard !KafkaSecurity.isSecret(key) else {
                throw UsageError("--kafka-property \(key)=***: secrets are not taken from the command line; use --kafka-config FILE or the environment")
            }
            properties[key] = String(pair[pair.index(after: eq)...])
        }
        return KafkaOptions(bootstrap: bootstrap, prefix: try args.option("--prefix") ?? env["YISHI_TOPIC_PREFIX"] ?? "yishi.",
                            partitions: partitions, properties: properties, security: try SecurityOptions.read(&args))
    }
}

/// `--clock-start`, `--clock-speed`, `--clock-wall-start`: the shared virtual clock.
enum ClockOptions {
    static let help = """
          --clock-start T        virtual time at the clock's wall start, RFC 3339 (env YISHI_CLOCK_START; default: real time)
          --clock-speed X        virtual seconds per real second (env YISHI_CLOCK_SPEED, default 1)
          --clock-wall-start MS  real instant (Unix ms) the virtual clock started at (env YISHI_CLOCK_WALL_START;
                                 default now)
          --clock-working-hours CAL  count only the working hours of calendar CAL (e.g. cn-mainland): nights
                                 and holidays pass at once (env YISHI_CLOCK_WORKING_HOURS)
                                 Give every process, and a restarted one, the same clock values.
        """

    static func read(_ args: inout Arguments, _ environment: Environment? = nil) throws -> HubClock {
        let env = ProcessInfo.processInfo.environment
        guard let startText = try args.option("--clock-start") ?? env["YISHI_CLOCK_START"] else {
            if try args.option("--clock-speed") != nil { throw UsageError("--clock-speed needs --clock-start") }
            return .real
        }
        guard let start = Instant(rfc3339: startText) else { throw UsageError("--clock-start: '\(startText)' is not RFC 3339 with an offset") }
        let speedText = try args.option("--clock-speed") ?? env["YISHI_CLOCK_SPEED"] ?? "1"
        guard let speed = Double(speedText), speed > 0 else { throw UsageError("--clock-speed must be a positive number, not '\(speedText)'") }
        var wall = Date()
        if let text = try args.option("--clock-wall-start") ?? env["YISHI_CLOCK_WALL_START"] {
            guard let ms = Double(text) else { throw UsageError("--clock-wall-start must be Unix milliseconds, not '\(text)'") }
            wall = Date(timeIntervalSince1970: ms / 1000)
        }
        var calendar: BusinessCalendar?
        if let name = try args.option("--clock-working-hours") ?? env["YISHI_CLOCK_WORKING_HOURS"] {
            let calendars = environment?.calendarsDir ?? URL(fileURLWithPath: env["YISHI_CALENDARS"] ?? "seeds/calendar")
            calendar = try BusinessCalendar.load(calendars.appendingPathComponent(name + ".json"), setting: "--clock-working-hours \(name)")
        }
        return HubClock(start: start, speed: speed, wallStart: wall, workingHours: calendar)
    }
}

struct OrchestratorRun: Command {
    static let name = "run"
    static let summary = "consume applications, agency events and ops requests; drive the sagas (until SIGTERM)"
    static let help = """
        Usage: yishi orchestrator run --bootstrap HOST:PORT [options]

        Runs one orchestrator instance. Instances with the same --group share the partitions;
        each restores its sagas from the saga-state changelog on assignment. Logs are JSON
        lines on standard error. SIGTERM or SIGINT stops it after the current transaction.
        SIGHUP loads new bundle versions from the bundle directory without a restart (running
        sagas keep theirs; a reload that would remove or change a version running sagas need, or
        that has invalid files, is refused and logged, and the loaded bundles stay).

        Options:
        \(KafkaOptions.help)
          --instance ID          stable instance id; the transactional id derives from it
                                 (env YISHI_INSTANCE, default orchestrator-1)
          --group G              consumer group (default <prefix>orchestrator)
          --session-timeout-ms N how long a vanished instance keeps its partitions (env YISHI_SESSION_TIMEOUT_MS,
                                 default 10000)
          --audit-chain-alg A    hash of the audit chain of sagas it starts: sm3 (GB/T 32905-2016, default) or
                                 sha-256 (env YISHI_AUDIT_CHAIN_ALG); a running saga keeps its chain's (yishi audit verify)
          --log-summary-seconds N  wall seconds between two "summary" log lines (inputs, commits, sagas in
                                 flight, timeouts, … of the interval; env YISHI_LOG_SUMMARY_SECONDS, default 60)
          --triggers             免申即享: consume the trigger topics of bundles with a `trigger` and start one saga per
                                 matching event (env YISHI_TRIGGERS=1; off by default, docs/bundle-format.md)
          --finished-grace D     how long a finished saga stays in the hot state (hub time) before only its summary
                                 is kept in saga-state: 500ms, 90s, 15m, 4h or 3d (env YISHI_FINISHED_GRACE, default 3d)
          --snapshot-interval D  how often the owned live set is written to saga-snapshots (wall time; 0 turns it
                                 off; env YISHI_SNAPSHOT_INTERVAL, default 60s); restore reads the newest one + the tail
        \(ClockOptions.help)
        \(HTTPOptions.help)

        Exit codes: 0 stopped by signal (SIGTERM/SIGINT: the open transaction is finished or aborted,
        the group left, clients closed, within 10 s; if that hangs, exit 1 after 9 s; a second signal
        exits 130 at once); 1 fatal error: invalid bundles, a bundle version that
        running sagas need is missing or was edited in place (checked at start and after every
        rebalance; the message names file, version and saga count), restore failed (broker, timeout; an
        undecodable saga-state record does not fail it: it goes to the DLQ as undecodable-state), broker, fenced;
        2 usage, configuration (a missing --schemas/--catalogues/--calendars directory, a catalogue, calendar
        or schema that cannot be read: one line naming the file, the JSON path or line and column), or Kafka
        security settings refused (wrong password, unknown user, untrusted certificate).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let kafka = try KafkaOptions.read(&args)
        let environment = ProcessInfo.processInfo.environment
        let instance = try args.option("--instance") ?? environment["YISHI_INSTANCE"] ?? "orchestrator-1"
        let clock = try ClockOptions.read(&args, env)
        var connection = kafka.connection(clock: clock)
        if let text = try args.option("--session-timeout-ms") {
            guard let ms = Int(text), ms > 0 else { throw UsageError("--session-timeout-ms must be a positive number") }
            connection.sessionTimeoutMs = ms
        }
        var config = OrchestratorConfig(connection: connection, instanceId: instance,
                                        repository: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        config.bundlesDirectory = env.bundlesDir
        config.cataloguesDirectory = env.cataloguesDir
        config.calendarsDirectory = env.calendarsDir
        config.schemasDirectory = env.schemasDir
        if let group = try args.option("--group") { config.groupId = group }
        if let name = try args.option("--audit-chain-alg") ?? environment["YISHI_AUDIT_CHAIN_ALG"] {
            guard let algorithm = HashAlgorithm(name: name) else { throw UsageError("--audit-chain-alg must be sm3 or sha-256, not '\(name)'") }
            config.auditChainAlgorithm = algorithm
        }
        if let text = try args.option("--log-summary-seconds") ?? environment["YISHI_LOG_SUMMARY_SECONDS"] {
            guard let seconds = Double(text), seconds > 0 else {
                throw UsageError("--log-summary-seconds (or YISHI_LOG_SUMMARY_SECONDS) must be a positive number of seconds, not '\(text)'")
            }
            config.summaryInterval = .milliseconds(Int(seconds * 1000))
        }
        config.triggers = args.flag("--triggers") || environment["YISHI_TRIGGERS"] == "1"
        if let text = try args.option("--finished-grace") ?? environment["YISHI_FINISHED_GRACE"] {
            guard let ms = DurationText.parse(text) else { throw UsageError("--finished-grace must be a duration like 90s, 4h or 3d, not '\(text)'") }
            config.finishedGrace = .milliseconds(ms)
        }
        if let text = try args.option("--snapshot-interval") ?? environment["YISHI_SNAPSHOT_INTERVAL"] {
            if text == "0" { config.snapshotInterval = .zero } else {
                guard let ms = DurationText.parse(text) else { throw UsageError("--snapshot-interval must be 0 or a duration like 30s or 5m, not '\(text)'") }
                config.snapshotInterval = .milliseconds(ms)
            }
        }
        let http = try HTTPOptions.read(&args)
        _ = try args.positionals()

        let service = try OrchestratorService(config: config)
        let endpoints = try HTTPOptions.serve(http, registry: service.metrics.registry, health: service.metrics.health)
        defer { endpoints?.stop() }
        let signals = stopOnSignals { service.stop() }
        let reload = onSignal(SIGHUP) { service.reloadBundles() }
        defer { withExtendedLifetime((signals, reload)) {} }
        try service.run()
        return Exit.ok
    }
}

/// Calls `action` on every delivery of `number` (e.g. SIGHUP), on a global queue.
func onSignal(_ number: Int32, _ action: @escaping @Sendable () -> Void) -> DispatchSourceSignal {
    signal(number, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler(handler: action)
    source.resume()
    return source
}

/// Calls `stop` on SIGINT or SIGTERM (once); a second signal exits at once (130). The service
/// then has `grace` to finish its transaction, leave its group and return; if it does not, the
/// process exits 1 saying so (a supervisor's SIGKILL usually follows 10 s after SIGTERM, and
/// exactly-once processing makes either end safe).
func stopOnSignals(grace: Duration = .seconds(9), _ stop: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        nonisolated(unsafe) var seen = false
        source.setEventHandler {
            if seen { exit(130) }
            seen = true
            JSONLog(component: "signal").info("stopping", ["signal": number == SIGTERM ? "SIGTERM" : "SIGINT"])
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(grace.components.seconds * 1000))) {
                JSONLog(component: "signal").error("graceful stop did not finish within \(grace); exiting 1")
                exit(1)
            }
            stop()
        }
        source.resume()
        return source
    }
}
