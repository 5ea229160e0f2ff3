import Foundation

/// The one place `SagaState` becomes the value of a `saga-state` record and back.
///
/// Every reader and writer of `saga-state` (the orchestrator's changelog writes and restore, the
/// CLI's changelog reader, `yishi audit verify`) goes through `encode`/`decode`, so the record
/// format can change in one place. `decode` accepts every format the hub has written.
///
/// Formats (docs/saga-engine.md, "The saga-state record"):
/// - **binary, version 1** (written today): the byte `0xD5`, the format version as a varint,
///   then every field of the state in a fixed order: unsigned LEB128 varints, zigzag varints for
///   signed numbers, strings as a varint byte length plus UTF-8, enums as one byte, optional and
///   rarely-set fields behind a flag varint, instants as offsets from `submittedAt`, 64-digit hex
///   digests packed to 32 bytes, `JSONValue`s tagged (objects with sorted keys, so equal states
///   encode to equal bytes). About 0.6–0.8 KB for an in-flight enterprise-opening saga.
/// - **JSON** (written before the binary format; recognised by its first byte `{`): the state's
///   `Codable` form. Still decoded, so a hub upgraded in place restores the sagas its previous
///   version wrote.
///
/// Upgrade rule: a new field or enum case bumps the version; `decode` keeps reading every older
/// version (and JSON), and refuses a newer version with a `DecodeError` that says so, rather
/// than guessing.
public enum SagaStateCodec {
    /// Why a `saga-state` value could not be decoded: corrupt or truncated bytes (with the byte
    /// offset), an unknown format version (written by a newer hub), an unknown enum value.
    public struct DecodeError: Error, CustomStringConvertible, Equatable {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// First byte of a binary record. Never the first byte of JSON text, nor valid UTF-8 alone.
    /// The `content-type` of a `saga-state` record in this format (not JSON, although the
    /// envelope's other records are).
    public static let mediaType = "application/vnd.yishi.saga-state"
    public static let binaryMarker: UInt8 = 0xD5
    /// The binary format version `encode` writes; `decode` reads this one and every older one.
    public static let currentVersion: UInt64 = 1
    /// Deepest nesting of JSON arrays and objects `decode` follows (a corrupt record must not
    /// exhaust the stack).
    public static let maxDepth = 200

    /// The record value for `state`: the binary format, version `currentVersion`.
    public static func encode(_ state: SagaState) -> Data {
        var w = Writer()
        w.bytes.append(binaryMarker)
        w.varint(currentVersion)
        w.state(state)
        return Data(w.bytes)
    }

    /// The state in a record value written by any version of the hub (binary, or JSON text).
    /// - Throws: `DecodeError` naming what is wrong with the bytes and where (byte offset).
    public static func decode(_ data: Data) throws(DecodeError) -> SagaState {
        guard let first = data.first else {
            throw DecodeError("empty saga-state value (0 bytes): neither the binary format nor JSON")
        }
        if first == binaryMarker {
            let result = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Result<SagaState, DecodeError> in
                var r = Reader(raw)
                r.position = 1
                return Result { () throws(DecodeError) -> SagaState in try r.binary() }
            }
            return try result.get()
        }
        // JSON: the format written before the binary one (leading whitespace tolerated).
        if first == UInt8(ascii: "{") || first == UInt8(ascii: " ") || first == UInt8(ascii: "\n") || first == UInt8(ascii: "\t") || first == UInt8(ascii: "\r") {
            do { return try JSONDecoder().decode(SagaState.self, from: data) } catch {
                throw DecodeError("not a SagaState (JSON format): \(error)")
            }
        }
        throw DecodeError("not a saga-state value: first byte 0x\(String(first, radix: 16)) is neither the binary format marker 0xd5 nor '{' (JSON)")
    }

    // MARK: - Enum tables (append only: a value's position is its byte in the record)

