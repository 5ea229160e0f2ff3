import Foundation
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Synchronization
import Testing
import YishiKafka
import YishiTestSupport

@Suite("Lag and group membership on the broker", .serialized)
struct LagAndMembershipTests {
    /// A topic written in transactions: each commit marker takes an offset. A group that has
    /// consumed every record is idle, and its lag is 0 although the high watermark is one past it.
    @Test func lagCountsRecordsNotTransactionMarkers() throws {
        let fx = try OpsFixture(partitions: 1)
        let topic = fx.topic("commands.tax")
        let producer = try KafkaProducer(config: fx.hub.kafka(), transactionalId: fx.prefix + "lag-test")
        try producer.initTransactions()
        for n in 0..<2 {
            try producer.beginTransaction()
            for i in 0..<3 { try producer.enqueue(ProducerRecord(topic: topic, key: "APP-\(n)-\(i)", value: Data("{}".utf8))) }
            try producer.commitTransaction()
        }
        let records = try TopicReader(hub: fx.hub).read(topic: topic, partitions: [0])
        #expect(records.count == 6)
        let group = HubGroups.adapter(prefix: fx.prefix, agency: "tax")
        let consumer = try KafkaConsumer(config: fx.hub.kafka(), groupId: group)
        defer { try? consumer.close() }
        let probe = LagProbe(hub: fx.hub)

        // Nothing committed: every delivered record waits (not the markers, not the aborted one).
        var row = try #require(try probe.lag(group: group, topics: ["commands.tax"]).first)
        #expect(row.lag == 6 && row.partitions[0].committed == nil, "\(row)")

        // Consumed up to the first transaction's last record: the second transaction's 3 wait.
        try consumer.commit([TopicPartitionOffset(topic, 0, records[2].offset + 1)])
        row = try #require(try probe.lag(group: group, topics: ["commands.tax"]).first)
        #expect(row.lag == 3 && row.exact, "\(row)")

        // Consumed everything: lag 0, although the high watermark counts the markers.
        try consumer.commit([TopicPartitionOffset(topic, 0, records[5].offset + 1)])
        row = try #require(try probe.lag(group: group, topics: ["commands.tax"]).first)
        #expect(row.partitions[0].high > records[5].offset + 1, "the markers take offsets: \(row)")
        #expect(row.lag == 0 && row.exact, "\(row)")

        // With a counting limit below the backlog the figure is an estimate, and says so.
        try consumer.commit([TopicPartitionOffset(topic, 0, records[0].offset)])
        row = try #require(try LagProbe(hub: fx.hub, countLimit: 2).lag(group: group, topics: ["commands.tax"]).first)
        #expect(!row.exact && row.lag >= 6, "\(row)")
    }

    /// ListConsumerGroups and DescribeConsumerGroups against the test broker: a subscribed
    /// consumer is a live member; once it leaves, the group has none.
    @Test func groupMembersAreListedAndDescribed() async throws {
        let fx = try OpsFixture(partitions: 2)
        let group = fx.prefix + "dept.tax"
        let assigned = Mutex(false)
        let consumer = try KafkaConsumer(config: fx.hub.kafka(["client.id": "dept-tax-test", "session.timeout.ms": "6000"]), groupId: group,
                                         rebalance: RebalanceListener(onAssigned: { _ in assigned.withLock { $0 = true } }))
        try consumer.subscribe([fx.topic("dept.tax.requests")])
        try await eventually(every: .milliseconds(100), timeout: .seconds(30), "the consumer's assignment") {
            _ = try consumer.poll(maxMessages: 10, timeout: .milliseconds(50))
            return assigned.withLock { $0 }
        }
        let admin = try KafkaAdmin(config: fx.hub.kafka())
        // Tansu 0.6.0 answers ListGroups with no group, so `yishi status` describes the hub's
        // groups by name; an Apache Kafka broker lists this one.
        let listed = try admin.listConsumerGroups()
        #expect(listed.keys.allSatisfy { !$0.isEmpty })
        let live = try #require(try admin.describeConsumerGroups([group, fx.prefix + "nobody"]).first)
        // Tansu leaves client.id and host empty; librdkafka's member id starts with the client.id.
        #expect(live.members.count == 1 && (live.members[0].clientId == "dept-tax-test" || live.members[0].memberId.hasPrefix("dept-tax-test-")),
                "\(live)")
        try consumer.close()
        var after: [ConsumerGroupDescription] = []
        try await eventually(every: .milliseconds(200), timeout: .seconds(20), "the member gone") {
            after = try admin.describeConsumerGroups([group, fx.prefix + "nobody"])
            return after[0].members.isEmpty
        }
        #expect(after[1].members.isEmpty)
    }
}

