import DepartmentService
import Departments
import Foundation
import FrontDesk
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

@Suite("The hub as separate processes on Tansu", .serialized)
struct MultiProcessTests {
    @Test("seed applications through orchestrator, 6 adapters and 6 departments as processes (housing-fund from files only); adapters SIGKILLed and restarted",
          .timeLimit(.minutes(6)))
    func endToEnd() async throws {
        let prefix = uniqueName("e2e") + "."
        var connection = HubConnection(bootstrap: try Broker.bootstrap)
        connection.prefix = prefix
        connection.partitions = 4
        let calendar = try BusinessCalendar.load(repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json"))
        // 1 working hour = 10 s; the clock starts once every group has had time to form.
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        connection.clock = HubClock(start: start, speed: 360, wallStart: Date().addingTimeInterval(8), workingHours: calendar)
        let admin = try KafkaAdmin(config: connection.clientConfig(clientId: "e2e-admin"))
        // Every agency with a catalogue: the five with Swift simulators and housing-fund, whose
        // adapter and configurable simulator come from adapters/housing-fund/ alone.
        let agencies = try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids.map { Agency($0) }
        #expect(agencies.contains(Agency("housing-fund")) && agencies.count == 6)
        try await admin.ensureTopics(HubTopics.all(prefix: prefix, partitions: connection.partitions, agencies: agencies.map(\.rawValue)))

        let work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + "run")
        let service = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment
            .merging(["YISHI_SESSION_TIMEOUT_MS": "6000"]) { _, new in new })
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let clockArgs = ["--clock-start", start.description, "--clock-speed", "360", "--clock-working-hours", "cn-mainland",
                         "--clock-wall-start", String(Int64(connection.clock.wallStart.timeIntervalSince1970 * 1000))]
        let kafkaArgs = ["--bootstrap", connection.bootstrap, "--prefix", prefix, "--partitions", "4"]
        var processes: [YishiProcess] = []
        defer { for p in processes { p.terminate() } }
        processes.append(try YishiProcess("orchestrator", ["orchestrator", "run", "--instance", "o1", "--group", prefix + "orchestrator",
                                                         "--session-timeout-ms", "6000"] + kafkaArgs + clockArgs, command: service, logDirectory: work))
        var adapters: [YishiProcess] = []
        var departments: [Agency: YishiProcess] = [:]
        for agency in agencies {
            let a = try YishiProcess("adapter." + agency.rawValue, ["adapter", "run", "--agency", agency.rawValue, "--instance", "a1"] + kafkaArgs + clockArgs,
                                   command: service, logDirectory: work)
            let d = try YishiProcess("dept." + agency.rawValue, ["department", "run", "--agency", agency.rawValue,
                                                                "--state", work.appendingPathComponent(agency.rawValue + ".json").path] + kafkaArgs + clockArgs,
                                   command: service, logDirectory: work)
            adapters.append(a)
            departments[agency] = d
            processes += [a, d]
        }

        let all = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        let forms = Array(all.prefix(120))
        let expectations = try Expectation.load(manifest: repoRoot.appendingPathComponent("seeds/applications/manifest.json"))
        let ids = Set(forms.compactMap { $0["applicationId"]?.stringValue })
        // One more application names a bank that does not open basic accounts through the hub:
        // the bank step is refused, a manual case opens, and the operator session below mends it.
        let mendable = try #require(all.dropFirst(120).first { expectations[$0["applicationId"]?.stringValue ?? ""]?.expected == "complete" })
        guard case .object(var mended) = mendable, case .object(var bank)? = mended["bank"] else { throw SetupError("seed form without bank") }
        bank["bankCode"] = "HSBC"
        mended["bank"] = .object(bank)
        let caseId = try #require(mended["applicationId"]?.stringValue)
        let desk = try FrontDesk(connection: connection, desk: "e2e", calendar: calendar, supplementDelayMinutes: 30,
                                 log: JSONLog(component: "frontdesk", minimum: .warn))
        defer { desk.stop() }
        try desk.watch()
        desk.submit(forms + [.object(mended)], from: start, everyMs: 30_000)

