import Foundation
import Testing
@testable import SagaEngine

/// An in-flight enterprise-opening saga as the orchestrator holds it: submitted with the sample
/// form, name reservation and registration answered with realistic outputs (a USCC, ids), so
/// seals, tax and social security are out; the audit chain head and the issued numbers set as
/// the orchestrator sets them.
func inFlightOpening(tag: String = "000001") -> SagaState {
    var h = Harness("enterprise-opening", sagaId: "APP-20260302-\(tag)")
    _ = h.submit()
    h.now = h.now + 60_000
    _ = h.succeed("name-reservation", outputs: ["nameApprovalNo": .string("(浙)名称预核内字[2026]第\(tag)号"), "approvedName": "杭州云栖茶饮有限公司"])
    h.now = h.now + 60_000
    let registration = ["uscc": JSONValue.string("91330106MA2H\(tag)X"), "licenceId": .string("LIC-330106-2026-\(tag)"),
                        "registeredAt": "2026-03-02T09:17:00+08:00", "licenceUrl": .string("https://licence.example/\(tag)")]
    _ = h.succeed("registration", outputs: registration)
    var s = h.state
    s.issued = ["registration": ["uscc": registration["uscc"]!, "licenceId": registration["licenceId"]!]]
    var head = AuditChainHead.start(sagaId: s.sagaId, bundleVersion: s.bundleVersion, algorithm: .sm3)
    for k in 0..<9 { _ = head.append(type: "cn.gov.yishi.saga.audit.stepDispatched", key: s.sagaId, value: Array("record \(k)".utf8)) }
    s.auditChain = head
    return s
}

@Suite struct SagaStateCodecTests {
    @Test("an in-flight enterprise-opening saga encodes to at most 1 KB and round-trips")
    func inFlightSagaIsSmall() throws {
        let s = inFlightOpening()
        #expect(s.steps.filter { $0.status == .running }.count == 3, "seals, tax and social security are out")
        let bytes = SagaStateCodec.encode(s)
        #expect(bytes.first == SagaStateCodec.binaryMarker)
        #expect(bytes.count <= 1024, "\(bytes.count) bytes")
        let json = try JSONEncoder().encode(s)
        #expect(bytes.count * 2 < json.count, "binary \(bytes.count) bytes vs JSON \(json.count)")
        #expect(try SagaStateCodec.decode(bytes) == s)
    }

    @Test("a saga-state value written as JSON by the previous format still decodes (upgrade path)")
    func oldJSONRecordsDecode() throws {
        let s = try SagaStateCodec.decode(Data(Self.jsonRecord.utf8))
        #expect(s.sagaId == "APP-20260302-000001" && s.bundleId == "enterprise-opening" && s.bundleVersion == 1)
        #expect(s.status == .running && s.seq == 3 && !s.paused)
        #expect(s.submittedAt == at("2026-03-02T09:15:00+08:00"))
        #expect(s.steps.map(\.status) == [.succeeded, .succeeded, .running, .running, .running, .pending, .pending])
        #expect(s.steps[2].attempt == 1 && s.steps[2].due.ms > s.submittedAt.ms && s.steps[0].outputs.count == 2 && s.steps[1].outputs.count == 1)
        #expect(s.completionOrder == [0, 1] && s.external.count > 5)
        #expect(s.definitionFingerprint == "22c8f020c144a8358319e81f16fc91c7e282f3964ad1b414b038501938f2b664")
        #expect(s.issued?["registration"]?["uscc"] == "91330106MA2H000001X")
        #expect(s.auditChain?.length == 9 && s.auditChain?.algorithm == .sm3)
        #expect(s.calendarNotCovered == nil && s.steps[0].paused == nil && s.steps[0].override == nil)
        // Written again, it is binary and still the same state.
        let again = SagaStateCodec.encode(s)
        #expect(again.first == SagaStateCodec.binaryMarker)
        #expect(try SagaStateCodec.decode(again) == s)
        // Leading whitespace (a hand-written record) is still JSON.
        #expect(try SagaStateCodec.decode(Data(("\n " + Self.jsonRecord).utf8)) == s)
    }

