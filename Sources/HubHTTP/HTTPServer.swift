#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// One parsed HTTP/1.1 request (RFC 9112): request line and header fields; the hub's endpoints take no body.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target as sent (origin form, e.g. `/metrics?x=1`).
    public var target: String
    /// `target` without its query.
    public var path: String
    /// `HTTP/1.1` or `HTTP/1.0`.
    public var version: String
    /// Header fields in order; names as sent (compare case-insensitively with `header(_:)`).
    public var headers: [(name: String, value: String)]

    /// The first value of a header field, its name compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A response: status, extra header fields and body. `Content-Length`, `Date`-less framing and
/// `Connection` are added by the server.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data

    public init(status: Int, headers: [(name: String, value: String)] = [], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ status: Int, _ text: String, headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers, body: Data(text.utf8))
    }

    /// Reason phrases of the statuses the hub sends.
    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Status \(status)"
        }
    }
}

/// Errors starting the server.
public struct HTTPServerError: Error, CustomStringConvertible {
    public var description: String
}

/// A small HTTP/1.1 server for the hub's operations endpoints (`/metrics`, `/healthz`,
/// `/readyz`): plain BSD sockets, one thread per connection, no request bodies.
///
/// It protects the service it runs in: a request head larger than `Limits.maxHeaderBytes`
/// gets 431, a head not complete within `Limits.headerTimeout` (slowloris) gets 408, a
/// connection idle between requests longer than `Limits.idleTimeout` is closed, more than
/// `Limits.maxConnections` open connections get 503 at once, malformed requests get 400
/// (505 for an HTTP version other than 1.0/1.1). Every one of these closes the connection and
/// nothing else; the handler never sees such requests. Keep-alive follows RFC 9112 §9.3.
public final class HTTPServer: Sendable {
    /// Protection limits; units in the names.
    public struct Limits: Sendable {
        /// Bytes of request line plus header fields (default 8192).
        public var maxHeaderBytes = 8192
        /// Time to receive a whole request head once its first byte arrived (default 5 s).
        public var headerTimeout: Duration = .seconds(5)
        /// Time a kept-alive connection may wait for its next request (default 15 s).
        public var idleTimeout: Duration = .seconds(15)
        /// Time to write one response (default 10 s).
        public var writeTimeout: Duration = .seconds(10)
        /// Connections served at once; more get 503 (default 32).
        public var maxConnections = 32
        public init() {}
    }

    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    public let limits: Limits
    /// The bound port (the one chosen by the system when 0 was asked for).
    public let port: UInt16
    public let host: String
    private let listener: Int32
    private let handler: Handler
    private let open = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    /// Binds and listens on `host:port` (IPv4 dotted quad, `0.0.0.0`, `localhost`, or an IPv6
    /// literal). Throws `HTTPServerError` naming the address when the socket cannot be bound.
    public init(host: String, port: UInt16, limits: Limits = Limits(), handler: @escaping Handler) throws {
        self.limits = limits
        self.handler = handler
        self.host = host
        let name = host == "localhost" ? "127.0.0.1" : host
        var v4 = in_addr(), v6 = in6_addr()
        let fd: Int32
        let bound: UInt16
        if inet_pton(AF_INET, name, &v4) == 1 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr = v4
            (fd, bound) = try Self.bindSocket(AF_INET, address, host: host, port: port) { UInt16(bigEndian: $0.sin_port) }
        } else if inet_pton(AF_INET6, name.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), &v6) == 1 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = v6
            (fd, bound) = try Self.bindSocket(AF_INET6, address, host: host, port: port) { UInt16(bigEndian: $0.sin6_port) }
        } else {
            throw HTTPServerError(description: "http: '\(host)' is not an IP address (use e.g. 0.0.0.0, 127.0.0.1 or ::)")
        }
        guard listen(fd, 64) == 0 else {
            let why = String(cString: strerror(errno)); close(fd)
            throw HTTPServerError(description: "http \(host):\(port): cannot listen: \(why)")
        }
        listener = fd
        self.port = bound
    }

    /// A new TCP socket of `family` (SO_REUSEADDR) bound to `address` (a `sockaddr_in` or
    /// `sockaddr_in6`), and the port it got (`boundPort` reads it from `getsockname`'s answer).
    private static func bindSocket<Address>(_ family: Int32, _ address: Address, host: String, port: UInt16,
                                      boundPort: (Address) -> UInt16) throws -> (Int32, UInt16) {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerError(description: "http \(host):\(port): socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = address
        let size = socklen_t(MemoryLayout<Address>.size)
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
        guard rc == 0 else {
            let why = String(cString: strerror(errno)); close(fd)
            throw HTTPServerError(description: "http \(host):\(port): cannot bind: \(why)")
        }
        var length = size
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, boundPort(address))
    }

    /// Parses `HOST:PORT` (`[::1]:9090` for IPv6); nil when it is not of that shape.
    public static func parseAddress(_ text: String) -> (host: String, port: UInt16)? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    /// Starts the accept thread; returns at once.
    public func start() {
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "yishi.http.accept"
        thread.start()
    }

    /// Stops accepting; open connections finish their current request.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .relaxed) {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE {
                    if errno == EMFILE || errno == ENFILE { usleep(50_000) }
                    continue
                }
                return  // the listener was closed
            }
            if open.add(1, ordering: .relaxed).newValue > limits.maxConnections {
                setTimeout(fd, SO_SNDTIMEO, .seconds(1))
                send(fd, Self.render(.text(503, "too many connections\n"), head: false, keepAlive: false))
                close(fd)
                open.subtract(1, ordering: .relaxed)
                continue
            }
            let thread = Thread { [self] in
                serve(fd)
                close(fd)
                open.subtract(1, ordering: .relaxed)
            }
            thread.name = "yishi.http.conn"
            thread.start()
        }
    }

    /// Serves requests on one connection until it closes, times out or misbehaves.
    private func serve(_ fd: Int32) {
        setTimeout(fd, SO_SNDTIMEO, limits.writeTimeout)
        var buffer = [UInt8]()
        while !stopped.load(ordering: .relaxed) {
            switch readHead(fd, &buffer) {
            case .closed: return
            case .failed(let status, let why):
                send(fd, Self.render(.text(status, why + "\n"), head: false, keepAlive: false))
                return
            case .head(let bytes):
                let parsed = Self.parse(bytes)
                guard case .success(let request) = parsed else {
                    if case .failure(let rejection) = parsed {
                        send(fd, Self.render(.text(rejection.status, rejection.why + "\n"), head: false, keepAlive: false))
                    }
                    return
                }
                let keepAlive = request.version == "HTTP/1.1"
                    ? request.header("Connection")?.lowercased().contains("close") != true
                    : request.header("Connection")?.lowercased().contains("keep-alive") == true
                let response = handler(request)
                guard send(fd, Self.render(response, head: request.method == "HEAD", keepAlive: keepAlive)), keepAlive else { return }
            }
        }
    }

    private enum HeadResult { case head([UInt8]), closed, failed(Int, String) }

    /// Reads up to the end of a request head (CRLF CRLF). Bytes after it stay in `buffer`.
    private func readHead(_ fd: Int32, _ buffer: inout [UInt8]) -> HeadResult {
        var started: ContinuousClock.Instant? = buffer.isEmpty ? nil : .now
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = Self.headEnd(buffer) {
                guard end <= limits.maxHeaderBytes else { return .failed(431, "request head larger than \(limits.maxHeaderBytes) bytes") }
                let head = Array(buffer[..<end])
                buffer.removeSubrange(..<(end + 4))
                return .head(head)
            }
            if buffer.count > limits.maxHeaderBytes {
                return .failed(431, "request head larger than \(limits.maxHeaderBytes) bytes")
            }
            // Before the first byte: the idle timeout; after it, what is left of the head timeout.
            let wait: Duration
            if let started {
                wait = limits.headerTimeout - (ContinuousClock.now - started)
                if wait <= .zero { return .failed(408, "request head not complete within \(limits.headerTimeout)") }
            } else {
                wait = limits.idleTimeout
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(clamping: max(1, wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000))
            let ready = poll(&poller, 1, ms)
            if ready < 0 { if errno == EINTR { continue }; return .closed }
            if ready == 0 {
                if started == nil { return .closed }  // idle keep-alive connection: close quietly
                continue  // re-evaluated above: 408
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                return .closed
            }
            if started == nil { started = .now }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    struct Rejection: Error { var status: Int; var why: String }

    /// Parses a request head (without its final CRLF CRLF) by RFC 9112: request line, field lines.
    static func parse(_ head: [UInt8]) -> Result<HTTPRequest, Rejection> {
        guard let text = String(validating: head, as: UTF8.self), !text.contains("\0") else {
            return .failure(Rejection(status: 400, why: "request head is not UTF-8 text"))
        }
        let lines = text.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(Rejection(status: 400, why: "malformed request line")) }
        let method = String(parts[0]), target = String(parts[1]), version = String(parts[2])
        guard !method.isEmpty, method.unicodeScalars.allSatisfy(isTokenChar) else {
            return .failure(Rejection(status: 400, why: "malformed method"))
        }
        guard version.hasPrefix("HTTP/"), version.count == 8 else { return .failure(Rejection(status: 400, why: "malformed HTTP version")) }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .failure(Rejection(status: 505, why: "only HTTP/1.1 and HTTP/1.0 are served"))
        }
        guard target.hasPrefix("/"), target.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else {
            return .failure(Rejection(status: 400, why: "request target must be a path (origin form)"))
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return .failure(Rejection(status: 400, why: "malformed header field line")) }
            let name = String(line[..<colon])
            guard !name.isEmpty, name.unicodeScalars.allSatisfy(isTokenChar) else {
                return .failure(Rejection(status: 400, why: "malformed header field name"))
            }
            headers.append((name, line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))))
        }
        let request = HTTPRequest(method: method, target: target,
                                  path: String(target.prefix { $0 != "?" }), version: version, headers: headers)
        if version == "HTTP/1.1", request.header("Host") == nil {
            return .failure(Rejection(status: 400, why: "HTTP/1.1 request without Host"))
        }
        if request.header("Transfer-Encoding") != nil || (request.header("Content-Length").map { $0 != "0" } ?? false) {
            // No endpoint takes a body; reading one would only hold the connection open.
            return .failure(Rejection(status: 413, why: "request bodies are not accepted"))
        }
        return .success(request)
    }

    private static func isTokenChar(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "a"..."z", "A"..."Z", "0"..."9": return true
        default: return "!#$%&'*+-.^_`|~".unicodeScalars.contains(c)
        }
    }

    static func render(_ response: HTTPResponse, head: Bool, keepAlive: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(response.status) \(HTTPResponse.reason(response.status))\r\n"
        for (name, value) in response.headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(response.body.count)\r\n"
        text += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
        var bytes = Array(text.utf8)
        if !head { bytes += response.body }
        return bytes
    }

    @discardableResult
    private func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    private func setTimeout(_ fd: Int32, _ option: Int32, _ duration: Duration) {
        var tv = timeval(tv_sec: Int(duration.components.seconds), tv_usec: Int(duration.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}
