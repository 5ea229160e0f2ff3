import Foundation
import Messaging
import SagaEngine
import Synchronization
import YishiKafka

/// The 一窗受理 window in a simulation: it submits applications on the hub's clock, follows
/// every saga on `saga-events` (the audit trail the applicant sees), and when an agency asks for
/// a missing material (容缺) it hands the supplement in, as an applicant would, after
/// `supplementDelayMinutes` working minutes.
public final class FrontDesk: @unchecked Sendable {
    // @unchecked: `producer`/`consumer` are used by their own threads only; shared state is in Mutexes.
    public let connection: HubConnection
    public let desk: String
    let calendar: BusinessCalendar
    let supplementDelayMs: Int64
    let log: JSONLog
    private let producer: KafkaProducer
    private let trails = Mutex<[String: SagaTrail]>([:])
    private let stopping = Atomic<Bool>(false)
    private var threads: [Thread] = []
    private let finished = DispatchGroup()

    public init(connection: HubConnection, desk: String = "demo", calendar: BusinessCalendar, supplementDelayMinutes: Int = 30,
                log: JSONLog? = nil) throws {
        self.connection = connection
        self.desk = desk
        self.calendar = calendar
        supplementDelayMs = Int64(supplementDelayMinutes) * 60_000
        self.log = log ?? JSONLog(component: "frontdesk")
        producer = try KafkaProducer(config: connection.clientConfig(clientId: "yishi-frontdesk-\(desk)"))
        // Failed deliveries and fatal producer errors: a warn line each, never silent.
        producer.onClientError { [log = self.log] in log.warn("kafka", ["error": $0.description, "class": "\($0.kind)"]) }
    }

    var source: String { "/frontdesk/\(desk)" }

    /// Every saga's audit trail so far (any thread).
    public var sagas: [String: SagaTrail] { trails.withLock { $0 } }

    /// Submits `forms` in order, the first at `from` and then one every `everyMs` of virtual
    /// time, each when the hub clock reaches its instant (`submittedAt` is set to it). Returns at once.
    public func submit(_ forms: [JSONValue], from: Instant, everyMs: Int64, progress: (@Sendable (Int) -> Void)? = nil) {
        start("yishi.frontdesk.submit") { [self] in
            for (n, form) in forms.enumerated() {
                let at = Instant(ms: from.ms + Int64(n) * everyMs)
                while connection.clock.now() < at {
                    if stopping.load(ordering: .relaxed) { return }
                    Thread.sleep(forTimeInterval: 0.002)
                }
                guard case .object(var o) = form, let id = o["applicationId"]?.stringValue else { continue }
                o["submittedAt"] = .string(RFC3339.format(at.date))
                let envelope = Envelope(source: source, type: MessageType.applicationSubmitted, time: at.date, subject: id)
                do {
                    let record = envelope.record(topic: connection.topic("applications"), key: id, data: Data(JSONValue.object(o).text().utf8))
                    try connection.recordLimit.check(record)  // refused here, with its size, rather than by librdkafka
                    try producer.enqueue(record)
                } catch { log.error("submit failed", ["application": id, "error": "\(error)"]) }
                progress?(n + 1)
            }
            try? producer.flush()
        }
    }

    /// Follows `saga-events` from the beginning and answers supplement requests. Returns at once.
    public func watch() throws {
        let topic = connection.topic("saga-events")
        let consumer = try KafkaConsumer(config: connection.consumerConfig(clientId: "yishi-frontdesk-\(desk)-watch"),
                                         groupId: connection.prefix + "frontdesk-\(desk)")
        try consumer.assign((0..<connection.partitions).map { TopicPartitionOffset(topic, $0, TopicPartitionOffset.beginning) })
        start("yishi.frontdesk.watch") { [self] in
            var due: [(at: Instant, ask: AuditEvent)] = []
            let decoder = JSONDecoder()
            while !stopping.load(ordering: .relaxed) {
                let messages = (try? consumer.poll(maxMessages: 2000, timeout: .milliseconds(20))) ?? []
                var asks: [AuditEvent] = []
                trails.withLock { trails in
                    for m in messages {
                        // Only audit events (the other saga-events types are skipped); an unreadable one is reported and skipped.
                        guard let type = m.headers.string(Envelope.Header.type), type.hasPrefix(MessageType.sagaAuditPrefix),
                              type != MessageType.manualCaseOpened, type != MessageType.sagaFinished else { continue }
                        let event: AuditEvent
                        do { event = try decoder.decode(AuditEvent.self, from: m.value ?? Data()) } catch {
                            log.warn("skipped unreadable audit event", ["topic": m.topic, "partition": String(m.partition),
                                                                        "offset": String(m.offset), "error": "\(error)"])
                            continue
                        }
                        trails[event.sagaId, default: SagaTrail(sagaId: event.sagaId)].add(event)
                        if event.kind == .supplementRequested, event.detail?.contains("abandoned") != true { asks.append(event) }
                    }
                }
                for ask in asks { due.append((calendar.addWorkingTime(ask.at, supplementDelayMs), ask)) }
                let now = connection.clock.now()
                for item in due where item.at <= now {
                    let record = supplement(for: item.ask)
                    do {
                        try connection.recordLimit.check(record)
                        try producer.enqueue(record)
                    } catch { log.error("supplement not sent", ["saga": item.ask.sagaId, "error": "\(error)"]) }
                }
                due.removeAll { $0.at <= now }
            }
            try? consumer.close()
        }
    }

