import Foundation
import YishiTestSupport

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A YAML or JSON scalar as text (YAML `12` and `"12"` both give "12"); nil for anything else.
func scalar(_ value: Any?) -> String? {
    switch value {
    case let text as String: return text
    case let number as NSNumber: return number.stringValue
    default: return nil
    }
}

/// A helper process's exit status and output.
enum Tool {
    static func output(_ executable: String, _ arguments: [String], directory: URL = repoRoot) throws -> Subprocess.Result {
        try Subprocess.run(URL(fileURLWithPath: executable), arguments, directory: directory)
    }
}

/// One `yishi` service as a deploy file runs it: a compose service or a container of a
/// Kubernetes workload whose image is `yishi:…`. `environment` includes the variables a
/// Kubernetes container takes from ConfigMaps (`envFrom`).
struct YishiService {
    var origin: String            // "compose service X" or "deploy/k8s/F.yaml StatefulSet X"
    var name: String              // compose service name or workload name
    var arguments: [String]       // after the image's entrypoint `yishi`
    var environment: [String: String]
    var profiles: [String] = []
    var healthcheck: String?
    var secrets: [String] = []    // compose secrets of the service
    var secretMounts: [(path: String, secret: String)] = []
    var replicas: Int?
    var metricsPort: Int?
    var liveness: String?         // "<path>:<port>"
    var readiness: String?
    var podLabels: [String: String] = [:]

    var subcommand: String { arguments.first ?? "" }
    var agency: String? { arguments.firstIndex(of: "--agency").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil } }
    var httpPort: Int? { environment["YISHI_HTTP"].flatMap { $0.split(separator: ":").last.flatMap { Int($0) } } }
}

/// deploy/'s YAML files parsed (by PyYAML, through JSON) and the Grafana dashboard.
/// Immutable once loaded (hence `@unchecked Sendable`); loaded once per test run.
struct DeployFiles: @unchecked Sendable {
    /// Repository-relative path → its documents.
    var yaml: [String: [Any]]
    var dashboard: [String: Any]

