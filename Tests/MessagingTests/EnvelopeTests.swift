import Foundation
import Testing
@testable import Messaging
import YishiKafka

@Suite struct EnvelopeTests {
    @Test func roundTrip() throws {
        let e = sampleEnvelope()
        let data = Data(#"{"sagaId":"saga-APP-1"}"#.utf8)
        let record = e.record(topic: "yishi.events.tax", key: "saga-APP-1", data: data)
        #expect(record.value == data)
        #expect(record.key == Data("saga-APP-1".utf8))
        let (decoded, value) = try Envelope.decode(message(value: record.value, headers: record.headers))
        #expect(decoded == e)
        #expect(value == .object(["sagaId": .string("saga-APP-1")]))
    }

    @Test func headerNames() {
        let h = sampleEnvelope().headers
        #expect(h.map(\.name) == ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type", "ce_subject",
                                  "traceparent", "ce_yishisagaid", "ce_yishistep", "ce_yishiattempt", "ce_yishirequestid"])
        #expect(h.string("ce_specversion") == "1.0")
        #expect(h.string("content-type") == "application/json")
        #expect(h.string("ce_time") == "2026-03-02T01:15:00.250Z")
        #expect(h.string("ce_yishiattempt") == "1")
        // CloudEvents: extension names are lowercase ASCII letters and digits only.
        for name in h.map(\.name) where name.hasPrefix("ce_") {
            #expect(name.dropFirst(3).allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) }, "\(name)")
        }
    }

    @Test func optionalAttributesMayBeAbsent() throws {
        let e = Envelope(source: "/frontdesk/hz-01", type: MessageType.applicationSubmitted, time: sampleTime)
        #expect(e.headers.count == 6)
        let decoded = try Envelope(headers: e.headers)
        #expect(decoded.sagaId == nil && decoded.attempt == nil && decoded.traceParent == nil && decoded.subject == nil)
        #expect(decoded.id == e.id)
        #expect(Envelope.newId() != Envelope.newId())
    }

    @Test func encodablePayloadHasSortedKeys() throws {
        struct P: Encodable { var b = 1; var a = "x/y" }
        let r = try sampleEnvelope().record(topic: "t", key: nil, payload: P())
        #expect(String(decoding: r.value!, as: UTF8.self) == #"{"a":"x/y","b":1}"#)
    }

    @Test(arguments: ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"])
    func missingRequiredHeaderIsNamed(_ name: String) {
        let headers = replacing(sampleEnvelope().headers, name, with: nil)
        #expect(throws: EnvelopeError.missingAttribute(name)) { try Envelope(headers: headers) }
        let empty = replacing(sampleEnvelope().headers, name, with: "")
        #expect(throws: EnvelopeError.missingAttribute(name)) { try Envelope(headers: empty) }
    }

    @Test func wrongSpecVersion() {
        let headers = replacing(sampleEnvelope().headers, "ce_specversion", with: "0.3")
        #expect(throws: EnvelopeError.wrongSpecVersion("0.3")) { try Envelope(headers: headers) }
        #expect(EnvelopeError.wrongSpecVersion("0.3").description.contains("'0.3'"))
    }

    @Test(arguments: ["2026-03-02 09:15:00", "2026-03-02T09:15:00", "2026-02-30T09:15:00Z", "2026-03-02T24:00:00Z",
                      "2026-03-02T09:15:00+8:00", "1772414100", "2026-03-02T09:15:00.Z"])
    func badTime(_ text: String) {
        let headers = replacing(sampleEnvelope().headers, "ce_time", with: text)
        #expect(throws: EnvelopeError.badTime(text)) { try Envelope(headers: headers) }
    }

    @Test(arguments: ["text/plain", "application/cloudevents+json", "application/xml"])
    func badContentType(_ value: String) {
        let headers = replacing(sampleEnvelope().headers, "content-type", with: value)
        #expect(throws: EnvelopeError.badContentType(value)) { try Envelope(headers: headers) }
    }

    @Test func contentTypeParametersAccepted() throws {
        let headers = replacing(sampleEnvelope().headers, "content-type", with: "Application/JSON; charset=utf-8")
        #expect(try Envelope(headers: headers).dataContentType == "Application/JSON; charset=utf-8")
    }

    @Test(arguments: [("ce_yishiattempt", "0"), ("ce_yishiattempt", "abc"), ("ce_yishiattempt", "-1"), ("ce_yishiattempt", "+1"),
                      ("ce_yishiattempt", "99999999999"), ("ce_yishisagaid", "saga APP"), ("ce_yishistep", "")])
    func badExtension(_ name: String, _ value: String) {
        let headers = replacing(sampleEnvelope().headers, name, with: value)
        #expect {
            try Envelope(headers: headers)
        } throws: { error in
            guard case .badExtension(let n, let v, _)? = error as? EnvelopeError else { return false }
            return n == name && v == value
        }
    }

    @Test(arguments: ["", "not json", "{\"a\":", "{'a':1}"])
    func notJSON(_ text: String) {
        let e = sampleEnvelope()
        #expect {
            try Envelope.decode(message(value: Data(text.utf8), headers: e.headers))
        } throws: { error in
            guard case .notJSON? = error as? EnvelopeError else { return false }
            return true
        }
    }

    @Test func lastHeaderWins() throws {
        var headers = sampleEnvelope().headers
        headers.append(KafkaHeader("ce_yishiattempt", "2"))
        #expect(try Envelope(headers: headers).attempt == 2)
    }
}

