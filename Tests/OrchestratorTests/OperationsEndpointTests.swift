#if canImport(Glibc)
import Glibc
#endif
import Foundation
import HubHTTP
import HubTestKit
import Messaging
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// One HTTP/1.1 exchange over a raw socket: sends `request` bytes, reads until the server
/// closes. (status, whole response); status nil when no HTTP status line came back.
func rawHTTP(port: UInt16, _ request: [UInt8], timeout seconds: Int = 10) -> (Int?, String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { return (nil, "connect failed") }
    var tv = timeval(tv_sec: seconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var out = [UInt8](), chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        out += chunk[..<n]
    }
    let text = String(decoding: out, as: UTF8.self)
    let parts = (text.split(separator: "\r\n", maxSplits: 1).first ?? "").split(separator: " ")
    return (parts.count >= 2 ? Int(parts[1]) : nil, text)
}

/// GET `path` with `Connection: close`: (status, body).
func httpGet(port: UInt16, _ path: String) -> (Int?, String) {
    let (status, text) = rawHTTP(port: port, Array("GET \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".utf8))
    return (status, text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n"))
}

/// The port a service logged for its endpoints (`--http 127.0.0.1:0`), waiting up to 20 s.
func httpPort(of process: YishiProcess) async throws -> UInt16 {
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
        if let match = process.output.firstMatch(of: /"address":"127\.0\.0\.1:(\d+)"/), let port = UInt16(match.1) { return port }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw SetupError("\(process.name) logged no http address:\n\(process.output)")
}

/// Samples of a metrics page: `name{labels}` → value (the label text kept as rendered).
func samples(_ page: String) -> [String: Double] {
    var out: [String: Double] = [:]
    for line in page.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
        out[String(line[..<space])] = value
    }
    return out
}

/// Sum of the samples of `name` whose labels contain every one of `labels` (`key="value"`).
func total(_ samples: [String: Double], _ name: String, _ labels: [String] = []) -> Double {
    samples.filter { key, _ in
        (key == name || key.hasPrefix(name + "{")) && labels.allSatisfy { key.contains($0) }
    }.values.reduce(0, +)
}

/// `promtool check metrics` (Debian's prometheus package; scripts/setup-promtool.sh installs it on first use).
func promtoolCheck(_ page: String) throws -> (Int32, String) { try Subprocess.promtoolCheckMetrics(page, repoRoot: repoRoot) }

/// A `yishi` service process of this hub with `--http 127.0.0.1:0`.
func serviceProcess(hub: TestHub, name: String, _ arguments: [String], logDirectory: URL, sessionTimeoutMs: Int = 6000) throws -> YishiProcess {
    try YishiProcess("\(name)-\(UUID().uuidString.prefix(4))",
                     arguments + ["--bootstrap", hub.bootstrap, "--prefix", hub.prefix, "--partitions", String(hub.partitions),
                                  "--http", "127.0.0.1:0",
                                  "--clock-start", hub.clock.start.description, "--clock-speed", String(hub.clock.speed),
                                  "--clock-wall-start", String(Int64(hub.clock.wallStart.timeIntervalSince1970 * 1000))],
                     command: YishiCommand(repoRoot: repoRoot,
                                           environment: ProcessInfo.processInfo.environment.merging(["YISHI_SESSION_TIMEOUT_MS": String(sessionTimeoutMs)]) { _, b in b }),
                     logDirectory: logDirectory)
}

/// Waits until `check` holds for the page at `path` (20 s at most); returns the last page.
func waitForPage(port: UInt16, _ path: String = "/metrics", timeout: Duration = .seconds(20), _ check: (Int?, String) -> Bool) async throws -> String {
    let deadline = ContinuousClock.now + timeout
    var last = (nil as Int?, "")
    while ContinuousClock.now < deadline {
        last = httpGet(port: port, path)
        if check(last.0, last.1) { return last.1 }
        try await Task.sleep(for: .milliseconds(200))
    }
    return last.1
}

