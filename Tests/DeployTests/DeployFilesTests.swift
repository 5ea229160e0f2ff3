import Foundation
import Testing
import YishiKafka
import YishiTestSupport

/// Static checks of deploy/ (no container engine runs here): the files parse, use only flags and
/// environment variables that `yishi … --help` documents, agree with one another on names, ports,
/// principals and partitions, take credentials from files, and chart and alert only on metrics
/// that the code registers. Runs in about 3 s: PyYAML turns the YAML into JSON once per run,
/// the built `yishi` prints four help texts, promtool checks the Prometheus files, and
/// make-secrets.sh generates its RSA keys (most of the time).
@Suite("deploy/ files")
struct DeployFilesTests {
    @Test("every YAML file under deploy/ parses (PyYAML), the dashboard JSON parses; a broken file is reported by path")
    func filesParse() throws {
        let files = try DeployFiles.load()
        #expect(files.yaml.keys.contains("deploy/compose.yaml"))
        #expect(files.yaml.keys.contains("deploy/k8s/orchestrator.yaml"))
        #expect(files.yaml.count >= 10, "YAML files found: \(files.yaml.keys.sorted())")
        for (path, docs) in files.yaml { #expect(!docs.isEmpty, "\(path) has no document") }
        #expect(files.dashboard["panels"] as? [Any] != nil)

        // The parser really rejects what is not YAML (a tab-indented mapping, an unclosed flow sequence).
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-broken-\(getpid()).yaml")
        try "a:\n\tb: [1, 2\n".write(to: broken, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: broken) }
        #expect(throws: SetupError.self) { _ = try DeployFiles.parseYAML([broken.path]) }
    }

    @Test("every yishi flag and YISHI_* variable in compose and Kubernetes files exists in `yishi <command> run --help`; no secret in a flag or variable")
    func flagsAndEnvironmentExist() throws {
        let files = try DeployFiles.load()
        let help = try HelpTexts()
        var checked = 0
        for service in files.yishiServices {
            let text = try help.text(for: service.subcommand)
            for flag in service.arguments where flag.hasPrefix("--") {
                #expect(HelpTexts.mentions(text, flag: flag), "\(service.origin): \(flag) is not in `yishi \(service.subcommand) run --help`")
                #expect(!["--sasl-password", "--ssl-key-password", "--password"].contains(flag), "\(service.origin): secret flag \(flag)")
            }
            for name in service.environment.keys where name.hasPrefix("YISHI_") {
                #expect(HelpTexts.mentions(text, variable: name), "\(service.origin): \(name) is not in `yishi \(service.subcommand) run --help`")
                #expect(!["YISHI_SASL_PASSWORD", "YISHI_SSL_KEY_PASSWORD"].contains(name), "\(service.origin): a secret in the environment (\(name))")
                checked += 1
            }
        }
        #expect(checked > 100, "only \(checked) variables checked")
        // The check can fail: a misspelt variable and an unknown flag are not in the help.
        let orchestrator = try help.text(for: "orchestrator")
        #expect(!HelpTexts.mentions(orchestrator, variable: "YISHI_SASL_PASSWORD_FIL"))
        #expect(!HelpTexts.mentions(orchestrator, flag: "--agency"))
        #expect(!HelpTexts.mentions(try help.text(for: "department"), variable: "YISHI_INSTANCE"))
    }

    @Test("compose: two orchestrators, an adapter per agency, departments under profile simulators; ports agree with probes and Prometheus targets")
    func composeAgrees() throws {
        let files = try DeployFiles.load()
        let agencies = try DeployFiles.agencies()
        let services = files.yishiServices.filter { $0.origin.hasPrefix("compose") }
        let orchestrators = services.filter { $0.subcommand == "orchestrator" }
        #expect(orchestrators.count == 2)
        #expect(Set(orchestrators.compactMap { $0.environment["YISHI_INSTANCE"] }).count == 2, "orchestrators need distinct instance ids")
        for agency in agencies {
            let adapter = services.first { $0.name == "adapter-\(agency)" }
            #expect(adapter?.subcommand == "adapter" && adapter?.agency == agency && adapter?.profiles == [], "adapter-\(agency)")
            let department = services.first { $0.name == "dept-\(agency)" }
            #expect(department?.subcommand == "department" && department?.agency == agency && department?.profiles == ["simulators"],
                    "dept-\(agency)")
        }
        #expect(services.contains { $0.subcommand == "frontdesk" })
        #expect(Set(services.filter { $0.subcommand == "adapter" || $0.subcommand == "department" }.compactMap(\.agency)) == Set(agencies))

