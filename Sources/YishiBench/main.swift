// yishi-bench: prints one line per figure, `BENCH <name> <value> <unit>`.
//
// Kafka figures are measured against the broker in YISHI_BOOTSTRAP (`make
// bench` starts Tansu) and compared, in the same run, with librdkafka's own
// rdkafka_performance built from the same source (YISHI_RDKAFKA_BIN), with the
// same settings: 512-byte values, idempotent producer, linger.ms=5, 4 partitions.
import Foundation
import YishiKafka

func bench(_ name: String, _ value: Double, _ unit: String) {
    let text = value >= 100 ? String(format: "%.0f", value) : String(format: "%.3f", value)
    FileHandle.standardOutput.write(Data("BENCH \(name) \(text) \(unit)\n".utf8))
}

func progress(_ text: String) {
    FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
}

func fail(_ text: String) -> Never {
    FileHandle.standardError.write(Data("yishi-bench: error: \(text)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("--help") || arguments.contains("-h") {
    print("""
    usage: yishi-bench [--messages N] [--rounds R] [--sagas N] [--cli-sagas N] [--soak-seconds S] [--soak-rate R]
                       [--restore-sagas N] [--restore-history N] [--only kafka|engine|orchestrator|restore|soak|cli]

    Prints `BENCH <name> <value> <unit>` lines. Kafka security (SASL/TLS) comes from the environment
    as for `yishi` services: YISHI_KAFKA_CONFIG, YISHI_SECURITY_PROTOCOL, YISHI_SASL_MECHANISM,
    YISHI_SASL_USERNAME, YISHI_SASL_PASSWORD(_FILE), YISHI_SSL_CA_LOCATION, YISHI_SSL_CERTIFICATE_LOCATION,
    YISHI_SSL_KEY_LOCATION (docs/operations.md, "Security"). Kafka figures need a broker in
    YISHI_BOOTSTRAP and rdkafka_performance in YISHI_RDKAFKA_BIN (or on PATH);
    `make bench` provides both. With YISHI_BIN (the `yishi` binary; `make bench` sets it),
    the cli figures include `sagas show` as an operator runs it, process start to output.
      --messages N   messages per Kafka run (default 300000)
      --rounds R     rounds of Kafka measurements; medians are reported (default 5)
      --sagas N      enterprise-opening sagas for the orchestrator figures (default 3000)
      --cli-sagas N  saga states in the system when timing `sagas show` (default 100000)
      --soak-seconds S  wall time of the soak group's steady load (default 60; e.g. 1800 for a longer soak)
      --soak-rate R  applications per second during the soak (default 150)
      --restore-sagas N    in-flight saga states restored for orchestrator.restore_* (default 100000)
      --restore-history N  finished sagas behind them for restore_history_ratio (default 1000000)
      --only WHAT    run only the kafka, engine, orchestrator, restore, soak or cli figures

    The orchestrator group drives N enterprise-opening sagas through one instance with instant
    scripted responders and prints sagas_per_s, the records per saga (all topics: the
    orchestrator's inputs and outputs), the broker bound (rdkafka_performance's produce rate of
    the kafka group, or of one extra run, divided by the records per saga) and the ratio to it,
    the step latency (an answer produced to the next command read after its commit) p50/p99 at
    half of the measured rate. The restore group writes in-flight states and finished-saga
    history straight to saga-state and times restores (restore_sagas_per_s, restore_history_ratio;
    restore_history_cpu_ratio compares the same two restores by process CPU seconds).
    The soak group keeps a steady load and prints RSS and a restart's restore time after a
    warm-up and at the end. YISHI_BENCH_FETCH_WAIT_MS sets fetch.wait.max.ms of every client in
    the orchestrator and soak groups (default: librdkafka's).
    """)
    exit(0)
}

func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), arguments.index(after: index) < arguments.endIndex else { return nil }
    return arguments[arguments.index(after: index)]
}

/// SASL/TLS settings of every client of the bench, from the environment (YISHI_KAFKA_CONFIG,
/// YISHI_SECURITY_PROTOCOL, YISHI_SASL_*, YISHI_SSL_*), as the `yishi` services read them.
let benchSecurity: KafkaSecurity = {
    do { return try KafkaSecurity.resolve(KafkaSecurity.Inputs(), environment: ProcessInfo.processInfo.environment) } catch {
        fail("Kafka security settings: \(error)")
    }
}()

/// A client configuration for the bench's broker, with the security settings applied.
func benchConfig(_ bootstrap: String, _ properties: [String: String] = [:]) -> KafkaConfig {
    benchSecurity.apply(to: KafkaConfig(bootstrapServers: bootstrap, properties))
}

let messageCount = Int(option("--messages") ?? "300000") ?? 300_000
let rounds = Int(option("--rounds") ?? "5") ?? 5
let only = option("--only")
let sagaCount = Int(option("--sagas") ?? "3000") ?? 3000
let cliSagaCount = Int(option("--cli-sagas") ?? "100000") ?? 100_000
let soakSeconds = Double(option("--soak-seconds") ?? "60") ?? 60
let soakRate = Double(option("--soak-rate") ?? "150") ?? 150
let restoreSagas = Int(option("--restore-sagas") ?? "100000") ?? 100_000
let restoreHistory = Int(option("--restore-history") ?? "1000000") ?? 1_000_000
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Measures and prints one group of figures when `--only` selects it; a failure ends the run.
/// `measure` gets the broker address (empty for groups that need none).
func figures(_ group: String, needsBroker: Bool = true,
             _ measure: (_ bootstrap: String) throws -> [(name: String, value: Double, unit: String)]) {
    guard only == nil || only == group else { return }
    let bootstrap = ProcessInfo.processInfo.environment["YISHI_BOOTSTRAP"]
    if needsBroker, bootstrap == nil { fail("YISHI_BOOTSTRAP is not set; run `make bench`, which starts a Tansu broker") }
    do {
        for figure in try measure(bootstrap ?? "") { bench(figure.name, figure.value, figure.unit) }
    } catch {
        fail("\(group) benchmark: \(error)")
    }
}

figures("kafka") { bootstrap in
    let tool = ProcessInfo.processInfo.environment["YISHI_RDKAFKA_BIN"].map { $0 + "/rdkafka_performance" } ?? "rdkafka_performance"
    let figures = try KafkaBench(bootstrap: bootstrap, tool: tool, messages: messageCount).run(rounds: rounds)
    OrchestratorBench.toolProduceRate = figures.first { $0.name == "kafka.produce.rdkafka_performance" }?.value
    return figures
}
figures("engine", needsBroker: false) { _ in try EngineBench.run(repoRoot: repoRoot) }
figures("orchestrator") { try OrchestratorBench.run(bootstrap: $0, repoRoot: repoRoot, sagas: sagaCount) }
figures("soak") { try OrchestratorBench.soak(bootstrap: $0, repoRoot: repoRoot, seconds: soakSeconds, rate: soakRate) }
figures("restore") { try RestoreBench.run(bootstrap: $0, repoRoot: repoRoot, inFlight: restoreSagas, history: restoreHistory) }
figures("cli") { try CLIBench.run(bootstrap: $0, repoRoot: repoRoot, sagas: cliSagaCount) }
