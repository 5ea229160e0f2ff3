import Adapters
import DepartmentService
import Departments
import Foundation
import FrontDesk
import HubHTTP
import Messaging
import Orchestrator
import SagaEngine
import Synchronization
import YishiKafka

var demoGroup: CommandGroup { CommandGroup(
    name: "demo",
    summary: "The one-day 一件事 demo: the whole hub in one process on a virtual clock.",
    commands: [DemoRun.self]) }

var frontdeskGroup: CommandGroup { CommandGroup(
    name: "frontdesk",
    summary: "Submit applications, hand in supplements, report the outcome (the 一窗受理 window).",
    commands: [FrontDeskRun.self]) }

/// What the demo and the front desk share: which applications, when, and on which clock.
struct SimulationOptions {
    var applications: URL
    var manifest: URL
    var limit: Int
    var start: Instant
    var speed: Double
    var everyMs: Int64
    var supplementMinutes: Int
    var timeout: Duration
    /// `--manifest` was given (then it must exist).
    var manifestGiven = false

    static let help = """
          --applications FILE    application forms, one JSON per line (default seeds/applications/applications.jsonl)
          --manifest FILE        expected outcomes (default seeds/applications/manifest.json)
          --limit N              only the first N applications (default all)
          --every SECONDS        virtual seconds between two submissions (default 30)
          --supplement-minutes M working minutes before the applicant hands in a missing material (default 30)
          --timeout SECONDS      give up waiting after this many real seconds (default 240)
        """

    static func read(_ args: inout Arguments) throws -> SimulationOptions {
        func number(_ name: String, _ fallback: String) throws -> Double {
            let text = try args.option(name) ?? fallback
            guard let n = Double(text), n > 0 else { throw UsageError("\(name) must be a positive number, not '\(text)'") }
            return n
        }
        let manifestGiven = args.tokens.contains { $0 == "--manifest" || $0.hasPrefix("--manifest=") }
        var options = SimulationOptions(
            applications: URL(fileURLWithPath: try args.option("--applications") ?? "seeds/applications/applications.jsonl"),
            manifest: URL(fileURLWithPath: try args.option("--manifest") ?? "seeds/applications/manifest.json"),
            limit: try args.option("--limit").map { text in
                guard let n = Int(text), n > 0 else { throw UsageError("--limit must be a positive whole number, not '\(text)'") }
                return n
            } ?? .max,
            start: Instant(rfc3339: "2026-03-02T09:00:00+08:00")!, speed: 720,
            everyMs: Int64(try number("--every", "30") * 1000),
            supplementMinutes: Int(try number("--supplement-minutes", "30")),
            timeout: .seconds(try number("--timeout", "240")))
        options.manifestGiven = manifestGiven
        return options
    }

    /// The application forms. - Throws: `ConfigError` naming the file (`--applications`) and the
    /// line and column of a line that is not JSON.
    func forms() throws -> [JSONValue] {
        let text = String(decoding: try ConfigFile.data(applications, setting: "--applications"), as: UTF8.self)
        var out: [JSONValue] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where out.count < limit {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            if let syntax = ConfigFile.syntaxError(in: Data(line.utf8)) {
                // The scanner counts lines within the one line it was given: report the file's.
                throw ConfigError("\(applications.path) (--applications): line \(n + 1)\(syntax.drop { $0 != "," }) (one JSON form per line)")
            }
            let form = try JSONValue.parse(String(line))
            guard case .object = form else { throw ConfigError("\(applications.path) (--applications): line \(n + 1): not a JSON object") }
            out.append(form)
        }
        return out
    }

    /// The expected outcomes; none when the default manifest is absent.
    /// - Throws: `ConfigError` naming `--manifest` when it is given and missing, or not JSON.
    func expectations() throws -> [String: Expectation] {
        guard FileManager.default.fileExists(atPath: manifest.path) || manifestGiven else { return [:] }
        return try Expectation.load(manifest: manifest)
    }