        let prometheus = try files.prometheusTargets("deploy/prometheus/prometheus.yml")
        var expected: [String: Set<String>] = [:]
        for service in services {
            let port = try #require(service.httpPort, "\(service.origin): YISHI_HTTP HOST:PORT")
            let health = service.healthcheck ?? ""
            #expect(health.contains("http://127.0.0.1:\(port)/healthz") && health.contains("http://127.0.0.1:\(port)/readyz"),
                    "\(service.origin): healthcheck '\(health)' must probe /healthz and /readyz on \(port)")
            expected["yishi-" + service.subcommand, default: []].insert("\(service.name):\(port)")
        }
        #expect(prometheus == expected)

        // The hub's clients use the brokers' SASL_SSL listener.
        let compose = try #require(files.yaml["deploy/compose.yaml"]?.first as? [String: Any])
        let brokers = (compose["services"] as? [String: Any] ?? [:]).values.compactMap { ($0 as? [String: Any])?["environment"] as? [String: Any] }
            .filter { $0["KAFKA_ADVERTISED_LISTENERS"] != nil }
        #expect(brokers.count == 3)
        var saslListeners: Set<String> = []
        for env in brokers {
            let map = Dictionary(uniqueKeysWithValues: (scalar(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]) ?? "").split(separator: ",").map {
                let pair = $0.split(separator: ":"); return (String(pair[0]), String(pair.last!))
            })
            for listener in (scalar(env["KAFKA_ADVERTISED_LISTENERS"]) ?? "").split(separator: ",") {
                let parts = listener.components(separatedBy: "://")
                if map[parts[0]] == "SASL_SSL" { saslListeners.insert(parts[1]) }
            }
        }
        for service in services {
            #expect(service.environment["YISHI_SECURITY_PROTOCOL"] == "SASL_SSL", "\(service.origin)")
            let bootstrap = Set((service.environment["YISHI_BOOTSTRAP"] ?? "").split(separator: ",").map(String.init))
            #expect(!bootstrap.isEmpty && bootstrap == saslListeners, "\(service.origin): bootstrap \(bootstrap) vs SASL_SSL listeners \(saslListeners)")
        }
    }

    @Test("Kubernetes: workloads, probes, ports, headless Services and Prometheus DNS targets agree; simulators in their own file")
    func kubernetesAgrees() throws {
        let files = try DeployFiles.load()
        let agencies = try DeployFiles.agencies()
        let workloads = files.yishiServices.filter { $0.origin.hasPrefix("deploy/k8s") }
        #expect(workloads.first { $0.name == "orchestrator" }?.replicas == 2)
        for agency in agencies {
            #expect(workloads.first { $0.name == "adapter-\(agency)" }.map { $0.agency == agency && $0.origin.hasPrefix("deploy/k8s/adapters.yaml") } == true,
                    "adapter-\(agency)")
            #expect(workloads.first { $0.name == "dept-\(agency)" }.map { $0.agency == agency && $0.origin.hasPrefix("deploy/k8s/simulators.yaml") } == true,
                    "dept-\(agency)")
        }
        #expect(workloads.contains { $0.subcommand == "frontdesk" })
        let services = files.kubernetes(kind: "Service")
        let prometheus = try files.prometheusTargets("deploy/prometheus/prometheus-k8s.yml")
        var expected: [String: Set<String>] = [:]
        for workload in workloads {
            let port = try #require(workload.httpPort, "\(workload.origin): YISHI_HTTP")
            #expect(workload.metricsPort == port, "\(workload.origin): container port 'metrics' \(String(describing: workload.metricsPort)) vs YISHI_HTTP \(port)")
            #expect(workload.liveness == "/healthz:\(port)", "\(workload.origin): liveness \(String(describing: workload.liveness))")
            #expect(workload.readiness == "/readyz:\(port)", "\(workload.origin): readiness \(String(describing: workload.readiness))")
            let service = services.first { (($0["metadata"] as? [String: Any])?["name"] as? String) == workload.name }
            let spec = service?["spec"] as? [String: Any] ?? [:]
            #expect(scalar(spec["clusterIP"]) == "None", "\(workload.origin): a headless Service named \(workload.name)")
            let ports = (spec["ports"] as? [[String: Any]] ?? []).compactMap { scalar($0["port"]) }
            #expect(ports == ["\(port)"], "\(workload.origin): Service ports \(ports)")
            let selector = spec["selector"] as? [String: String] ?? [:]
            #expect(!selector.isEmpty && selector.allSatisfy { workload.podLabels[$0.key] == $0.value }, "\(workload.origin): Service selector \(selector)")
            expected["yishi-" + workload.subcommand, default: []].insert("\(workload.name):\(port)")
        }
        #expect(prometheus == expected)
        for workload in workloads { #expect(workload.environment["YISHI_SECURITY_PROTOCOL"] == "SASL_SSL", "\(workload.origin)") }
    }

    @Test("one principal per writer: every SASL user is provisioned with ACLs, its password is a file from a compose secret or a Kubernetes Secret")
    func credentials() throws {
        let files = try DeployFiles.load()
        let script = try String(contentsOf: repoRoot.appendingPathComponent("deploy/provision-topics.sh"), encoding: .utf8)
        let agencies = try DeployFiles.agencies()
        #expect(DeployFiles.bashArray("AGENCIES", in: script).sorted() == agencies, "provision-topics.sh AGENCIES vs adapters/")
        #expect(script.contains(#"PRINCIPALS+=("adapter-$a" "dept-$a")"#))
        let principals = Set(DeployFiles.bashArray("PRINCIPALS", in: script) + agencies.flatMap { ["adapter-\($0)", "dept-\($0)"] })
        let compose = try #require(files.yaml["deploy/compose.yaml"]?.first as? [String: Any])
        let secrets = compose["secrets"] as? [String: Any] ?? [:]
        var users: Set<String> = []
        for service in files.yishiServices {
            let user = try #require(service.environment["YISHI_SASL_USERNAME"], "\(service.origin): YISHI_SASL_USERNAME")
            users.insert(user)
            #expect(principals.contains(user), "\(service.origin): user \(user) is not provisioned by provision-topics.sh")
            let expectedUser = service.subcommand == "adapter" ? "adapter-\(service.agency ?? "")"
                : service.subcommand == "department" ? "dept-\(service.agency ?? "")" : service.subcommand
            #expect(user == expectedUser, "\(service.origin): one principal per writer")
            let passwordFile = try #require(service.environment["YISHI_SASL_PASSWORD_FILE"], "\(service.origin): password from a file")
            let ca = try #require(service.environment["YISHI_SSL_CA_LOCATION"])
            if service.origin.hasPrefix("compose") {
                #expect(passwordFile == "/run/secrets/kafka-password-\(user)")
                #expect(service.secrets.contains("kafka-password-\(user)") && service.secrets.contains("kafka-ca"), "\(service.origin): secrets \(service.secrets)")
                #expect(((secrets["kafka-password-\(user)"] as? [String: Any])?["file"] as? String) == "./secrets/\(user).password")
                #expect(ca == "/run/secrets/kafka-ca")
            } else {
                #expect(service.secretMounts.contains { passwordFile.hasPrefix($0.path + "/") && $0.secret == "yishi-kafka-\(user)" },
                        "\(service.origin): \(passwordFile) must lie in the mounted Secret yishi-kafka-\(user) (\(service.secretMounts))")
                #expect(service.secretMounts.contains { ca.hasPrefix($0.path + "/") && $0.secret == "yishi-kafka-ca" }, "\(service.origin): CA \(ca)")
            }
        }
        #expect(users == principals.subtracting(["operator"]), "services' users \(users.sorted()) vs principals \(principals.sorted())")
        // Topics of the provisioning script: every hub topic (HubTopics.all), ops-audit included.
        for topic in ["applications", "saga-events", "ops", "ops-replies", "ops-audit", "dlq", "saga-state", "licences"] {
            #expect(script.contains(" \(topic)") , "provision-topics.sh creates \(topic)")
        }
        // The partition count is one number everywhere (compose, provisioning, ConfigMap, the alert).
        let partitions = Set(files.yishiServices.compactMap { $0.environment["YISHI_PARTITIONS"] })
        #expect(partitions.count == 1)
        let provision = ((compose["services"] as? [String: Any])?["provision"] as? [String: Any])?["environment"] as? [String: Any]
        #expect(partitions == [scalar(provision?["YISHI_PARTITIONS"]) ?? ""])
        // So is the topic prefix, and the ACLs' group and transactional-id names derive from it.
        let prefixes = Set(files.yishiServices.compactMap { $0.environment["YISHI_TOPIC_PREFIX"] })
        #expect(prefixes == ["yishi."] && scalar(provision?["YISHI_TOPIC_PREFIX"]) == "yishi.", "prefixes \(prefixes)")
        let alerts = try String(contentsOf: repoRoot.appendingPathComponent("deploy/prometheus/alerts.yml"), encoding: .utf8)
        #expect(alerts.contains("sum(yishi_owned_partitions{job=\"yishi-orchestrator\"}) < \(partitions.first ?? "?")"))
    }

    @Test("every metric and label in the Grafana dashboard and the alert rules is registered in Sources; the dashboard charts every family")
    func metricsExist() throws {
        let files = try DeployFiles.load()
        let families = try MetricFamilies.fromSources()
        #expect(families.count >= 19, "families found in Sources: \(families.keys.sorted())")
        let dashboardExprs = files.dashboardExpressions
        let alertExprs = try files.alertExpressions()
        #expect(dashboardExprs.count >= 20 && alertExprs.count >= 8)
        var charted: Set<String> = []
        for expr in dashboardExprs + alertExprs {
            let problems = families.problems(in: expr)
            #expect(problems.isEmpty, "\(expr): \(problems)")
            if dashboardExprs.contains(expr) { charted.formUnion(families.families(in: expr)) }
        }
        #expect(charted == Set(families.keys), "families not on the dashboard: \(Set(families.keys).subtracting(charted).sorted())")
        // The check can fail: a misspelt family, a histogram suffix on a counter, a label the family lacks.
        #expect(!families.problems(in: "rate(yishi_sagas_startd_total[5m])").isEmpty)
        #expect(!families.problems(in: "rate(yishi_sagas_started_total_bucket[5m])").isEmpty)
        #expect(!families.problems(in: "sum by (agency) (rate(yishi_sagas_started_total[5m]))").isEmpty)
        #expect(!families.problems(in: "yishi_consumer_lag{bundle=\"x\"}").isEmpty)
        #expect(families.problems(in: "sum by (service, le) (rate(yishi_transaction_commit_seconds_bucket[5m]))").isEmpty)
    }

    @Test("promtool check config accepts both Prometheus configurations (and their rule file); promtool check rules accepts alerts.yml")
    func promtoolAccepts() throws {
        let promtool = try Tool.output(repoRoot.appendingPathComponent("scripts/setup-promtool.sh").path, [])
        #expect(promtool.status == 0, "scripts/setup-promtool.sh: \(promtool.err)")
        let path = promtool.out.trimmingCharacters(in: .whitespacesAndNewlines)
        for config in ["deploy/prometheus/prometheus.yml", "deploy/prometheus/prometheus-k8s.yml"] {
            let result = try Tool.output(path, ["check", "config", config])
            #expect(result.status == 0, "promtool check config \(config): \(result.out)\(result.err)")
            #expect((result.out + result.err).contains("1 rule files found"), "\(config) must load alerts.yml")
        }
        let rules = try Tool.output(path, ["check", "rules", "deploy/prometheus/alerts.yml"])
        #expect(rules.status == 0 && (rules.out + rules.err).contains("SUCCESS"), "\(rules.out)\(rules.err)")
    }
}

