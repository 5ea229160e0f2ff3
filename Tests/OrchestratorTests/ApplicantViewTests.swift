import Foundation
import Messaging
import SagaEngine
import Testing
import YishiKafka
@testable import Orchestrator

/// Issue 13, 进度查询 and 统一出件: query codes, the applicant's progress in plain Chinese without
/// personal data, progress events on `progress`, and the result package of a completed saga.
@Suite struct ApplicantViewTests {
    static let secret = Data("test-query-secret-0123456789".utf8)

    @Test("HMAC-SHA256 reproduces RFC 4231 test cases 1 and 2")
    func hmacVectors() {
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        // RFC 4231 §4.2 (test case 1) and §4.3 (test case 2).
        #expect(hex(QueryCode.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(hex(QueryCode.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("a query code is 8 Crockford base-32 characters, checked case- and dash-insensitively; another id, secret or code does not match")
    func queryCodes() throws {
        let code = QueryCode.code(applicationId: "APP-2026-000001", secret: Self.secret)
        #expect(code.count == 9 && code.dropFirst(4).first == "-", "\(code)")
        #expect(code.allSatisfy { "0123456789ABCDEFGHJKMNPQRSTVWXYZ-".contains($0) })
        #expect(QueryCode.matches(code, applicationId: "APP-2026-000001", secret: Self.secret))
        #expect(QueryCode.matches(code.lowercased().replacingOccurrences(of: "-", with: ""), applicationId: "APP-2026-000001", secret: Self.secret))
        #expect(!QueryCode.matches(code, applicationId: "APP-2026-000002", secret: Self.secret))
        #expect(!QueryCode.matches(code, applicationId: "APP-2026-000001", secret: Data("another-secret-0123456789".utf8)))
        #expect(!QueryCode.matches(String(code.dropLast()) + (code.last == "0" ? "1" : "0"), applicationId: "APP-2026-000001", secret: Self.secret))
        #expect(!QueryCode.matches("", applicationId: "APP-2026-000001", secret: Self.secret))
        #expect(throws: QueryCode.SecretError.self) { try QueryCode.secret(environment: ["YISHI_QUERY_SECRET": "short"]) }
        #expect(try QueryCode.secret(environment: [:]) == nil)
    }

    @Test("a saga with 容缺 through to completion: progress events validate, carry no personal data, and the result package lists every issued number")
    func progressAndResults() throws {
        let config = OrchestratorConfig(connection: HubConnection(bootstrap: "127.0.0.1:1"), instanceId: "t", repository: repoRoot)
        let inbound = try InboundDecoder(config: config)
        let library = try BundleLibrary.load(bundles: config.bundlesDirectory, catalogues: config.cataloguesDirectory,
                                             calendars: config.calendarsDirectory)
        let bundle = try #require(library.newest("enterprise-opening"))
        let calendar = try #require(library.calendar(for: bundle))
        var host = SagaHost(library: library)
        let form = try #require(TestHub.validApplications(limit: 50).first { $0["bundle"]?.stringValue == "enterprise-opening" })
        let id = try #require(form["applicationId"]?.stringValue)
        let personal = [form["legalRepresentative"]?["idNumber"], form["legalRepresentative"]?["name"], form["legalRepresentative"]?["phone"],
                        form["contact"]?["phone"], form["contact"]?["name"]].compactMap { $0?.stringValue }
        #expect(personal.count >= 3)
        var at = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        var progress: [SagaHost.Outbound] = []
        var commands: [StepCommand] = []
        func collect() throws {
            for out in host.outbound {
                if out.topic == "progress" { progress.append(out) }
                if out.type == MessageType.stepRequested { commands.append(try JSONDecoder().decode(StepCommand.self, from: out.data)) }
            }
            host.commitBatch()
        }
        try host.submit(sagaId: id, bundleId: bundle.id, form: form, licences: [:], at: at)
        try collect()
        var issuedValues: [String: String] = [:]
        var supplemented = false
        var midRun: ProgressReport?
        while !commands.isEmpty {
            let command = commands.removeFirst()
            at = Instant(ms: at.ms + 60_000)
            if command.step == "registration", !supplemented {
                supplemented = true
                try host.apply(id, SagaInput(at: at, .supplementNeeded(step: command.step, attempt: command.attempt, materials: ["lease-contract"])))
                try collect()
                midRun = ProgressReport.make(try #require(host.state(id)), bundle: bundle, calendar: calendar, catalogues: library.catalogues, now: at)
                try host.apply(id, SagaInput(at: at, .supplementProvided(step: command.step, attempt: command.attempt,
                                                                          materials: ["lease-contract": "scan-001"])))
                try collect()
                continue
            }
            let action = try #require(library.catalogues.agencies[command.agency]?.action(command.action))
            var outputs: [String: JSONValue] = [:]
            for field in action.outputs {
                let value = field.name == "accountNumber" ? "6222021234567890123" : "\(field.name.uppercased())-\(command.step)"
                outputs[field.name] = .string(value)
                if IssuedNumbers.index[field.name] != nil { issuedValues[field.name] = value }
            }
            try host.apply(id, SagaInput(at: at, .stepSucceeded(step: command.step, attempt: command.attempt, outputs: outputs)))
            try collect()
        }
        let state = try #require(host.state(id))
        #expect(state.status == .completed)

        // Mid-run, in plain Chinese: done, in progress at which department, the material to hand in.
        let report = try #require(midRun)
        let text = report.render()
        #expect(report.done.map(\.step) == ["name-reservation"], "\(text)")
        #expect(report.materialsNeeded.map(\.step) == ["registration"] && report.materialsNeeded.first?.materials == ["经营场所租赁合同"], "\(text)")
        #expect(text.contains("名称自主申报") && text.contains("待补材料") && text.contains("经营场所租赁合同") && text.contains("市场监管"), "\(text)")
        #expect(report.expectedFinish != nil && text.contains("预计办结时间"), "\(text)")
        for p in personal { #expect(!text.contains(p), "the progress report shows personal data") }
        let done = ProgressReport.make(state, bundle: bundle, calendar: calendar, catalogues: library.catalogues, now: at)
        #expect(done.inProgress.isEmpty && done.notStarted.isEmpty && done.done.count == bundle.steps.count && done.expectedFinish == nil)
        #expect(done.render().contains("已办结"))

        // Progress events: the types in order, each valid against its schema, none with personal data.
        let types = progress.map(\.type)
        #expect(types.first == MessageType.progressAccepted && types.suffix(2) == [MessageType.progressReadyForPickup, MessageType.progressResultPackage],
                "\(types)")
        #expect(types.filter { $0 == MessageType.progressDepartmentDone }.count == bundle.steps.count)
        #expect(types.filter { $0 == MessageType.progressMaterialsNeeded }.count == 1)
        for out in progress {
            let schema = try #require(inbound.registry[out.type], "\(out.type)")
            #expect(schema.validate(out.payload).isEmpty, "\(out.type): \(schema.validate(out.payload))")
            #expect(MessageType.allowed(out.type, onTopic: "progress") == true)
            let body = String(decoding: out.data, as: UTF8.self)
            for p in personal { #expect(!body.contains(p), "\(out.type) carries personal data") }
            #expect(!body.contains("6222021234567890123"), "\(out.type) carries a full bank account")
        }

        // 统一出件: every issued number, the bank account masked.
        let package = try #require(ResultPackage.make(state, bundle: bundle))
        let listed = Dictionary(package.items.map { ($0.name, $0.value.stringValue ?? "") }) { a, _ in a }
        #expect(Set(listed.keys) == Set(issuedValues.keys), "\(listed.keys.sorted()) vs \(issuedValues.keys.sorted())")
        for name in ["uscc", "licenceId", "companySealCode", "taxpayerId", "ukeyId", "accountNumber", "employerSocialSecurityNo"] {
            #expect(listed[name] != nil, "\(name) missing from the result package")
        }
        for (name, value) in issuedValues where name != "accountNumber" { #expect(listed[name] == value, "\(name)") }
        #expect(listed["accountNumber"] == "6222***********0123")
        let window = package.render()
        #expect(window.contains("统一社会信用代码：USCC-registration") && window.contains("基本存款账户账号：6222***********0123"), "\(window)")
        let event = try #require(progress.last)
        #expect(try JSONDecoder().decode(ResultPackage.self, from: event.data).items == package.items)
    }

    @Test("the result package exists only for a completed saga; bank accounts are masked idempotently")
    func onlyCompleted() throws {
        #expect(PersonalData.maskAccount("6222021234567890123") == "6222***********0123")
        #expect(PersonalData.maskAccount(PersonalData.maskAccount("6222021234567890123")) == "6222***********0123")
        #expect(IssuedNumbers.pick(["approvedName": "某某公司", "uscc": "91330100MA2XXXXX0X", "validUntil": "2026-04-01"]) == ["uscc": "91330100MA2XXXXX0X"])
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"), catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let bundle = try #require(library.newest("enterprise-opening"))
        var state = SagaState(sagaId: "APP-X", bundle: bundle)
        state.status = .running
        #expect(ResultPackage.make(state, bundle: bundle) == nil)
    }

    @Test("the expected finish counts each remaining step at its department's typical handling time, at most its timeout")
    func expectedFinishFromTypicalTimes() throws {
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"), catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let bundle = try #require(library.newest("enterprise-opening"))
        let calendar = try #require(library.calendar(for: bundle))
        let at = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        var state = SagaState(sagaId: "APP-20260302-000001", bundle: bundle)
        _ = SagaEngine.apply(to: &state, SagaInput(at: at, .submit(form: .object(["submittedAt": .string(at.description)]), licences: [:])),
                             bundle: bundle, calendar: calendar)
        func catalogues(_ minutes: (AgencyCatalogue.Action) -> Int?) -> CatalogueSet {
            var set = library.catalogues
            for (agency, var catalogue) in set.agencies {
                for i in catalogue.actions.indices { catalogue.actions[i].typicalWorkingMinutes = minutes(catalogue.actions[i]) }
                set.agencies[agency] = catalogue
            }
            return set
        }
        func finish(_ set: CatalogueSet) throws -> Instant {
            let text = try #require(ProgressReport.make(state, bundle: bundle, calendar: calendar, catalogues: set, now: at).expectedFinish)
            return try #require(Instant(rfc3339: text))
        }
        let typical = try finish(library.catalogues)
        let byTimeouts = try finish(catalogues { _ in nil })
        // Every step at 1 working minute: the critical path of the bundle in minutes.
        let oneMinute = try finish(catalogues { _ in 1 })
        let longestChain = bundle.steps.indices.reduce(into: [Int](repeating: 0, count: bundle.steps.count)) { depth, i in
            depth[i] = 1 + (bundle.steps[i].predecessors.map { depth[$0] }.max() ?? 0)
        }.max() ?? 0
        #expect(oneMinute == calendar.addWorkingTime(at, Int64(longestChain) * 60_000))
        #expect(typical < byTimeouts, "typical \(typical), timeouts \(byTimeouts)")
        // A typical time longer than the timeout counts as the timeout.
        #expect(try finish(catalogues { _ in 100_000 }) == byTimeouts)
    }

    @Test("a public notice (wait step) counts its whole period in the expected finish and says when it ends")
    func expectedFinishCountsTheNotice() throws {
        let library = try BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"), catalogues: repoRoot.appendingPathComponent("adapters"),
                                             calendars: repoRoot.appendingPathComponent("seeds/calendar"))
        let bundle = try #require(library.newest("enterprise-deregistration-simple"))
        let calendar = try #require(library.calendar(for: bundle))
        let at = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        var state = SagaState(sagaId: "DEREG-1", bundle: bundle)
        _ = SagaEngine.apply(to: &state, SagaInput(at: at, .submit(form: .object(["submittedAt": .string(at.description)]), licences: [:])),
                             bundle: bundle, calendar: calendar)
        let report = ProgressReport.make(state, bundle: bundle, calendar: calendar, catalogues: library.catalogues, now: at)
        let notice = try #require(report.inProgress.first { $0.step == "public-notice" })
        #expect(notice.state == "公示中，2026-03-22 09:00 期满", "\(notice)")
        let finish = try #require(report.expectedFinish.flatMap(Instant.init(rfc3339:)))
        // After the notice (Sunday 22 March: the next working morning, 23 March) plus the cancellation.
        #expect(finish > Instant(rfc3339: "2026-03-23T09:00:00+08:00")!, "\(finish)")
        #expect(finish < Instant(rfc3339: "2026-03-25T09:00:00+08:00")!, "\(finish)")
    }
}
