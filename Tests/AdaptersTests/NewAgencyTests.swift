import Adapters
import DepartmentService
import Departments
import Foundation
import Messaging
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// A new agency by configuration alone (docs/adding-an-agency.md): the housing fund's files,
/// the configurable simulator, `yishi adapters validate` and the agency list derived from files.
@Suite("A new agency from files: housing-fund, the configurable simulator, adapters validate")
struct NewAgencyTests {
    static let adapters = repoRoot.appendingPathComponent("adapters")
    static let monday = Date(timeIntervalSince1970: 1_772_413_200)  // 2026-03-02 09:00 CST

    func department(_ preset: DepartmentProfile.Preset = .noFaults) throws -> ConfigurableDepartment {
        ConfigurableDepartment(config: try DepartmentConfig.load(directory: Self.adapters.appendingPathComponent("housing-fund")), preset: preset)
    }

    func registration(_ id: String, saga: String = "S1", _ change: (inout [String: JSONValue]) -> Void = { _ in }) -> Data {
        var o: [String: JSONValue] = [
            "ywlsh": .string(id), "ywlx": "DWJCDJ", "glywh": .string(saga), "glhjh": "housing-fund",
            "tyshxydm": .string(USCC.generate(region: "330106", sequence: 7)), "dwmc": "杭州云栖茶饮有限公司", "dwdz": "杭州市西湖区文三路 1 号",
            "fddbrxm": "张三", "xzqhdm": "330106", "dwjcbl": 5, "grjcbl": 5, "dwfxr": 15, "jbrxm": "李四", "jbrsjhm": "13800138000", "yjjcrs": 7,
        ]
        change(&o)
        return JSONValue.object(o).data()
    }

    static func nativeSchema(_ name: String) throws -> JSONSchema {
        try JSONSchema(contentsOf: adapters.appendingPathComponent("housing-fund/native/\(name).schema.json"))
    }

    @Test("no Swift source names the housing fund: it is files only")
    func noSwiftForTheAgency() throws {
        let sources = repoRoot.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        #expect(files.count > 50)
        let naming = try files.filter {
            try String(contentsOf: sources.appendingPathComponent($0), encoding: .utf8).range(of: "housing", options: .caseInsensitive) != nil
        }
        #expect(naming.isEmpty, "Swift sources naming the agency: \(naming)")
        let reference = try ReferenceData.load(from: repoRoot.appendingPathComponent("seeds/departments"))
        #expect(!Agency("housing-fund").isBuiltIn && makeDepartment(Agency("housing-fund"), reference: reference, preset: .noFaults, seed: 1) == nil)
        #expect(try CatalogueSet.load(directory: Self.adapters).ids.contains("housing-fund"))
    }

