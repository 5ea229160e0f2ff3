import Departments
import Foundation
import FrontDesk
import Messaging
import SagaEngine
import Testing
import YishiKafka
import YishiTestSupport

/// A Tansu broker behind the SASL/TLS front (scripts/kafka_auth_front.py), both started here on
/// free ports with certificates made by openssl in a temporary folder. Tansu 0.6.0 as shipped
/// can neither complete a SASL login nor serve TLS (docs/operations.md, "Security"); the front
/// terminates TLS, checks SCRAM/PLAIN credentials and passes the Kafka protocol on to Tansu.
final class SecureBroker {
    let dir: URL
    let bootstrap: String
    /// A second front whose certificate names another host: host name verification must refuse it.
    let wrongHostBootstrap: String
    private var processes: [Process] = []
    static let users = ["hub": "hub-Pa55-\(UUID().uuidString.prefix(8))", "alice": "alice-Pa55-\(UUID().uuidString.prefix(8))"]

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("secure-broker"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.shell("""
            set -e
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=Yishi Test CA"
            openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=Other CA"
            for who in server wronghost client; do openssl req -newkey rsa:2048 -nodes -keyout $who.key -out $who.csr -subj "/CN=$who"; done
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext
            printf 'subjectAltName=DNS:broker.elsewhere.example\\n' > wronghost.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
            openssl x509 -req -in wronghost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out wronghost.pem -days 2 -extfile wronghost.ext
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2
            """, in: dir)
        try Self.users.map { "\($0.key):\($0.value)" }.joined(separator: "\n").write(to: dir.appendingPathComponent("users"), atomically: true, encoding: .utf8)
        for (user, password) in Self.users {
            try (password + "\n").write(to: dir.appendingPathComponent(user + ".password"), atomically: true, encoding: .utf8)
        }
        try "not-the-password\n".write(to: dir.appendingPathComponent("wrong.password"), atomically: true, encoding: .utf8)
        let (tansuPort, frontPort, wrongPort) = (try Self.freePort(), try Self.freePort(), try Self.freePort())
        bootstrap = "127.0.0.1:\(frontPort)"
        wrongHostBootstrap = "127.0.0.1:\(wrongPort)"
        let tansu = repoRoot.appendingPathComponent(".venv/lib/tansu").path
        try start(tansu, ["broker", "--listener-url", "tcp://127.0.0.1:\(tansuPort)", "--advertised-listener-url", "tcp://127.0.0.1:\(frontPort)",
                          "--storage-engine", "memory://tansu/", "--silent"], log: "broker.log")
        let front = repoRoot.appendingPathComponent("scripts/kafka_auth_front.py").path
        for (port, cert) in [(frontPort, "server"), (wrongPort, "wronghost")] {
            try start("/usr/bin/env", ["python3", front, "--listen", "127.0.0.1:\(port)", "--upstream", "127.0.0.1:\(tansuPort)",
                                       "--users", path("users"), "--cert", path(cert + ".pem"), "--key", path(cert + ".key"),
                                       "--client-ca", path("ca.pem")], log: "front-\(cert).log")
        }
        for port in [tansuPort, frontPort, wrongPort] { try Self.waitForPort(port) }
    }

    deinit {
        // SIGKILL: Tansu takes its time over SIGTERM, and nothing here needs a clean stop.
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        try? FileManager.default.removeItem(at: dir)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    func log(_ name: String) -> String { (try? String(contentsOfFile: path(name), encoding: .utf8)) ?? "" }

    /// The environment of a hub process logged in as `user` over SASL_SSL with SCRAM-SHA-512.
    func environment(user: String = "hub", passwordFile: String? = nil, mechanism: String = "SCRAM-SHA-512") -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in KafkaSecurity.environmentVariables { env[key] = nil }
        env["YISHI_SECURITY_PROTOCOL"] = "SASL_SSL"
        env["YISHI_SASL_MECHANISM"] = mechanism
        env["YISHI_SASL_USERNAME"] = user
        env["YISHI_SASL_PASSWORD_FILE"] = passwordFile ?? path(user + ".password")
        env["YISHI_SSL_CA_LOCATION"] = path("ca.pem")
        env["YISHI_SSL_CERTIFICATE_LOCATION"] = path("client.pem")
        env["YISHI_SSL_KEY_LOCATION"] = path("client.key")
        return env
    }

