import Foundation
import Messaging
import SagaEngine
import YishiKafka

/// `yishi department check`: a conformance kit for a department system that replaces a
/// simulator (docs/integrating-a-department.md). It plays the adapter: for every action of the
/// agency's mapping it sends the native requests the adapter would send (same headers, same
/// context header, same key and partitioner) on `<prefix>dept.<agency>.requests`, reads the
/// replies on `<prefix>dept.<agency>.replies`, and checks each one as the adapter does:
///
/// - the CloudEvents headers, `ce_source` `/dept/<agency>`, `ce_type`
///   `cn.gov.yishi.dept.<agency>.<NATIVE>.reply` and the native reply schema;
/// - `yishi-adapter-context` echoed byte for byte, `traceparent` echoed (same trace id);
/// - the record key is the saga id and the partition is the one `murmur2_random` gives it;
/// - the reply names the request id it answers, and it maps back to a hub event that is valid
///   against the hub's schema (a business rejection is a valid answer);
/// - idempotency: the first native request sent again (same request id, same body, the next
///   attempt in the context, as a hub retry after a timeout) gets the same answer (JSON equal),
///   so the department did not act twice.
///
/// Generic over agencies: everything comes from `adapters/<agency>/` (catalogue.json,
/// mapping.json, native/*.request.schema.json) and, when present, `check-samples.json`
/// (realistic inputs per action, able to use the outputs of actions checked before them).
/// Without samples, an action's input is built from its request templates and the native
/// request schema (enums, `$map` keys, types), which a department typically rejects: still a
/// conformance check of the reply path, not of the business rules.
public final class DepartmentCheck: @unchecked Sendable {
    public let agency: String
    let connection: HubConnection
    let translator: Translator
    let registry: SchemaRegistry
    let nativeSchemas: [String: JSONValue]
    let samples: [(action: String, input: JSONValue)]
    let runId: String

    /// One action's verdict.
    public struct ActionResult: Codable, Sendable, Equatable {
        public var action: String
        /// `pass`, `fail` or `skip` (its sample needs outputs of an action that did not succeed).
        public var status: String
        /// The native calls made, e.g. `["PZHD", "UKFF"]`.
        public var calls: [String]
        /// The hub event the replies map to (`cn.gov.yishi.step.succeeded`, …), when one was reached.
        public var event: String?
        /// The canonical code of a rejection or failure.
        public var code: String?
        /// Why it failed (each a sentence naming the header, field or topic/partition/offset), or notes.
        public var reasons: [String]
        public var seconds: Double
    }

    public struct Report: Codable, Sendable, Equatable {
        public var agency: String
        public var requestsTopic: String
        public var repliesTopic: String
        public var results: [ActionResult]
        public var passed: Bool { results.allSatisfy { $0.status != "fail" } }
    }