@Suite("Operations endpoints and graceful stop of yishi processes on Tansu", .serialized)
struct OperationsEndpointTests {
    @Test("/metrics of the orchestrator agrees with the sagas it ran; every service passes promtool; bad requests get 4xx mid-run; SIGTERM stops each with 0",
          .timeLimit(.minutes(3)))
    func metricsAgree() async throws {
        let hub = try TestHub(partitions: 2, speed: 60)
        try hub.ensureTopics()
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent(hub.prefix + "logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let responders = try hub.responders(failFirstAttemptOf: ["seals"])
        defer { responders.close() }
        let orchestrator = try serviceProcess(hub: hub, name: "o1", ["orchestrator", "run", "--instance", "o1", "--group", hub.prefix + "orchestrator"],
                                              logDirectory: logs)
        defer { orchestrator.terminate() }
        // An adapter and a department on another prefix (the scripted responders answer this hub).
        let other = try TestHub(partitions: 2, speed: 60)
        let adapter = try serviceProcess(hub: other, name: "adapter", ["adapter", "run", "--agency", "tax"], logDirectory: logs)
        defer { adapter.terminate() }
        let department = try serviceProcess(hub: other, name: "dept", ["department", "run", "--agency", "tax"], logDirectory: logs)
        defer { department.terminate() }
        let port = try await httpPort(of: orchestrator)
        let ready = try await waitForPage(port: port, "/readyz", timeout: .seconds(30)) { status, _ in status == 200 }
        #expect(ready.hasPrefix("ready"), "orchestrator /readyz: \(ready)")

        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 40, tag: "METRICS")
        let producer = try KafkaProducer(config: hub.kafka())
        try hub.submit(forms, producer: producer)
        // One record that is not an application: a dead letter from the applications topic.
        _ = try await producer.send(ProducerRecord(topic: hub.topic("applications"), key: "garbage", value: Data("{not json".utf8)))

        // Bad requests while the sagas run: each gets its 4xx, the service carries on.
        #expect(rawHTTP(port: port, Array("POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8)).0 == 405)
        #expect(httpGet(port: port, "/debug/pprof").0 == 404)
        #expect(rawHTTP(port: port, (0..<400).map { UInt8(truncatingIfNeeded: $0 &* 37) } + Array("\r\n\r\n".utf8)).0 == 400)
        #expect(rawHTTP(port: port, Array("GET /metrics HTTP/1.1\r\nHost: t\r\nX: \(String(repeating: "x", count: 20_000))\r\n\r\n".utf8)).0 == 431)
        #expect(rawHTTP(port: port, Array("GET /metrics HTTP/1.1\r\nHost: t\r\n".utf8), timeout: 15).0 == 408, "an unfinished head times out")

        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(120))
        #expect(finished.count == forms.count, "finished \(finished.count) of \(forms.count)")
        #expect(httpGet(port: port, "/healthz").0 == 200)

        // The counters catch up with the committed transactions (and the gauges refresh each second).
        let page = try await waitForPage(port: port) { _, page in
            let s = samples(page)
            return total(s, "yishi_sagas_finished_total") == Double(forms.count) && total(s, "yishi_sagas_in_flight") == 0
        }
        let s = samples(page)
        var byStatus: [String: Int] = [:]
        for status in finished.values { byStatus[status, default: 0] += 1 }
        #expect(byStatus["completed"] == forms.count, "\(byStatus)")
        for (status, count) in byStatus {
            #expect(total(s, "yishi_sagas_finished_total", ["status=\"\(status)\""]) == Double(count), "status \(status)")
        }
        #expect(total(s, "yishi_sagas_started_total") == Double(forms.count))
        #expect(total(s, "yishi_sagas_in_flight") == 0)