extension DeployFilesTests {
    @Test("make-secrets.sh makes every secret file compose mounts, a CA that signed the broker's and admin's certificates, one password per provisioned principal")
    func secretsScript() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-secrets-\(getpid())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let made = try Tool.output(repoRoot.appendingPathComponent("deploy/make-secrets.sh").path, [directory.path])
        #expect(made.status == 0, "\(made.err)")
        let files = try DeployFiles.load()
        let compose = try #require(files.yaml["deploy/compose.yaml"]?.first as? [String: Any])
        for (name, value) in compose["secrets"] as? [String: Any] ?? [:] {
            let file = try #require((value as? [String: Any])?["file"] as? String, "secret \(name) from a file")
            #expect(file.hasPrefix("./secrets/"), "secret \(name): \(file)")
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(String(file.dropFirst("./secrets/".count))).path),
                    "make-secrets.sh does not make \(file) (secret \(name))")
        }
        let script = try String(contentsOf: repoRoot.appendingPathComponent("deploy/provision-topics.sh"), encoding: .utf8)
        let agencies = DeployFiles.bashArray("AGENCIES", in: script)
        for principal in DeployFiles.bashArray("PRINCIPALS", in: script) + agencies.flatMap({ ["adapter-\($0)", "dept-\($0)"] }) {
            let password = try String(contentsOf: directory.appendingPathComponent("\(principal).password"), encoding: .utf8)
            #expect(password.count == 48 && !password.contains("\n"), "\(principal).password")
        }
        let mode = try FileManager.default.attributesOfItem(atPath: directory.path)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        let verify = try Tool.output("/usr/bin/env", ["openssl", "verify", "-CAfile", directory.appendingPathComponent("ca.pem").path,
                                                       directory.appendingPathComponent("broker.pem").path, directory.appendingPathComponent("admin.pem").path])
        #expect(verify.status == 0, "\(verify.out)\(verify.err)")
        let subject = try Tool.output("/usr/bin/env", ["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName", "-in", directory.appendingPathComponent("broker.pem").path])
        // The brokers' names in compose's bootstrap and the Kubernetes ConfigMap are in the certificate (host name verification).
        for host in ["kafka-1", "kafka-2", "kafka-3", "kafka-0.kafka", "kafka-1.kafka", "kafka-2.kafka"] {
            #expect(subject.out.contains("DNS:\(host),") || subject.out.hasSuffix("DNS:\(host)\n"), "broker certificate lacks \(host): \(subject.out)")
        }
        for service in files.yishiServices {
            for host in (service.environment["YISHI_BOOTSTRAP"] ?? "").split(separator: ",").map({ $0.split(separator: ":")[0] }) {
                #expect(subject.out.contains("DNS:\(host)"), "\(service.origin): bootstrap host \(host) is not in the broker certificate")
            }
        }
    }
}