    @Test("nil and empty, -0.0, extreme numbers and instants, non-hex digests and odd strings round-trip exactly")
    func edgeValues() throws {
        var s = inFlightOpening()
        s.steps[0].override = [:]
        s.steps[1].override = ["a": .null, "b": [1.5, -0.0, .number(1e300), .number(-9.0e15), .number(9_007_199_254_740_992), false, true],
                               "c": ["d": ["e": [:]]], "": "", "キー": "値\u{0}\n\"'"]
        s.steps[2].paused = false
        s.steps[3].paused = true
        s.steps[4].unconfirmed = false
        s.steps[5].unconfirmed = true
        s.steps[5].lastError = ""
        s.steps[5].missing = ["身份证明", ""]
        s.steps[4].due = Instant(ms: .min)
        s.steps[3].due = Instant(ms: .max)
        s.steps[2].attempt = .max; s.steps[2].revision = .max; s.steps[2].failures = 1; s.steps[2].compensationAttempt = .max
        s.calendarNotCovered = []
        s.calendarProvisional = [2027, -1, Int.max, Int.min]
        s.issued = [:]
        s.seq = .max
        s.bundleVersion = Int.max
        s.submittedAt = Instant(ms: .max)
        s.atRiskAt = Instant(ms: .min)
        s.deadline = Instant(ms: 0)
        s.abortedBy = .cancel
        s.definitionFingerprint = "ABCDEF"  // upper-case hex: not packed, kept as written
        s.auditChain?.link = "0"            // odd length: not packed
        s.manualCases = [ManualCase(step: "tax", kind: .compensation, code: nil, reason: "", openedAt: Instant(ms: -5)),
                         ManualCase(step: "bank", kind: .forward, code: "", reason: "办不成事", openedAt: Instant(ms: .max))]
        s.recentCommands = ["op-1", ""]
        s.paused = true; s.slaAtRisk = true; s.slaBreached = true
        let decoded = try SagaStateCodec.decode(SagaStateCodec.encode(s))
        #expect(decoded == s)
        #expect(decoded.steps[0].override == [:] && decoded.steps[1].override != nil && decoded.steps[2].paused == false)
        #expect(decoded.steps[0].paused == nil && decoded.calendarNotCovered == [] && decoded.issued == [:])
        if case .number(let z) = decoded.steps[1].override?["b"]?.arrayValue?[1] { #expect(z == 0 && z.sign == .minus) } else { Issue.record("-0.0 lost") }
        #expect(decoded.steps[1].override?["b"]?.arrayValue?[4] == .number(9_007_199_254_740_992))
        // Equal states encode to equal bytes (object keys are written sorted).
        #expect(SagaStateCodec.encode(decoded) == SagaStateCodec.encode(s))
        var fresh = SagaState(sagaId: "", bundle: bundle("barbershop-opening"))
        fresh.definitionFingerprint = nil
        #expect(try SagaStateCodec.decode(SagaStateCodec.encode(fresh)) == fresh)
    }

    /// 4 × 50 random interleavings of the property tests; every state after every input
    /// round-trips, also with the orchestrator's optional fields set at random (nil vs empty).
    @Test("states from the engine's random interleavings round-trip: decode(encode(s)) == s")
    func randomStatesRoundTrip() throws {
        nonisolated(unsafe) var checked = 0
        nonisolated(unsafe) var failures: [String] = []
        for (n, bundleId) in ["enterprise-opening", "restaurant-opening", "convenience-store-opening", "barbershop-opening"].enumerated() {
            for run in 0..<50 {
                var rng = SplitMix64(seed: UInt64(run * 31 + n))
                var interleaving = Interleaving(bundleId: bundleId, seed: 77_000_000 &+ UInt64(n * 1000 + run))
                interleaving.observe = { state in
                    var variants = [state]
                    var v = state
                    if rng.chance(0.5) { v.issued = rng.chance(0.3) ? [:] : ["registration": ["uscc": .string("9133\(rng.next() % 1000)")], "tax": [:]] }
                    if rng.chance(0.5) { v.calendarNotCovered = rng.chance(0.5) ? [] : [2031] }
                    if rng.chance(0.5) { v.calendarProvisional = rng.chance(0.5) ? [] : [2027, 2028] }
                    if rng.chance(0.5) { v.definitionFingerprint = rng.chance(0.5) ? nil : "not-hex-\(rng.next())" }
                    if rng.chance(0.5) {
                        v.auditChain = AuditChainHead(algorithm: rng.chance(0.5) ? .sm3 : .sha256, length: UInt32(rng.next() % 100_000),
                                                      link: String(repeating: "0123456789abcdef", count: 4))
                    }
                    if !v.steps.isEmpty {
                        let i = Int(rng.next() % UInt64(v.steps.count))
                        if rng.chance(0.3) { v.steps[i].override = rng.chance(0.5) ? [:] : ["x": .number(Double(rng.next() % 1000) / 7)] }
                        if rng.chance(0.3) { v.steps[i].paused = rng.chance(0.5) }
                        if rng.chance(0.3) { v.steps[i].unconfirmed = rng.chance(0.5) }
                    }
                    variants.append(v)
                    for s in variants {
                        checked += 1
                        do {
                            let bytes = SagaStateCodec.encode(s)
                            if try SagaStateCodec.decode(bytes) != s { failures.append("\(s.sagaId) seq \(s.seq): decoded state differs") }
                        } catch {
                            failures.append("\(s.sagaId) seq \(s.seq): \(error)")
                        }
                    }
                }
                _ = try interleaving.run()
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(checked > 4_000, "\(checked) states checked")
    }

    @Test("random mutations and truncations of real encodings never crash decode; each failure is a DecodeError with a reason")
    func fuzz() throws {
        var rng = SplitMix64(seed: 2026)
        var states = [inFlightOpening()]
        var h = Harness("restaurant-opening", sagaId: "APP-FUZZ-1")
        _ = h.submit()
        states.append(h.state)
        var edge = inFlightOpening(tag: "777777")
        edge.steps[1].override = ["deep": [[["x": [1.25, "y", nil]]]]]
        edge.manualCases = [ManualCase(step: "tax", kind: .forward, code: "E1", reason: "r", openedAt: Instant(ms: 7))]
        edge.abortedBy = .failure
        states.append(edge)
        let encodings = states.map { [UInt8](SagaStateCodec.encode($0)) }
        // Every strict prefix is an error naming the truncation, never a crash or a state.
        for e in encodings {
            for n in 0..<e.count {
                do {
                    _ = try SagaStateCodec.decode(Data(e[..<n]))
                    Issue.record("a \(n)-byte prefix of a \(e.count)-byte record decoded")
                } catch {
                    #expect(!error.reason.isEmpty)
                    if n > 1 && !error.reason.contains("truncated") && !error.reason.contains("exceeds") {
                        Issue.record("prefix \(n): \(error.reason)")
                    }
                }
            }
        }
        var decodedOK = 0, rejected = 0
        for _ in 0..<12_000 {
            var e = encodings[Int(rng.next() % UInt64(encodings.count))]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(e.count))
                switch rng.next() % 5 {
                case 0: e[i] ^= UInt8(1 << (rng.next() % 8))
                case 1: e[i] = UInt8(truncatingIfNeeded: rng.next())
                case 2: e.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                case 3: e.removeSubrange(i..<min(e.count, i + 1 + Int(rng.next() % 8)))
                default: e[i] = [0x00, 0x7f, 0x80, 0xff][Int(rng.next() % 4)]
                }
                if e.isEmpty { e = [0] }
            }
            do {
                let s = try SagaStateCodec.decode(Data(e))
                // Whatever decodes is a state that encodes and decodes again to itself.
                let again = try SagaStateCodec.decode(SagaStateCodec.encode(s))
                // (Compared as bytes: a mutated double may be NaN, which never equals itself.)
                #expect(SagaStateCodec.encode(again) == SagaStateCodec.encode(s))
                decodedOK += 1
            } catch {
                #expect(error.reason.contains("byte") || error.reason.contains("JSON"), "\(error.reason)")
                rejected += 1
            }
        }
        #expect(rejected > 6_000, "\(rejected) rejected, \(decodedOK) decoded")
    }

    @Test("errors name the problem: newer version, unknown enum value, unknown flags, empty, not a state")
    func errorsNameTheProblem() throws {
        let good = [UInt8](SagaStateCodec.encode(inFlightOpening()))
        func reason(_ bytes: [UInt8]) -> String {
            do { _ = try SagaStateCodec.decode(Data(bytes)); return "decoded" } catch { return error.reason }
        }
        var newer = good
        newer[1] = 9
        #expect(reason(newer).contains("unknown saga-state format version 9") && reason(newer).contains("newer hub"))
        // The status byte follows the two strings and the bundle version.
        let statusAt = 2 + 1 + "APP-20260302-000001".utf8.count + 1 + "enterprise-opening".utf8.count + 1
        var badStatus = good
        badStatus[statusAt] = 42
        #expect(reason(badStatus) == "byte \(statusAt): unknown saga status value 42 (known: 0–7): written by a newer hub?")
        var badFlags = good
        badFlags[statusAt + 1] = 0xff
        badFlags.insert(0x7f, at: statusAt + 2)
        #expect(reason(badFlags).contains("unknown saga flag bits"))
        #expect(reason([]).contains("empty"))
        #expect(reason([0xff, 0x00, 0x7b]).contains("first byte 0xff"))
        #expect(reason(Array("{\"sagaId\": 1}".utf8)).contains("JSON"))
        #expect(reason(good + [0]).contains("1 unexpected bytes after the state"))
        #expect(reason(Array(good[..<40])).hasPrefix("truncated at byte 40"))
        var zero = good
        zero[1] = 0
        #expect(reason(zero).contains("version 0"))
    }

    @Test("non-ASCII strings round-trip, also from a slice of a larger buffer; every kind of invalid UTF-8 is refused with the field's name")
    func utf8Strings() throws {
        var s = inFlightOpening()
        s.steps[0].missing = ["身份证明", "é", "𝄞 music", "营业执照副本（加盖公章）", String(repeating: "名", count: 40), "ascii only, longer than fifteen"]
        s.steps[1].lastError = "申请人已撤回 🙅"
        let encoded = SagaStateCodec.encode(s)
        #expect(try SagaStateCodec.decode(encoded) == s)
        let framed = (Data([0xD5, 0xFF]) + encoded + Data([0x00]))[2..<(2 + encoded.count)]
        #expect(try SagaStateCodec.decode(framed) == s)

        // The saga id is the first string: marker, version, length 6, then its 6 bytes (at 3..<9).
        var six = inFlightOpening()
        six.sagaId = "ééé"
        let good = [UInt8](SagaStateCodec.encode(six))
        #expect(good[2] == 6 && Array(good[3..<9]) == Array("ééé".utf8))
        let invalid: [[UInt8]] = [
            [0xC3, 0x28, 0x41, 0x41, 0x41, 0x41],  // lead byte without its continuation
            [0x80, 0x41, 0x41, 0x41, 0x41, 0x41],  // lone continuation byte
            [0xE2, 0x82, 0x41, 0x41, 0x41, 0x41],  // 3-byte sequence cut short
            [0xED, 0xA0, 0x80, 0x41, 0x41, 0x41],  // UTF-16 surrogate
            [0xC0, 0xAF, 0x41, 0x41, 0x41, 0x41],  // overlong '/'
            [0xF4, 0x90, 0x80, 0x80, 0x41, 0x41],  // above U+10FFFF
            [0x41, 0x41, 0x41, 0x41, 0x41, 0xC3],  // cut short at the end of the string
            [0xFF, 0xFE, 0x41, 0x41, 0x41, 0x41],  // never in UTF-8
        ]
        for bytes in invalid {
            var bad = good
            bad.replaceSubrange(3..<9, with: bytes)
            do {
                _ = try SagaStateCodec.decode(Data(bad))
                Issue.record("decoded a saga id with invalid UTF-8 \(bytes)")
            } catch {
                #expect(error.reason == "byte 2: sagaId is not valid UTF-8", "\(bytes): \(error.reason)")
            }
        }
    }

    @Test("the enum tables cover every case once (their positions are the bytes on the wire)")
    func enumTables() {
        #expect(Set(SagaStateCodec.sagaStatuses.map(\.rawValue)) == Set(SagaStatus.allCases.map(\.rawValue)) && SagaStateCodec.sagaStatuses.count == SagaStatus.allCases.count)
        #expect(Set(SagaStateCodec.stepStatuses.map(\.rawValue)) == Set(StepStatus.allCases.map(\.rawValue)) && SagaStateCodec.stepStatuses.count == StepStatus.allCases.count)
        #expect(Set(SagaStateCodec.hashAlgorithms.map(\.rawValue)) == Set(HashAlgorithm.allCases.map(\.rawValue)))
        #expect(SagaStateCodec.abortCauses.map(\.rawValue) == ["failure", "cancel", "fail"] && SagaStateCodec.caseKinds.map(\.rawValue) == ["forward", "compensation"])
    }

    /// Written by the JSON format (JSONEncoder's default output of `inFlightOpening()`), before
    /// the binary format existed.
    static let jsonRecord = #"""
    {"seq":3,"submittedAt":1772414100000,"external":["limited-liability","F5123","茶饮","有限公司","杭州云栖茶饮有限公司","330106","云栖","浙江省杭州市西湖区文三路 100 号 2 层","茶饮料及其他饮料制作销售；食品销售","11010519491231002X","张伟","13800138000",[{"provided":true,"type":"articles-of-association"},{"provided":false,"type":"lease-contract"}],500000,[{"idNumber":"11010519491231002X","name":"张伟","contribution":500000}],["company","finance","invoice","legal-representative"],"small-scale",5,"ICBC","中国工商银行杭州文三路支行","13800138000",["vat-general-electronic"]],"steps":[{"failures":0,"compensationAttempt":0,"outputs":["杭州云栖茶饮有限公司",null],"missing":[],"revision":0,"attempt":1,"due":1772415900000,"status":"succeeded"},{"failures":0,"compensationAttempt":0,"outputs":["91330106MA2H000001X"],"missing":[],"revision":0,"attempt":1,"due":1772430360000,"status":"succeeded"},{"failures":0,"compensationAttempt":0,"outputs":[],"missing":[],"revision":0,"attempt":1,"due":1772430420000,"status":"running"},{"failures":0,"compensationAttempt":0,"outputs":[],"missing":[],"revision":0,"attempt":1,"due":1772419620000,"status":"running"},{"failures":0,"compensationAttempt":0,"outputs":[],"missing":[],"revision":0,"attempt":1,"due":1772417820000,"status":"running"},{"failures":0,"compensationAttempt":0,"outputs":[],"missing":[],"revision":0,"attempt":0,"due":0,"status":"pending"},{"failures":0,"compensationAttempt":0,"outputs":[],"missing":[],"revision":0,"attempt":0,"due":0,"status":"pending"}],"paused":false,"deadline":1772500500000,"slaBreached":false,"status":"running","completionOrder":[0,1],"recentCommands":[],"issued":{"registration":{"uscc":"91330106MA2H000001X","licenceId":"LIC-330106-2026-000001"}},"manualCases":[],"slaAtRisk":false,"atRiskAt":1772437500000,"sagaId":"APP-20260302-000001","bundleVersion":1,"definitionFingerprint":"22c8f020c144a8358319e81f16fc91c7e282f3964ad1b414b038501938f2b664","auditChain":{"length":9,"algorithm":"sm3","link":"a802069d37465d8f971b3b5cd7c3ddaa435f029a9ed3574e1ab72e5abe6e5314"},"bundleId":"enterprise-opening"}
    """#
}
