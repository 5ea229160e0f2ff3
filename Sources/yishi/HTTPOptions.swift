import Foundation
import HubHTTP
import Messaging

/// `--http HOST:PORT` (env YISHI_HTTP): the operations endpoints of a long-running service.
enum HTTPOptions {
    static let help = """
          --http HOST:PORT       serve GET /metrics (Prometheus text 0.0.4), /healthz and /readyz on this address
                                 (env YISHI_HTTP; e.g. 0.0.0.0:9464; default: not served)
        """

    /// The address asked for, or nil. Throws a usage error naming the bad value.
    static func read(_ args: inout Arguments) throws -> (host: String, port: UInt16)? {
        guard let text = try args.option("--http") ?? ProcessInfo.processInfo.environment["YISHI_HTTP"], !text.isEmpty else { return nil }
        guard let address = HTTPServer.parseAddress(text) else {
            throw UsageError("--http must be HOST:PORT (e.g. 0.0.0.0:9464 or [::]:9464), not '\(text)'")
        }
        return address
    }

    /// Starts serving `registry` and `health` on `address` (nil: nothing). A port in use is a
    /// usage error naming the address.
    static func serve(_ address: (host: String, port: UInt16)?, registry: MetricsRegistry, health: ServiceHealth) throws -> OperationsEndpoints? {
        guard let address else { return nil }
        do {
            let endpoints = try OperationsEndpoints(host: address.host, port: address.port, registry: registry, health: health)
            JSONLog(component: "http").info("serving /metrics, /healthz, /readyz", ["address": "\(address.host):\(endpoints.port)"])
            return endpoints
        } catch let error as HTTPServerError {
            throw UsageError(error.description)
        }
    }
}