extension DeployFilesTests {
    @Test("provision-topics.sh (Kafka's tools stubbed): every HubTopics.all topic, a SCRAM user per principal from its file with no password on a command line, ACLs for every writer")
    func provisioningScript() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-provision-\(getpid())")
        defer { try? FileManager.default.removeItem(at: work) }
        let bin = work.appendingPathComponent("bin"), passwords = work.appendingPathComponent("passwords")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: passwords, withIntermediateDirectories: true)
        let log = work.appendingPathComponent("calls.log")
        // Each stub logs its name and arguments; kafka-configs.sh also logs the config file's content as it was when called.
        for tool in ["kafka-topics.sh", "kafka-acls.sh", "kafka-configs.sh"] {
            let stub = bin.appendingPathComponent(tool)
            try """
                #!/usr/bin/env bash
                echo "\(tool) $*" >> "\(log.path)"
                prev=""; for a in "$@"; do [[ $prev == --add-config-file ]] && echo "FILE $(cat "$a")" >> "\(log.path)"; prev=$a; done
                exit 0
                """.write(to: stub, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub.path)
        }
        let script = try String(contentsOf: repoRoot.appendingPathComponent("deploy/provision-topics.sh"), encoding: .utf8)
        let agencies = DeployFiles.bashArray("AGENCIES", in: script)
        let principals = DeployFiles.bashArray("PRINCIPALS", in: script) + agencies.flatMap { ["adapter-\($0)", "dept-\($0)"] }
        var secrets: [String: String] = [:]
        for principal in principals {
            secrets[principal] = "pw-\(principal)-\(UUID().uuidString)"
            try secrets[principal]!.write(to: passwords.appendingPathComponent("kafka-password-\(principal)"), atomically: true, encoding: .utf8)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", repoRoot.appendingPathComponent("deploy/provision-topics.sh").path]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "BOOTSTRAP": "kafka-1:9092", "KAFKA_BIN": bin.path, "YISHI_PARTITIONS": "12", "YISHI_TOPIC_PREFIX": "yishi.",
            "ADMIN_PEM": "/run/secrets/kafka-admin-pem", "CA_PEM": "/run/secrets/kafka-ca", "PASSWORD_DIR": passwords.path]) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let calls = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map(String.init)
        let commandLines = calls.filter { !$0.hasPrefix("FILE ") }
        // Every call logs in as the admin over TLS; no password is ever an argument.
        #expect(commandLines.allSatisfy { $0.contains("--command-config ") && $0.contains("--bootstrap-server kafka-1:9092") })
        for (principal, secret) in secrets {
            #expect(!commandLines.contains { $0.contains(secret) }, "\(principal)'s password on a command line")
            #expect(calls.contains("FILE SCRAM-SHA-512=[password=\(secret)]"), "no SCRAM user for \(principal)")
            #expect(commandLines.contains { $0.contains("--entity-type users --entity-name \(principal) --add-config-file") })
            #expect(commandLines.contains { $0.hasPrefix("kafka-acls.sh") && $0.contains("User:\(principal) ") && $0.contains("--operation Describe --topic yishi. --resource-pattern-type prefixed") },
                    "\(principal) may not describe the hub's topics")
        }
        // The topics are HubTopics.all's, with its partition count and compaction.
        let created = Set(commandLines.filter { $0.hasPrefix("kafka-topics.sh") }.compactMap { line -> String? in
            let words = line.split(separator: " ").map(String.init)
            guard let i = words.firstIndex(of: "--topic"), words.contains("12") else { return nil }
            return words[i + 1] + (line.contains("cleanup.policy=compact") ? " compact" : "")
        })
        let expected = Set(HubTopics.all(prefix: "yishi.", partitions: 12, agencies: agencies).map {
            $0.name + ($0.configs["cleanup.policy"] == "compact" ? " compact" : "")
        })
        #expect(created == expected)
        // Every topic has a writer and every consumed topic a reader; each writer's consumer group and transactional ids are granted.
        for topic in expected.map({ $0.split(separator: " ")[0] }) {
            #expect(commandLines.contains { $0.hasPrefix("kafka-acls.sh") && $0.hasSuffix("--operation Write --topic \(topic)") }, "no writer of \(topic)")
        }
        for agency in agencies {
            #expect(commandLines.contains { $0.contains("User:adapter-\(agency) --operation Write --operation Describe --transactional-id yishi.adapter.\(agency) ") })
            #expect(commandLines.contains { $0.contains("User:adapter-\(agency) --operation Read --operation Describe --group yishi.adapter.\(agency) ") })
            #expect(commandLines.contains { $0.contains("User:dept-\(agency) --operation Read --operation Describe --group yishi.dept.\(agency) ") })
        }
        #expect(commandLines.contains { $0.contains("User:orchestrator --operation Write --operation Describe --transactional-id yishi.orchestrator ") })
    }
}