    /// Reads the forms and the manifest once, so a bad file stops the command before it connects.
    func check() throws {
        _ = try forms()
        _ = try expectations()
    }

    /// The hub's query secret (YISHI_QUERY_SECRET_FILE / YISHI_QUERY_SECRET), nil when unset.
    func querySecret() throws -> Data? {
        do { return try QueryCode.secret(environment: ProcessInfo.processInfo.environment) } catch let e as QueryCode.SecretError {
            throw UsageError(e.description)
        }
    }

    /// Submits, waits with progress, prints the report; exit 0 when the day's targets are met.
    func runFrontDesk(_ desk: FrontDesk, env: Environment, calendar: BusinessCalendar, out: @escaping (String) -> Void) throws -> Int32 {
        let forms = try forms()
        let expectations = try expectations()
        let ids = Set(forms.compactMap { $0["applicationId"]?.stringValue })
        let wall = ContinuousClock.now
        try desk.watch()
        let submitted = Atomic<Int>(0)
        // 受理回执: one line per application with its 进度查询 code, when a query secret is set.
        let querySecret = try querySecret()
        nonisolated(unsafe) let printReceipt = out  // called from the submitting thread only
        desk.submit(forms, from: start, everyMs: everyMs) { [start, everyMs] n in
            submitted.store(n, ordering: .relaxed)
            if let querySecret, let id = forms[n - 1]["applicationId"]?.stringValue {
                printReceipt(Receipt(applicationId: id, acceptedAt: Instant(ms: start.ms + Int64(n - 1) * everyMs), secret: querySecret).line)
            }
        }
        let all = desk.waitForAll(ids, timeout: timeout) { done, total in
            // This run's applications only: the desk also sees sagas of earlier runs on saga-events.
            let completed = desk.sagas.filter { ids.contains($0.key) && $0.value.finished?.status == "completed" }.count
            out(String(format: "[%4.0f s] virtual %@   submitted %3d/%d   finished %3d/%d   completed %3d   other %3d",
                       (ContinuousClock.now - wall).seconds, calendar.localText(desk.connection.clock.now()),
                       submitted.load(ordering: .relaxed), total, done, total, completed, done - completed))
        }
        let seconds = (ContinuousClock.now - wall).seconds
        let trails = desk.sagas.filter { ids.contains($0.key) }
        let report = OutcomeReport(trails: trails, expectations: expectations, library: try env.library(), calendar: calendar)
        out("")
        out("一件事 outcome: \(ids.count) applications in \(String(format: "%.0f", seconds)) s of real time, virtual \(calendar.localText(start)) → \(calendar.localText(desk.connection.clock.now())) (+08:00)")
        out("")
        out(report.render())
        let sample = trails.values.filter { $0.supplements > 0 && $0.finished?.status == "completed" }.min { $0.sagaId < $1.sagaId }
            ?? trails.values.filter { $0.finished?.status == "completed" }.min { $0.sagaId < $1.sagaId }
        if let sample {
            out("")
            out(OutcomeReport.timeline(sample, calendar: calendar))
        }
        out("")
        let met = all && report.onTimeShare >= 0.99 && report.invalidNotRejected.isEmpty
        out(met ? "targets met: ≥ 99 % of valid applications completed within their bundle's SLA; every invalid one rejected naming its field"
                : "targets NOT met" + (all ? "" : " (timed out waiting for \(ids.count - trails.values.filter { $0.finished != nil }.count) sagas)"))
        return met ? Exit.ok : Exit.problems
    }
}