    @Test("the configurable simulator: schema, rules, unique key, reply template with check digit, memo, conflict, undo from the ledger")
    func configurableSimulator() throws {
        var d = try department()
        let request = registration("S1/housing-fund/r1/DWJCDJ")
        let first = d.receive(request, at: Self.monday)
        #expect(first.outcome == .completed)
        let reply = try JSONValue.parse(try #require(first.reply))
        #expect(try Self.nativeSchema("DWJCDJ.reply").validate(reply).isEmpty, "\(reply.text())")
        let account = try #require(reply["dwzh"]?.stringValue)
        #expect(account == "33010600000001" + String(try #require(CheckDigit.character("iso7064-mod11-2", for: "33010600000001"))))
        #expect(reply["khrq"] == "20260302" && reply["fhm"] == "000000" && reply["dwmc"] == "杭州云栖茶饮有限公司")
        #expect(d.ledger.map(\.kind) == ["fund-employer-registered"] && d.ledger[0].key == account)
        #expect(first.latencyMinutes >= 5 && first.latencyMinutes <= 60)

        // Same request id and content: the memo, byte for byte, no effect; other content: conflict.
        let again = d.receive(request, at: Self.monday.addingTimeInterval(60))
        #expect(again.replayed && again.reply == first.reply && again.effects.isEmpty)
        let conflict = d.receive(registration("S1/housing-fund/r1/DWJCDJ") { $0["dwfxr"] = 10 }, at: Self.monday)
        #expect(conflict.outcome == .conflict(code: "100090"))
        // The same employer again (another saga): the unique key refuses it.
        let twice = d.receive(registration("S2/housing-fund/r1/DWJCDJ", saga: "S2"), at: Self.monday)
        #expect(twice.outcome == .rejected(code: "200002", field: "tyshxydm"))

        // Rules and the native schema, each naming the native field at fault.
        let cases: [(String, (inout [String: JSONValue]) -> Void, Departments.Outcome)] = [
            ("rate", { $0["dwjcbl"] = 4; $0["grjcbl"] = 4 }, .rejected(code: "200004", field: "dwjcbl")),
            ("personal rate differs", { $0["grjcbl"] = 6 }, .rejected(code: "200005", field: "grjcbl")),
            ("contact without a valid phone", { $0["jbrsjhm"] = "12345" }, .rejected(code: "200006", field: "jbrsjhm")),
            ("no contact, no phone needed", { $0["jbrxm"] = nil; $0["jbrsjhm"] = nil; $0["tyshxydm"] = .string(USCC.generate(region: "330106", sequence: 8)) }, .completed),
            ("schema: name missing", { $0["dwmc"] = nil }, .rejected(code: "100001", field: "dwmc")),
            ("schema: pay day", { $0["dwfxr"] = 32 }, .rejected(code: "100001", field: "dwfxr")),
            ("bad USCC", { $0["tyshxydm"] = "91330106MA2XXXXXX!" }, .rejected(code: "200001", field: "tyshxydm")),
        ]
        for (i, (what, change, expected)) in cases.enumerated() {
            let h = d.receive(registration("S9-\(i)/housing-fund/r1/DWJCDJ", saga: "S9-\(i)", change), at: Self.monday)
            #expect(h.outcome == expected, "\(what): \(h.reply.map { String(decoding: $0, as: UTF8.self) } ?? "-")")
        }

        // A compensation without the account number (the hub never learned it) undoes what the saga's step did.
        let undo = JSONValue.object(["ywlsh": "S1/housing-fund/undo/DWXH", "ywlx": "DWXH", "glywh": "S1", "glhjh": "housing-fund", "xhyy": "撤销"]).data()
        let undone = d.receive(undo, at: Self.monday.addingTimeInterval(3600))
        #expect(undone.outcome == .completed && undone.effects.map(\.key) == [account])
        let undoReply = try JSONValue.parse(try #require(undone.reply))
        #expect(undoReply["dwzh"]?.stringValue == account && undoReply["xhrq"] == "20260302")
        #expect(try Self.nativeSchema("DWXH.reply").validate(undoReply).isEmpty)
        // Unknown account: success, nothing undone.
        let unknown = d.receive(JSONValue.object(["ywlsh": "S7/x/undo/DWXH", "ywlx": "DWXH", "glywh": "S7", "glhjh": "x", "xhyy": "撤销", "dwzh": "1"]).data(),
                                at: Self.monday)
        #expect(unknown.outcome == .completed && unknown.effects.isEmpty)
        // The step was withdrawn: a late forward request of it does nothing; the employer may register again under a new account.
        let late = d.receive(registration("S1/housing-fund/r2/DWJCDJ"), at: Self.monday)
        #expect(late.outcome == .rejected(code: "100090", field: nil))
        let anew = d.receive(registration("S3/housing-fund/r1/DWJCDJ", saga: "S3"), at: Self.monday)
        #expect(anew.outcome == .completed)
        #expect(try JSONValue.parse(try #require(anew.reply))["dwzh"]?.stringValue?.hasPrefix("33010600000003") == true)

        // Unreadable envelope: no reply (DLQ); unknown action: the department's code.
        #expect(d.receive(Data("{}".utf8), at: Self.monday).reply == nil)
        let other = d.receive(JSONValue.object(["ywlsh": "Q", "ywlx": "XXX", "glywh": "S", "glhjh": "s"]).data(), at: Self.monday)
        #expect(other.outcome == .rejected(code: "100002", field: nil))

        // The state file round-trips exactly.
        var restored = try department()
        try restored.restore(try d.snapshot())
        #expect(restored.state == d.state)
        #expect(restored.receive(request, at: Self.monday).reply == first.reply)
    }

    @Test("the failure profile: transient faults are not memoized; the same seed replays the same faults")
    func faultProfile() throws {
        var a = try department(.flaky), b = try department(.flaky)
        var transient = 0
        for i in 0..<200 {
            let r = registration("F\(i)/housing-fund/r1/DWJCDJ", saga: "F\(i)") { $0["tyshxydm"] = .string(USCC.generate(region: "330106", sequence: 100 + i)) }
            let x = a.receive(r, at: Self.monday), y = b.receive(r, at: Self.monday)
            #expect(x.outcome == y.outcome && x.latencyMinutes == y.latencyMinutes && x.replyLost == y.replyLost)
            if case .transientFault = x.outcome {
                transient += 1
                #expect(!a.receive(r, at: Self.monday).replayed)
            }
        }
        #expect(transient > 5 && transient < 70)
    }

    @Test("ISO 7064 MOD 11-2 is the resident ID's check character")
    func checkDigits() throws {
        for body in ["11010519491231002", "44030019900101123", "33010619780301259"] {
            let expected = try ResidentID.checkCharacter(for: body)
            #expect(CheckDigit.character("iso7064-mod11-2", for: body) == expected)
        }
        #expect(CheckDigit.isValid("luhn", "79927398713") && !CheckDigit.isValid("luhn", "79927398710"))
    }

    @Test("adapter, mapping and simulator: a canonical command through the housing fund's files and back")
    func translatorRoundTrip() throws {
        let t = try translator("housing-fund")
        var d: any DepartmentEndpoint = try department()
        let uscc = USCC.generate(region: "330106", sequence: 7)
        let cmd = command("register-fund-employer", step: "housing-fund", payload: .object([
            "uscc": .string(uscc), "approvedName": "杭州云栖茶饮有限公司", "address": "杭州市西湖区文三路 1 号",
            "legalRepresentativeName": "张三", "region": "330106", "contactName": "李四", "contactPhone": "13800138000", "expectedEmployees": 7]))
        guard case Adapters.Outcome.request(let native) = t.start(command: cmd) else { throw SetupError("no native request") }
        #expect(try Self.nativeSchema("DWJCDJ.request").validate(native.message).isEmpty)
        let h = d.receive(Data(native.message.text().utf8), at: Self.monday)
        guard case Adapters.Outcome.event(let event) = try t.finish(reply: try JSONValue.parse(try #require(h.reply)), context: native.context) else {
            throw SetupError("no event")
        }
        #expect(event.type == MessageType.stepSucceeded, "\(event.payload.text())")
        #expect(event.payload["outputs"]?["fundAccountNo"]?.stringValue?.count == 15)
        #expect(event.payload["outputs"]?["fundCentre"] == "住房公积金管理中心归集管理部")
    }

    // MARK: - yishi adapters validate

    /// A copy of adapters/ with `change` applied to housing-fund's files.
    func brokenCopy(_ change: (URL) throws -> Void) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("adapters"))
        try FileManager.default.copyItem(at: Self.adapters, to: dir)
        try change(dir.appendingPathComponent("housing-fund"))
        return dir
    }

    func edit(_ file: URL, _ change: (inout [String: Any]) -> Void) throws {
        var o = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        change(&o)
        try JSONSerialization.data(withJSONObject: o).write(to: file)
    }

    @Test("adapters validate: the shipped agencies are clean; each bad case is named with file and JSON path")
    func validateBadCases() throws {
        #expect(AgencyFilesCheck.problems(adapters: Self.adapters).isEmpty)
        let broken = try brokenCopy { dir in
            try edit(dir.appendingPathComponent("mapping.json")) { m in
                var actions = m["actions"] as! [String: Any]
                var reg = actions["register-fund-employer"] as! [String: Any]
                var calls = reg["calls"] as! [[String: Any]]
                var request = calls[0]["request"] as! [String: Any]
                request["dwjcbll"] = 5  // a misspelt native field
                calls[0]["request"] = request
                reg["calls"] = calls
                reg["outputs"] = ["fundAccountNo": "$.replies.DWJCDJ.dwzhh", "fundCentre": "$.replies.DWXH.gljg"]
                actions["register-fund-employer"] = reg
                m["actions"] = actions
            }
            try FileManager.default.removeItem(at: dir.appendingPathComponent("native/DWXH.reply.schema.json"))
        }
        defer { try? FileManager.default.removeItem(at: broken) }
        let problems = AgencyFilesCheck.problems(adapters: broken).map(\.description)
        let mapping = broken.appendingPathComponent("housing-fund/mapping.json").path
        #expect(problems.contains { $0.hasPrefix("\(mapping): $.actions.register-fund-employer.calls[0].request.dwjcbll: 'dwjcbll' is not a field of DWJCDJ.request.schema.json") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("\(mapping): $.actions.register-fund-employer.outputs.fundAccountNo: '$.replies.DWJCDJ.dwzhh': 'dwzhh' is not a field of DWJCDJ.reply.schema.json") })
        #expect(problems.contains { $0.hasPrefix("\(mapping): $.actions.register-fund-employer.outputs.fundCentre: '$.replies.DWXH.gljg' reads the reply of 'DWXH', which is not a call") })
        #expect(problems.contains { $0.hasPrefix("\(mapping): $.actions.cancel-fund-employer-registration.calls[0].native: no native schema") && $0.hasSuffix("DWXH.reply.schema.json") })
        #expect(problems.count == 4, "\(problems)")

        // department.json: every problem at once, each with its path.
        let badDept = try brokenCopy { dir in
            try edit(dir.appendingPathComponent("department.json")) { d in
                var actions = d["actions"] as! [String: Any]
                var reg = actions["DWJCDJ"] as! [String: Any]
                reg["latency"] = ["min": 30, "mode": 10, "max": 60]
                var rules = reg["rules"] as! [[String: Any]]
                rules[0]["require"] = ["field": "tyshxydm", "op": "valid-usc"]
                reg["rules"] = rules
                reg["reply"] = ["dwzh": ["$id": ["counter": "dwzh", "check": "mod97"]], "x": "$.requst.dwmc"]
                actions["DWJCDJ"] = reg
                var undo = actions["DWXH"] as! [String: Any]
                undo["undo"] = ["field": "dwzh", "effect": "no-such-effect"]
                actions["DWXH"] = undo
                d["actions"] = actions
                d["faults"] = ["transientFaultRate": 2]
            }
        }
        defer { try? FileManager.default.removeItem(at: badDept) }
        let (_, texts) = DepartmentConfig.check(directory: badDept.appendingPathComponent("housing-fund"))
        let file = badDept.appendingPathComponent("housing-fund/department.json").path
        for expected in ["$.faults.transientFaultRate: expected a probability", "$.actions.DWJCDJ.latency: expected",
                         "$.actions.DWJCDJ.rules[0].require.op: expected one of", "$.actions.DWJCDJ.reply.dwzh.$id.check: unknown check digit algorithm 'mod97'",
                         "$.actions.DWJCDJ.reply.x: '$.requst.dwmc' is not a path", "$.actions.DWXH.undo.effect: no action records an effect of kind 'no-such-effect'"] {
            #expect(texts.contains { $0.hasPrefix("\(file): \(expected)") }, "\(expected) not in \(texts)")
        }
        #expect(texts.count == 6, "\(texts)")
        #expect(throws: DepartmentConfigError.self) { try DepartmentConfig.load(directory: badDept.appendingPathComponent("housing-fund")) }
    }

    @Test("yishi adapters validate --json exits 1 naming the problem; adapter run refuses an agency without a catalogue")
    func validateCommand() throws {
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment)
        let clean = try yishi.run(["adapters", "validate"])
        #expect(clean.status == 0, "\(clean.err)")
        #expect(clean.err.contains("6 agency(ies): 6 valid"))
        let broken = try brokenCopy { dir in
            try edit(dir.appendingPathComponent("department.json")) { d in
                var env = d["envelope"] as! [String: Any]
                env["requestId"] = "lsh"
                d["envelope"] = env
            }
        }
        defer { try? FileManager.default.removeItem(at: broken) }
        let bad = try yishi.run(["adapters", "validate", "--json", "--catalogues", broken.path])
        #expect(bad.status == 1)
        let report = try JSONValue.parse(bad.out)
        let problem = try #require(report["problems"]?.arrayValue?.first)
        #expect(problem["agency"] == "housing-fund" && problem["path"] == "$.envelope.requestId")
        #expect(problem["message"]?.stringValue?.contains("mapping.json's $.envelope.requestId is 'ywlsh'") == true)
        let unknown = try yishi.run(["adapter", "run", "--agency", "police", "--bootstrap", "127.0.0.1:1"])
        #expect(unknown.status == 2 && unknown.err.contains("unknown agency 'police'"))
    }