    /// The agencies: the folders of adapters/.
    static func agencies() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("adapters").path)
            .filter { !$0.hasPrefix(".") }.sorted()
    }

    private static let loaded = Result { try DeployFiles.read() }

    /// The files, read once per test run.
    static func load() throws -> DeployFiles { try loaded.get() }

    private static func read() throws -> DeployFiles {
        let deploy = repoRoot.appendingPathComponent("deploy")
        guard let walker = FileManager.default.enumerator(atPath: deploy.path) else { throw SetupError("cannot list \(deploy.path)") }
        let paths = walker.compactMap { $0 as? String }.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix("secrets/") }
            .map { "deploy/" + $0 }.sorted()
        let yaml = try parseYAML(paths)
        let dashboardData = try Data(contentsOf: deploy.appendingPathComponent("grafana/dashboards/yishi-hub.json"))
        guard let dashboard = try JSONSerialization.jsonObject(with: dashboardData) as? [String: Any] else {
            throw SetupError("deploy/grafana/dashboards/yishi-hub.json is not a JSON object")
        }
        return DeployFiles(yaml: yaml, dashboard: dashboard)
    }

    /// Parses `paths` (relative to the repository or absolute) with PyYAML's safe loader
    /// (scripts/setup-pyyaml.sh provides it). Throws naming the file and PyYAML's message.
    static func parseYAML(_ paths: [String]) throws -> [String: [Any]] {
        let setup = try Tool.output(repoRoot.appendingPathComponent("scripts/setup-pyyaml.sh").path, [])
        guard setup.status == 0 else { throw SetupError("scripts/setup-pyyaml.sh could not provide PyYAML: \(setup.err)") }
        let python = setup.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let program = """
            import json, sys, yaml
            out = {}
            for path in sys.argv[1:]:
                try:
                    with open(path, encoding="utf-8") as f:
                        out[path] = list(yaml.safe_load_all(f))
                except yaml.YAMLError as e:
                    print(f"{path}: {e}", file=sys.stderr); sys.exit(1)
            json.dump(out, sys.stdout)
            """
        let result = try Tool.output(python, ["-c", program] + paths)
        guard result.status == 0 else { throw SetupError("YAML does not parse: \(result.err)") }
        guard let parsed = try JSONSerialization.jsonObject(with: Data(result.out.utf8), options: [.fragmentsAllowed]) as? [String: [Any]] else {
            throw SetupError("PyYAML's JSON is not an object of document lists")
        }
        return parsed
    }

    /// The words of a bash array assignment `NAME=(a b c)` in `script`.
    static func bashArray(_ name: String, in script: String) -> [String] {
        guard let start = script.range(of: "\n\(name)=("), let end = script[start.upperBound...].firstIndex(of: ")") else { return [] }
        return script[start.upperBound..<end].split(separator: " ").map(String.init)
    }

    /// Every compose service and Kubernetes container that runs the yishi image.
    var yishiServices: [YishiService] {
        var services: [YishiService] = []
        if let compose = yaml["deploy/compose.yaml"]?.first as? [String: Any], let all = compose["services"] as? [String: Any] {
            for (name, value) in all.sorted(by: { $0.key < $1.key }) {
                guard let service = value as? [String: Any], (service["image"] as? String)?.hasPrefix("yishi:") == true else { continue }
                var env: [String: String] = [:]
                for (key, value) in service["environment"] as? [String: Any] ?? [:] { env[key] = scalar(value) }
                let health = (service["healthcheck"] as? [String: Any])?["test"] as? [Any]
                services.append(YishiService(
                    origin: "compose service \(name)", name: name, arguments: (service["command"] as? [Any] ?? []).compactMap(scalar),
                    environment: env, profiles: service["profiles"] as? [String] ?? [],
                    healthcheck: health?.compactMap(scalar).joined(separator: " "), secrets: service["secrets"] as? [String] ?? []))
            }
        }
        let configMaps = Dictionary(kubernetes(kind: "ConfigMap").map {
            (($0["metadata"] as? [String: Any])?["name"] as? String ?? "", ($0["data"] as? [String: Any] ?? [:]).compactMapValues(scalar))
        }, uniquingKeysWith: { a, _ in a })
        for (path, docs) in yaml.sorted(by: { $0.key < $1.key }) where path.hasPrefix("deploy/k8s/") {
            for case let doc as [String: Any] in docs {
                guard let kind = doc["kind"] as? String, ["StatefulSet", "Deployment", "Job"].contains(kind) else { continue }
                let name = (doc["metadata"] as? [String: Any])?["name"] as? String ?? "?"
                let spec = doc["spec"] as? [String: Any] ?? [:]
                let template = spec["template"] as? [String: Any] ?? [:]
                let podSpec = template["spec"] as? [String: Any] ?? [:]
                let labels = ((template["metadata"] as? [String: Any])?["labels"] as? [String: Any] ?? [:]).compactMapValues(scalar)
                let volumes = Dictionary((podSpec["volumes"] as? [[String: Any]] ?? []).compactMap { volume -> (String, String)? in
                    guard let secret = (volume["secret"] as? [String: Any])?["secretName"] as? String else { return nil }
                    return (volume["name"] as? String ?? "", secret)
                }, uniquingKeysWith: { a, _ in a })
                for container in podSpec["containers"] as? [[String: Any]] ?? [] {
                    guard (container["image"] as? String)?.hasPrefix("yishi:") == true else { continue }
                    var env: [String: String] = [:]
                    for source in container["envFrom"] as? [[String: Any]] ?? [] {
                        if let map = (source["configMapRef"] as? [String: Any])?["name"] as? String { env.merge(configMaps[map] ?? ["<missing ConfigMap \(map)>": ""]) { a, _ in a } }
                    }
                    for variable in container["env"] as? [[String: Any]] ?? [] {
                        env[variable["name"] as? String ?? ""] = scalar(variable["value"]) ?? "<from \(variable["valueFrom"].map { "\($0)" } ?? "?")>"
                    }
                    func probe(_ key: String) -> String? {
                        guard let get = (container[key] as? [String: Any])?["httpGet"] as? [String: Any] else { return nil }
                        return "\(get["path"] as? String ?? ""):\(scalar(get["port"]) ?? "")"
                    }
                    let mounts = (container["volumeMounts"] as? [[String: Any]] ?? []).compactMap { mount -> (path: String, secret: String)? in
                        guard let secret = volumes[mount["name"] as? String ?? ""] else { return nil }
                        return (mount["mountPath"] as? String ?? "", secret)
                    }
                    let metrics = (container["ports"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "metrics" }
                    services.append(YishiService(
                        origin: "\(path) \(kind) \(name)", name: name, arguments: (container["args"] as? [Any] ?? []).compactMap(scalar),
                        environment: env, secretMounts: mounts, replicas: (spec["replicas"] as? NSNumber)?.intValue,
                        metricsPort: (metrics?["containerPort"] as? NSNumber)?.intValue,
                        liveness: probe("livenessProbe"), readiness: probe("readinessProbe"), podLabels: labels))
                }
            }
        }
        return services
    }

    /// Kubernetes objects of `kind` in deploy/k8s/.
    func kubernetes(kind: String) -> [[String: Any]] {
        yaml.filter { $0.key.hasPrefix("deploy/k8s/") }.sorted { $0.key < $1.key }.flatMap { $0.value }
            .compactMap { $0 as? [String: Any] }.filter { $0["kind"] as? String == kind }
    }

    /// A Prometheus configuration's targets by job: static targets, or DNS names with the port.
    func prometheusTargets(_ path: String) throws -> [String: Set<String>] {
        guard let config = yaml[path]?.first as? [String: Any] else { throw SetupError("\(path) missing") }
        var jobs: [String: Set<String>] = [:]
        for job in config["scrape_configs"] as? [[String: Any]] ?? [] {
            let name = job["job_name"] as? String ?? "?"
            for group in job["static_configs"] as? [[String: Any]] ?? [] {
                jobs[name, default: []].formUnion((group["targets"] as? [Any] ?? []).compactMap(scalar))
            }
            for dns in job["dns_sd_configs"] as? [[String: Any]] ?? [] {
                let port = scalar(dns["port"]) ?? "?"
                jobs[name, default: []].formUnion((dns["names"] as? [Any] ?? []).compactMap(scalar).map { "\($0):\(port)" })
            }
        }
        return jobs
    }

    /// The PromQL of every dashboard panel.
    var dashboardExpressions: [String] {
        (dashboard["panels"] as? [[String: Any]] ?? []).flatMap { $0["targets"] as? [[String: Any]] ?? [] }.compactMap { $0["expr"] as? String }
    }

    /// The PromQL of every alert rule.
    func alertExpressions() throws -> [String] {
        guard let rules = yaml["deploy/prometheus/alerts.yml"]?.first as? [String: Any] else { throw SetupError("alerts.yml missing") }
        return (rules["groups"] as? [[String: Any]] ?? []).flatMap { $0["rules"] as? [[String: Any]] ?? [] }.compactMap { $0["expr"] as? String }
    }
}