    /// A check that cannot start (unknown agency, unreadable mapping or samples): exit 2.
    public struct SetupError: Error, CustomStringConvertible, Sendable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// `repository`: the directory holding `adapters/` and `schemas/`.
    /// Throws `SetupError` naming the file and JSON path at fault.
    public init(agency: String, repository: URL, connection: HubConnection) throws {
        self.agency = agency
        self.connection = connection
        runId = String(UUID().uuidString.prefix(8)).lowercased()
        let adapters = repository.appendingPathComponent("adapters")
        let dir = adapters.appendingPathComponent(agency)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("catalogue.json").path) else {
            let known = ((try? FileManager.default.contentsOfDirectory(atPath: adapters.path)) ?? []).sorted()
            throw SetupError("\(dir.appendingPathComponent("catalogue.json").path): no catalogue for agency '\(agency)' (known: \(known.joined(separator: ", ")))")
        }
        do {
            let catalogues = try CatalogueSet.load(directory: adapters)
            guard let catalogue = catalogues.agencies[agency] else { throw SetupError("\(dir.path): no catalogue for agency '\(agency)'") }
            let mapping = try AgencyMapping.load(dir.appendingPathComponent("mapping.json"), catalogue: catalogue)
            translator = Translator(mapping: mapping, catalogue: catalogue)
            var registry = try SchemaRegistry.load(directory: repository.appendingPathComponent("schemas"))
            try registry.loadNative(directory: dir.appendingPathComponent("native"), agency: agency)
            self.registry = registry
        } catch let e as SetupError { throw e } catch { throw SetupError("\(error)") }
        var schemas: [String: JSONValue] = [:]
        for action in translator.mapping.actions.values {
            for call in action.calls {
                let file = dir.appendingPathComponent("native").appendingPathComponent(call.native + ".request.schema.json")
                schemas[call.native] = (try? Data(contentsOf: file)).flatMap { try? JSONValue.parse($0) }
            }
        }
        nativeSchemas = schemas
        samples = try Self.loadSamples(dir.appendingPathComponent("check-samples.json"), mapping: translator.mapping)
    }

    /// `check-samples.json`: `{"samples": [{"action": ID, "input": {...}}]}`, checked in that order
    /// before the other actions. An input value may be a template over the outputs of actions
    /// checked before (`"$.outputs['register-taxpayer'].taxpayerId"`).
    static func loadSamples(_ url: URL, mapping: AgencyMapping) throws -> [(action: String, input: JSONValue)] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let json: JSONValue
        do { json = try JSONValue.parse(Data(contentsOf: url)) } catch { throw SetupError("\(url.path): not readable JSON: \(error)") }
        guard let list = json["samples"]?.arrayValue else { throw SetupError("\(url.path): $.samples: expected a list of {action, input}") }
        return try list.enumerated().map { i, s in
            guard let action = s["action"]?.stringValue, mapping.actions[action] != nil else {
                throw SetupError("\(url.path): $.samples[\(i)].action: '\(s["action"]?.stringValue ?? "")' is not a mapped action of \(mapping.agency)")
            }
            guard let input = s["input"], input.objectValue != nil else { throw SetupError("\(url.path): $.samples[\(i)].input: expected an object") }
            return (action, input)
        }
    }

    var requestsTopic: String { connection.topic("dept.\(agency).requests") }
    var repliesTopic: String { connection.topic("dept.\(agency).replies") }

    /// The actions in the order they are checked: the samples' order, then the other forward
    /// actions, then the other compensations (catalogue order).
    public var order: [String] {
        let sampled = samples.map(\.action)
        let compensations = Set(translator.catalogue.actions.compactMap(\.compensation))
        let rest = translator.catalogue.actions.map(\.id).filter { translator.mapping.actions[$0] != nil && !sampled.contains($0) }
        return sampled + rest.filter { !compensations.contains($0) } + rest.filter { compensations.contains($0) }
    }

    // MARK: samples (pure)

    /// The canonical command (`step.requested` / `compensation.requested` data) checking `action`.
    /// Nil when its sample reads the outputs of an action that has not succeeded (the name of that reference).
    func command(_ action: String, index: Int, outputs: [String: JSONValue]) -> (command: JSONValue?, missing: String?) {
        var payload = generatedInput(action)
        if let sample = samples.first(where: { $0.action == action })?.input.objectValue {
            var o = payload.objectValue ?? [:]
            for (key, value) in sample {
                if case .string(let s) = value, s.hasPrefix("$.outputs") {
                    guard let t = try? Template(value, at: "check-samples"), let v = try? t.render(.object(["outputs": .object(outputs)])) else {
                        return (nil, s)
                    }
                    o[key] = v
                } else {
                    o[key] = value
                }
            }
            payload = .object(o)
        }
        let forwardOf = translator.catalogue.actions.first { $0.compensation == action }?.id
        let sagaId = "CHECK-\(runId)-\(index + 1)"
        let step = forwardOf ?? action
        let requestId = forwardOf == nil ? "\(sagaId)/\(step)/r1" : "\(sagaId)/\(step)/undo"
        return (.object([
            "kind": .string(forwardOf == nil ? "forward" : "compensation"), "sagaId": .string(sagaId), "step": .string(step),
            "attempt": 1, "agency": .string(agency), "action": .string(action), "requestId": .string(requestId), "revision": 1,
            "deadline": .string(RFC3339.format(connection.clock.now().date.addingTimeInterval(86_400))), "payload": payload,
        ]), nil)
    }

    /// An input for `action` built from its request templates and the native request schemas.
    func generatedInput(_ action: String) -> JSONValue {
        var input = JSONValue.object([:])
        for call in translator.mapping.actions[action]?.calls ?? [] {
            Self.fill(call.request, schema: nativeSchemas[call.native], into: &input, relative: false)
        }
        return input
    }

    /// Writes into `root` a value for every input path `template` reads (absolute `$.input…`, or
    /// `@…` relative to an `$each` element when `relative`), chosen to fit the native field's schema.
    static func fill(_ template: Template, schema: JSONValue?, into root: inout JSONValue, relative: Bool) {
        switch template {
        case .literal: return
        case .object(let fields):
            for (k, t) in fields { fill(t, schema: schema?["properties"]?[k], into: &root, relative: relative) }
        case .array(let items):
            for t in items { fill(t, schema: schema?["items"], into: &root, relative: relative) }
        case .path(let p, let map, _, let slice):
            guard let keys = inputKeys(p, relative: relative) else { return }
            if keys.isEmpty { if root == .object([:]) || root == .null { root = value(schema: schema, map: map, slice: slice) }; return }
            set(&root, keys[...], value(schema: schema, map: map, slice: slice))
        case .each(let p, let item):
            guard let keys = inputKeys(p, relative: relative), !keys.isEmpty else { return }
            var element = JSONValue.object([:])
            fill(item, schema: schema?["items"], into: &element, relative: true)
            set(&root, keys[...], .array([element]))
        }
    }

    private static func inputKeys(_ p: ValuePath, relative: Bool) -> [String]? {
        guard p.relative == relative else { return nil }
        var steps = p.steps[...]
        if !relative {
            guard case .key("input")? = steps.first else { return nil }
            steps = steps.dropFirst()
        }
        var keys: [String] = []
        for s in steps { guard case .key(let k) = s else { return nil }; keys.append(k) }
        return keys
    }

    private static func set(_ value: inout JSONValue, _ keys: ArraySlice<String>, _ leaf: JSONValue) {
        guard let key = keys.first else { return }
        var o = value.objectValue ?? [:]
        if keys.count == 1 {
            if o[key] == nil { o[key] = leaf }
        } else {
            var child = o[key] ?? .object([:])
            set(&child, keys.dropFirst(), leaf)
            o[key] = child
        }
        value = .object(o)
    }

    private static func value(schema: JSONValue?, map: [String: JSONValue]?, slice: (Int, Int)?) -> JSONValue {
        let allowed = schema?["enum"]?.arrayValue
        if let map {
            let keys = map.keys.sorted()
            return .string(keys.first { k in allowed.map { $0.contains(map[k]!) } ?? true } ?? keys.first ?? "CHECK")
        }
        if let c = schema?["const"] { return c }
        if let first = allowed?.first { return first }
        if let (_, to) = slice { return .string(String(repeating: "9", count: max(to, 18))) }
        if let pattern = schema?["pattern"]?.stringValue, let fitting = fitting(pattern) { return .string(fitting) }
        switch schema?["type"]?.stringValue {
        case "integer", "number": return .number(max(1, schema?["minimum"]?.doubleValue ?? 1))
        case "boolean": return .bool(true)
        case "array": return .array([])
        case "object": return .object([:])
        default:
            let min = schema?["minLength"]?.intValue ?? 0
            return .string("CHECK" + String(repeating: "0", count: max(0, min - 5)))
        }
    }

    /// A string matching a pattern of the form `^[CLASS]{n}$` (the first character of the class,
    /// n times), e.g. `000000` for `^[0-9]{6}$`; nil for any other pattern.
    static func fitting(_ pattern: String) -> String? {
        guard pattern.hasPrefix("^["), pattern.hasSuffix("}$"), let close = pattern.firstIndex(of: "]"),
              let first = pattern.dropFirst(2).first, first != "^", first != "\\" else { return nil }
        let rest = pattern[pattern.index(after: close)...]
        guard rest.hasPrefix("{"), let n = Int(rest.dropFirst().dropLast(2)), n > 0, n <= 64 else { return nil }
        return String(repeating: String(first), count: n)
    }

    // MARK: running

    struct Sent {
        var request: NativeRequest
        var record: ProducerRecord
        var trace: TraceParent
    }

    /// Plays every action against the department and returns the report. `timeout`: how long to
    /// wait for each reply (wall time). Throws `KafkaError` when the broker cannot be used.
    public func run(timeout: Duration = .seconds(30), log: (String) -> Void = { _ in }) throws -> Report {
        let clientId = "yishi-department-check-\(agency)"
        let admin = try KafkaAdmin(config: connection.clientConfig(clientId: clientId + "-admin"))
        try admin.ensureTopics([TopicSpec(requestsTopic, partitions: connection.partitions), TopicSpec(repliesTopic, partitions: connection.partitions)])
        let partitions = try admin.describeTopics()[repliesTopic]?.partitions ?? connection.partitions
        let producer = try KafkaProducer(config: connection.clientConfig(clientId: clientId))
        let consumer = try KafkaConsumer(config: connection.consumerConfig(clientId: clientId), groupId: connection.prefix + "department-check-" + runId)
        defer { try? consumer.close() }
        var start: [TopicPartitionOffset] = []
        for p in 0..<partitions {
            start.append(TopicPartitionOffset(repliesTopic, p, try consumer.watermarks(TopicPartition(repliesTopic, p)).high))
        }
        try consumer.assign(start)
        var inbox: [KafkaMessage] = []
        var outputs: [String: JSONValue] = [:]
        var results: [ActionResult] = []

        func send(_ request: NativeRequest, trace: TraceParent) throws -> Sent {
            let record = AdapterService.requestRecord(request, agency: agency, topic: requestsTopic, time: connection.clock.now().date, trace: trace)
            try producer.enqueue(record)
            try producer.flush(timeout: .seconds(10))
            return Sent(request: request, record: record, trace: trace)
        }

        /// The reply naming `requestId` (in the native body), or the first record keyed by the saga that names none.
        func awaitReply(_ sent: Sent) throws -> KafkaMessage? {
            let deadline = ContinuousClock.now + timeout
            let idField = translator.mapping.reply.requestId
            while true {
                for (i, m) in inbox.enumerated() {
                    let json = m.value.flatMap { try? JSONValue.parse($0) }
                    let echoed = json?[idField]?.stringValue
                    if echoed == sent.request.requestId || (echoed == nil && m.keyString == sent.request.context.sagaId) {
                        inbox.remove(at: i)
                        return m
                    }
                }
                guard ContinuousClock.now < deadline else { return nil }
                inbox += try consumer.poll(maxMessages: 100, timeout: .milliseconds(100))
            }
        }

        for (index, action) in order.enumerated() {
            let began = ContinuousClock.now
            var result = ActionResult(action: action, status: "pass", calls: [], event: nil, code: nil, reasons: [], seconds: 0)
            defer {
                let d = ContinuousClock.now - began
                result.seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
                results.append(result)
                log("\(result.status.uppercased()) \(action)" + (result.reasons.isEmpty ? "" : ": " + result.reasons.joined(separator: "; ")))
            }
            let (built, missing) = command(action, index: index, outputs: outputs)
            guard let command = built else {
                result.status = "skip"
                result.reasons = ["its sample needs \(missing ?? "an output") of an action that did not succeed"]
                continue
            }
            guard case .request(var request) = translator.start(command: command) else {
                result.status = "fail"
                result.reasons = ["the check's own sample input cannot be put in the department's terms (adapters/\(agency)/check-samples.json)"]
                continue
            }
            var first: (sent: Sent, reply: JSONValue)?
            var final: CanonicalEvent?
            let trace = TraceParent.newTrace()
            calls: while true {
                result.calls.append(request.action)
                if let schema = registry[MessageType.native(agency: agency, message: request.action + ".request")],
                   let v = schema.validate(request.message, limit: 1).first {
                    // The check's fault, not the department's: noted, and the reply is checked all the same.
                    result.reasons.append("note: the check's own \(request.action) request does not fit its native schema (\(v)); "
                                          + "give a realistic input in adapters/\(agency)/check-samples.json")
                }
                let sent = try send(request, trace: trace.child())
                guard let reply = try awaitReply(sent) else {
                    result.reasons.append("no reply to \(request.action) request \(request.requestId) on \(repliesTopic) within \(timeout) "
                                          + "(is the department consuming \(requestsTopic), and does its reply name the request id in '\(translator.mapping.reply.requestId)'?)")
                    break calls
                }
                let (problems, json) = checkReply(reply, to: sent, partitions: partitions)
                result.reasons += problems
                guard let json else { break calls }
                if first == nil { first = (sent, json) }
                // A reply without the echoed context is reported above; the check goes on with the one it sent.
                let echoed = reply.headers.first { $0.name == AdapterContext.header }?.value
                let context = echoed.flatMap { try? JSONDecoder().decode(AdapterContext.self, from: $0) } ?? sent.request.context
                do {
                    switch try translator.finish(reply: json, context: context) {
                    case .request(let next): request = next
                    case .event(let event): final = event; break calls
                    }
                } catch {
                    result.reasons.append("reply at \(reply.topic)[\(reply.partition)]@\(reply.offset) does not map back: \(error)")
                    break calls
                }
            }
            if let final {
                result.event = final.type
                result.code = final.payload["code"]?.stringValue
                if let schema = registry[final.type] {
                    let violations = schema.validate(final.payload, limit: 3)
                    if let v = violations.first { result.reasons.append("the replies map to a \(final.type) event that is not valid: \(v)") }
                }
                if final.type == MessageType.stepSucceeded, let o = final.payload["outputs"] { outputs[action] = o }
            }
            // Idempotency: the first request again, as a hub retry after a timeout sends it.
            if let first, final != nil, final?.type != MessageType.stepFailed {
                var again = first.sent.request
                again.context.command = Self.withAttempt(again.context.command, 2)
                let resent = try send(again, trace: trace.child())
                if let reply = try awaitReply(resent) {
                    let (problems, json) = checkReply(reply, to: resent, partitions: partitions)
                    result.reasons += problems.map { "on the repeated request: " + $0 }
                    if let json, problems.isEmpty, json != first.reply {
                        result.reasons.append("request id \(again.requestId) sent again got a different answer (\(Self.difference(first.reply, json, status: translator.mapping.reply.status))): "
                                              + "a repeated request id must get the first answer and have no second effect")
                    }
                } else {
                    result.reasons.append("no reply within \(timeout) to request id \(again.requestId) sent a second time (a repeat must be answered from the department's memo)")
                }
            } else if final?.type == MessageType.stepFailed {
                result.reasons.append("note: the answer was a retryable failure (\(result.code ?? "?")), which is not memoized; idempotency not checked")
            }
            if result.reasons.contains(where: { !$0.hasPrefix("note:") }) { result.status = "fail" }
        }
        return Report(agency: agency, requestsTopic: requestsTopic, repliesTopic: repliesTopic, results: results)
    }

    /// Everything the adapter checks of a reply, plus the key, partition and echoed headers. The problems, and the body when readable.
    func checkReply(_ reply: KafkaMessage, to sent: Sent, partitions: Int32) -> ([String], JSONValue?) {
        var problems: [String] = []
        let at = "\(reply.topic)[\(reply.partition)]@\(reply.offset)"
        let topic = MessageCheck.unprefixed(reply.topic, prefix: connection.prefix) ?? reply.topic
        var body: JSONValue?
        switch MessageCheck.validate(message: reply, topic: topic, registry: registry, policy: .standard) {
        case .failure(let why): problems.append("reply \(at): \(why.message)")
        case .success(let v):
            body = v.json
            let expected = MessageType.native(agency: agency, message: sent.request.action + ".reply")
            if v.envelope.type != expected { problems.append("reply \(at): ce_type '\(v.envelope.type)', expected '\(expected)'") }
        }
        let sagaId = sent.request.context.sagaId
        if reply.keyString != sagaId {
            problems.append("reply \(at): key '\(reply.keyString ?? "none")', expected the saga id '\(sagaId)' (the request's key)")
        } else {
            let p = KafkaPartitioner.partition(forKey: sagaId, partitions: partitions)
            if p != reply.partition {
                problems.append("reply \(at): on partition \(reply.partition), but murmur2_random puts key '\(sagaId)' on partition \(p) (set partitioner=murmur2_random)")
            }
        }
        let sentContext = sent.record.headers.first { $0.name == AdapterContext.header }?.value
        if let echoed = reply.headers.first(where: { $0.name == AdapterContext.header }) {
            if echoed.value != sentContext {
                problems.append("reply \(at): header \(AdapterContext.header) differs from the request's (echo it byte for byte)")
            }
        } else {
            let found = Envelope.lookalike(of: AdapterContext.header, in: reply.headers).map { " (found '\($0)': header names are case-sensitive)" } ?? ""
            problems.append("reply \(at): no \(AdapterContext.header) header: echo the request's header unchanged" + found
                            + " (the adapter dead-letters a reply without it)")
        }
        if let text = reply.headers.string(Envelope.Header.traceParent) {
            if TraceParent(text)?.traceId != sent.trace.traceId {
                problems.append("reply \(at): traceparent '\(text)' is not of the request's trace \(sent.trace.traceId) (echo the request's traceparent)")
            }
        } else {
            problems.append("reply \(at): no traceparent header: echo the request's")
        }
        return (problems, body)
    }

    static func withAttempt(_ command: JSONValue, _ attempt: Int) -> JSONValue {
        guard case .object(var o) = command else { return command }
        o["attempt"] = .number(Double(attempt))
        return .object(o)
    }

    /// The top-level fields two replies differ in (at most three), e.g. `fhdm: "0000" vs "2002"`.
    /// `status` (the reply's status field) comes first.
    static func difference(_ a: JSONValue, _ b: JSONValue, status: String) -> String {
        let ao = a.objectValue ?? [:], bo = b.objectValue ?? [:]
        let keys = Set(ao.keys).union(bo.keys).sorted { ($0 == status ? 0 : 1, $0) < ($1 == status ? 0 : 1, $1) }.filter { ao[$0] != bo[$0] }
        guard !keys.isEmpty else { return "same fields" }
        return keys.prefix(3).map { "\($0): \(ao[$0]?.text() ?? "absent") vs \(bo[$0]?.text() ?? "absent")" }.joined(separator: ", ")
            + (keys.count > 3 ? " and \(keys.count - 3) more" : "")
    }

    /// The report as text: one line per action, then a summary.
    public static func render(_ report: Report) -> String {
        var lines = ["department check: \(report.agency) (requests on \(report.requestsTopic), replies on \(report.repliesTopic))"]
        for r in report.results {
            let outcome = r.event.map { " -> " + $0.replacingOccurrences(of: "cn.gov.yishi.", with: "") + (r.code.map { " \($0)" } ?? "") } ?? ""
            lines.append("\(r.status.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0))  \(r.action) [\(r.calls.joined(separator: ", "))]\(outcome)")
            for why in r.reasons { lines.append("      " + why) }
        }
        let failed = report.results.filter { $0.status == "fail" }.count
        let skipped = report.results.filter { $0.status == "skip" }.count
        lines.append(failed == 0 ? "all \(report.results.count - skipped) actions pass" + (skipped > 0 ? " (\(skipped) skipped)" : "")
                                 : "\(failed) of \(report.results.count) actions fail")
        return lines.joined(separator: "\n")
    }
}