@Suite struct TraceParentTests {
    static var shape: Regex<Substring> { /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/ }

    @Test func newTraceIsWellFormedAndRandom() {
        let a = TraceParent.newTrace(), b = TraceParent.newTrace()
        #expect(a.description.wholeMatch(of: Self.shape) != nil, "\(a)")
        #expect(a.traceId != b.traceId)
        #expect(TraceParent(a.description) == a)
    }

    @Test func childKeepsTraceId() {
        let parent = TraceParent.newTrace()
        let child = parent.child()
        #expect(child.traceId == parent.traceId)
        #expect(child.spanId != parent.spanId)
        #expect(child.description.wholeMatch(of: Self.shape) != nil)
    }

    @Test(arguments: ["00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // uppercase
                      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
                      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero span id
                      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // unknown version
                      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   // short
                      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"])
    func rejectsMalformed(_ text: String) {
        #expect(TraceParent(text) == nil)
    }

    @Test func invalidHeaderMeansNoParentAndCeSpellingIsRead() throws {
        var headers = replacing(sampleEnvelope().headers, "traceparent", with: "garbage")
        #expect(try Envelope(headers: headers).traceParent == nil)
        headers = replacing(headers, "traceparent", with: nil)
        headers.append(KafkaHeader("ce_traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(try Envelope(headers: headers).traceParent?.spanId == "00f067aa0ba902b7")
    }
}

@Suite struct RFC3339Tests {
    @Test(arguments: [("2026-03-02T09:15:00+08:00", 1_772_414_100_000), ("2026-03-02T01:15:00Z", 1_772_414_100_000),
                      ("2026-03-02t01:15:00.5z", 1_772_414_100_500), ("2024-02-29T00:00:00-00:30", 1_709_166_600_000),
                      ("1969-12-31T23:59:59.999Z", -1), ("2016-12-31T23:59:60Z", 1_483_228_799_999)])
    func parses(_ text: String, _ ms: Int64) {
        let d = RFC3339.parse(text)
        #expect(d.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == ms)
    }

    @Test func formatsUTCWithMilliseconds() {
        #expect(RFC3339.format(sampleTime) == "2026-03-02T01:15:00.250Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -0.001)) == "1969-12-31T23:59:59.999Z")
        #expect(RFC3339.parse(RFC3339.format(sampleTime)) == sampleTime)
    }

    @Test(arguments: ["2025-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-04-31T00:00:00Z", "2026-03-02T09:60:00Z",
                      "2026-03-02T09:15:00+24:00", "2026-03-02T09:15:00Z ", "2026-03-02 09:15:00Z", ""])
    func rejects(_ text: String) {
        #expect(RFC3339.parse(text) == nil)
    }
}