/// `yishi <command> run --help` of the built binary.
struct HelpTexts {
    private var texts: [String: String] = [:]

    init() throws {
        let yishi = try YishiCommand(repoRoot: repoRoot, environment: ProcessInfo.processInfo.environment)
        for command in ["orchestrator", "adapter", "department", "frontdesk"] {
            let result = try yishi.run([command, "run", "--help"])
            guard result.status == 0 else { throw SetupError("yishi \(command) run --help: \(result)") }
            texts[command] = result.out + result.err
        }
    }

    func text(for command: String) throws -> String {
        guard let text = texts[command] else { throw SetupError("no long-running `yishi \(command) run`") }
        return text
    }

    /// The help names `flag` as an option (followed by a space, `=`, or the line's end).
    static func mentions(_ help: String, flag: String) -> Bool {
        help.range(of: "(^|\\s)\(NSRegularExpression.escapedPattern(for: flag))(\\s|=|$)", options: .regularExpression) != nil
    }

    /// The help names the environment variable `variable` as a whole word.
    static func mentions(_ help: String, variable: String) -> Bool {
        help.range(of: "\\b\(NSRegularExpression.escapedPattern(for: variable))\\b", options: .regularExpression) != nil
    }
}

/// The metric families the code registers (`registry.counter/gauge/histogram("yishi_…", "help", labels: […])`).
struct MetricFamilies {
    struct Family { var kind: String; var labels: Set<String> }
    var all: [String: Family]
    var keys: Dictionary<String, Family>.Keys { all.keys }
    var count: Int { all.count }