        // Every answered step appears once in the latency histograms, under its agency.
        let events = try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(3))
        var answers: [String: Int] = [:]
        for message in events {
            let body = (try? JSONValue.parse(message.value ?? Data())) ?? .null
            guard let kind = body["kind"]?.stringValue, ["stepSucceeded", "stepRejected", "stepFailed"].contains(kind) else { continue }
            answers["all", default: 0] += 1
        }
        #expect(answers["all", default: 0] > forms.count)
        #expect(total(s, "yishi_step_duration_seconds_count") == Double(answers["all", default: 0]),
                "histogram count \(total(s, "yishi_step_duration_seconds_count")) vs \(answers) answers on saga-events")
        #expect(total(s, "yishi_step_duration_seconds_bucket", ["le=\"+Inf\""]) == total(s, "yishi_step_duration_seconds_count"))
        #expect(total(s, "yishi_step_duration_seconds_count", ["agency=\"tax\""]) > 0)

        // Records in per topic = what the input topics hold; the dead letter is counted by class and topic.
        let applications = try await readAll(hub.topic("applications"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(3))
        #expect(total(s, "yishi_records_in_total", ["topic=\"\(hub.topic("applications"))\""]) == Double(applications.count))
        #expect(total(s, "yishi_dead_letters_total", ["topic=\"\(hub.topic("applications"))\""]) == 1)
        #expect(total(s, "yishi_transaction_commit_seconds_count") > 0)
        #expect(total(s, "yishi_restore_duration_seconds_count") >= 1)
        #expect(total(s, "yishi_owned_partitions") == Double(hub.partitions))

        // promtool on every service's page; lag appears once statistics came (every 5 s).
        let lagged = try await waitForPage(port: port, timeout: .seconds(12)) { _, page in page.contains("yishi_consumer_lag{") }
        #expect(lagged.contains("yishi_consumer_lag{service=\"orchestrator\",topic=\"\(hub.topic("applications"))\""))
        for service in [orchestrator, adapter, department] {
            let servicePort = try await httpPort(of: service)
            let (status, metricsPage) = httpGet(port: servicePort, "/metrics")
            #expect(status == 200 && metricsPage.contains("yishi_loop_turns_total"), "\(service.name): \(status ?? -1)")
            let (code, said) = try promtoolCheck(metricsPage)
            #expect(code == 0, "promtool on \(service.name): \(said)")
            let readiness = try await waitForPage(port: servicePort, "/readyz", timeout: .seconds(20)) { status, _ in status == 200 }
            #expect(readiness.hasPrefix("ready"), "\(service.name) /readyz: \(readiness)")
        }
        // Every service stops cleanly on SIGTERM: exit 0 within 10 s, after leaving its group.
        for service in [adapter, department, orchestrator] {
            let signalled = ContinuousClock.now
            kill(service.process.processIdentifier, SIGTERM)
            service.process.waitUntilExit()
            let took = ContinuousClock.now - signalled
            #expect(service.process.terminationReason == .exit && service.process.terminationStatus == 0 && took < .seconds(10),
                    "\(service.name): exit \(service.process.terminationStatus) after \(took)")
            #expect(service.output.contains("\"msg\":\"stopped\""), "\(service.name) logged no clean stop")
        }
    }

    @Test("SIGTERM: exit 0 within 10 s, the group is left (the other member takes over at once), no saga lost or doubled",
          .timeLimit(.minutes(3)))
    func sigterm() async throws {
        let hub = try TestHub(partitions: 4, speed: 30)
        try hub.ensureTopics()
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent(hub.prefix + "logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let responders = try hub.responders()
        defer { responders.close() }
        // A long session timeout: a member that vanished without leaving the group would hold its
        // partitions 30 s before the coordinator even starts a rebalance (heartbeats every 6 s).
        let sessionMs = 30_000
        func orchestrator(_ instance: String) throws -> YishiProcess {
            try serviceProcess(hub: hub, name: instance, ["orchestrator", "run", "--instance", instance, "--group", hub.prefix + "orchestrator"],
                               logDirectory: logs, sessionTimeoutMs: sessionMs)
        }
        let first = try orchestrator("o1")
        defer { first.terminate() }
        let firstPort = try await httpPort(of: first)
        _ = try await waitForPage(port: firstPort, "/readyz", timeout: .seconds(30)) { status, _ in status == 200 }
        let second = try orchestrator("o2")
        defer { second.terminate() }
        let secondPort = try await httpPort(of: second)
        // Both members own partitions before the stop.
        let split = try await waitForPage(port: secondPort, timeout: .seconds(40)) { _, page in
            total(samples(page), "yishi_owned_partitions") > 0 && total(samples(page), "yishi_owned_partitions") < Double(hub.partitions)
        }
        #expect(total(samples(split), "yishi_owned_partitions") > 0, "o2 never got partitions")

        let forms = try SeedApplications.cloned(repoRoot: repoRoot, count: 120, tag: "SIGTERM")
        let producer = try KafkaProducer(config: hub.kafka())
        try hub.submit(Array(forms[0..<60]), producer: producer)
        try await Task.sleep(for: .seconds(2))  // sagas in flight on both members

        let revokesBefore = second.output.components(separatedBy: "\"msg\":\"revoked\"").count
        let signalled = ContinuousClock.now
        kill(first.process.processIdentifier, SIGTERM)
        first.process.waitUntilExit()
        let stopTook = ContinuousClock.now - signalled
        #expect(first.process.terminationReason == .exit && first.process.terminationStatus == 0,
                "exit \(first.process.terminationStatus) (\(first.process.terminationReason == .exit ? "exit" : "signal"))\n\(first.output.suffix(2000))")
        #expect(stopTook < .seconds(10), "stop took \(stopTook)")
        #expect(first.output.contains("\"msg\":\"stopped\""), "no clean stop logged")

        // The group was left: the coordinator starts the rebalance at once (the survivor hears of it
        // at its next heartbeat), not after the session timeout.
        var rebalanced: Duration?
        while rebalanced == nil, ContinuousClock.now - signalled < .seconds(30) {
            if second.output.components(separatedBy: "\"msg\":\"revoked\"").count > revokesBefore { rebalanced = ContinuousClock.now - signalled }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(rebalanced.map { $0 < .milliseconds(sessionMs / 2) } == true, "o2's rebalance began \(String(describing: rebalanced)) after the signal")
        // The survivor owns every partition before the session timeout would even have let a rebalance start.
        let takeover = try await waitForPage(port: secondPort, timeout: .seconds(30)) { _, page in
            total(samples(page), "yishi_owned_partitions") == Double(hub.partitions)
        }
        let tookOver = ContinuousClock.now - signalled
        #expect(total(samples(takeover), "yishi_owned_partitions") == Double(hub.partitions))
        #expect(tookOver < .milliseconds(sessionMs), "takeover after \(tookOver) (session timeout \(sessionMs) ms)")
        print("sigterm test: o1 stopped in \(stopTook); o2's rebalance began \(rebalanced ?? .zero) and it owned all \(hub.partitions) partitions \(tookOver) after the signal")

        try hub.submit(Array(forms[60...]), producer: producer)
        let finished = try await finishedSagas(hub: hub, expecting: forms.count, timeout: .seconds(120))
        #expect(finished.count == forms.count, "finished \(finished.count) of \(forms.count)")
        #expect(finished.values.allSatisfy { $0 == "completed" }, "statuses: \(Set(finished.values))")
        let effects = responders.effects
        #expect(effects.count == (try stepCount(of: forms)) && effects.values.allSatisfy { $0.count == 1 }, "department effects doubled or missing")
        // A clean stop aborts nothing mid-way: every command strictly once.
        let commands = try await commandsWritten(hub: hub)
        #expect(Set(commands.keys.map { $0.split(separator: "/").prefix(2).joined(separator: "/") }).count == (try stepCount(of: forms)))
        #expect(commands.values.allSatisfy { $0.count == 1 }, "duplicated: \(commands.filter { $0.value.count > 1 }.keys.sorted().prefix(3))")
        let finishedEvents = try await readAll(hub.topic("saga-events"), partitions: hub.partitions, expecting: .max, config: hub.kafka(), timeout: .seconds(3))
            .filter { $0.headers.string(Envelope.Header.type) == MessageType.sagaFinished }
        #expect(finishedEvents.count == forms.count, "\(finishedEvents.count) saga.finished events for \(forms.count) sagas")

        // SIGINT stops the survivor the same way.
        let interrupted = ContinuousClock.now
        kill(second.process.processIdentifier, SIGINT)
        second.process.waitUntilExit()
        #expect(second.process.terminationStatus == 0 && ContinuousClock.now - interrupted < .seconds(10))
    }
}