    /// The applicant's answer to "material X is missing": the material, handed in at the window.
    private func supplement(for ask: AuditEvent) -> ProducerRecord {
        let materials = (ask.detail ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let payload: JSONValue = .object([
            "sagaId": .string(ask.sagaId), "step": .string(ask.step ?? ""), "attempt": .number(Double(ask.attempt ?? 1)),
            "materials": .object(Dictionary(uniqueKeysWithValues: materials.map { ($0, .string("补正材料已在\(desk)窗口提交")) })),
        ])
        let envelope = Envelope(source: source, type: MessageType.supplementProvided, time: connection.clock.now().date,
                                subject: ask.sagaId, sagaId: ask.sagaId, step: ask.step, attempt: ask.attempt)
        return envelope.record(topic: connection.topic("applications"), key: ask.sagaId, data: Data(payload.text().utf8))
    }

    /// Waits until every saga in `ids` has finished or `timeout` passes; `progress` is called
    /// about once a second with (finished, total). True when all finished.
    public func waitForAll(_ ids: Set<String>, timeout: Duration, progress: ((Int, Int) -> Void)? = nil) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var lastReport = ContinuousClock.now
        while true {
            let done = trails.withLock { t in ids.filter { t[$0]?.finished != nil }.count }
            if done == ids.count { progress?(done, ids.count); return true }
            if ContinuousClock.now >= deadline { return false }
            if ContinuousClock.now - lastReport >= .seconds(1) { progress?(done, ids.count); lastReport = .now }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        try? producer.flush()
    }

    private func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        finished.enter()
        let thread = Thread { [finished] in body(); finished.leave() }
        thread.name = name
        thread.start()
    }
}

/// One saga as the applicant's window sees it: its audit trail and what it adds up to.
public struct SagaTrail: Sendable {
    public let sagaId: String
    public private(set) var events: [AuditEvent] = []
    public private(set) var submittedAt: Instant?
    /// From the `submitted` event: `enterprise-opening v1, due …`.
    public private(set) var bundleId: String?
    public private(set) var bundleVersion: Int?
    public private(set) var finished: (status: String, at: Instant)?
    /// The first business rejection: step and the engine's detail (`CODE: reason (field)`).
    public private(set) var rejection: (step: String, detail: String)?
    public private(set) var manualCases: [(step: String, detail: String)] = []
    public private(set) var supplements = 0
    private var seen: Set<String> = []

    public init(sagaId: String) { self.sagaId = sagaId }

    mutating func add(_ e: AuditEvent) {
        // An audit event is identified by seq, kind, step and attempt; a re-delivered record changes nothing.
        guard e.kind == .inputIgnored || seen.insert("\(e.seq)/\(e.kind.rawValue)/\(e.step ?? "")/\(e.attempt ?? 0)").inserted else { return }
        events.append(e)
        switch e.kind {
        case .submitted:
            submittedAt = e.at
            let words = (e.detail ?? "").split(separator: " ")
            if words.count >= 2 {
                bundleId = String(words[0])
                bundleVersion = Int(words[1].dropFirst().trimmingCharacters(in: CharacterSet(charactersIn: ",")))
            }
        case .sagaFinished: finished = (e.detail ?? "?", e.at)
        case .stepRejected where rejection == nil: rejection = (e.step ?? "?", e.detail ?? "")
        case .manualCaseOpened: manualCases.append((e.step ?? "?", e.detail ?? ""))
        case .supplementProvided: supplements += 1
        default: break
        }
    }

    /// Per step: first dispatch and success instants.
    public var stepSpans: [(step: String, dispatched: Instant, succeeded: Instant)] {
        var first: [String: Instant] = [:]
        var out: [(String, Instant, Instant)] = []
        for e in events {
            guard let step = e.step else { continue }
            if e.kind == .stepDispatched, first[step] == nil { first[step] = e.at }
            if e.kind == .stepSucceeded, let d = first[step] { out.append((step, d, e.at)) }
        }
        return out
    }
}