    static func fromSources() throws -> MetricFamilies {
        let pattern = try NSRegularExpression(pattern:
            #"\.(counter|gauge|histogram)\(\s*"(yishi_[a-z0-9_]+)",\s*"(?:[^"\\]|\\.)*"(?:,\s*labels:\s*\[([^\]]*)\])?"#)
        var all: [String: Family] = [:]
        let sources = repoRoot.appendingPathComponent("Sources")
        for case let path as String in FileManager.default.enumerator(atPath: sources.path) ?? FileManager.DirectoryEnumerator() where path.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let group = { (i: Int) in Range(match.range(at: i), in: text).map { String(text[$0]) } }
                let labels = (group(3) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \n\"")) }.filter { !$0.isEmpty }
                all[group(2)!] = Family(kind: group(1)!, labels: Set(labels))
            }
        }
        return MetricFamilies(all: all)
    }

    /// Built-in series Prometheus adds itself, with the target labels.
    static let builtins: Set<String> = ["up"]
    static let targetLabels: Set<String> = ["job", "instance"]
    static let keywords: Set<String> = ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"]

    /// The family a series name belongs to (`_bucket`, `_sum`, `_count` only on histograms), or nil.
    func family(of series: String) -> (name: String, family: Family)? {
        if let family = all[series] { return (series, family) }
        for suffix in ["_bucket", "_sum", "_count"] where series.hasSuffix(suffix) {
            let name = String(series.dropLast(suffix.count))
            if let family = all[name], family.kind == "histogram" { return (name, family) }
        }
        return nil
    }

    /// Series names in a PromQL expression (label matchers, strings, ranges and grouping lists removed).
    static func seriesNames(in expr: String) -> [String] {
        var rest = expr
        for pattern in [#""(?:[^"\\]|\\.)*""#, #"\{[^}]*\}"#, #"\[[^\]]*\]"#, #"\b(by|without|on|ignoring)\s*\([^)]*\)"#] {
            rest = rest.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
        }
        let identifier = try! NSRegularExpression(pattern: #"(?<![0-9.])\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()"#)
        return identifier.matches(in: rest, range: NSRange(rest.startIndex..., in: rest))
            .compactMap { Range($0.range, in: rest).map { String(rest[$0]) } }.filter { !keywords.contains($0) }
    }

    /// Label names an expression groups by or matches on.
    static func labelNames(in expr: String) -> [String] {
        var names: [String] = []
        let noStrings = expr.replacingOccurrences(of: #""(?:[^"\\]|\\.)*""#, with: "\"\"", options: .regularExpression)
        for pattern in [#"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)"#, #"\{([^}]*)\}"#] {
            let regex = try! NSRegularExpression(pattern: pattern)
            for match in regex.matches(in: noStrings, range: NSRange(noStrings.startIndex..., in: noStrings)) {
                guard let range = Range(match.range(at: 1), in: noStrings) else { continue }
                for item in noStrings[range].split(separator: ",") {
                    let name = item.split(whereSeparator: { "=!~ ".contains($0) }).first.map(String.init) ?? ""
                    if !name.isEmpty { names.append(name) }
                }
            }
        }
        return names
    }

    /// Families the expression uses.
    func families(in expr: String) -> Set<String> { Set(Self.seriesNames(in: expr).compactMap { family(of: $0)?.name }) }

    /// What is wrong with an expression: unknown series, labels no used family has.
    func problems(in expr: String) -> [String] {
        var problems: [String] = []
        var labels = Self.targetLabels
        let series = Self.seriesNames(in: expr)
        if series.isEmpty { problems.append("no series") }
        for name in series {
            if Self.builtins.contains(name) { continue }
            guard let (_, family) = family(of: name) else { problems.append("\(name) is not a metric the code registers"); continue }
            labels.formUnion(family.labels)
            if name.hasSuffix("_bucket") { labels.insert("le") }
        }
        for label in Self.labelNames(in: expr) where !labels.contains(label) { problems.append("label \(label) is on none of \(series)") }
        return problems
    }
}