struct FrontDeskRun: Command {
    static let name = "run"
    static let summary = "submit the seed applications on the hub clock, hand in supplements, print the outcome table"
    static let help = """
        Usage: yishi frontdesk run --bootstrap HOST:PORT --clock-start T [options]

        The 一窗受理 window of a multi-process hub: submits every application on the hub's virtual
        clock (the first at the clock start), follows saga-events, hands in a missing material
        when an agency accepts with 容缺, and prints the outcome table when every saga has finished.

        Options:
          --desk NAME            front desk id, the ce_source /frontdesk/NAME (default demo)
        \(SimulationOptions.help)
        \(KafkaOptions.help)
        \(ClockOptions.help)
        \(HTTPOptions.help)

        Exit codes: 0 all finished and targets met, or stopped by SIGTERM/SIGINT (submissions stop, the
        producer is flushed); 1 targets not met or timed out; 2 usage or configuration (a flag, the
        applications or manifest file, a calendar: one line naming it).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let desk = try args.option("--desk") ?? "demo"
        var options = try SimulationOptions.read(&args)
        let kafka = try KafkaOptions.read(&args)
        let clock = try ClockOptions.read(&args, env)
        let http = try HTTPOptions.read(&args)
        _ = try args.positionals()
        // The first application at the hub's now: on a hub that has been running, submitting at
        // --clock-start would stamp them in the past (late on arrival).
        options.start = max(clock.start, clock.now())
        try options.check()
        let calendar = try BusinessCalendar.load(env.calendarsDir.appendingPathComponent("cn-mainland.json"))
        // A refused login or TLS handshake ends the command here, not in a silent retry loop.
        try kafka.connection(clock: clock).checkAccess(clientId: "yishi-frontdesk-\(desk)-check")
        let frontDesk = try FrontDesk(connection: kafka.connection(clock: clock), desk: desk, calendar: calendar,
                                      supplementDelayMinutes: options.supplementMinutes)
        defer { frontDesk.stop() }
        let (registry, health) = frontDeskMetrics(frontDesk)
        let endpoints = try HTTPOptions.serve(http, registry: registry, health: health)
        defer { endpoints?.stop() }
        let signals = stopOnSignals { frontDesk.stop(); exit(Exit.ok) }
        defer { withExtendedLifetime(signals) {} }
        health.ready(true)
        return try options.runFrontDesk(frontDesk, env: env, calendar: calendar) { health.beat(); printLine($0) }
    }
}

struct DemoRun: Command {
    static let name = "run"
    static let summary = "orchestrator, five adapters, five departments and the front desk in one process"
    static let help = """
        Usage: yishi demo run --bootstrap HOST:PORT [options]

        Starts the whole hub in this process on fresh topics (prefix yishi-demo-<time>. unless
        --prefix is given): the orchestrator, the five agency adapters, the five department
        simulators and a front desk. The seed applications are submitted from Monday 2026-03-02
        09:00 on a virtual clock that counts working hours only (1 working hour = 5 s by default),
        progress is printed every second, and at the end the outcome table and one saga's timeline.
        `make demo` runs this against a Tansu broker it starts and stops.

