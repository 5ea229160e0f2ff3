// swift-tools-version:6.0
// Yishi (一事): a multi-agency message-bus integration hub.
// No package dependencies: Foundation, Dispatch and librdkafka (system library).
import PackageDescription

let package = Package(
    name: "Yishi",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "yishi", targets: ["yishi"]),
        .library(name: "YishiKafka", targets: ["YishiKafka"]),
        .library(name: "SagaEngine", targets: ["SagaEngine"]),
    ],
    targets: [
        // librdkafka >= 2.8 through pkg-config; scripts/setup-librdkafka.sh provides it.
        .systemLibrary(
            name: "CRdKafka",
            path: "Sources/CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // Kafka layer: a small, safe Swift API over librdkafka.
        .target(name: "YishiKafka", dependencies: ["CRdKafka"], path: "Sources/YishiKafka"),
        // Saga engine: pure and deterministic; imports no Kafka.
        .target(name: "SagaEngine", path: "Sources/SagaEngine"),
        // The hub's message conventions: CloudEvents envelope, JSON Schemas, dead letters.
        .target(name: "Messaging", dependencies: ["YishiKafka", "SagaEngine"], path: "Sources/Messaging"),
        // Operations endpoints every service serves: a small HTTP/1.1 server, Prometheus metrics, health.
        .target(name: "HubHTTP", dependencies: ["YishiKafka"], path: "Sources/HubHTTP"),
        // Runs the saga engine on Kafka: exactly-once batches, restore, timers, ops, DLQ.
        .target(name: "Orchestrator", dependencies: ["SagaEngine", "YishiKafka", "Messaging", "HubHTTP"], path: "Sources/Orchestrator"),
        // Department simulators: stand-ins for the real department systems (pure logic here).
        .target(name: "Departments", path: "Sources/Departments"),
        // Agency adapters: the declarative mappings under adapters/<agency>/ run on Kafka.
        .target(name: "Adapters", dependencies: ["Messaging", "SagaEngine", "YishiKafka", "HubHTTP"], path: "Sources/Adapters"),
        // The department simulators as Kafka services (native requests in, native replies out).
        .target(name: "DepartmentService", dependencies: ["Departments", "Messaging", "SagaEngine", "YishiKafka", "HubHTTP"], path: "Sources/DepartmentService"),
        // The 一窗受理 window in simulations: submits applications, hands in supplements, reports outcomes.
        .target(name: "FrontDesk", dependencies: ["Messaging", "SagaEngine", "YishiKafka"], path: "Sources/FrontDesk"),
        // Scripted stand-ins for the agencies, shared by tests and benchmarks.
        .target(name: "HubTestKit", dependencies: ["SagaEngine", "Messaging", "YishiKafka", "Orchestrator"], path: "Sources/HubTestKit"),
        // The operators' status CLI as a library: live (ops request/reply) and changelog queries, reports, actions.
        .target(name: "Operations", dependencies: ["Orchestrator", "Messaging", "SagaEngine", "YishiKafka"], path: "Sources/Operations"),
        // The operators' and integrators' command line.
        .executableTarget(name: "yishi", dependencies: ["SagaEngine", "Orchestrator", "Messaging", "Operations", "Adapters", "DepartmentService",
                                                       "Departments", "FrontDesk", "YishiKafka", "HubHTTP"], path: "Sources/yishi"),
        // `make bench`: throughput figures against a real broker.
        .executableTarget(name: "yishi-bench", dependencies: ["YishiKafka", "SagaEngine", "Orchestrator", "Messaging", "HubTestKit", "Operations"], path: "Sources/YishiBench"),
        // Helpers the broker-backed suites share: the Tansu address, waiting, reading topics.
        .target(name: "YishiTestSupport", dependencies: ["YishiKafka"], path: "Tests/Support"),
        .testTarget(name: "KafkaTests", dependencies: ["YishiKafka", "YishiTestSupport"], path: "Tests/KafkaTests"),
        .testTarget(name: "OrchestratorTests", dependencies: ["Orchestrator", "Messaging", "SagaEngine", "YishiKafka", "YishiTestSupport", "HubTestKit", "HubHTTP"],
                    path: "Tests/OrchestratorTests", exclude: ["Fixtures"]),
        .testTarget(name: "HubHTTPTests", dependencies: ["HubHTTP", "YishiTestSupport"], path: "Tests/HubHTTPTests"),
        // Static checks of deploy/ (compose, Kubernetes, Prometheus, Grafana) against the code and `yishi … --help`.
        .testTarget(name: "DeployTests", dependencies: ["YishiKafka", "YishiTestSupport"], path: "Tests/DeployTests"),
        .testTarget(name: "SagaEngineTests", dependencies: ["SagaEngine"], path: "Tests/SagaEngineTests"),
        .testTarget(name: "MessagingTests", dependencies: ["Messaging", "SagaEngine"], path: "Tests/MessagingTests"),
        .testTarget(name: "DepartmentsTests", dependencies: ["Departments"], path: "Tests/DepartmentsTests"),
        .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "Departments", "DepartmentService", "FrontDesk", "Orchestrator", "Messaging", "SagaEngine",
                                                          "YishiKafka", "YishiTestSupport", "HubTestKit"], path: "Tests/AdaptersTests"),
        .testTarget(name: "OperationsTests", dependencies: ["Operations", "Orchestrator", "Messaging", "SagaEngine", "YishiKafka", "YishiTestSupport", "HubTestKit"],
                    path: "Tests/OperationsTests", exclude: ["Golden"]),
    ]
)