        // SIGKILL each adapter once, in random order at random moments while sagas are in flight, and
        // restart it a moment later. A killed member keeps its partitions for the session timeout (6 s,
        // about 36 working minutes here): the hub's timeouts and retries ride that out. Killing one
        // adapter again and again would exhaust the retries, which is the bundle working as designed.
        var rng = SystemRandomNumberGenerator()
        var kills: [String] = []
        for victim in adapters.shuffled(using: &rng) {
            try await Task.sleep(for: .seconds(Double.random(in: 4...8, using: &rng)))
            victim.kill()
            kills.append(victim.name)
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...1500, using: &rng)))
            try victim.start()
        }

        let finished = await Task.detached { desk.waitForAll(ids, timeout: .seconds(200)) }.value
        let trails = desk.sagas.filter { ids.contains($0.key) }
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                                             catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let report = OutcomeReport(trails: trails, expectations: expectations, library: library, calendar: calendar)
        #expect(finished, "not finished: \(ids.subtracting(trails.filter { $0.value.finished != nil }.keys).sorted().prefix(10))\n\(report.render())")
        #expect(kills.count == agencies.count && adapters.reduce(0) { $0 + $1.starts } == 2 * agencies.count)

        // Outcomes: every valid application completed, every invalid one rejected naming the manifest's field.
        // A failure prints the timelines of the sagas that went wrong: the audit trail says why.
        func timelines(_ ids: [String]) -> String {
            ids.compactMap { trails[$0] }.map { OutcomeReport.timeline($0, calendar: calendar) }.joined(separator: "\n")
        }
        #expect(report.validNotCompleted.isEmpty, "\(report.render())\n\(timelines(report.validNotCompleted))")
        // Two applications racing for one name: whichever reaches the registry first wins it (the
        // report counts the races the later one won); one completes and the other is rejected.
        let settled = Expectation.settlingNameRaces(expectations, trails: trails).expectations
        for id in ids {
            let expected = settled[id]?.expected ?? "complete"
            let trail = try #require(trails[id])
            if expected == "rejected" {
                let r = try #require(report.rejections.first { $0.sagaId == id }, "\(id) was not rejected\n\(timelines([id]))")
                #expect(r.field == settled[id]?.field, "\(id): \(r)")
                #expect(trail.finished?.status != "completed")
            } else {
                #expect(trail.finished?.status == "completed", "\(id): \(trail.finished.map { "\($0.status)" } ?? "running")")
            }
        }
        #expect(report.supplemented == forms.filter { expectations[$0["applicationId"]!.stringValue!]?.expected == "supplement-needed" }.count)

        // The operator's view of the same system, through the CLI as a separate process.
        // 统一出件: the numbers and licences the mended saga's bundle issues (its steps' catalogue outputs).
        let caseBundle = try #require(library.newest(mended["bundle"]?.stringValue ?? ""))
        let issuedNames = Set(try caseBundle.steps.flatMap { step in
            try #require(library.catalogues.agencies[step.agency]?.action(step.action)).outputs.map(\.name)
        }.filter { name in IssuedNumbers.table.contains { $0.name == name } })
        let casePersonal = [mendable["legalRepresentative"]?["idNumber"], mendable["legalRepresentative"]?["name"],
                            mendable["legalRepresentative"]?["phone"], mendable["contact"]?["phone"]].compactMap { $0?.stringValue }
        // One more valid application arrives after the business-registration department was killed
        // and not restarted: `yishi status` and `sagas diagnose` must name that department.
        let spare = try #require(all.dropFirst(120).first { $0["applicationId"]?.stringValue != caseId && expectations[$0["applicationId"]?.stringValue ?? ""]?.expected == "complete" })
        let registry = try #require(departments[.businessRegistration])
        let operatorLines = try await operatorSession(prefix: prefix, clock: connection.clock, caseId: caseId, completedIds: ids, desk: desk,
                                                      issuedNames: issuedNames, personal: casePersonal,
                                                      outage: (spare, { registry.kill() }))

        // The departments' ledgers: exactly one effect per (saga, step, kind) (per seal for engraving,
        // which makes one effect per seal), all from one request id, and no business key twice.
        for (_, d) in departments { d.terminate() }
        let effects = try departmentLedgers(agencies, work: work)
        // enterprise-opening sagas run v2 (the newest): each completed one registered its employer
        // with the housing fund exactly once, under an account number with its check character.
        let openings = Set(forms.filter { $0["bundle"]?.stringValue == "enterprise-opening" }.compactMap { $0["applicationId"]?.stringValue })
        let completedOpenings = Set(trails.filter { openings.contains($0.key) && $0.value.finished?.status == "completed" }.keys)
        let fund = effects.filter { $0.kind == "fund-employer-registered" }
        // (The mended case, submitted beside the forms, registered too when it is an opening: its bank step failed, not this one.)
        let fundSagas = Set(fund.map(\.sagaId))
        #expect(!completedOpenings.isEmpty && fundSagas.subtracting([caseId]) == completedOpenings,
                "housing fund registrations vs completed openings: extra \(fundSagas.subtracting(completedOpenings).sorted()), missing \(completedOpenings.subtracting(fundSagas).sorted())")
        #expect(fundSagas.contains(caseId) == (mended["bundle"]?.stringValue == "enterprise-opening"))
        // The outcome table counts sagas per bundle version: every opening ran v2, none v1.
        #expect(report.bundleVersions.first { $0.bundle == "enterprise-opening v2" }?.sagas == openings.count)
        #expect(!report.bundleVersions.contains { $0.bundle == "enterprise-opening v1" } && report.render().contains("enterprise-opening v2"))
        #expect(fund.allSatisfy { $0.agency.rawValue == "housing-fund" && $0.key.count == 15 && CheckDigit.isValid("iso7064-mod11-2", $0.key) })
        let perStep = Dictionary(grouping: effects) { "\($0.sagaId)/\($0.step)/\($0.kind)/\($0.data["SEAL_TYPE"] ?? "")" }.filter { $0.value.count > 1 }
        // The department request id is `<saga>/<step>/r<revision>/<native action>` (`…/undo/…` to compensate).
        let forward = effects.filter { !$0.requestId.contains("/undo/") }
        let requests = Dictionary(grouping: forward) { "\($0.sagaId)/\($0.step)" }
            .filter { Set($0.value.map { $0.requestId.split(separator: "/").dropLast().joined(separator: "/") }).count > 1 }
        #expect(requests.isEmpty, "steps with effects from more than one request: \(requests.keys.sorted().prefix(5))")
        let perKey = Dictionary(grouping: effects) { "\($0.agency.rawValue)/\($0.kind)/\($0.key)" }.filter { $0.value.count > 1 }
        #expect(perStep.isEmpty, "duplicate effects: \(perStep.keys.sorted().prefix(5))")
        #expect(perKey.isEmpty, "duplicate business keys: \(perKey.keys.sorted().prefix(5))")
        // Every completed saga left its effects: one enterprise registered and one account opened each.
        let completed = Set(desk.sagas.filter { $0.value.finished?.status == "completed" }.keys)
        #expect(completed.contains(caseId))
        #expect(Set(effects.filter { $0.kind == "enterprise-registered" }.map(\.sagaId)).isSuperset(of: completed))
        #expect(Set(effects.filter { $0.kind == "account-opened" }.map(\.sagaId)) == completed)

        // No full ID number or mobile number of any applicant in any process log.
        let secrets = Set((forms + [.object(mended)]).flatMap { f -> [String] in
            [f["legalRepresentative"]?["idNumber"], f["legalRepresentative"]?["phone"], f["contact"]?["phone"]].compactMap { $0?.stringValue }
        })
        for p in processes {
            let text = p.output
            let leaked = secrets.filter { text.contains($0) }
            #expect(leaked.isEmpty, "\(p.name) log contains \(leaked.count) personal numbers")
        }
        let leaked = secrets.filter { operatorLines.contains($0) }
        #expect(leaked.isEmpty, "the CLI's default output contains \(leaked.count) personal numbers")

        // The progress topic, as portals and SMS gateways read it (read_committed): every application
        // accepted, one result package per completed saga (the mended one with every issued number),
        // no personal number or name in any record.
        let progress = try await readAll(prefix + "progress", partitions: connection.partitions, expecting: .max, config: Broker.config(),
                                         timeout: .seconds(20)) { records in
            records.contains { $0.keyString == caseId && $0.headers.string(Envelope.Header.type) == MessageType.progressResultPackage }
        }.map { ($0.keyString ?? "", $0.headers.string(Envelope.Header.type) ?? "", String(decoding: $0.value ?? Data(), as: UTF8.self)) }
        let packages = Dictionary(grouping: progress.filter { $0.1 == MessageType.progressResultPackage }) { $0.0 }
        #expect(Set(packages.keys) == completed && packages.values.allSatisfy { $0.count == 1 }, "result packages: \(packages.count) for \(completed.count) completed")
        let casePackage = try JSONValue.parse(try #require(packages[caseId]?.first?.2))
        #expect(Set(casePackage["items"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []) == issuedNames, "\(casePackage)")
        #expect(Set(progress.filter { $0.1 == MessageType.progressAccepted }.map(\.0)).isSuperset(of: ids))
        let names = (forms + [.object(mended)]).compactMap { $0["legalRepresentative"]?["name"]?.stringValue }
        let leakedProgress = (secrets.union(names)).filter { p in progress.contains { $0.2.contains(p) } }
        #expect(leakedProgress.isEmpty, "progress records carry \(leakedProgress.count) personal numbers or names")
    }

    /// An operator at the CLI: the manual case is listed, shown and diagnosed; a dead letter and
    /// the lag are visible; a retry with the corrected bank code completes the saga. Returns every
    /// line the CLI printed (for the personal-data scan).
    private func operatorSession(prefix: String, clock: HubClock, caseId: String, completedIds: Set<String>,
                                 desk: FrontDesk, issuedNames: Set<String>, personal: [String],
                                 outage: (form: JSONValue, killRegistry: () -> Void)) async throws -> String {
        var env = ProcessInfo.processInfo.environment
        env["YISHI_BOOTSTRAP"] = try Broker.bootstrap
        env["YISHI_PREFIX"] = prefix
        env["YISHI_OPERATOR"] = "operator-zhao"
        env["YISHI_TIMEOUT"] = "15"
        env["YISHI_CLOCK_START"] = clock.start.description
        env["YISHI_CLOCK_SPEED"] = String(clock.speed)
        env["YISHI_CLOCK_WALL_START"] = String(Int64(clock.wallStart.timeIntervalSince1970 * 1000))
        env["YISHI_CLOCK_WORKING_HOURS"] = "cn-mainland"
        let querySecret = Data("e2e-query-secret-\(prefix)".utf8)
        env["YISHI_QUERY_SECRET"] = String(decoding: querySecret, as: UTF8.self)
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: env)
        let transcript = Recorder<String>()
        func run(_ arguments: [String]) throws -> YishiCommand.Result {
            let result = try yishi.run(arguments)
            transcript.append(result.out + result.err)
            return result
        }

        // A reply the bank's gateway garbled: the bank adapter dead-letters it and carries on.
        let producer = try KafkaProducer(config: Broker.config(["partitioner": "murmur2_random"]))
        try producer.enqueue(ProducerRecord(topic: prefix + "dept.bank.replies", key: caseId, value: Data("<html>502 Bad Gateway</html>".utf8)))
        try producer.flush()

        var cases = YishiCommand.Result.none
        try await eventually(every: .seconds(1), timeout: .seconds(90), "\(caseId) in the manual queue") {
            cases = try run(["cases", "--json"])
            return cases.status == 0 && cases.out.contains(caseId)
        }
        let row = try #require(try JSONValue.parse(cases.out).arrayValue?.first { $0["sagaId"]?.stringValue == caseId }, "\(cases)")
        #expect(row["step"] == "bank-account" && row["code"] == "INVALID_REQUEST", "\(row)")
        #expect(try run(["cases"]).out.contains("办不成事"))

        // 进度查询 mid-run, with the code on the 受理回执: the bank step is with the 办不成事 window,
        // the registration is done; no personal data. Any wrong code, unknown or malformed id: one refusal.
        let code = Receipt(applicationId: caseId, acceptedAt: clock.start, secret: querySecret).queryCode
        let progress = try run(["progress", caseId, "--code", code, "--json"])
        let midRun = try JSONValue.parse(progress.out)
        #expect(progress.status == 0 && midRun["status"]?.stringValue?.contains("人工") == true, "\(progress)")
        #expect(midRun["inProgress"]?.arrayValue?.contains { $0["step"] == "bank-account" && $0["state"] == "转人工办理" } == true, "\(midRun)")
        #expect(midRun["done"]?.arrayValue?.contains { $0["step"] == "registration" } == true && midRun["expectedFinish"]?.stringValue != nil, "\(midRun)")
        let plain = try run(["progress", caseId, "--code", code.lowercased()])
        #expect(plain.status == 0 && plain.out.contains("银行基本存款账户开立") && plain.out.contains("预计办结时间"), "\(plain)")
        let otherCode = Receipt(applicationId: caseId + "X", acceptedAt: clock.start, secret: querySecret).queryCode
        let refusals = try [[caseId, "--code", otherCode], [caseId + "X", "--code", otherCode], [caseId + " ", "--code", code],
                            [caseId + "\n", "--code", code], ["no such id", "--code", code]].map { try run(["progress"] + $0) }
        for r in refusals {
            #expect(r.status == 1 && r.out.isEmpty && r.err == refusals[0].err && !r.err.contains(caseId), "\(r)")
        }
        for p in personal + [caseId + "X"] {
            #expect(!(progress.out + plain.out).contains(p), "progress shows personal data")
        }

        let manual = try run(["sagas", "list", "--status", "manual"])
        #expect(manual.status == 0 && manual.out.contains(caseId) && manual.out.contains("bank-account"), "\(manual)")
        let page = try JSONValue.parse(try run(["sagas", "list", "--json", "--status", "completed", "--limit", "5"]).out)
        let listed = page["sagas"]?.arrayValue?.compactMap { $0["sagaId"]?.stringValue } ?? []
        #expect(listed.count == 5 && Set(listed).isSubset(of: completedIds) && page["next"]?.stringValue != nil, "\(page)")

        let done = try #require(listed.first)
        let show = try run(["sagas", "show", done])
        #expect(show.status == 0 && show.out.contains("bank-account") && show.out.contains("completed"), "\(show)")
        let diagnose = try run(["sagas", "diagnose", caseId])
        #expect(diagnose.status == 0 && diagnose.out.contains("bank-account") && diagnose.out.contains("HSBC"), "\(diagnose)")
        #expect(diagnose.out.contains("yishi sagas retry \(caseId) --step bank-account"), "\(diagnose)")

        var letters: [JSONValue] = []
        try await eventually(every: .seconds(1), timeout: .seconds(30), "the garbled reply in the DLQ") {
            letters = (try? JSONValue.parse(run(["dlq", "list", "--json", "--topic", "dept.bank.replies"]).out).arrayValue) ?? []
            return !letters.isEmpty
        }
        // Headers are checked before the body: a gateway's error page carries no CloudEvents headers.
        #expect(letters.first?["consumerGroup"]?.stringValue == prefix + "adapter.bank" && letters.first?["errorClass"] == "missing-header"
                && letters.first?["key"]?.stringValue == caseId, "\(letters)")
        let lag = try JSONValue.parse(try run(["lag", "--json"]).out)["rows"]?.arrayValue ?? []
        for (group, topic) in [(prefix + "orchestrator", prefix + "applications"), (prefix + "adapter.bank", prefix + "commands.bank"),
                               (prefix + "adapter.bank", prefix + "dept.bank.replies"), (prefix + "dept.bank", prefix + "dept.bank.requests")] {
            let r = lag.first { $0["group"]?.stringValue == group && $0["topic"]?.stringValue == topic }
            #expect((r?["committedPartitions"]?.intValue ?? 0) > 0, "lag: \(group) on \(topic): \(r.map { "\($0)" } ?? "missing")")
        }

        // Hold the step while the applicant is phoned, correct it, then release it.
        let hold = try run(["sagas", "pause", caseId, "--step", "bank-account", "--reason", "confirming the bank with the applicant"])
        #expect(hold.status == 0 && hold.out.contains("applied to 1 saga"), "\(hold)")
        let retry = try run(["sagas", "retry", caseId, "--step", "bank-account", "--set", "bankCode=\"ICBC\""])
        #expect(retry.status == 0 && retry.out.contains("applied to 1 saga"), "\(retry)")
        let held = try run(["sagas", "diagnose", caseId])
        #expect(held.out.contains("held by operator-zhao") && held.out.contains("yishi sagas resume \(caseId) --step bank-account"), "\(held)")
        #expect(desk.sagas[caseId]?.events.contains { $0.kind == .stepDispatched && $0.step == "bank-account" && ($0.attempt ?? 0) > 1 } != true,
                "a held step was dispatched")
        let release = try run(["sagas", "resume", caseId, "--step", "bank-account"])
        #expect(release.status == 0 && release.out.contains("applied to 1 saga"), "\(release)")
        try await eventually(every: .seconds(1), timeout: .seconds(90), "\(caseId) completed after the operator's retry") {
            desk.sagas[caseId]?.finished?.status == "completed"
        }
        // After completion: progress says so, and the result package lists every issued number (the account masked).
        let after = try JSONValue.parse(try run(["progress", caseId, "--code", code, "--json"]).out)
        #expect(after["status"]?.stringValue?.hasPrefix("已办结") == true && after["inProgress"]?.arrayValue?.isEmpty == true
                && after["expectedFinish"] == nil, "\(after)")
        let results = try run(["sagas", "results", caseId, "--json"])
        let items = try JSONValue.parse(results.out)["items"]?.arrayValue ?? []
        let issuedList = Dictionary(items.compactMap { i in i["name"]?.stringValue.map { ($0, i["value"]?.stringValue ?? i["value"]?.arrayValue?.compactMap(\.stringValue).joined(separator: "、") ?? "") } }) { a, _ in a }
        #expect(results.status == 0 && Set(issuedList.keys) == issuedNames && issuedList.values.allSatisfy { !$0.isEmpty }, "\(results)")
        #expect(USCC.isValid(issuedList["uscc"] ?? "") && issuedList["accountNumber"]?.contains("****") == true, "\(issuedList)")
        let window = try run(["sagas", "results", caseId])
        #expect(window.status == 0 && window.out.contains("统一社会信用代码：" + (issuedList["uscc"] ?? "?")), "\(window)")
        for p in personal { #expect(!(after.text() + results.out + window.out).contains(p), "progress or results show personal data") }
        let trail = desk.sagas[caseId]?.events ?? []
        let operatorKinds = trail.filter { $0.by == "operator-zhao" && $0.step == "bank-account" }.map(\.kind)
        #expect(operatorKinds == [.paused, .stepRetried, .resumed], "the operator's actions in the audit trail: \(operatorKinds)")

        // Idle after the run: every hub group has consumed every record. The topics are written in
        // transactions, whose commit markers take offsets but are no records: the lag is 0, not 1.
        var lagRows: [JSONValue] = []
        try await eventually(every: .seconds(1), timeout: .seconds(20), "every hub group at lag 0 when idle") {
            lagRows = (try? JSONValue.parse(run(["lag", "--json"]).out)["rows"]?.arrayValue) ?? []
            return !lagRows.isEmpty && lagRows.allSatisfy { $0["lag"]?.intValue == 0 }
        }
        #expect(lagRows.contains { $0["group"]?.stringValue == prefix + "adapter.bank" && ($0["committedPartitions"]?.intValue ?? 0) > 0 })
        #expect(try run(["lag"]).out.contains("transaction markers"))

        // A department process killed and not restarted, with a new application waiting for it.
        outage.killRegistry()
        let waitingId = try #require(outage.form["applicationId"]?.stringValue)
        desk.submit([outage.form], from: clock.now(), everyMs: 1000)
        // Tansu 0.6.0 keeps a SIGKILLed member registered (no session expiry), so the group still
        // lists it: the department is named because its request waits and nothing consumes it.
        var status = YishiCommand.Result.none
        do {
            try await eventually(every: .seconds(2), timeout: .seconds(45), "yishi status names the stopped department") {
                status = try run(["status", "--json", "--stall-after", "3"])
                let attention = (try? JSONValue.parse(status.out)["attention"]?.arrayValue?.compactMap(\.stringValue)) ?? []
                return attention.contains { $0.contains("department business-registration") && $0.contains(prefix + "dept.business-registration") }
            }
        } catch { Issue.record("last status: \(status)"); throw error }
        let registryGroup = try JSONValue.parse(status.out)["groups"]?.arrayValue?.first { $0["group"]?.stringValue == prefix + "dept.business-registration" }
        #expect(status.status == 1 && (registryGroup?["lag"]?.intValue ?? 0) > 0, "\(status)")
        let screen = try run(["status", "--stall-after", "3"])
        #expect(screen.status == 1 && screen.out.contains(prefix + "dept.business-registration") && screen.out.contains("Needs attention"), "\(screen)")
        let stuck = try run(["sagas", "diagnose", waitingId, "--stall-after", "3"])
        #expect(stuck.status == 0 && stuck.out.contains("work piles up in front of the business-registration department"), "\(stuck)")
        return transcript.all.joined(separator: "\n")
    }
}