@Suite("The operator's queue, held steps, status screen and diagnosis wording (no broker)")
struct OperatorQueueTests {
    let f: Fixtures
    init() throws { f = try Fixtures() }

    /// A held step waits for an operator: `cases` lists it (and a paused saga), the step table
    /// says `held`, `sagas list` says `(held)`, and `--paused` finds the saga.
    @Test func heldStepsAndPausedSagasAreInTheOperatorQueue() throws {
        let base = f.running
        let (held, heldAudit) = f.run("APP-GOLDEN-HELD", [
            f.submit("APP-GOLDEN-HELD", at: Fixtures.minutes(30)),
            SagaInput(at: Fixtures.minutes(30), .operatorCommand(OperatorCommand(id: "h1", by: "operator-zhao", .pauseStep(step: "registration", reason: "phone the applicant")))),
            f.ok("name-reservation", 31),
        ])
        let (paused, _) = f.run("APP-GOLDEN-PAUSED", [
            f.submit("APP-GOLDEN-PAUSED", at: Fixtures.minutes(31)),
            SagaInput(at: Fixtures.minutes(32), .operatorCommand(OperatorCommand(id: "p1", by: "operator-zhao", .pause(reason: "fraud check")))),
        ])
        let rows = Render.caseRows([f.manual.0, base.0, held, paused], library: library, now: Fixtures.now, revealPII: false)
        #expect(rows.map { "\($0.sagaId) \($0.step) \($0.kind)" }.sorted()
                == ["APP-GOLDEN-HELD registration held", "APP-GOLDEN-MANUAL social-security forward", "APP-GOLDEN-PAUSED - paused"], "\(rows)")
        #expect(Render.cases(rows, style: .plain).contains("1 held step(s)"))

