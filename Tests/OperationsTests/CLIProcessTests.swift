import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// The real `yishi` binary as operators run it, against an orchestrator in its own process.
struct CLI {
    let fx: OpsFixture
    let command: YishiCommand
    /// Every stdout and stderr captured (for the personal-data scan), except --reveal-pii output.
    let transcript = Recorder<String>()

    init(fx: OpsFixture) throws {
        self.fx = fx
        var env = ProcessInfo.processInfo.environment
        env["YISHI_BOOTSTRAP"] = fx.hub.bootstrap
        env["YISHI_PREFIX"] = fx.prefix
        env["YISHI_OPERATOR"] = "operator-wang"
        env["YISHI_ORCHESTRATOR_GROUP"] = fx.hub.orchestratorGroup
        env["YISHI_TIMEOUT"] = "15"
        env["YISHI_CLOCK_START"] = fx.clock.start.description
        env["YISHI_CLOCK_SPEED"] = String(fx.clock.speed)
        env["YISHI_CLOCK_WALL_START"] = String(Int64(fx.clock.wallStart.timeIntervalSince1970 * 1000))
        env.removeValue(forKey: "YISHI_TOPIC_PREFIX")
        command = try YishiCommand(repoRoot: repoRoot, environment: env)
    }

    @discardableResult
    func run(_ arguments: [String], revealed: Bool = false) throws -> YishiCommand.Result {
        let result = try command.run(arguments)
        if !revealed { transcript.append("$ yishi \(arguments.joined(separator: " "))\n\(result.out)\n\(result.err)") }
        return result
    }
}

@Suite("The status CLI against the multi-process hub on Tansu", .serialized)
struct CLIProcessTests {
    @Test("list, show, diagnose, cases, dlq, lag answer; an operator retry completes the saga; no personal data leaks",
          .timeLimit(.minutes(4)))
    func operatorSession() async throws {
        let fx = try OpsFixture(speed: 60)
        let cli = try CLI(fx: fx)
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent(fx.prefix + "logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let orchestrator = try YishiProcess("o1", ["orchestrator", "run", "--prefix", fx.prefix, "--partitions", String(fx.partitions),
                                                   "--instance", "o1", "--group", fx.hub.orchestratorGroup, "--session-timeout-ms", "6000",
                                                   "--log-summary-seconds", "2"],
                                            command: cli.command, logDirectory: logs)
        var stopped = false
        defer { if !stopped { orchestrator.terminate() } }
        // The social-security bureau refuses the application until an operator corrects it.
        let responders = try fx.responders(rejectUncorrected: ["social-security"])
        defer { responders.close() }
        let forms = try fx.submit(2, tag: "CLI")
        let ids = forms.map { $0["applicationId"]!.stringValue! }
        // A front desk with a misconfigured source: the application (full of personal data) is dead-lettered.
        var bad = forms[0]
        if case .object(var o) = bad { o["applicationId"] = "APP-CLI-BAD"; bad = .object(o) }
        let envelope = Envelope(source: "/somewhere/else", type: MessageType.applicationSubmitted, time: fx.clock.now().date, subject: "APP-CLI-BAD")
        _ = try await KafkaProducer(config: fx.hub.kafka()).send(envelope.record(topic: fx.topic("applications"), key: "APP-CLI-BAD",
                                                                               data: Data(bad.text().utf8)))