    static let sagaStatuses: [SagaStatus] = [.new, .running, .manual, .compensating, .completed, .failed, .compensated, .cancelled]
    static let stepStatuses: [StepStatus] = [.pending, .running, .backoff, .waitingSupplement, .succeeded, .skipped, .failed, .cancelled,
                                             .compensating, .compensationBackoff, .compensationFailed, .compensated]
    static let abortCauses: [SagaState.AbortCause] = [.failure, .cancel, .fail]
    static let caseKinds: [ManualCase.Kind] = [.forward, .compensation]
    static let hashAlgorithms: [HashAlgorithm] = [.sm3, .sha256]

    // Saga flags.
    private static let fPaused: UInt64 = 1, fAtRisk: UInt64 = 2, fBreached: UInt64 = 4, fAborted: UInt64 = 8
    private static let fFingerprint: UInt64 = 16, fNotCovered: UInt64 = 32, fProvisional: UInt64 = 64, fIssued: UInt64 = 128
    private static let fChain: UInt64 = 256, fExternal: UInt64 = 512, fOrder: UInt64 = 1024, fCases: UInt64 = 2048
    private static let fCommands: UInt64 = 4096
    private static let sagaFlagsKnown: UInt64 = 8191
    // Step flags.
    private static let sCounters: UInt64 = 1, sDue: UInt64 = 2, sOutputs: UInt64 = 4, sMissing: UInt64 = 8
    private static let sOverride: UInt64 = 16, sError: UInt64 = 32, sPausedSet: UInt64 = 64, sPaused: UInt64 = 128
    private static let sUnconfirmedSet: UInt64 = 256, sUnconfirmed: UInt64 = 512
    private static let stepFlagsKnown: UInt64 = 1023

    // JSONValue tags.
    private static let tNull: UInt8 = 0, tFalse: UInt8 = 1, tTrue: UInt8 = 2, tInt: UInt8 = 3, tDouble: UInt8 = 4
    private static let tString: UInt8 = 5, tArray: UInt8 = 6, tObject: UInt8 = 7

    // MARK: - Writer

    struct Writer {
        var bytes: [UInt8] = []
        init() { bytes.reserveCapacity(1024) }

        @inline(__always) mutating func varint(_ value: UInt64) {
            var v = value
            while v >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(truncatingIfNeeded: v))
        }

        @inline(__always) mutating func signed(_ value: Int64) {
            varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
        }

