import Foundation
import Messaging
import SagaEngine

var hubGroup: CommandGroup { CommandGroup(
    name: "hub",
    summary: "Start, inspect and stop the whole hub as separate processes (state, logs and PID files in one directory).",
    commands: [HubUp.self, HubProcessStatus.self, HubReload.self, HubDown.self, HubEnv.self]) }

/// What `yishi hub up` started, kept in `<dir>/hub.json`: the shared settings and one entry per
/// process (its name, arguments, PID file and log file). `hub status`, `hub down` and `hub env`
/// read it back.
struct HubLayout: Codable {
    struct Member: Codable {
        /// `orchestrator`, `adapter-<agency>`, `department-<agency>`, `frontdesk`.
        var name: String
        var arguments: [String]
        var log: String
        var pidFile: String
    }
    var bootstrap: String
    var prefix: String
    var partitions: Int32
    /// The shared clock, as every process was given it (nil: real time).
    var clockStart: String?
    var clockSpeed: Double?
    /// Unix ms the virtual clock started at.
    var clockWallStart: Int64?
    var clockWorkingHours: String?
    var members: [Member]

    static func file(in dir: URL) -> URL { dir.appendingPathComponent("hub.json") }

    static func load(_ dir: URL) throws -> HubLayout {
        let file = file(in: dir)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ConfigError("--dir \(dir.path): no hub.json there (start one with `yishi hub up --dir \(dir.path)`)")
        }
        return try ConfigFile.decode(HubLayout.self, from: file, setting: "--dir")
    }

    /// The clock flags every process gets.
    var clockArguments: [String] {
        guard let clockStart else { return [] }
        var a = ["--clock-start", clockStart, "--clock-speed", String(format: "%g", clockSpeed ?? 1)]
        if let clockWallStart { a += ["--clock-wall-start", String(clockWallStart)] }
        if let clockWorkingHours { a += ["--clock-working-hours", clockWorkingHours] }
        return a
    }

    /// The environment that points the operator CLI at this hub (`yishi hub env`).
    var environment: [(String, String)] {
        var e = [("YISHI_BOOTSTRAP", bootstrap), ("YISHI_PREFIX", prefix), ("YISHI_TOPIC_PREFIX", prefix)]
        if let clockStart {
            e.append(("YISHI_CLOCK_START", clockStart))
            e.append(("YISHI_CLOCK_SPEED", String(format: "%g", clockSpeed ?? 1)))
            if let clockWallStart { e.append(("YISHI_CLOCK_WALL_START", String(clockWallStart))) }
            if let clockWorkingHours { e.append(("YISHI_CLOCK_WORKING_HOURS", clockWorkingHours)) }
        }
        return e
    }
}

/// One process of a hub directory as it is now.
struct HubMemberStatus: Codable {
    var name: String
    var pid: Int32?
    /// `running`; `exited` (it ended by itself: its PID file is still there); `stopped` (by
    /// `hub down`: no PID file, a log); `not started`.
    var state: String
    var log: String
    /// The last line of its log (JSON lines: the `msg`), to see why one stopped.
    var lastLog: String?

    var running: Bool { state == "running" }
}

enum HubProcesses {
    /// The running `yishi` binary (children run the same build).
    static var binary: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

    /// Whether `pid` is a live (not zombie) process.
    static func alive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    static func pid(_ member: HubLayout.Member) -> Int32? {
        (try? String(contentsOfFile: member.pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static func lastLine(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 4096 ? size - 4096 : 0)
        let text = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
        guard let line = text.split(separator: "\n").last.map(String.init) else { return nil }
        if let json = try? JSONValue.parse(line), let msg = json["msg"]?.stringValue {
            return [json["level"]?.stringValue, msg, json["error"]?.stringValue].compactMap { $0 }.joined(separator: ": ")
        }
        return line
    }

    static func status(_ layout: HubLayout) -> [HubMemberStatus] {
        layout.members.map { m in
            let pid = pid(m)
            let state = pid.map { alive($0) ? "running" : "exited" }
                ?? (FileManager.default.fileExists(atPath: m.log) ? "stopped" : "not started")
            return HubMemberStatus(name: m.name, pid: pid, state: state, log: m.log, lastLog: lastLine(m.log))
        }
    }

    /// SIGTERM to every running member (front desk first, orchestrator last), then waits up to
    /// `wait` for them to exit; SIGKILL for those still running. Returns what each did.
    static func stop(_ layout: HubLayout, wait: Duration) -> [(name: String, outcome: String)] {
        var outcomes: [(String, String)] = []
        var waiting: [(HubLayout.Member, Int32)] = []
        for m in layout.members.reversed() {
            guard let pid = pid(m), alive(pid) else { outcomes.append((m.name, "not running")); continue }
            kill(pid, SIGTERM)
            waiting.append((m, pid))
        }
        let deadline = ContinuousClock.now + wait
        while waiting.contains(where: { alive($0.1) }), ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.1) }
        for (m, pid) in waiting {
            if alive(pid) {
                kill(pid, SIGKILL)
                outcomes.append((m.name, "killed (still running \(wait) after SIGTERM)"))
            } else {
                outcomes.append((m.name, "stopped"))
            }
            try? FileManager.default.removeItem(atPath: m.pidFile)
        }
        return outcomes
    }
}

