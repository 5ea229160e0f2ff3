#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import HubHTTP
import Testing

/// A raw TCP client: what a scraper, a slow attacker or a broken client sends, byte for byte.
final class RawClient: @unchecked Sendable {
    let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
        var tv = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    @discardableResult
    func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Reads until the server closes the connection (or 15 s pass).
    func readToEnd() -> String {
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += chunk[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Reads one response (head and Content-Length body) on a kept-alive connection.
    func readResponse() -> String {
        var out = [UInt8]()
        var byte = [UInt8](repeating: 0, count: 1)
        while HTTPServer.headEnd(out) == nil {
            guard recv(fd, &byte, 1, 0) == 1 else { return String(decoding: out, as: UTF8.self) }
            out += byte
        }
        let head = String(decoding: out, as: UTF8.self)
        let length = head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        var body = [UInt8]()
        while body.count < length {
            guard recv(fd, &byte, 1, 0) == 1 else { break }
            body += byte
        }
        return head + String(decoding: body, as: UTF8.self)
    }
}

func status(_ response: String) -> Int? {
    let first = response.split(separator: "\r\n", maxSplits: 1).first ?? ""
    let parts = first.split(separator: " ")
    return parts.count >= 2 && parts[0] == "HTTP/1.1" ? Int(parts[1]) : nil
}

/// A served registry and health, as a service has them.
func endpoints(limits: HTTPServer.Limits = HTTPServer.Limits()) throws -> (OperationsEndpoints, MetricsRegistry, ServiceHealth) {
    let registry = MetricsRegistry()
    let health = ServiceHealth(staleAfter: .seconds(2))
    let served = try OperationsEndpoints(host: "127.0.0.1", port: 0, registry: registry, health: health, limits: limits)
    return (served, registry, health)
}

@Suite("HTTP server of the operations endpoints (raw sockets)")
struct HTTPServerTests {
    @Test("50 concurrent scrapes all get the whole metrics page")
    func concurrentScrapes() async throws {
        let (served, registry, _) = try endpoints()
        defer { served.stop() }
        let requests = registry.counter("yishi_test_requests_total", "Test counter.", labels: ["path"])
        for i in 0..<200 { requests.inc("/p\(i)") }
        let expected = registry.render()
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    let client = try RawClient(port: served.port)
                    client.write("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    return client.readToEnd()
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(bodies.count == 50)
        for body in bodies {
            #expect(status(body) == 200)
            #expect(body.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
            #expect(body.hasSuffix("\r\n\r\n" + expected), "a scrape got a truncated or different page")
        }
    }

    @Test("keep-alive: three requests on one connection, then an idle connection is closed")
    func keepAliveAndIdle() throws {
        var limits = HTTPServer.Limits()
        limits.idleTimeout = .milliseconds(500)
        let (served, _, health) = try endpoints(limits: limits)
        defer { served.stop() }
        health.beat()
        let client = try RawClient(port: served.port)
        client.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(status(client.readResponse()) == 200)
        client.write("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        let notReady = client.readResponse()
        #expect(status(notReady) == 503 && notReady.contains("not ready: starting"))
        health.ready(true)
        client.write("HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = client.readResponse()
        #expect(status(head) == 200 && head.hasSuffix("\r\n\r\n"), "HEAD sends no body: \(head)")
        let start = ContinuousClock.now
        #expect(client.readToEnd() == "", "an idle connection is closed without a response")
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("a slowloris client gets 408 after the head timeout and the server keeps answering others")
    func slowloris() throws {
        var limits = HTTPServer.Limits()
        limits.headerTimeout = .milliseconds(800)
        let (served, _, health) = try endpoints(limits: limits)
        defer { served.stop() }
        health.beat()
        let slow = try RawClient(port: served.port)
        let start = ContinuousClock.now
        let trickle = Thread {
            for c in "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890".utf8 {
                guard slow.write([c]) else { return }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        trickle.start()
        // Meanwhile an ordinary scrape is answered at once.
        let other = try RawClient(port: served.port)
        other.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(status(other.readToEnd()) == 200)
        let answer = slow.readToEnd()
        let took = ContinuousClock.now - start
        #expect(status(answer) == 408, "\(answer)")
        #expect(took >= .milliseconds(700) && took < .seconds(4), "closed after \(took)")
    }

    @Test("an oversized request head gets 431; a bad method 405; an unknown path 404; garbage 400; HTTP/2 505")
    func badRequests() throws {
        var limits = HTTPServer.Limits()
        limits.maxHeaderBytes = 1024
        limits.idleTimeout = .milliseconds(300)  // 404 and 405 keep the connection; readToEnd waits for its close
        let (served, _, health) = try endpoints(limits: limits)
        defer { served.stop() }
        health.beat()
        func send(_ bytes: [UInt8]) throws -> String {
            let client = try RawClient(port: served.port)
            client.write(bytes)
            return client.readToEnd()
        }
        let big = try send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 4000))\r\n\r\n".utf8))
        #expect(status(big) == 431, "\(big)")
        let post = try send(Array("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".utf8))
        #expect(status(post) == 405 && post.contains("Allow: GET, HEAD"), "\(post)")
        let delete = try send(Array("DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(status(delete) == 405)
        #expect(status(try send(Array("GET /admin HTTP/1.1\r\nHost: x\r\n\r\n".utf8))) == 404)
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) } + Array("\r\n\r\n".utf8)
        #expect(status(try send(garbage)) == 400)
        #expect(status(try send(Array("hello\r\n\r\n".utf8))) == 400)
        #expect(status(try send(Array("GET /metrics HTTP/1.1\r\n\r\n".utf8))) == 400, "HTTP/1.1 needs Host")
        #expect(status(try send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n".utf8))) == 400)
        #expect(status(try send(Array("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n".utf8))) == 505)
        #expect(status(try send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".utf8))) == 413)
        #expect(status(try send(Array("GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))) == 400)
        // Unterminated garbage larger than the limit: 431, not a hang.
        #expect(status(try send([UInt8](repeating: 0x41, count: 5000))) == 431)
        // After all that the server still serves.
        #expect(status(try send(Array("GET /metrics HTTP/1.0\r\n\r\n".utf8))) == 200)
    }

    @Test("more connections than the limit get 503 and the server recovers")
    func connectionLimit() throws {
        var limits = HTTPServer.Limits()
        limits.maxConnections = 4
        limits.idleTimeout = .seconds(3)
        let (served, _, health) = try endpoints(limits: limits)
        defer { served.stop() }
        health.beat()
        let held = try (0..<4).map { _ in try RawClient(port: served.port) }
        Thread.sleep(forTimeInterval: 0.2)
        let extra = try RawClient(port: served.port)
        #expect(status(extra.readToEnd()) == 503)
        withExtendedLifetime(held) {}
        for client in held { shutdown(client.fd, Int32(SHUT_RDWR)) }
        Thread.sleep(forTimeInterval: 0.3)
        let after = try RawClient(port: served.port)
        after.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(status(after.readToEnd()) == 200)
    }

    @Test("healthz turns 503 when the loop stops beating")
    func staleHealth() throws {
        let (served, _, health) = try endpoints()
        defer { served.stop() }
        func get(_ path: String) throws -> String {
            let client = try RawClient(port: served.port)
            client.write("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return client.readToEnd()
        }
        #expect(status(try get("/healthz")) == 503, "no beat yet")
        health.beat()
        #expect(status(try get("/healthz")) == 200)
        Thread.sleep(forTimeInterval: 2.2)
        let stale = try get("/healthz")
        #expect(status(stale) == 503 && stale.contains("no progress"), "\(stale)")
    }

    @Test("HOST:PORT parsing", arguments: [("127.0.0.1:9090", "127.0.0.1", 9090), ("[::1]:80", "::1", 80), ("0.0.0.0:0", "0.0.0.0", 0)])
    func address(text: String, host: String, port: Int) {
        let parsed = HTTPServer.parseAddress(text)
        #expect(parsed?.host == host && parsed.map { Int($0.port) } == port)
    }

    @Test("HOST:PORT that is not one", arguments: ["9090", "host:", ":9090", "h:99999"])
    func badAddress(text: String) {
        #expect(HTTPServer.parseAddress(text) == nil)
    }
}
