import Foundation
import Messaging
import Orchestrator
import SagaEngine
import YishiKafka

/// One screen for the whole hub (`yishi status`): every hub consumer group with its live
/// members and lag, the sagas by status and by the agency they wait on, the operator's queue,
/// and the dead letters since a time; `attention` lists, in words, what needs a person.
///
/// Membership comes from the group coordinator (Kafka's ListGroups and DescribeGroups, through
/// librdkafka's `rd_kafka_ListConsumerGroups` / `rd_kafka_DescribeConsumerGroups`); lag from
/// `LagProbe` (records, not offsets). A group is *stalled* when its oldest waiting record has
/// waited `stallAfter` (wall time, from the record's timestamp) and its committed offsets did not
/// move between two reads (`stallWindow` apart at least). Tansu 0.6.0 answers ListGroups with no
/// group and keeps a SIGKILLed member registered (it does not expire sessions), so there a dead
/// process shows as *stalled*, not as a group without members.
public struct HubStatus: Encodable {
    public struct Group: Encodable {
        public var group: String
        /// `orchestrator`, `adapter`, `department`, or `other` (a group under the hub's prefix the hub does not define).
        public var role: String
        /// The agency of an adapter or department group.
        public var agency: String?
        /// The coordinator's state name (`Stable`, `Empty`, `Dead` = unknown to the coordinator, …).
        public var state: String
        public var members: [ConsumerGroupMember]
        /// Records waiting for the group, per topic (full names) and in all.
        public var lagByTopic: [String: Int64]
        public var lag: Int64
        public var lagExact: Bool
        /// How long (wall seconds, from its timestamp) the oldest waiting record has waited.
        public var oldestWaitingSeconds: Int64?
        /// Records have waited at least `stallAfter` and the committed offsets did not move while
        /// `HubStatus` looked, although the group has members: on a broker that does not expire the
        /// sessions of killed members (Tansu 0.6.0), how a dead process shows.
        public var stalled: Bool
        /// What is wrong with this group, in words (empty when nothing).
        public var problems: [String]

        public init(group: String, role: String, agency: String?, state: String, members: [ConsumerGroupMember], lagByTopic: [String: Int64],
                    lag: Int64, lagExact: Bool, oldestWaitingSeconds: Int64?, stalled: Bool, problems: [String]) {
            self.group = group; self.role = role; self.agency = agency; self.state = state; self.members = members
            self.lagByTopic = lagByTopic; self.lag = lag; self.lagExact = lagExact; self.oldestWaitingSeconds = oldestWaitingSeconds
            self.stalled = stalled; self.problems = problems
        }
    }

    public struct Sagas: Encodable {
        /// Sagas read (at most `SagaFilter` limit; `more` when there were more).
        public var total: Int
        public var more: Bool
        public var byStatus: [String: Int]
        /// Unfinished sagas with a step out at (or being undone at) each agency.
        public var waitingOnAgency: [String: Int]
        public var atRisk: Int
        public var overdue: Int
        public var manualCases: Int
        public var pausedSagas: Int
        public var heldSteps: Int
        /// 容缺 steps waiting for the applicant's materials.
        public var waitingSupplement: Int
        /// `live` (the orchestrator answered) or `changelog`.
        public var source: String
    }

    public struct DeadLetterCount: Encodable {
        /// RFC 3339; letters whose `failedAt` is at or after it are counted.
        public var since: String
        public var count: Int
        public var byOriginTopic: [String: Int]
    }

    public var groups: [Group]
    public var sagas: Sagas?
    public var deadLetters: DeadLetterCount?
    /// Everything that needs a person, one line each; empty when the hub is well.
    public var attention: [String]
    public var needsAttention: Bool
    public var lagNote: String

    public init(groups: [Group], sagas: Sagas?, deadLetters: DeadLetterCount?) {
        self.groups = groups; self.sagas = sagas; self.deadLetters = deadLetters
        attention = Self.attention(groups: groups, sagas: sagas, deadLetters: deadLetters)
        needsAttention = !attention.isEmpty
        lagNote = LagProbe.caveat
    }