struct HubUp: Command {
    static let name = "up"
    static let summary = "start the orchestrator, the adapters and department simulators (and a front desk) as processes"
    static let help = """
        Usage: yishi hub up --dir DIR --bootstrap HOST:PORT [options]

        Starts the hub as separate processes, one `yishi ... run` each, in the background: the
        orchestrator, an adapter and a department simulator per agency (the agencies are the
        directories of adapters/ with a catalogue.json, or of --catalogues), and with --frontdesk a
        front desk that submits the seed applications. Everything lives under DIR:
          DIR/hub.json            the settings and processes (read by hub status, hub down, hub env)
          DIR/logs/NAME.log       each process's JSON log lines (stdout and stderr)
          DIR/pids/NAME.pid       each process's PID
          DIR/state/AGENCY.json   each department's --state checkpoint
        It waits until every service has logged "started" (or --wait runs out) and prints what runs.
        A process that exits meanwhile (a bad setting, an unreachable broker) stops the others;
        its last log line is printed. Stop the hub with `yishi hub down --dir DIR`.

        Options:
          --dir DIR                  the hub's directory (created if missing; env YISHI_HUB_DIR)
          --without-department A     do not start agency A's department simulator (repeatable): a real
                                     department system, or your own, answers instead
          --without-adapter A        do not start agency A's adapter (repeatable)
          --frontdesk                also start a front desk (yishi frontdesk run) that submits
                                     seeds/applications on the hub clock and reports the outcome in its log
          --profile P                departments' profile: default, no-faults, flaky (default: default)
          --log-summary-seconds N    the orchestrator's summary log interval (default 60)
          --wait SECONDS             how long to wait for every service to start (default 60)
        \(KafkaOptions.help)
        \(ClockOptions.help)
                                 With --clock-start and no --clock-wall-start, the clock starts 5 s
                                 from now, the same for every process.

        Exit codes: 0 every process runs; 1 a process exited while starting (the others are
        stopped), or a hub already runs in DIR; 2 usage or configuration (a flag, file or directory
        that cannot work: the one line names it).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        let environment = ProcessInfo.processInfo.environment
        guard let dirText = try args.option("--dir") ?? environment["YISHI_HUB_DIR"] else { throw UsageError("--dir DIR (or YISHI_HUB_DIR) is required") }
        let dir = URL(fileURLWithPath: dirText)
        let withoutDepartments = Set(try args.options("--without-department"))
        let withoutAdapters = Set(try args.options("--without-adapter"))
        let frontdesk = args.flag("--frontdesk")
        let profile = try args.option("--profile")
        let summary = try args.option("--log-summary-seconds")
        let waitText = try args.option("--wait") ?? "60"
        guard let waitSeconds = Double(waitText), waitSeconds > 0 else { throw UsageError("--wait must be a positive number of seconds, not '\(waitText)'") }
        // Kafka settings: forwarded as given to every process, which checks them.
        var forwarded: [String] = []
        for name in ["--kafka-property", "--kafka-config", "--security-protocol", "--sasl-mechanism", "--sasl-username",
                     "--sasl-password-file", "--ssl-ca", "--ssl-cert", "--ssl-key", "--ssl-key-password-file"] {
            for value in try args.options(name) { forwarded += [name, value] }
        }
        let kafka = try KafkaOptions.read(&args)
        let clockStart = try args.option("--clock-start") ?? environment["YISHI_CLOCK_START"]
        let clockSpeed = try args.option("--clock-speed") ?? environment["YISHI_CLOCK_SPEED"]
        let wallText = try args.option("--clock-wall-start") ?? environment["YISHI_CLOCK_WALL_START"]
        let workingHours = try args.option("--clock-working-hours") ?? environment["YISHI_CLOCK_WORKING_HOURS"]
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        // The clock is checked as every process will read it.
        var clockArgs: [String] = []
        if let clockStart { clockArgs += ["--clock-start", clockStart] }
        if let clockSpeed { clockArgs += ["--clock-speed", clockSpeed] }
        if let wallText { clockArgs += ["--clock-wall-start", wallText] }
        if let workingHours { clockArgs += ["--clock-working-hours", workingHours] }
        var check = Arguments(clockArgs)
        _ = try ClockOptions.read(&check, env)

        let agencies = try CatalogueSet.load(directory: env.cataloguesDir).agencies.keys.sorted()
        for name in withoutDepartments.union(withoutAdapters) where !agencies.contains(name) {
            throw UsageError("--without-department/--without-adapter: unknown agency '\(name)' (agencies in \(env.cataloguesDir.path): \(agencies.joined(separator: ", ")))")
        }
        if let existing = try? HubLayout.load(dir), HubProcesses.status(existing).contains(where: \.running) {
            printError("yishi: a hub already runs in \(dir.path) (`yishi hub status --dir \(dir.path)`; stop it with `yishi hub down --dir \(dir.path)`)")
            return Exit.problems
        }
        let fm = FileManager.default
        for sub in ["logs", "pids", "state"] {
            let d = dir.appendingPathComponent(sub)
            do { try fm.createDirectory(at: d, withIntermediateDirectories: true) } catch {
                throw ConfigError("--dir \(dir.path): cannot create \(d.path) (\(ConfigFile.fileProblem(error, url: d.appendingPathComponent("x"))))")
            }
            try ConfigFile.checkWritable(d.appendingPathComponent("probe"), setting: "--dir")
        }

        var layout = HubLayout(bootstrap: kafka.bootstrap, prefix: kafka.prefix, partitions: kafka.partitions, clockStart: clockStart,
                               clockSpeed: clockSpeed.flatMap(Double.init) ?? (clockStart == nil ? nil : 1),
                               clockWallStart: wallText.flatMap { Double($0) }.map { Int64($0) }
                                   ?? (clockStart == nil ? nil : Int64((Date().timeIntervalSince1970 + 5) * 1000)),
                               clockWorkingHours: workingHours, members: [])
        let common = ["--bootstrap", kafka.bootstrap, "--prefix", kafka.prefix, "--partitions", String(kafka.partitions)]
            + forwarded + layout.clockArguments
            + ["--bundles", env.bundlesDir.path, "--catalogues", env.cataloguesDir.path, "--calendars", env.calendarsDir.path]
        func member(_ name: String, _ arguments: [String]) {
            layout.members.append(HubLayout.Member(name: name, arguments: arguments + common,
                                                   log: dir.appendingPathComponent("logs/\(name).log").path,
                                                   pidFile: dir.appendingPathComponent("pids/\(name).pid").path))
        }
        member("orchestrator", ["orchestrator", "run", "--instance", "orchestrator-1"] + (summary.map { ["--log-summary-seconds", $0] } ?? []))
        for agency in agencies where !withoutAdapters.contains(agency) {
            member("adapter-\(agency)", ["adapter", "run", "--agency", agency, "--instance", "1"])
        }
        for agency in agencies where !withoutDepartments.contains(agency) {
            member("department-\(agency)", ["department", "run", "--agency", agency,
                                            "--state", dir.appendingPathComponent("state/\(agency).json").path] + (profile.map { ["--profile", $0] } ?? []))
        }
        if frontdesk { member("frontdesk", ["frontdesk", "run"]) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(layout).write(to: HubLayout.file(in: dir), options: .atomic)

        // Start them, orchestrator first (it creates the topics); each appends to its log.
        for m in layout.members {
            if !fm.fileExists(atPath: m.log) { _ = fm.createFile(atPath: m.log, contents: nil) }
            guard let log = FileHandle(forWritingAtPath: m.log) else { throw ConfigError("--dir: cannot write \(m.log)") }
            _ = try? log.seekToEnd()
            let process = Process()
            process.executableURL = HubProcesses.binary
            process.arguments = m.arguments
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            try process.run()
            try Data("\(process.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: m.pidFile), options: .atomic)
        }

        // Wait until every service said "started"; one that exits stops the start.
        let services = layout.members.filter { $0.name != "frontdesk" }
        let deadline = ContinuousClock.now + .milliseconds(Int(waitSeconds * 1000))
        var pending = Set(services.map(\.name))
        while !pending.isEmpty, ContinuousClock.now < deadline {
            for m in layout.members {
                guard let pid = HubProcesses.pid(m), HubProcesses.alive(pid) else {
                    let why = HubProcesses.lastLine(m.log) ?? "no output"
                    printError("yishi: \(m.name) exited while starting: \(why) (log \(m.log)); stopping the others")
                    _ = HubProcesses.stop(layout, wait: .seconds(15))
                    return Exit.problems
                }
            }
            for m in services where pending.contains(m.name) {
                if let text = try? String(contentsOfFile: m.log, encoding: .utf8), text.contains("\"msg\":\"started\"") { pending.remove(m.name) }
            }
            if !pending.isEmpty { Thread.sleep(forTimeInterval: 0.2) }
        }
        let statuses = HubProcesses.status(layout)
        print(HubProcessStatus.render(layout, statuses, dir: dir))
        if !pending.isEmpty {
            print("note: not started yet after \(waitText) s: \(pending.sorted().joined(separator: ", ")) (see their logs)")
        }
        print("\nPoint the CLI at it: eval \"$(yishi hub env --dir \(dir.path))\"; stop it: yishi hub down --dir \(dir.path)")
        return Exit.ok
    }
}

struct HubProcessStatus: Command {
    static let name = "status"
    static let summary = "which processes of the hub in DIR run, with their PIDs and last log lines"
    static let help = """
        Usage: yishi hub status --dir DIR [--json]