        // Both sagas reach the 办不成事 queue.
        var cases = YishiCommand.Result.none
        try await eventually(every: .seconds(1), timeout: .seconds(90), "both sagas in `yishi cases`") {
            cases = try cli.run(["cases", "--json"])
            return cases.status == 0 && ids.allSatisfy { cases.out.contains($0) }
        }
        let caseRows = try JSONValue.parse(cases.out).arrayValue ?? []
        #expect(caseRows.count == 2 && caseRows.allSatisfy { $0["step"] == "social-security" && $0["code"] == "INVALID_REQUEST" })
        #expect(try cli.run(["cases"]).out.contains("办不成事 queue"))
        // A refusal in the operator's words: the engine's reason without the request id the CLI made up.
        let notPaused = try cli.run(["sagas", "resume", ids[0]])
        #expect(notPaused.status == 1 && (notPaused.out + notPaused.err).contains("not paused")
                && !(notPaused.out + notPaused.err).contains("ctl-"), "\(notPaused)")

        let list = try cli.run(["sagas", "list", "--status", "manual"])
        #expect(list.status == 0 && ids.allSatisfy { list.out.contains($0) } && list.out.contains("social-security (failed)"), "\(list)")
        let page = try JSONValue.parse(try cli.run(["sagas", "list", "--json", "--limit", "1"]).out)
        #expect(page["sagas"]?.arrayValue?.count == 1 && page["next"]?.stringValue != nil && page["source"] == "live")

        let show = try cli.run(["sagas", "show", ids[0]])
        #expect(show.status == 0 && show.out.contains("social-security #1") && show.out.contains("rejected"), "\(show)")
        // Without the clock variables the CLI takes the hub's now from the orchestrator's answer.
        var bare = cli.command
        for key in ["YISHI_CLOCK_START", "YISHI_CLOCK_SPEED", "YISHI_CLOCK_WALL_START"] { bare.environment.removeValue(forKey: key) }
        let learned = try JSONValue.parse(try bare.run(["sagas", "show", ids[0], "--json"]).out)["now"]?.doubleValue
        let hubNow = Double(fx.clock.now().ms)
        #expect(learned.map { abs($0 - hubNow) < 300_000 } == true, "hub now \(hubNow), the CLI showed \(String(describing: learned))")
        let diagnose = try cli.run(["sagas", "diagnose", ids[0]])
        #expect(diagnose.status == 0 && diagnose.out.hasPrefix("Stuck at social-security"), "\(diagnose)")
        #expect(diagnose.out.contains("yishi sagas retry \(ids[0]) --step social-security"))

        let dlq = try cli.run(["dlq", "list"])
        #expect(dlq.status == 0 && dlq.out.contains("wrong-source") && dlq.out.contains(fx.topic("applications")), "\(dlq)")
        let dlqID = try #require(try JSONValue.parse(try cli.run(["dlq", "list", "--json"]).out).arrayValue?.first?["id"]?.stringValue)
        let dlqShow = try cli.run(["dlq", "show", dlqID])
        #expect(dlqShow.status == 0 && dlqShow.out.contains("legalRepresentative"), "\(dlqShow)")
        let lag = try cli.run(["lag"])
        #expect(lag.status == 0 && lag.out.contains(fx.hub.orchestratorGroup) && lag.out.contains(fx.prefix + "adapter.tax"), "\(lag)")

        // The operator retries the failed step of the first saga; it completes.
        // A name the step's payload does not have is refused with the valid ones (the form's
        // `employees.expectedCount` reaches social-security as the payload field `expectedEmployees`).
        let wrong = try cli.run(["sagas", "retry", ids[0], "--step", "social-security", "--set", "employees={\"expectedCount\":6}"])
        #expect(wrong.status == 1 && wrong.err.contains("--set employees") && wrong.err.contains("expectedEmployees"), "\(wrong)")
        let retry = try cli.run(["sagas", "retry", ids[0], "--step", "social-security", "--set", "expectedEmployees=6"])
        #expect(retry.status == 0 && retry.out.contains("applied to 1 saga"), "\(retry)")
        try await eventually(every: .seconds(1), timeout: .seconds(60), "\(ids[0]) completed") {
            (try? JSONValue.parse(cli.run(["sagas", "show", ids[0], "--json"]).out))?["status"] == "completed"
        }
        // The second one in bulk: dry run first, then for real.
        let dry = try cli.run(["sagas", "retry", "--filter", "status=manual", "--step", "social-security", "--dry-run"])
        #expect(dry.status == 0 && dry.out.contains("would apply to 1 saga") && dry.out.contains(ids[1]), "\(dry)")
        let bulk = try cli.run(["sagas", "retry", "--filter", "status=manual", "--step", "social-security", "--json"])
        #expect(try JSONValue.parse(bulk.out)["affected"] == .array([.string(ids[1])]), "\(bulk)")
        try await eventually(every: .seconds(1), timeout: .seconds(60), "\(ids[1]) completed") {
            (try? JSONValue.parse(cli.run(["sagas", "show", ids[1], "--json"]).out))?["status"] == "completed"
        }
        let trail = try Changelog(hub: fx.hub).audit(of: ids[0])
        #expect(trail.contains { $0.kind == .stepRetried && $0.by == "operator-wang" && $0.step == "social-security" }, "retry not in the audit trail")

        // Exit codes: refused (1), usage (2), unreachable (3).
        #expect(try cli.run(["sagas", "retry", ids[0], "--step", "social-security"]).status == 1, "retrying a succeeded step is refused")
        #expect(try cli.run(["sagas", "show", "APP-NO-SUCH", "--source", "changelog"]).status == 1)
        // No saga by that id: said so, not which instance owns which partition.
        let nope = try cli.run(["sagas", "show", "APP-NOPE"])
        #expect(nope.status == 1 && nope.err == "yishi: no saga APP-NOPE\n", "\(nope)")
        #expect(try cli.run(["sagas", "list", "--bogus"]).status == 2)
        #expect(try cli.run(["sagas", "show", ids[0], "--bootstrap", "127.0.0.1:9", "--timeout", "2"]).status == 3)
        for group in ["sagas", "cases", "dlq", "lag"] { #expect(try cli.run([group, "--help"]).status == 0) }

        // --reveal-pii shows the ID number and leaves an access record.
        let revealed = try cli.run(["sagas", "show", ids[0], "--json", "--reveal-pii"], revealed: true)
        let idNumber = try #require(forms[0]["legalRepresentative"]?["idNumber"]?.stringValue)
        #expect(revealed.out.contains(idNumber))
        let access = try TopicReader(hub: fx.hub).read(topic: fx.topic("ops-audit"), partitions: Array(0..<fx.partitions))
        #expect(access.contains { ($0.value.flatMap { try? JSONValue.parse($0) })?["by"] == "operator-wang" })

        // No orchestrator: read-only queries answer from the changelog.
        orchestrator.terminate()
        stopped = true
        let offlineStart = ContinuousClock.now
        let offline = try cli.run(["sagas", "show", ids[0], "--timeout", "3"])
        let offlineSeconds = (ContinuousClock.now - offlineStart).seconds
        #expect(offlineSeconds < 4.5, "--timeout 3 is the whole command's budget (live, then the changelog): took \(offlineSeconds) s")
        #expect(offline.status == 0 && offline.out.contains("completed") && offline.err.contains("answered from the changelog"), "\(offline)")

        // Nothing personal in any output or log line.
        #expect(cli.transcript.count >= 25, "the scan covers every command run")
        if let path = ProcessInfo.processInfo.environment["YISHI_CLI_TRANSCRIPT"] {
            try cli.transcript.all.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        let known = personalValues(forms)
        for text in cli.transcript.all { expectNoPersonalData(text, known: known, String(text.prefix(80))) }
        for file in try FileManager.default.contentsOfDirectory(at: logs, includingPropertiesForKeys: nil) {
            let log = try String(contentsOf: file, encoding: .utf8)
            #expect(log.contains("dead-letter"), "the orchestrator logged the dead letter")
            // Logs worth reading: the 办不成事 cases warned, and the periodic summary.
            let entries = log.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
            #expect(entries.filter { $0["msg"]?.stringValue?.hasPrefix("manual case opened") == true && $0["level"] == "warn" }.count == 2, "\(log)")
            #expect(entries.contains { $0["msg"] == "summary" && $0["level"] == "info" && $0["inputs"] != nil && $0["sagas_in_flight"] != nil }, "\(log)")
            expectNoPersonalData(log, known: known, "orchestrator log \(file.lastPathComponent)")
        }
    }
}