    /// The hub's own groups (orchestrator, adapters, departments) plus any other group the
    /// coordinator lists under the hub's prefix, with role and agency.
    public static func hubGroups(hub: Hub, listed: [String], agencies: [String])
        -> [(group: String, role: String, agency: String?, topics: [String])] {
        var out: [(String, String, String?, [String])] = [(hub.orchestratorGroup, "orchestrator", nil, ["applications", "ops"] + agencies.map { "events.\($0)" })]
        for a in agencies { out.append((HubGroups.adapter(prefix: hub.prefix, agency: a), "adapter", a, ["commands.\(a)", "dept.\(a).replies"])) }
        for a in agencies { out.append((HubGroups.department(prefix: hub.prefix, agency: a), "department", a, ["dept.\(a).requests"])) }
        let known = Set(out.map(\.0))
        for g in listed.sorted() where g.hasPrefix(hub.prefix) && !known.contains(g) { out.append((g, "other", nil, [])) }
        return out
    }

    /// Reads the groups of the hub serving `agencies` (the catalogues' ids): membership, lag, and (a
    /// second read of the committed offsets after `between` has run) whether each group with
    /// records waiting moved.
    /// - Throws: `OperationsError.unreachable` when the broker does not answer.
    public static func groups(hub: Hub, agencies: [String], stallWindow: Duration = .seconds(1), stallAfter: Duration = .seconds(10),
                              between: () throws -> Void = {}) throws -> [Group] {
        let admin = try KafkaAdmin(config: hub.kafka())
        let listed: [String: String]
        do { listed = try admin.listConsumerGroups(timeout: hub.timeout) } catch {
            throw OperationsError.unreachable("the broker did not list its consumer groups within \(hub.timeout): \(error)")
        }
        let defined = hubGroups(hub: hub, listed: Array(listed.keys), agencies: agencies)
        let described: [ConsumerGroupDescription]
        do { described = try admin.describeConsumerGroups(defined.map(\.group), timeout: hub.timeout) } catch {
            throw OperationsError.unreachable("the broker did not describe the hub's consumer groups within \(hub.timeout): \(error)")
        }
        let probe = LagProbe(hub: hub)
        let withTopics = defined.filter { !$0.topics.isEmpty }
        let rows = try probe.lag(withTopics.map { ($0.group, $0.topics) })
        let started = ContinuousClock.now
        try between()
        let rest = stallWindow - (ContinuousClock.now - started)
        if rest > .zero { Thread.sleep(forTimeInterval: Double(rest.components.seconds) + Double(rest.components.attoseconds) / 1e18) }
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        var out: [Group] = []
        for (i, d) in defined.enumerated() {
            let mine = rows.filter { $0.group == d.group }
            let lag = mine.reduce(0) { $0 + $1.lag }
            let waitedMs = mine.compactMap(\.oldestWaitingMs).min().map { max(0, nowMs - $0) }
            var stalled = false
            if lag > 0, !described[i].members.isEmpty, let waitedMs, waitedMs >= stallAfter.components.seconds * 1000 + stallAfter.components.attoseconds / 1_000_000_000_000_000 {
                let waiting = mine.flatMap { r in r.partitions.filter { $0.lag > 0 }.map { (TopicPartition(r.topic, $0.partition), $0.committed) } }
                let now = try probe.committed(group: d.group, waiting.map(\.0))
                stalled = waiting.allSatisfy { now[$0.0] == $0.1 }
            }
            var g = Group(group: d.group, role: d.role, agency: d.agency, state: described[i].state, members: described[i].members,
                          lagByTopic: Dictionary(mine.map { ($0.topic, $0.lag) }) { a, b in a + b }, lag: lag,
                          lagExact: mine.allSatisfy(\.exact), oldestWaitingSeconds: waitedMs.map { $0 / 1000 }, stalled: stalled, problems: [])
            let who = d.role == "department" ? "department \(d.agency ?? "?") (its gateway or system)"
                : d.role == "adapter" ? "adapter \(d.agency ?? "?")" : d.role
            if described[i].members.isEmpty, d.role != "other" {
                g.problems.append(lag > 0 ? "\(who): no live member in group \(d.group) while \(lag) record(s) wait — is the process running?"
                                          : "\(who): no live member in group \(d.group) — is the process running?")
            } else if stalled {
                g.problems.append("\(who): \(lag) record(s) wait, the oldest for \((waitedMs ?? 0) / 1000) s, and group \(d.group) does not consume them "
                                  + "(\(described[i].members.count) member(s) registered, none consuming: a killed process stays registered on a broker "
                                  + "that does not expire sessions, as Tansu 0.6.0) — is the process running?")
            }
            if let e = described[i].error, described[i].state != "Dead" { g.problems.append("group \(d.group): the coordinator said \(e)") }
            out.append(g)
        }
        return out
    }