        Reads DIR/hub.json and the PID files; says for each process whether it runs, and its log's
        last line (why one stopped). --json for scripts.

        Exit codes: 0 every process runs; 1 some process does not run; 2 usage (no hub.json in DIR).
        """

    static func render(_ layout: HubLayout, _ statuses: [HubMemberStatus], dir: URL) -> String {
        var clock = "real time"
        if let start = layout.clockStart {
            clock = "virtual from \(start) at ×\(layout.clockSpeed.map { String(format: "%g", $0) } ?? "1")"
                + (layout.clockWorkingHours.map { ", working hours of \($0)" } ?? "")
        }
        var rows = [["PROCESS", "PID", "STATE", "LAST LOG LINE"]]
        for s in statuses { rows.append([s.name, s.pid.map(String.init) ?? "-", s.state, String((s.lastLog ?? "").prefix(70))]) }
        let widths = (0..<3).map { c in rows.map { $0[c].count }.max() ?? 0 }
        let table = rows.map { r in (0..<3).map { r[$0].padding(toLength: widths[$0] + 2, withPad: " ", startingAt: 0) }.joined() + r[3] }
        let running = statuses.filter(\.running).count
        return "hub in \(dir.path): broker \(layout.bootstrap), topics \(layout.prefix)*, clock \(clock)\n"
            + "\(running) of \(statuses.count) process(es) running; logs in \(dir.appendingPathComponent("logs").path)\n\n"
            + table.joined(separator: "\n")
    }

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        guard let dirText = try args.option("--dir") ?? ProcessInfo.processInfo.environment["YISHI_HUB_DIR"] else {
            throw UsageError("--dir DIR (or YISHI_HUB_DIR) is required")
        }
        let json = args.flag("--json")
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let dir = URL(fileURLWithPath: dirText)
        let layout = try HubLayout.load(dir)
        let statuses = HubProcesses.status(layout)
        if json { try printJSON(statuses) } else { print(render(layout, statuses, dir: dir)) }
        return statuses.allSatisfy(\.running) ? Exit.ok : Exit.problems
    }
}

struct HubDown: Command {
    static let name = "down"
    static let summary = "stop the hub in DIR: SIGTERM to every process, wait, SIGKILL what still runs"
    static let help = """
        Usage: yishi hub down --dir DIR [--wait SECONDS]

