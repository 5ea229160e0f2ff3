/// W3C Trace Context `traceparent`: `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
/// A saga's messages share one trace id; each hop is a child span.
public struct TraceParent: Sendable, Hashable, CustomStringConvertible {
    public let traceId: String
    public let spanId: String
    public let flags: UInt8

    /// A new trace (e.g. when an application enters the hub), sampled.
    public static func newTrace() -> TraceParent {
        TraceParent(traceId: hex(count: 32), spanId: hex(count: 16), flags: 1)
    }

    /// Same trace, new span: what a consumer puts on the messages it produces in reaction.
    public func child() -> TraceParent { TraceParent(traceId: traceId, spanId: Self.hex(count: 16), flags: flags) }

    public var description: String {
        let f = String(flags, radix: 16)
        return "00-\(traceId)-\(spanId)-\(f.count == 1 ? "0" + f : f)"
    }

    /// Strict parse of version 00 (lowercase hex, non-zero ids). W3C asks receivers to restart
    /// the trace on an invalid value rather than fail, so decoding treats nil as "no parent".
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "00", Self.isHex(parts[1], 32), Self.isHex(parts[2], 16),
              Self.isHex(parts[3], 2), let f = UInt8(parts[3], radix: 16),
              parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" }) else { return nil }
        self.init(traceId: String(parts[1]), spanId: String(parts[2]), flags: f)
    }

    private init(traceId: String, spanId: String, flags: UInt8) {
        self.traceId = traceId; self.spanId = spanId; self.flags = flags
    }

    private static func isHex(_ s: Substring, _ count: Int) -> Bool {
        s.utf8.count == count && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// `count` (16 or 32) random lowercase hex digits, not all zero (all-zero ids are invalid);
    /// from `FastIds`, no system call per id.
    private static func hex(count: Int) -> String {
        count == 32 ? FastIds.hexString(FastIds.next() | 1) + FastIds.hexString(FastIds.next()) : FastIds.spanId()
    }

    /// A new span (random span id, sampled) in the trace `traceId` (32 lowercase hex digits, not
    /// all zero, as `traceId` of a parsed value); nil when `traceId` is not such.
    public static func span(inTrace traceId: String) -> TraceParent? {
        guard isHex(Substring(traceId), 32), traceId.utf8.contains(where: { $0 != UInt8(ascii: "0") }) else { return nil }
        return TraceParent(traceId: traceId, spanId: FastIds.spanId(), flags: 1)
    }
}