        let timeline = SagaTimeline(state: held, bundle: f.bundle, calendar: f.calendar, audit: heldAudit, now: Fixtures.now, source: "live")
        let table = Render.timeline(timeline, style: .plain)
        let line = try #require(table.split(separator: "\n").first { $0.hasPrefix("registration ") })
        #expect(line.contains(" held ") && !line.contains("pending"), "\(line)")
        #expect(timeline.steps.first { $0.id == "registration" }?.held == true)
        let summary = SagaSummary(held, bundle: f.bundle, calendar: f.calendar, now: Fixtures.now, revealPII: false)
        #expect(summary.blockedAt == ["registration (held)"], "\(summary.blockedAt)")
        #expect(SagaFilter(paused: true).matches(held, bundle: f.bundle) && SagaFilter(paused: true).matches(paused, bundle: f.bundle))
        #expect(!SagaFilter(paused: true).matches(base.0, bundle: f.bundle) && SagaFilter(paused: false).matches(base.0, bundle: f.bundle))
    }

    /// Work waiting in front of a department without a live member: the headline names the department.
    @Test func diagnosisNamesTheDepartmentWhenWorkPilesUp() throws {
        let (state, audit) = f.running
        let t = SagaTimeline(state: state, bundle: f.bundle, calendar: f.calendar, audit: audit, now: Fixtures.now, source: "live")
        let watch = { (agency: String) -> [Diagnosis.GroupWatch] in [
            .init(role: "adapter", agency: agency, group: "yishi.adapter.\(agency)", topic: "yishi.commands.\(agency)", members: 1, lag: 0),
            .init(role: "department", agency: agency, group: "yishi.dept.\(agency)", topic: "yishi.dept.\(agency).requests", members: 0, lag: 1),
        ] }
        let d = Diagnosis(timeline: t, state: state, bundle: f.bundle, calendar: f.calendar, partition: 0, prefix: "yishi.",
                          lag: { ("yishi.adapter.\($0)", 0, nil) }, groups: watch)
        #expect(d.headline.contains("work piles up in front of the business-registration department") && d.headline.hasPrefix("Stuck"), "\(d.headline)")
        #expect(Render.diagnosis(d, style: .plain).contains("yishi.dept.business-registration: no live member, 1 record(s) waiting"))
        // A member still registered (a broker that keeps killed members, as Tansu 0.6.0) but records waiting long: said too.
        let stale = Diagnosis.GroupWatch(role: "department", agency: "tax", group: "g", topic: "t", members: 1, lag: 2, waitedSeconds: 30)
        #expect(stale.pileUp?.contains("have waited 30 s") == true)
        #expect(Diagnosis.GroupWatch(role: "department", agency: "tax", group: "g", topic: "t", members: 1, lag: 2, waitedSeconds: 3).pileUp == nil)
        let calm = Diagnosis(timeline: t, state: state, bundle: f.bundle, calendar: f.calendar, partition: 0, prefix: "yishi.",
                             lag: { ("yishi.adapter.\($0)", 0, nil) })
        #expect(calm.headline.hasPrefix("Waiting"), "\(calm.headline)")
    }

    /// The status screen: attention lines from groups, sagas and dead letters; none when all is well.
    @Test func statusAttention() throws {
        let dead = HubStatus.Group(group: "yishi.dept.tax", role: "department", agency: "tax", state: "Empty", members: [], lagByTopic: ["yishi.dept.tax.requests": 2],
                                   lag: 2, lagExact: true, oldestWaitingSeconds: 40, stalled: false,
                                   problems: ["department tax (its gateway or system): no live member in group yishi.dept.tax while 2 record(s) wait — is the process running?"])
        let sagas = HubStatus.sagas([f.manual.0, f.running.0, f.completed.0], more: false, library: library, source: "live")
        #expect(sagas.byStatus == ["manual": 1, "running": 1, "completed": 1] && sagas.manualCases == 1, "\(sagas)")
        #expect(sagas.waitingOnAgency["business-registration"] == 1, "\(sagas.waitingOnAgency)")
        let status = HubStatus(groups: [dead], sagas: sagas, deadLetters: nil)
        #expect(status.needsAttention && status.attention.first?.contains("department tax") == true)
        let text = Render.hubStatus(status, style: .plain)
        #expect(text.contains("Needs attention") && text.contains("no live member"), "\(text)")
        let well = HubStatus(groups: [], sagas: HubStatus.sagas([f.completed.0], more: false, library: library, source: "live"), deadLetters: nil)
        #expect(!well.needsAttention && Render.hubStatus(well, style: .plain).contains("Nothing needs attention."))
    }
}

@Suite("Operator input names (no broker)")
struct OperatorInputNameTests {
    let f: Fixtures
    init() throws { f = try Fixtures() }

    @Test func setAndOutputNamesAreCheckedAndListed() throws {
        let retry = OperatorInputCheck.refusal(action: .retry, step: "social-security", data: ["employees": 6], bundle: f.bundle,
                                               catalogues: library.catalogues)
        #expect(retry?.contains("--set employees") == true && retry?.contains("valid: address, approvedName, expectedEmployees") == true, "\(retry ?? "nil")")
        #expect(OperatorInputCheck.refusal(action: .retry, step: "social-security", data: ["expectedEmployees": 6], bundle: f.bundle,
                                           catalogues: library.catalogues) == nil)
        let resolve = OperatorInputCheck.refusal(action: .resolve, step: "social-security", data: ["uscc": "x"], bundle: f.bundle,
                                                 catalogues: library.catalogues)
        #expect(resolve?.contains("valid: employerSocialSecurityNo, medicalInsuranceNo") == true, "\(resolve ?? "nil")")
        #expect(OperatorInputCheck.refusal(action: .retry, step: "no-such-step", data: ["a": 1], bundle: f.bundle,
                                           catalogues: library.catalogues)?.contains("has no step") == true)
        // diagnose lists them with the commands.
        let (state, audit) = f.manual
        let t = SagaTimeline(state: state, bundle: f.bundle, calendar: f.calendar, audit: audit, now: Fixtures.now, source: "live")
        let d = Diagnosis(timeline: t, state: state, bundle: f.bundle, calendar: f.calendar, partition: 0, prefix: "yishi.",
                          lag: { ("yishi.adapter.\($0)", 0, nil) }, catalogues: library.catalogues)
        #expect(d.actions.contains { $0.command.contains("retry") && $0.why.contains("--set FIELD: address, approvedName, expectedEmployees") }, "\(d.actions)")
        #expect(d.actions.contains { $0.command.contains("resolve") && $0.why.contains("--output NAME: employerSocialSecurityNo, medicalInsuranceNo") })
    }
}