        Sends SIGTERM to every process of the hub in DIR (front desk first, orchestrator last):
        each finishes its transaction, checkpoints (departments) and leaves its group. Waits up to
        --wait seconds (default 15) for all of them, then SIGKILLs any still running and says so.
        State, logs and hub.json stay in DIR; `yishi hub up --dir DIR` starts the hub again where
        it stopped (departments restore their --state).

        Exit codes: 0 every process stopped on SIGTERM (or none ran); 1 some had to be killed;
        2 usage (no hub.json in DIR).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        guard let dirText = try args.option("--dir") ?? ProcessInfo.processInfo.environment["YISHI_HUB_DIR"] else {
            throw UsageError("--dir DIR (or YISHI_HUB_DIR) is required")
        }
        let waitText = try args.option("--wait") ?? "15"
        guard let wait = Double(waitText), wait > 0 else { throw UsageError("--wait must be a positive number of seconds, not '\(waitText)'") }
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let dir = URL(fileURLWithPath: dirText)
        let layout = try HubLayout.load(dir)
        let outcomes = HubProcesses.stop(layout, wait: .milliseconds(Int(wait * 1000)))
        let width = outcomes.map(\.name.count).max() ?? 0
        for o in outcomes { print(o.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + o.outcome) }
        return outcomes.contains { $0.outcome.hasPrefix("killed") } ? Exit.problems : Exit.ok
    }
}