    // MARK: - Bundles and the agency list

    @Test("a bundle step on an agency the hub cannot serve is refused with file and path; v2 adds the housing fund, v1 is unchanged")
    func unservableAgencyAndVersions() throws {
        // An agency with a catalogue but no mapping.json: no adapter can run for it.
        let noMapping = try brokenCopy { try FileManager.default.removeItem(at: $0.appendingPathComponent("mapping.json")) }
        defer { try? FileManager.default.removeItem(at: noMapping) }
        let bundles = repoRoot.appendingPathComponent("seeds/bundles"), calendars = repoRoot.appendingPathComponent("seeds/calendar")
        let lib = try BundleLibrary.load(bundles: bundles, catalogues: noMapping, calendars: calendars,
                                         schemas: repoRoot.appendingPathComponent("schemas"))
        let v2 = bundles.appendingPathComponent("enterprise-opening.v2.json").path
        #expect(lib.problems.map(\.description).contains { $0.hasPrefix("\(v2): $.steps[0].agency: agency 'housing-fund' cannot be served:") && $0.contains("no mapping.json") },
                "\(lib.problems)")
        #expect(lib.problems.allSatisfy { $0.kind == .unservableAgency })
        // A hub serving only the five agencies refuses v2 the same way.
        let five = try BundleLibrary.load(bundles: bundles, catalogues: Self.adapters, calendars: calendars, serving: Set(HubTopics.defaultAgencies))
        #expect(five.problems.map(\.path) == ["$.steps[0].agency"] && five.problems.first?.file == v2)