        mutating func string(_ value: String) {
            var s = value
            s.withUTF8 { utf8 in
                varint(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }

        /// A string that is 64 lowercase hex digits (digests) is packed into 32 bytes; the low bit
        /// of the length varint tells which.
        mutating func hexOrString(_ value: String) {
            var s = value
            s.withUTF8 { utf8 in
                let n = utf8.count
                var hex = n > 0 && n % 2 == 0
                if hex {
                    for c in utf8 where !((c >= 48 && c <= 57) || (c >= 97 && c <= 102)) { hex = false; break }
                }
                guard hex else {
                    varint(UInt64(n) << 1)
                    bytes.append(contentsOf: utf8)
                    return
                }
                varint(UInt64(n / 2) << 1 | 1)
                let start = bytes.count
                bytes.append(contentsOf: repeatElement(0, count: n / 2))
                bytes.withUnsafeMutableBufferPointer { out in
                    var i = 0
                    while i < n {
                        out[start + i / 2] = Self.nibble(utf8[i]) << 4 | Self.nibble(utf8[i + 1])
                        i += 2
                    }
                }
            }
        }

        @inline(__always) static func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }

        @inline(__always) mutating func enumByte<T: Equatable>(_ value: T, _ table: [T]) {
            var i = 0
            while table[i] != value { i += 1 }
            bytes.append(UInt8(i))
        }

        mutating func json(_ value: JSONValue) {
            switch value {
            case .null: bytes.append(tNull)
            case .bool(let b): bytes.append(b ? tTrue : tFalse)
            case .number(let n):
                if let i = Int64(exactly: n), !(n == 0 && n.sign == .minus) {
                    bytes.append(tInt)
                    signed(i)
                } else {
                    bytes.append(tDouble)
                    let bits = n.bitPattern
                    for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(k)))) }
                }
            case .string(let s):
                bytes.append(tString)
                string(s)
            case .array(let a):
                bytes.append(tArray)
                varint(UInt64(a.count))
                for v in a { json(v) }
            case .object(let o):
                bytes.append(tObject)
                object(o)
            }
        }

        /// Count, then key/value pairs in ascending key order (equal objects, equal bytes).
        mutating func object(_ o: [String: JSONValue]) {
            varint(UInt64(o.count))
            if o.count == 1 {
                let (k, v) = o.first!
                string(k)
                json(v)
                return
            }
            for k in o.keys.sorted() {
                string(k)
                json(o[k]!)
            }
        }

        mutating func state(_ s: SagaState) {
            string(s.sagaId)
            string(s.bundleId)
            signed(Int64(s.bundleVersion))
            enumByte(s.status, sagaStatuses)
            var flags: UInt64 = 0
            if s.paused { flags |= fPaused }
            if s.slaAtRisk { flags |= fAtRisk }
            if s.slaBreached { flags |= fBreached }
            if s.abortedBy != nil { flags |= fAborted }
            if s.definitionFingerprint != nil { flags |= fFingerprint }
            if s.calendarNotCovered != nil { flags |= fNotCovered }
            if s.calendarProvisional != nil { flags |= fProvisional }
            if s.issued != nil { flags |= fIssued }
            if s.auditChain != nil { flags |= fChain }
            if !s.external.isEmpty { flags |= fExternal }
            if !s.completionOrder.isEmpty { flags |= fOrder }
            if !s.manualCases.isEmpty { flags |= fCases }
            if !s.recentCommands.isEmpty { flags |= fCommands }
            varint(flags)
            varint(UInt64(s.seq))
            let base = s.submittedAt.ms
            signed(base)
            signed(s.atRiskAt.ms &- base)
            signed(s.deadline.ms &- base)
            if let a = s.abortedBy { enumByte(a, abortCauses) }
            if !s.external.isEmpty {
                varint(UInt64(s.external.count))
                for v in s.external { json(v) }
            }
            varint(UInt64(s.steps.count))
            for step in s.steps { self.step(step, base: base) }
            if !s.completionOrder.isEmpty {
                varint(UInt64(s.completionOrder.count))
                for i in s.completionOrder { varint(UInt64(i)) }
            }
            if !s.manualCases.isEmpty {
                varint(UInt64(s.manualCases.count))
                for c in s.manualCases {
                    string(c.step)
                    enumByte(c.kind, caseKinds)
                    if let code = c.code { bytes.append(1); string(code) } else { bytes.append(0) }
                    string(c.reason)
                    signed(c.openedAt.ms &- base)
                }
            }
            if !s.recentCommands.isEmpty {
                varint(UInt64(s.recentCommands.count))
                for c in s.recentCommands { string(c) }
            }
            if let f = s.definitionFingerprint { hexOrString(f) }
            if let years = s.calendarNotCovered { varint(UInt64(years.count)); for y in years { signed(Int64(y)) } }
            if let years = s.calendarProvisional { varint(UInt64(years.count)); for y in years { signed(Int64(y)) } }
            if let issued = s.issued {
                varint(UInt64(issued.count))
                for k in issued.keys.sorted() {
                    string(k)
                    object(issued[k]!)
                }
            }
            if let chain = s.auditChain {
                enumByte(chain.algorithm, hashAlgorithms)
                varint(UInt64(chain.length))
                hexOrString(chain.link)
            }
        }

        mutating func step(_ t: StepState, base: Int64) {
            enumByte(t.status, stepStatuses)
            var flags: UInt64 = 0
            if t.attempt != 0 || t.revision != 0 || t.failures != 0 || t.compensationAttempt != 0 { flags |= sCounters }
            if t.due.ms != 0 { flags |= sDue }
            if !t.outputs.isEmpty { flags |= sOutputs }
            if !t.missing.isEmpty { flags |= sMissing }
            if t.override != nil { flags |= sOverride }
            if t.lastError != nil { flags |= sError }
            if let p = t.paused { flags |= sPausedSet | (p ? sPaused : 0) }
            if let u = t.unconfirmed { flags |= sUnconfirmedSet | (u ? sUnconfirmed : 0) }
            varint(flags)
            if flags & sCounters != 0 {
                varint(UInt64(t.attempt)); varint(UInt64(t.revision)); varint(UInt64(t.failures)); varint(UInt64(t.compensationAttempt))
            }
            if flags & sDue != 0 { signed(t.due.ms &- base) }
            if flags & sOutputs != 0 { varint(UInt64(t.outputs.count)); for v in t.outputs { json(v) } }
            if flags & sMissing != 0 { varint(UInt64(t.missing.count)); for m in t.missing { string(m) } }
            if let o = t.override { object(o) }
            if let e = t.lastError { string(e) }
        }
    }

    // MARK: - Reader

    struct Reader {
        let base: UnsafePointer<UInt8>?
        let count: Int
        var position = 0

        init(_ raw: UnsafeRawBufferPointer) {
            base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            count = raw.count
        }

        func truncated(_ what: StaticString, need: Int) -> DecodeError {
            DecodeError("truncated at byte \(count): \(what) at byte \(position) needs \(need) more byte(s), the value has \(count)")
        }

        func bad(_ what: String, at offset: Int) -> DecodeError {
            DecodeError("byte \(offset): \(what)")
        }

        @inline(__always) mutating func byte(_ what: StaticString) throws(DecodeError) -> UInt8 {
            guard position < count, let base else { throw truncated(what, need: 1) }
            let b = base[position]
            position += 1
            return b
        }

        @inline(__always) mutating func varint(_ what: StaticString) throws(DecodeError) -> UInt64 {
            let start = position
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < count, let base else { throw truncated(what, need: 1) }
                let b = base[position]
                position += 1
                if shift == 63 && b > 1 { throw bad("\(what): varint overflows 64 bits", at: start) }
                result |= UInt64(b & 0x7f) << shift
                if b < 0x80 { return result }
                shift += 7
                if shift > 63 { throw bad("\(what): varint longer than 10 bytes", at: start) }
            }
        }

        @inline(__always) mutating func signed(_ what: StaticString) throws(DecodeError) -> Int64 {
            let u = try varint(what)
            return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
        }

        mutating func int(_ what: StaticString) throws(DecodeError) -> Int {
            let at = position
            let v = try signed(what)
            guard let i = Int(exactly: v) else { throw bad("\(what) \(v) does not fit an Int", at: at) }
            return i
        }

        mutating func uint16(_ what: StaticString) throws(DecodeError) -> UInt16 {
            let at = position
            let v = try varint(what)
            guard v <= UInt64(UInt16.max) else { throw bad("\(what) \(v) is above \(UInt16.max)", at: at) }
            return UInt16(v)
        }

        mutating func uint32(_ what: StaticString) throws(DecodeError) -> UInt32 {
            let at = position
            let v = try varint(what)
            guard v <= UInt64(UInt32.max) else { throw bad("\(what) \(v) is above \(UInt32.max)", at: at) }
            return UInt32(v)
        }

        /// An element count, checked against the bytes left (every element takes at least one).
        mutating func count(_ what: StaticString) throws(DecodeError) -> Int {
            let at = position
            let v = try varint(what)
            guard v <= UInt64(count - position) else {
                throw bad("\(what) count \(v) exceeds the \(count - position) bytes left (truncated or corrupt)", at: at)
            }
            return Int(v)
        }

        mutating func string(_ what: StaticString) throws(DecodeError) -> String {
            let at = position
            let n = try varint(what)
            guard n <= UInt64(count - position), let base else { throw truncated(what, need: Int(clamping: n) - (count - position)) }
            let buffer = UnsafeBufferPointer(start: base + position, count: Int(n))
            guard let s = Self.utf8(buffer) else { throw bad("\(what) is not valid UTF-8", at: at) }
            position += Int(n)
            return s
        }

        /// The text of `buffer`, nil unless it is valid UTF-8. (`String(validating:as:)` is not
        /// specialised in the standard library: it looked up generic metadata for every string
        /// and cost ~1,000 instructions each; `String(decoding:as:)` has a fast path, and repairs
        /// instead of failing, so a repaired result is detected by comparing the bytes.)
        @inline(__always) static func utf8(_ buffer: UnsafeBufferPointer<UInt8>) -> String? {
            let s = String(decoding: buffer, as: UTF8.self)
            var ascii = true
            for b in buffer where b >= 0x80 { ascii = false; break }
            if ascii { return s }
            // A repair replaced bytes: the result differs from the input (compared with memcmp;
            // the generic `elementsEqual` walked the UTF-8 view byte by byte).
            let same = s.utf8.withContiguousStorageIfAvailable { out in
                out.count == buffer.count && memcmp(out.baseAddress!, buffer.baseAddress!, buffer.count) == 0
            } ?? s.utf8.elementsEqual(buffer)
            return same ? s : nil
        }

        mutating func hexOrString(_ what: StaticString) throws(DecodeError) -> String {
            let at = position
            let header = try varint(what)
            let n = header >> 1
            guard n <= UInt64(count - position), let base else { throw truncated(what, need: Int(clamping: n) - (count - position)) }
            let start = position
            position += Int(n)
            if header & 1 == 0 {
                guard let s = Self.utf8(UnsafeBufferPointer(start: base + start, count: Int(n))) else {
                    throw bad("\(what) is not valid UTF-8", at: at)
                }
                return s
            }
            let digits: [UInt8] = Array("0123456789abcdef".utf8)
            return String(unsafeUninitializedCapacity: Int(n) * 2) { out in
                for k in 0..<Int(n) {
                    let b = base[start + k]
                    out[2 * k] = digits[Int(b >> 4)]
                    out[2 * k + 1] = digits[Int(b & 15)]
                }
                return Int(n) * 2
            }
        }

        @inline(__always) mutating func enumValue<T>(_ what: StaticString, _ table: [T]) throws(DecodeError) -> T {
            let at = position
            let b = try byte(what)
            guard Int(b) < table.count else { throw bad("unknown \(what) value \(b) (known: 0–\(table.count - 1)): written by a newer hub?", at: at) }
            return table[Int(b)]
        }

        mutating func json(depth: Int) throws(DecodeError) -> JSONValue {
            let at = position
            let tag = try byte("JSON value tag")
            switch tag {
            case tNull: return .null
            case tFalse: return .bool(false)
            case tTrue: return .bool(true)
            case tInt: return .number(Double(try signed("JSON integer")))
            case tDouble:
                guard count - position >= 8, let base else { throw truncated("JSON number", need: 8 - (count - position)) }
                var bits: UInt64 = 0
                for k in 0..<8 { bits |= UInt64(base[position + k]) << (8 * UInt64(k)) }
                position += 8
                return .number(Double(bitPattern: bits))
            case tString: return .string(try string("JSON string"))
            case tArray:
                guard depth < maxDepth else { throw bad("JSON nested deeper than \(maxDepth)", at: at) }
                let n = try count("JSON array")
                var a: [JSONValue] = []
                a.reserveCapacity(n)
                for _ in 0..<n { a.append(try json(depth: depth + 1)) }
                return .array(a)
            case tObject:
                guard depth < maxDepth else { throw bad("JSON nested deeper than \(maxDepth)", at: at) }
                return .object(try object(depth: depth + 1))
            default:
                throw bad("unknown JSON value tag \(tag)", at: at)
            }
        }

        mutating func object(depth: Int) throws(DecodeError) -> [String: JSONValue] {
            let n = try count("JSON object")
            var o: [String: JSONValue] = Dictionary(minimumCapacity: n)
            for _ in 0..<n {
                let at = position
                let k = try string("JSON object key")
                let v = try json(depth: depth)
                guard o.updateValue(v, forKey: k) == nil else { throw bad("duplicate JSON object key '\(k)'", at: at) }
            }
            return o
        }

        mutating func years(_ what: StaticString) throws(DecodeError) -> [Int] {
            let n = try count(what)
            var out: [Int] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try int(what)) }
            return out
        }

        /// After the marker: the version, the state, nothing more.
        mutating func binary() throws(DecodeError) -> SagaState {
            let version = try varint("format version")
            guard version >= 1 else { throw DecodeError("saga-state binary format version 0 at byte 1 is not a version any hub wrote") }
            guard version <= currentVersion else {
                throw DecodeError("unknown saga-state format version \(version) at byte 1 (this hub reads versions up to \(currentVersion)): written by a newer hub")
            }
            let state = try state()
            guard position == count else {
                throw DecodeError("\(count - position) unexpected bytes after the state, from byte \(position) of \(count)")
            }
            return state
        }

        mutating func state() throws(DecodeError) -> SagaState {
            let sagaId = try string("sagaId")
            let bundleId = try string("bundleId")
            let bundleVersion = try int("bundleVersion")
            let status = try enumValue("saga status", sagaStatuses)
            let flagsAt = position
            let flags = try varint("saga flags")
            guard flags & ~sagaFlagsKnown == 0 else {
                throw bad("unknown saga flag bits 0x\(String(flags & ~sagaFlagsKnown, radix: 16)): written by a newer hub?", at: flagsAt)
            }
            let seq = try uint32("seq")
            let base = try signed("submittedAt")
            let atRisk = try signed("atRiskAt")
            let deadline = try signed("deadline")
            let aborted: SagaState.AbortCause? = flags & fAborted != 0 ? try enumValue("abortedBy", abortCauses) : nil
            var external: [JSONValue] = []
            if flags & fExternal != 0 {
                let n = try count("external values")
                external.reserveCapacity(n)
                for _ in 0..<n { external.append(try json(depth: 0)) }
            }
            let stepCount = try count("steps")
            var steps: [StepState] = []
            steps.reserveCapacity(stepCount)
            for _ in 0..<stepCount { steps.append(try step(base: base)) }
            var order: [UInt16] = []
            if flags & fOrder != 0 {
                let n = try count("completionOrder")
                order.reserveCapacity(n)
                for _ in 0..<n { order.append(try uint16("completionOrder index")) }
            }
            var cases: [ManualCase] = []
            if flags & fCases != 0 {
                let n = try count("manualCases")
                cases.reserveCapacity(n)
                for _ in 0..<n {
                    let step = try string("manual case step")
                    let kind = try enumValue("manual case kind", caseKinds)
                    let hasCodeAt = position
                    let hasCode = try byte("manual case code flag")
                    guard hasCode <= 1 else { throw bad("manual case code flag \(hasCode) is neither 0 nor 1", at: hasCodeAt) }
                    let code = hasCode == 1 ? try string("manual case code") : nil
                    let reason = try string("manual case reason")
                    let opened = try signed("manual case openedAt")
                    cases.append(ManualCase(step: step, kind: kind, code: code, reason: reason, openedAt: Instant(ms: opened &+ base)))
                }
            }
            var commands: [String] = []
            if flags & fCommands != 0 {
                let n = try count("recentCommands")
                commands.reserveCapacity(n)
                for _ in 0..<n { commands.append(try string("recent command id")) }
            }
            let fingerprint = flags & fFingerprint != 0 ? try hexOrString("definitionFingerprint") : nil
            let notCovered = flags & fNotCovered != 0 ? try years("calendarNotCovered") : nil
            let provisional = flags & fProvisional != 0 ? try years("calendarProvisional") : nil
            var issued: [String: [String: JSONValue]]? = nil
            if flags & fIssued != 0 {
                let n = try count("issued")
                var d: [String: [String: JSONValue]] = Dictionary(minimumCapacity: n)
                for _ in 0..<n {
                    let at = position
                    let k = try string("issued step id")
                    guard d.updateValue(try object(depth: 1), forKey: k) == nil else { throw bad("duplicate issued step '\(k)'", at: at) }
                }
                issued = d
            }
            var chain: AuditChainHead? = nil
            if flags & fChain != 0 {
                let algorithm = try enumValue("audit chain algorithm", hashAlgorithms)
                let length = try uint32("audit chain length")
                chain = AuditChainHead(algorithm: algorithm, length: length, link: try hexOrString("audit chain link"))
            }
            return SagaState(sagaId: sagaId, bundleId: bundleId, bundleVersion: bundleVersion, status: status, paused: flags & fPaused != 0,
                             seq: seq, submittedAt: Instant(ms: base), atRiskAt: Instant(ms: atRisk &+ base),
                             deadline: Instant(ms: deadline &+ base), slaAtRisk: flags & fAtRisk != 0, slaBreached: flags & fBreached != 0,
                             abortedBy: aborted, external: external, steps: steps, completionOrder: order, manualCases: cases,
                             recentCommands: commands, definitionFingerprint: fingerprint, calendarNotCovered: notCovered,
                             calendarProvisional: provisional, issued: issued, auditChain: chain)
        }

        mutating func step(base: Int64) throws(DecodeError) -> StepState {
            var t = StepState()
            t.status = try enumValue("step status", stepStatuses)
            let flagsAt = position
            let flags = try varint("step flags")
            guard flags & ~stepFlagsKnown == 0 else {
                throw bad("unknown step flag bits 0x\(String(flags & ~stepFlagsKnown, radix: 16)): written by a newer hub?", at: flagsAt)
            }
            if flags & sCounters != 0 {
                t.attempt = try uint16("step attempt")
                t.revision = try uint16("step revision")
                t.failures = try uint16("step failures")
                t.compensationAttempt = try uint16("step compensationAttempt")
            }
            if flags & sDue != 0 { t.due = Instant(ms: try signed("step due") &+ base) }
            if flags & sOutputs != 0 {
                let n = try count("step outputs")
                t.outputs.reserveCapacity(n)
                for _ in 0..<n { t.outputs.append(try json(depth: 0)) }
            }
            if flags & sMissing != 0 {
                let n = try count("step missing materials")
                t.missing.reserveCapacity(n)
                for _ in 0..<n { t.missing.append(try string("missing material")) }
            }
            if flags & sOverride != 0 { t.override = try object(depth: 1) }
            if flags & sError != 0 { t.lastError = try string("step lastError") }
            if flags & sPausedSet != 0 { t.paused = flags & sPaused != 0 }
            if flags & sUnconfirmedSet != 0 { t.unconfirmed = flags & sUnconfirmed != 0 }
            return t
        }
    }
}