struct HubReload: Command {
    static let name = "reload"
    static let summary = "make the hub's orchestrator(s) in DIR load new bundle versions (SIGHUP), without a restart"
    static let help = """
        Usage: yishi hub reload --dir DIR

        Sends SIGHUP to every running orchestrator of the hub in DIR: each loads the bundle
        directory again before its next batch; new applications get the newest versions, running
        sagas keep theirs. A directory with a problem, or one that removes or edits a version that
        running sagas need, is refused whole; the orchestrator's log says which (`bundles reloaded`
        or `bundle reload refused`). Run `yishi bundles validate` first.

        Exit codes: 0 signalled; 1 no orchestrator of the hub runs; 2 usage (no hub.json in DIR).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        guard let dirText = try args.option("--dir") ?? ProcessInfo.processInfo.environment["YISHI_HUB_DIR"] else {
            throw UsageError("--dir DIR (or YISHI_HUB_DIR) is required")
        }
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let dir = URL(fileURLWithPath: dirText)
        let layout = try HubLayout.load(dir)
        var signalled = 0
        for m in layout.members where m.name.hasPrefix("orchestrator") {
            guard let pid = HubProcesses.pid(m), HubProcesses.alive(pid) else { continue }
            kill(pid, SIGHUP)
            signalled += 1
            print("\(m.name) (pid \(pid)): SIGHUP sent; its log (\(m.log)) says whether the bundles were reloaded")
        }
        guard signalled > 0 else { printError("no orchestrator of the hub in \(dir.path) runs"); return Exit.problems }
        return Exit.ok
    }
}

struct HubEnv: Command {
    static let name = "env"
    static let summary = "print the environment that points the operator CLI at the hub in DIR (eval \"$(yishi hub env --dir DIR)\")"
    static let help = """
        Usage: yishi hub env --dir DIR

        Prints `export` lines for the broker, the topic prefix and the hub's clock as the hub in
        DIR was started (YISHI_BOOTSTRAP, YISHI_PREFIX, YISHI_TOPIC_PREFIX, YISHI_CLOCK_*), so
        that `yishi sagas|cases|dlq|lag|report` answer about that hub on its clock:
          eval "$(yishi hub env --dir DIR)"

        Exit codes: 0 printed; 2 usage (no hub.json in DIR).
        """

    static func run(_ args: inout Arguments, _ env: Environment) throws -> Int32 {
        guard let dirText = try args.option("--dir") ?? ProcessInfo.processInfo.environment["YISHI_HUB_DIR"] else {
            throw UsageError("--dir DIR (or YISHI_HUB_DIR) is required")
        }
        _ = try args.positionals().first.map { throw UsageError("unexpected argument \($0)") }
        let layout = try HubLayout.load(URL(fileURLWithPath: dirText))
        for (name, value) in layout.environment { print("export \(name)='\(value.replacingOccurrences(of: "'", with: "'\\''"))'") }
        return Exit.ok
    }
}