        Options:
          --speed X              virtual seconds per real second (default 720)
          --profile P            departments' failure profile: default, no-faults, flaky (default: default)
        \(SimulationOptions.help)
        \(KafkaOptions.help)
        \(HTTPOptions.help)
                                 (one page: every service's metrics, told apart by the service label;
                                 /healthz and /readyz are the orchestrator's)
        \(DemoReport.help)
          --keep                 after the report, keep the hub (and, under make demo KEEP=1, the broker)
                                 running for the CLI, print the settings to use, until Ctrl-C/SIGTERM

        Exit codes: 0 targets met (≥ 99 % of valid applications completed within their bundle's SLA,
        every invalid one rejected naming its field) or stopped by SIGTERM/SIGINT (every service
        finishes its transaction and leaves its group first) with no service failed, 1 not met or a
        service failed (e.g. the orchestrator refused its partitions), 2 usage or configuration
        (one line naming the flag or file).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        var options = try SimulationOptions.read(&args)
        let speedText = try args.option("--speed") ?? "720"
        guard let speed = Double(speedText), speed > 0 else { throw UsageError("--speed must be a positive number") }
        options.speed = speed
        let profileText = try args.option("--profile") ?? "default"
        guard let preset = DepartmentProfile.Preset(rawValue: profileText) else { throw UsageError("unknown --profile '\(profileText)'") }
        // The default prefix is per run, so a second demo on the same broker starts clean.
        let explicitPrefix = args.tokens.contains { $0 == "--prefix" || $0.hasPrefix("--prefix=") }
            || ProcessInfo.processInfo.environment["YISHI_TOPIC_PREFIX"] != nil
        var kafka = try KafkaOptions.read(&args)
        let http = try HTTPOptions.read(&args)
        let reportPath = try args.option("--report") ?? ".build/demo-sla-report.html"
        let keep = args.flag("--keep")
        _ = try args.positionals()
        try prepareOutputFile(URL(fileURLWithPath: reportPath), setting: "--report")
        try options.check()
        if !explicitPrefix {
            let f = DateFormatter()
            f.dateFormat = "yyyyMMddHHmmss"
            kafka.prefix = "yishi-demo-\(f.string(from: Date()))."
        }
        let repository = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let calendar = try BusinessCalendar.load(env.calendarsDir.appendingPathComponent("cn-mainland.json"))
        // Groups take a few seconds to form on a fresh broker; the clock starts after that, so
        // no virtual time passes while nobody is listening.
        let clock = HubClock(start: options.start, speed: options.speed, wallStart: Date().addingTimeInterval(5), workingHours: calendar)
        var connection = kafka.connection(clock: clock)
        connection.sessionTimeoutMs = 6000
        let quiet = JSONLog.Level.warn
        printLine("yishi demo: broker \(kafka.bootstrap), topics \(kafka.prefix)*, 1 working hour = \(String(format: "%.1f", 3600 / options.speed)) s")

        let admin = try KafkaAdmin(config: connection.clientConfig(clientId: "yishi-demo-admin"))
        let agencies = try CatalogueSet.load(directory: env.cataloguesDir).ids
        try admin.ensureTopics(HubTopics.all(prefix: connection.prefix, partitions: connection.partitions, agencies: agencies))
        var services: [BackgroundService] = []
        var config = OrchestratorConfig(connection: connection, instanceId: "demo", repository: repository)
        config.bundlesDirectory = env.bundlesDir
        config.cataloguesDirectory = env.cataloguesDir
        config.calendarsDirectory = env.calendarsDir
        let orchestrator = try OrchestratorService(config: config, log: JSONLog(component: "orchestrator", minimum: quiet))
        let registry = orchestrator.metrics.registry
        let endpoints = try HTTPOptions.serve(http, registry: registry, health: orchestrator.metrics.health)
        defer { endpoints?.stop() }
        services.append(BackgroundService("orchestrator", run: orchestrator.run, stop: orchestrator.stop))
        let reference = try ReferenceData.load(from: repository.appendingPathComponent("seeds/departments"))
        for agency in agencies.map({ Agency($0) }) {
            let adapter = try AdapterService(agency: agency.rawValue, connection: connection, instanceId: "demo", repository: repository,
                                             log: JSONLog(component: "adapter." + agency.rawValue, minimum: quiet))
            adapter.metrics = KafkaServiceMetrics(service: "adapter." + agency.rawValue, registry: registry, dlqTopic: connection.topic("dlq"))
            services.append(BackgroundService("adapter." + agency.rawValue, run: adapter.run, stop: adapter.stop))
            let department = try DepartmentService(agency: agency, connection: connection, instanceId: "demo",
                                                   endpoint: departmentEndpoint(agency, adapters: env.cataloguesDir, reference: reference,
                                                                                preset: preset, seed: 2026),
                                                   calendar: calendar, stateFile: nil,
                                                   log: JSONLog(component: "dept." + agency.rawValue, minimum: quiet))
            department.metrics = KafkaServiceMetrics(service: "dept." + agency.rawValue, registry: registry, dlqTopic: connection.topic("dlq"))
            services.append(BackgroundService("dept." + agency.rawValue, run: department.run, stop: department.stop))
        }
        let desk = try FrontDesk(connection: connection, desk: "demo", calendar: calendar, supplementDelayMinutes: options.supplementMinutes,
                                 log: JSONLog(component: "frontdesk", minimum: quiet))
        _ = frontDeskMetrics(desk, registry: registry)
        let running = services
        let signals = stopOnSignals {
            desk.stop()
            for s in running { s.stop() }  // each finishes its transaction and leaves its group
            // Stopped by a signal is exit 0 only when no service had failed (e.g. a refused restore).
            let failed = running.compactMap { s in s.failure.map { "\(s.name): \($0)" } }
            for f in failed { printError("yishi demo: \(f)") }
            exit(failed.isEmpty ? Exit.ok : Exit.problems)
        }
        defer { withExtendedLifetime(signals) {} }
        let code = try options.runFrontDesk(desk, env: env, calendar: calendar) { printLine($0) }
        do {
            printLine("")
            printLine(try DemoReport.write(trails: Array(desk.sagas.values), library: try env.library(), env: env, start: options.start,
                                           now: clock.now(), calendar: calendar, path: reportPath))
        } catch { printError("yishi demo: the 督查 report could not be written to \(reportPath): \(plainWords(error))") }
        if keep {
            // The hub goes on (orchestrator, adapters, departments; the front desk's submissions are
            // done): explore it with the CLI from another terminal until SIGINT/SIGTERM.
            let exports = ["YISHI_BOOTSTRAP=\(kafka.bootstrap)", "YISHI_PREFIX=\(kafka.prefix)",
                           "YISHI_CLOCK_START=\(options.start)", "YISHI_CLOCK_SPEED=\(String(format: "%g", options.speed))",
                           "YISHI_CLOCK_WALL_START=\(Int64(clock.wallStart.timeIntervalSince1970 * 1000))",
                           "YISHI_CLOCK_WORKING_HOURS=cn-mainland"]
            printLine("")
            printLine("The broker and the hub keep running (--keep). In another terminal, in this directory:")
            printLine("  export " + exports.joined(separator: " "))
            printLine("  .build/debug/yishi sagas list; .build/debug/yishi cases; .build/debug/yishi lag")
            printLine("Stop both with Ctrl-C here (each service finishes its transaction and leaves its group).")
            while true { Thread.sleep(forTimeInterval: 3600) }
        }
        printLine("")
        printLine("To keep the broker and the hub running for exploring with the CLI: make demo KEEP=1")
        desk.stop()
        for s in services { s.stop() }
        let failures = services.compactMap { s in s.failure.map { "\(s.name): \($0)" } }
        for f in failures { printError("yishi demo: \(f)") }
        return failures.isEmpty ? code : Exit.problems
    }
}

/// The front desk's metrics, read from its saga trails at each scrape:
/// `yishi_frontdesk_sagas_seen` and `yishi_frontdesk_sagas_finished{status}` (gauges: this run's counts).
func frontDeskMetrics(_ desk: FrontDesk, registry: MetricsRegistry = MetricsRegistry()) -> (MetricsRegistry, ServiceHealth) {
    let seen = registry.gauge("yishi_frontdesk_sagas_seen", "Sagas the front desk has seen on saga-events in this run.")
    let finished = registry.gauge("yishi_frontdesk_sagas_finished", "Sagas the front desk has seen finish in this run, by final status.",
                                  labels: ["status"])
    registry.onCollect {
        let trails = desk.sagas
        seen.set(Double(trails.count))
        var byStatus: [String: Int] = [:]
        for trail in trails.values { if let status = trail.finished?.status { byStatus[status, default: 0] += 1 } }
        finished.replace(prefix: [], with: Dictionary(uniqueKeysWithValues: byStatus.map { ([$0.key], Double($0.value)) }))
    }
    return (registry, ServiceHealth())
}

/// Unbuffered, so progress shows when standard output is a pipe.
func printLine(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