    /// Counts of the operator-relevant facts in `sagas`.
    public static func sagas(_ sagas: [SagaState], more: Bool, library: BundleLibrary, source: String) -> Sagas {
        var s = Sagas(total: sagas.count, more: more, byStatus: [:], waitingOnAgency: [:], atRisk: 0, overdue: 0, manualCases: 0,
                      pausedSagas: 0, heldSteps: 0, waitingSupplement: 0, source: source)
        for saga in sagas {
            s.byStatus[saga.status.rawValue, default: 0] += 1
            guard !saga.status.isFinal else { continue }
            if saga.slaBreached { s.overdue += 1 } else if saga.slaAtRisk { s.atRisk += 1 }
            s.manualCases += saga.manualCases.count
            if saga.paused { s.pausedSagas += 1 }
            s.heldSteps += saga.steps.filter { $0.isPaused && !$0.status.isDone }.count
            s.waitingSupplement += saga.steps.filter { $0.status == .waitingSupplement }.count
            if let bundle = library.bundle(saga.bundleId, version: saga.bundleVersion) {
                let agencies = Set(saga.steps.indices.filter { i in
                    i < bundle.steps.count && [.running, .compensating].contains(saga.steps[i].status)
                }.map { bundle.steps[$0].agency })
                for a in agencies { s.waitingOnAgency[a, default: 0] += 1 }
            }
        }
        return s
    }

    /// Dead letters written at or after `since`.
    public static func deadLetters(_ messages: [KafkaMessage], since: Date) -> DeadLetterCount {
        var c = DeadLetterCount(since: RFC3339.format(since), count: 0, byOriginTopic: [:])
        for m in messages {
            guard let letter = try? DeadLetter(m) else { c.count += 1; c.byOriginTopic["?", default: 0] += 1; continue }
            guard letter.failedAt >= since else { continue }
            c.count += 1
            c.byOriginTopic[letter.originalTopic, default: 0] += 1
        }
        return c
    }

    /// The attention lines from the parts.
    public static func attention(groups: [Group], sagas: Sagas?, deadLetters: DeadLetterCount?) -> [String] {
        var out = groups.flatMap(\.problems)
        if let s = sagas {
            if s.manualCases > 0 { out.append("\(s.manualCases) open 办不成事 case(s): yishi cases") }
            if s.pausedSagas + s.heldSteps > 0 { out.append("\(s.pausedSagas) paused saga(s) and \(s.heldSteps) held step(s) wait for an operator: yishi cases") }
            if s.overdue > 0 { out.append("\(s.overdue) saga(s) overdue: yishi sagas list --overdue") }
            if s.atRisk > 0 { out.append("\(s.atRisk) saga(s) at risk of missing their SLA: yishi sagas list --at-risk") }
        }
        if let d = deadLetters, d.count > 0 { out.append("\(d.count) dead letter(s) since \(d.since): yishi dlq list") }
        return out
    }
}