@Suite("Tables for people: CJK widths, terminal width, failed sagas say why (no broker)")
struct TableAndFailureTests {
    let f: Fixtures
    init() throws { f = try Fixtures() }

    /// Columns line up by display width (CJK = 2 columns), in the CLI's tables and the demo's outcome table.
    @Test func cjkLabelsAlign() throws {
        var table = Table(["LABEL", "N"])
        table.add(["办不成事转人工", "3"]); table.add(["completed", "95"]); table.add(["ＦＵＬＬ", "1"])
        let lines = table.render(.plain).split(separator: "\n").map(String.init)
        let starts = lines.map { line in displayWidth(String(line[..<line.index(line.endIndex, offsetBy: -(line.hasSuffix("95") ? 2 : 1))])) }
        #expect(Set(starts).count == 1, "\(lines)")
        #expect("办不成事".padded(toWidth: 12).count == 8 && displayWidth("办不成事".padded(toWidth: 12)) == 12)
        #expect("一表申请ABC".truncated(toWidth: 6) == "一表…" && displayWidth("一表申请ABC".truncated(toWidth: 6)) <= 6)
    }

    /// BLOCKED AT shrinks to the terminal's width (COLUMNS); nothing is cut without a limit.
    @Test func blockedAtFitsTheTerminal() throws {
        let rows = [SagaSummary(f.manual.0, bundle: f.bundle, calendar: f.calendar, now: Fixtures.now, revealPII: false)]
        let wide = Render.sagaList(rows, next: nil, style: .plain)
        let widest = wide.split(separator: "\n").map { displayWidth(String($0)) }.max()!
        let narrow = Render.sagaList(rows, next: nil, style: Style(colour: false, width: widest - 20))
        let lines = narrow.split(separator: "\n").dropLast().map(String.init)
        #expect(lines.allSatisfy { displayWidth($0) <= widest - 20 } && narrow.contains("…"), "\(narrow)")
        #expect(!wide.contains("…"))
        #expect(Style.terminalWidth(environment: ["COLUMNS": "77"]) == 77)
    }

    /// A failed saga says why (step, code, reason) and what the applicant can do, in list and diagnose.
    @Test func failedSagasSayWhy() throws {
        let (state, audit) = f.run("APP-GOLDEN-FAILED", [
            f.submit("APP-GOLDEN-FAILED"),
            SagaInput(at: Fixtures.minutes(2), .stepRejected(step: "name-reservation", attempt: 1, code: "NAME_TAKEN",
                                                             reason: "name already registered in the region", field: "$.company.proposedNames")),
        ])
        #expect(state.status.isFinal && state.status != .completed, "\(state.status)")
        let summary = SagaSummary(state, bundle: f.bundle, calendar: f.calendar, now: Fixtures.now, revealPII: false)
        #expect(summary.reason == "failed at name-reservation: NAME_TAKEN", "\(summary.reason ?? "nil")")
        #expect(Render.sagaList([summary], next: nil, style: .plain).contains("failed at name-reservation: NAME_TAKEN"))
        let t = SagaTimeline(state: state, bundle: f.bundle, calendar: f.calendar, audit: audit, now: Fixtures.now, source: "live")
        let d = Diagnosis(timeline: t, state: state, bundle: f.bundle, calendar: f.calendar, partition: 0, prefix: "yishi.",
                          lag: { ("yishi.adapter.\($0)", 0, nil) })
        #expect(d.failure?.step == "name-reservation" && d.failure?.code == "NAME_TAKEN" && d.failure?.kind == "rejected", "\(String(describing: d.failure))")
        #expect(d.headline.hasPrefix("Finished") && d.headline.contains("name already registered") && d.headline.contains("The applicant can"),
                "\(d.headline)")
        #expect(!d.headline.contains("Not stuck"))
        #expect(Render.diagnosis(d, style: .plain).contains("Applicant  the agency refused the application"))
    }
}