extension SagaState {
    /// Every field (the codec's decoder builds states with it).
    init(sagaId: String, bundleId: String, bundleVersion: Int, status: SagaStatus, paused: Bool, seq: UInt32, submittedAt: Instant,
         atRiskAt: Instant, deadline: Instant, slaAtRisk: Bool, slaBreached: Bool, abortedBy: AbortCause?, external: [JSONValue],
         steps: [StepState], completionOrder: [UInt16], manualCases: [ManualCase], recentCommands: [String],
         definitionFingerprint: String?, calendarNotCovered: [Int]?, calendarProvisional: [Int]?,
         issued: [String: [String: JSONValue]]?, auditChain: AuditChainHead?) {
        self.sagaId = sagaId; self.bundleId = bundleId; self.bundleVersion = bundleVersion; self.status = status
        self.paused = paused; self.seq = seq; self.submittedAt = submittedAt; self.atRiskAt = atRiskAt; self.deadline = deadline
        self.slaAtRisk = slaAtRisk; self.slaBreached = slaBreached; self.abortedBy = abortedBy; self.external = external
        self.steps = steps; self.completionOrder = completionOrder; self.manualCases = manualCases
        self.recentCommands = recentCommands; self.definitionFingerprint = definitionFingerprint
        self.calendarNotCovered = calendarNotCovered; self.calendarProvisional = calendarProvisional; self.issued = issued
        self.auditChain = auditChain
    }
}