        // The shipped library: v2 is what new sagas get, with the housing fund after registration; v1 is kept as it was.
        let full = try BundleLibrary.load(bundles: bundles, catalogues: Self.adapters, calendars: calendars)
        #expect(full.problems.isEmpty, "\(full.problems)")
        let newest = try #require(full.newest("enterprise-opening"))
        #expect(newest.version == 2)
        let step = try #require(newest.definition.steps.first { $0.agency == "housing-fund" })
        #expect(step.after == ["registration"] && step.action == "register-fund-employer")
        let v1 = try #require(full.bundle("enterprise-opening", version: 1))
        #expect(!v1.steps.contains { $0.agency == "housing-fund" })
        // v1's fingerprint (what its running sagas are checked against) does not depend on the new agency.
        let before = try BundleLibrary.load(bundles: bundles, catalogues: noMapping, calendars: calendars)
        #expect(before.bundle("enterprise-opening", version: 1)?.fingerprint == v1.fingerprint)
    }

    @Test("the orchestrator serves every catalogue agency: its topics and subscriptions include housing-fund; limited to five, it refuses v2")
    func orchestratorAgencies() throws {
        var connection = HubConnection(bootstrap: "127.0.0.1:1")  // init reads files only; nothing connects
        connection.prefix = "agencies."
        let all = try OrchestratorService(config: OrchestratorConfig(connection: connection, instanceId: "t", repository: repoRoot),
                                          log: JSONLog(component: "orchestrator", minimum: .error))
        let agencies = try #require(all.config.agencies)
        #expect(agencies == (try CatalogueSet.load(directory: Self.adapters).ids) && agencies.contains("housing-fund"))
        // The topics it creates at start: housing-fund's four, with the hub's partition count (not auto-created ones).
        let topics = HubTopics.all(prefix: "agencies.", partitions: 6, agencies: agencies)
        for t in ["commands", "dept.housing-fund.requests", "dept.housing-fund.replies", "events"].map({ $0.hasPrefix("dept.") ? $0 : "\($0).housing-fund" }) {
            #expect(topics.first { $0.name == "agencies." + t }?.partitions == 6, "\(t)")
        }

        var limited = OrchestratorConfig(connection: connection, instanceId: "t", repository: repoRoot)
        limited.agencies = HubTopics.defaultAgencies
        do {
            _ = try OrchestratorService(config: limited, log: JSONLog(component: "orchestrator", minimum: .error))
            Issue.record("an orchestrator serving five agencies loaded a bundle with a housing-fund step")
        } catch let OrchestratorError.invalidBundles(problems) {
            #expect(problems.count == 1 && problems[0].contains("enterprise-opening.v2.json: $.steps[0].agency: agency 'housing-fund' cannot be served"), "\(problems)")
        }
    }
}