    private func start(_ executable: String, _ arguments: [String], log: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        _ = FileManager.default.createFile(atPath: path(log), contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(log)))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        processes.append(p)
    }

    static func shell(_ script: String, in dir: URL) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        p.currentDirectoryURL = dir
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw SetupError("openssl failed making test certificates in \(dir.path)") }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func waitForPort(_ port: Int) throws {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
            close(fd)
            if ok { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw SetupError("nothing listens on 127.0.0.1:\(port) after 15 s")
    }
}

@Suite("SASL and TLS for every client", .serialized)
struct SecurityTests {
    /// Runs `yishi` and measures how long it took.
    func timed(_ command: YishiCommand, _ arguments: [String]) throws -> (YishiCommand.Result, Double) {
        let start = Date()
        let result = try command.run(arguments)
        return (result, Date().timeIntervalSince(start))
    }

    @Test("sagas complete across separate processes over SASL_SSL (SCRAM-SHA-512, client certificate, host name verified); no secret in logs or ps",
          .timeLimit(.minutes(3)))
    func sagasOverSASLSSL() async throws {
        let broker = try SecureBroker()
        let prefix = uniqueName("sec") + "."
        let calendar = try BusinessCalendar.load(repoRoot.appendingPathComponent("seeds/calendar/cn-mainland.json"))
        let start = Instant(rfc3339: "2026-03-02T09:00:00+08:00")!
        var connection = HubConnection(bootstrap: broker.bootstrap)
        connection.prefix = prefix
        connection.partitions = 2
        connection.clock = HubClock(start: start, speed: 1440, wallStart: Date().addingTimeInterval(8), workingHours: calendar)
        // The test's own clients (admin, front desk) log in as alice with PLAIN; the services as hub with SCRAM-SHA-512.
        connection.security = try KafkaSecurity.resolve(KafkaSecurity.Inputs(), environment: broker.environment(user: "alice", mechanism: "PLAIN"))
        try await KafkaAdmin(config: connection.clientConfig(clientId: "sec-admin")).ensureTopics(HubTopics.all(prefix: prefix, partitions: 2, agencies: try hubAgencies().map(\.rawValue)))

        let work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix + "run")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        var env = broker.environment()
        env["YISHI_SESSION_TIMEOUT_MS"] = "6000"
        // The password file by flag for the orchestrator, by environment for the others: both ways are used.
        env["YISHI_SASL_PASSWORD_FILE"] = nil
        let service = try YishiCommand(repoRoot: repoRoot, environment: env)
        let clockArgs = ["--clock-start", start.description, "--clock-speed", "1440", "--clock-working-hours", "cn-mainland",
                         "--clock-wall-start", String(Int64(connection.clock.wallStart.timeIntervalSince1970 * 1000))]
        let kafkaArgs = ["--bootstrap", broker.bootstrap, "--prefix", prefix, "--partitions", "2", "--sasl-password-file", broker.path("hub.password")]
        var processes: [YishiProcess] = []
        defer { for p in processes { p.terminate() } }
        processes.append(try YishiProcess("orchestrator", ["orchestrator", "run", "--instance", "o1", "--session-timeout-ms", "6000"] + kafkaArgs + clockArgs,
                                          command: service, logDirectory: work))
        for agency in try hubAgencies() {
            processes.append(try YishiProcess("adapter." + agency.rawValue, ["adapter", "run", "--agency", agency.rawValue] + kafkaArgs + clockArgs,
                                              command: service, logDirectory: work))
            processes.append(try YishiProcess("dept." + agency.rawValue, ["department", "run", "--agency", agency.rawValue, "--profile", "no-faults"]
                                              + kafkaArgs + clockArgs, command: service, logDirectory: work))
        }
        let all = try String(contentsOf: repoRoot.appendingPathComponent("seeds/applications/applications.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0)) }
        let expectations = try Expectation.load(manifest: repoRoot.appendingPathComponent("seeds/applications/manifest.json"))
        let forms = Array(all.filter { expectations[$0["applicationId"]?.stringValue ?? ""]?.expected == "complete" }.prefix(6))
        let ids = Set(forms.compactMap { $0["applicationId"]?.stringValue })
        let desk = try FrontDesk(connection: connection, desk: "sec", calendar: calendar, supplementDelayMinutes: 30,
                                 log: JSONLog(component: "frontdesk", minimum: .warn))
        defer { desk.stop() }
        try desk.watch()
        desk.submit(forms, from: start, everyMs: 60_000)

        // While everything runs: no process's command line carries a password.
        try await Task.sleep(for: .seconds(3))
        let ps = Process()
        ps.executableURL = URL(fileURLWithPath: "/bin/ps")
        ps.arguments = ["-eo", "args"]
        let pipe = Pipe()
        ps.standardOutput = pipe
        try ps.run()
        let table = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ps.waitUntilExit()
        #expect(table.contains("--sasl-password-file"), "the services are running")
        for password in SecureBroker.users.values { #expect(!table.contains(password), "a password in ps output") }

        let finished = await Task.detached { desk.waitForAll(ids, timeout: .seconds(120)) }.value
        let trails = desk.sagas.filter { ids.contains($0.key) }
        let tails = processes.map { "--- \($0.name)\n" + String($0.output.suffix(1500)) }.joined(separator: "\n")
        #expect(finished, "not finished over SASL_SSL: \(ids.subtracting(trails.filter { $0.value.finished != nil }.keys).sorted())\n\(tails)")
        #expect(trails.values.allSatisfy { $0.finished?.status == "completed" }, "\(trails.mapValues { $0.finished?.status ?? "-" })")
        for p in processes { p.terminate() }
        // The front saw SCRAM-SHA-512 logins of hub (the services) and PLAIN logins of alice (this test).
        let frontLog = broker.log("front-server.log")
        #expect(frontLog.contains("SCRAM-SHA-512 login of 'hub' accepted"))
        #expect(frontLog.contains("PLAIN login of 'alice' accepted"))
        #expect(!frontLog.contains("refused"))
        for p in processes {
            for password in SecureBroker.users.values { #expect(!p.output.contains(password), "a password in \(p.name)'s log") }
        }
    }

    @Test("wrong password, unknown user, missing credentials, a missing or wrong CA, a wrong host name: refused within 15 s, naming broker, mechanism and user; exit 2",
          .timeLimit(.minutes(2)))
    func refusals() throws {
        let broker = try SecureBroker()
        let base = broker.environment()
        func yishi(_ env: [String: String]) throws -> YishiCommand { try YishiCommand(repoRoot: repoRoot, environment: env) }
        let operatorArgs = ["sagas", "list", "--bootstrap", broker.bootstrap, "--timeout", "20"]
        let secrets = SecureBroker.users.values

        // The right settings work (the baseline every refusal below differs from in one thing).
        let (ok, _) = try timed(yishi(base), ["orchestrator", "run", "--help"])
        #expect(ok.status == 0 && ok.out.contains("--sasl-password-file") && !secrets.contains { ok.out.contains($0) })
        let (lag, _) = try timed(yishi(base), ["lag", "--bootstrap", broker.bootstrap, "--timeout", "20"])
        #expect(lag.status != 2, "\(lag)")

        // Wrong password and unknown user, for an operator command and for each kind of service.
        var wrong = base
        wrong["YISHI_SASL_PASSWORD_FILE"] = broker.path("wrong.password")
        var unknown = broker.environment(user: "mallory", passwordFile: broker.path("wrong.password"))
        unknown["YISHI_SASL_MECHANISM"] = "SCRAM-SHA-256"
        let cases: [(String, [String: String], [String], String, String)] = [
            ("wrong password", wrong, operatorArgs, "SCRAM-SHA-512", "hub"),
            ("wrong password, orchestrator", wrong, ["orchestrator", "run", "--bootstrap", broker.bootstrap], "SCRAM-SHA-512", "hub"),
            ("wrong password, adapter", wrong, ["adapter", "run", "--agency", "tax", "--bootstrap", broker.bootstrap], "SCRAM-SHA-512", "hub"),
            ("wrong password, department", wrong, ["department", "run", "--agency", "bank", "--bootstrap", broker.bootstrap], "SCRAM-SHA-512", "hub"),
            ("unknown user", unknown, operatorArgs, "SCRAM-SHA-256", "mallory"),
        ]
        for (what, env, args, mechanism, user) in cases {
            let (r, seconds) = try timed(yishi(env), args)
            #expect(r.status == 2, "\(what): \(r)")
            #expect(seconds < 15, "\(what) took \(seconds) s")
            #expect(r.err.contains("SASL authentication refused by the broker (bootstrap \(broker.bootstrap)"), "\(what): \(r.err)")
            #expect(r.err.contains("mechanism \(mechanism), user '\(user)'"), "\(what): \(r.err)")
            #expect(!secrets.contains { r.err.contains($0) || r.out.contains($0) } && !r.err.contains("not-the-password"), "\(what) printed a secret")
        }

        // Missing credentials: no password at all, or no user; refused before connecting.
        var noPassword = base
        noPassword["YISHI_SASL_PASSWORD_FILE"] = nil
        let (np, npSeconds) = try timed(yishi(noPassword), operatorArgs)
        #expect(np.status == 2 && np.err.contains("missing credentials: no SASL password for user 'hub' (SCRAM-SHA-512)") && npSeconds < 15, "\(np)")
        var noUser = base
        noUser["YISHI_SASL_USERNAME"] = nil
        let (nu, _) = try timed(yishi(noUser), ["adapter", "run", "--agency", "tax", "--bootstrap", broker.bootstrap])
        #expect(nu.status == 2 && nu.err.contains("missing credentials") && nu.err.contains("sasl.username"), "\(nu)")

        // A missing CA file; a CA that did not sign the broker's certificate; a certificate for another host.
        var noCA = base
        noCA["YISHI_SSL_CA_LOCATION"] = broker.path("no-such-ca.pem")
        let (nc, _) = try timed(yishi(noCA), operatorArgs)
        #expect(nc.status == 2 && nc.err.contains("ssl.ca.location \(broker.path("no-such-ca.pem")) does not exist"), "\(nc)")
        var otherCA = base
        otherCA["YISHI_SSL_CA_LOCATION"] = broker.path("other-ca.pem")
        let (oc, ocSeconds) = try timed(yishi(otherCA), ["orchestrator", "run", "--bootstrap", broker.bootstrap])
        #expect(oc.status == 2 && ocSeconds < 15, "\(oc)")
        #expect(oc.err.contains("TLS handshake refused by the broker (bootstrap \(broker.bootstrap)") && oc.err.contains("certificate verify failed")
                && oc.err.contains("user 'hub'"), "\(oc)")
        let (wh, whSeconds) = try timed(yishi(base), ["sagas", "list", "--bootstrap", broker.wrongHostBootstrap, "--timeout", "20"])
        #expect(wh.status == 2 && whSeconds < 15 && wh.err.contains("TLS handshake refused") && wh.err.contains("host name verified"), "\(wh)")

        // A secret on the command line is refused outright, without echoing it.
        let (cl, _) = try timed(yishi(base), operatorArgs + ["--sasl-password", "hunter2-on-the-command-line"])
        #expect(cl.status == 2 && cl.err.contains("--sasl-password is refused") && !cl.err.contains("hunter2"), "\(cl)")
        let (cl2, _) = try timed(yishi(base), ["orchestrator", "run", "--bootstrap", broker.bootstrap, "--sasl-password=hunter2"])
        #expect(cl2.status == 2 && !cl2.err.contains("hunter2"), "\(cl2)")
    }

    @Test("the Kafka layer: a refused login ends consumer poll, producer initTransactions and admin calls at once with .authentication")
    func kafkaLayerSurfacesRefusals() throws {
        let broker = try SecureBroker()
        var env = broker.environment()
        env["YISHI_SASL_PASSWORD_FILE"] = broker.path("wrong.password")
        let security = try KafkaSecurity.resolve(KafkaSecurity.Inputs(), environment: env)
        let config = security.apply(to: KafkaConfig(bootstrapServers: broker.bootstrap, ["log_level": "0"]))
        func refusedQuickly(_ what: String, _ body: () throws -> Void) {
            let start = Date()
            do {
                try body()
                Issue.record("\(what) did not throw")
            } catch let error as KafkaError {
                #expect(error.kind == .authentication, "\(what): \(error)")
                #expect(error.description.contains("mechanism SCRAM-SHA-512, user 'hub'") && error.description.contains(broker.bootstrap), "\(error)")
            } catch {
                Issue.record("\(what): \(error)")
            }
            #expect(Date().timeIntervalSince(start) < 10, "\(what) took \(Date().timeIntervalSince(start)) s")
        }
        refusedQuickly("admin describeTopics") { _ = try KafkaAdmin(config: config).describeTopics(timeout: .seconds(30)) }
        refusedQuickly("producer initTransactions") {
            try KafkaProducer(config: config, transactionalId: uniqueName("sec-txn")).initTransactions(timeout: .seconds(30))
        }
        let consumer = try KafkaConsumer(config: config, groupId: uniqueName("sec-group"))
        let reported = Recorder<KafkaError>()
        consumer.onClientError { reported.append($0) }
        try consumer.subscribe(["sec-any"])
        refusedQuickly("consumer poll") {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline { _ = try consumer.poll(timeout: .milliseconds(100)) }
        }
        #expect(consumer.securityFailure?.kind == .authentication)
        #expect(reported.all.contains { $0.kind == .authentication }, "onClientError got \(reported.all)")
    }

    /// What fails on Tansu 0.6.0 itself, so that the tests above use the front: should a later
    /// Tansu accept these logins, this test fails and the front can go.
    @Test("Tansu 0.6.0 itself with --authentication: `tansu user create` cannot log in to create a user, every SCRAM login is refused as unknown-user, PLAIN is not offered")
    func tansuOwnAuthentication() throws {
        let port = try SecureBroker.freePort()
        let p = Process()
        p.executableURL = repoRoot.appendingPathComponent(".venv/lib/tansu")
        p.arguments = ["broker", "--listener-url", "tcp://127.0.0.1:\(port)", "--advertised-listener-url", "tcp://127.0.0.1:\(port)",
                       "--storage-engine", "memory://tansu/", "--authentication", "--silent"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        try SecureBroker.waitForPort(port)
        // `tansu user create` does not log in itself, so an authenticating broker closes its connection
        // ("early eof"). Against a broker without --authentication it exits 0, but the memory:// and
        // s3:// engines discard the credential (their upsert does nothing), which is why a user made
        // that way is unknown after a restart with --authentication on the same s3 storage.
        let create = Process()
        create.executableURL = p.executableURL
        create.arguments = ["user", "create", "--broker", "tcp://127.0.0.1:\(port)", "--mechanism", "scram512", "carol", "carol-pw"]
        create.standardOutput = FileHandle.nullDevice
        create.standardError = FileHandle.nullDevice
        try create.run()
        create.waitUntilExit()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(uniqueName("tansu-auth"))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "carol-pw\n".write(to: dir.appendingPathComponent("pw"), atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        for key in KafkaSecurity.environmentVariables { env[key] = nil }
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: env)
        let args = ["sagas", "list", "--bootstrap", "127.0.0.1:\(port)", "--timeout", "20", "--security-protocol", "SASL_PLAINTEXT",
                    "--sasl-username", "carol", "--sasl-password-file", dir.appendingPathComponent("pw").path]
        let (scram, seconds) = try timed(yishi, args + ["--sasl-mechanism", "SCRAM-SHA-512"])
        #expect(create.terminationStatus != 0, "tansu user create succeeded on an authenticating broker: try Tansu's own SCRAM store again")
        #expect(scram.status == 2 && seconds < 15 && scram.err.contains("unknown-user") && scram.err.contains("mechanism SCRAM-SHA-512, user 'carol'"), "\(scram)")
        let (plain, _) = try timed(yishi, args + ["--sasl-mechanism", "PLAIN"])
        #expect(plain.status == 2 && plain.err.contains("SASL PLAIN mechanism handshake failed"), "\(plain)")
    }
}
