import Foundation
import Synchronization

/// Liveness and readiness of one service loop, for `/healthz` and `/readyz`.
///
/// Healthy: the loop called `beat()` within `staleAfter` (a loop blocked in a call that
/// does not return, or dead, stops beating). Ready: the service said so with `ready(_:)`:
/// joined its group, holds an assignment, and (orchestrator) restored its sagas.
public final class ServiceHealth: Sendable {
    /// How long without a beat makes `/healthz` fail (default 60 s: longer than a restore may take).
    public let staleAfter: Duration
    private let lastBeat = Mutex<ContinuousClock.Instant?>(nil)
    private let readiness = Mutex<(ready: Bool, reason: String)>((false, "starting"))

    public init(staleAfter: Duration = .seconds(60)) { self.staleAfter = staleAfter }

    /// The service loop made progress (called once per loop turn).
    public func beat() { lastBeat.withLock { $0 = .now } }

    /// Sets readiness; `reason` says why not (shown by `/readyz`).
    public func ready(_ ready: Bool, _ reason: String = "") { readiness.withLock { $0 = (ready, reason) } }

    /// (healthy, explanation).
    public var health: (Bool, String) {
        guard let last = lastBeat.withLock({ $0 }) else { return (false, "the service loop has not started") }
        let age = ContinuousClock.now - last
        return age <= staleAfter ? (true, "ok") : (false, "no progress of the service loop for \(age) (limit \(staleAfter))")
    }

    /// (ready, explanation).
    public var isReady: (Bool, String) {
        let (ready, reason) = readiness.withLock { $0 }
        return ready ? (true, "ready") : (false, "not ready: " + reason)
    }
}

/// The operations endpoints every long-running service serves with `--http HOST:PORT`:
///
/// - `GET /metrics`: `registry` in the Prometheus text format 0.0.4;
/// - `GET /healthz`: 200 `ok` while the loop beats, else 503 with the reason;
/// - `GET /readyz`: 200 `ready` once ready, else 503 with the reason.
///
/// `HEAD` is served like `GET`; other methods get 405 with `Allow: GET, HEAD`; other paths 404.
public final class OperationsEndpoints: Sendable {
    public let server: HTTPServer
    public let registry: MetricsRegistry
    public let health: ServiceHealth

    /// Binds `host:port` and starts serving at once. Throws `HTTPServerError` naming the address.
    public init(host: String, port: UInt16, registry: MetricsRegistry, health: ServiceHealth,
                limits: HTTPServer.Limits = HTTPServer.Limits()) throws {
        self.registry = registry
        self.health = health
        server = try HTTPServer(host: host, port: port, limits: limits) { request in
            Self.route(request, registry: registry, health: health)
        }
        server.start()
    }

    public var port: UInt16 { server.port }

    public func stop() { server.stop() }

    static let paths: Set<String> = ["/metrics", "/healthz", "/readyz"]

    static func route(_ request: HTTPRequest, registry: MetricsRegistry, health: ServiceHealth) -> HTTPResponse {
        guard paths.contains(request.path) else { return .text(404, "no such endpoint: \(request.path) (try /metrics, /healthz, /readyz)\n") }
        guard request.method == "GET" || request.method == "HEAD" else {
            return .text(405, "\(request.method) is not allowed on \(request.path)\n", headers: [("Allow", "GET, HEAD")])
        }
        switch request.path {
        case "/metrics":
            return HTTPResponse(status: 200, headers: [("Content-Type", MetricsRegistry.contentType)], body: Data(registry.render().utf8))
        case "/healthz":
            let (ok, why) = health.health
            return .text(ok ? 200 : 503, why + "\n")
        default:
            let (ok, why) = health.isReady
            return .text(ok ? 200 : 503, why + "\n")
        }
    }
}
