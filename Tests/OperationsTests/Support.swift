import Foundation
import HubTestKit
import Messaging
import Operations
import Orchestrator
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

let library: BundleLibrary = {
    try! BundleLibrary.load(bundles: repoRoot.appendingPathComponent("seeds/bundles"),
                            catalogues: repoRoot.appendingPathComponent("adapters"),
                            calendars: repoRoot.appendingPathComponent("seeds/calendar"))
}()

/// A hub on its own topic prefix and virtual clock, seen by operators through `Hub`.
struct OpsFixture {
    let prefix = uniqueName("ops") + "."
    let partitions: Int32
    let clock: HubClock
    let hub: Hub

    init(partitions: Int32 = 3, speed: Double = 60, operatorName: String = "operator-li") throws {
        self.partitions = partitions
        // 09:00 on a Monday working day.
        clock = HubClock(start: Instant(rfc3339: "2026-03-02T09:00:00+08:00")!, speed: speed)
        hub = Hub(bootstrap: try Broker.bootstrap, prefix: prefix, operatorName: operatorName, timeout: .seconds(20),
                  orchestratorGroup: prefix + "orchestrator", kafka: ["log_level": "3"])
        try KafkaAdmin(config: hub.kafka()).ensureTopics(HubTopics.all(prefix: prefix, partitions: partitions, agencies: try hubAgencies()))
    }

    func orchestratorConfig(instance: String = "o1") -> OrchestratorConfig {
        var connection = HubConnection(bootstrap: hub.bootstrap)
        connection.prefix = prefix
        connection.partitions = partitions
        connection.clock = clock
        connection.sessionTimeoutMs = 6000
        connection.kafka = ["log_level": "3"]
        var config = OrchestratorConfig(connection: connection, instanceId: instance, repository: repoRoot)
        config.groupId = hub.orchestratorGroup
        return config
    }

    func responders(rejectUncorrected: Set<String> = [], reject: Set<String> = []) throws -> ScriptedResponders {
        let clock = self.clock
        return try ScriptedResponders(config: hub.kafka(), prefix: prefix,
                                      catalogues: CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")),
                                      reject: reject, rejectUncorrected: rejectUncorrected, now: { clock.now().date })
    }

    /// `count` enterprise-opening applications (`APP-<tag>-00000`…) submitted as a front desk would.
    func submit(_ count: Int, tag: String) throws -> [JSONValue] {
        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: count, tag: tag)
        try SeedApplications.submit(forms, topicPrefix: prefix, producer: KafkaProducer(config: hub.kafka()), time: clock.now().date)
        return forms
    }

    /// Asks the orchestrator every half second until the saga's state satisfies `condition`.
    func waitForSaga(_ id: String, timeout: Duration = .seconds(60), _ what: String, _ condition: @escaping (SagaState) -> Bool) async throws -> SagaState {
        var last: SagaState?
        try await eventually(every: .milliseconds(500), timeout: timeout, "\(id): \(what)") {
            var source = SagaSource(hub: hub, mode: .live)
            last = try? source.state(of: id)
            return last.map(condition) ?? false
        }
        return last!
    }
}

/// Every full ID number and mobile number in `forms` (what must never leak).
func personalValues(_ forms: [JSONValue]) -> Set<String> {
    var out = Set<String>()
    func walk(_ v: JSONValue, _ key: String?) {
        switch v {
        case .object(let o): for (k, x) in o { walk(x, k) }
        case .array(let a): for x in a { walk(x, key) }
        case .string(let s): if let key, key.lowercased().contains("idnumber") || key.lowercased().contains("phone") { out.insert(s) }
        default: break
        }
    }
    for f in forms { walk(f, nil) }
    return out
}

/// Fails the test for each personal value, or unmasked ID-like / mobile-like token, found in `text`.
func expectNoPersonalData(_ text: String, known: Set<String>, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for value in known where text.contains(value) {
        Issue.record("\(what) contains the full value \(value)", sourceLocation: sourceLocation)
    }
    let masked = PersonalData.maskText(text)
    if masked != text {
        let diff = zip(text.split(separator: "\n"), masked.split(separator: "\n")).first { $0 != $1 }
        Issue.record("\(what) has an unmasked ID-like or mobile-like token: \(diff.map { String($0.0.prefix(300)) } ?? "?")", sourceLocation: sourceLocation)
    }
}

/// The hub's agencies: every `adapters/*/catalogue.json`, as the orchestrator and the scripted
/// responders serve them (topics are created for all before the responders subscribe).
func hubAgencies() throws -> [String] {
    try CatalogueSet.load(directory: repoRoot.appendingPathComponent("adapters")).ids
}
