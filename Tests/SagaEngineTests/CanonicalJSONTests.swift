import Foundation
import Testing
@testable import SagaEngine

/// Issue 11: the orchestrator writes payloads with `JSONValue.canonicalBytes()` instead of
/// JSONEncoder; the bytes must be the same canonical text `text()` gives.
@Suite struct CanonicalJSONTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func string() -> String {
            let alphabet: [String] = ["a", "B", "z", "0", "9", "_", "/", "\"", "\\", "\n", "\t", "\r", "\u{8}", "\u{c}", "\u{1}",
                                         "\u{1f}", "\u{7f}", "é", "中", "名", "\u{2028}", "😀", " ", "-", "A10", "a2"]
            return (0..<below(8)).map { _ in alphabet[below(alphabet.count)] }.joined()
        }
        mutating func number() -> Double {
            let picks: [Double] = [0, -0.0, 1, -1, 42, 1_700_000_000_000, 8.9e15, 9.1e15, 1e300, 0.1, 1e-7, 123.456, -0.5, .leastNonzeroMagnitude,
                                   Double(below(1_000_000)) / 7]
            return picks[below(picks.count)]
        }
        mutating func value(depth: Int) -> JSONValue {
            switch below(depth > 2 ? 5 : 7) {
            case 0: return .null
            case 1: return .bool(below(2) == 0)
            case 2: return .number(number())
            case 3, 4: return .string(string())
            case 5: return .array((0..<below(4)).map { _ in value(depth: depth + 1) })
            default:
                var o: [String: JSONValue] = [:]
                for _ in 0..<below(6) { o[string()] = value(depth: depth + 1) }
                return .object(o)
            }
        }
    }

    @Test("canonicalBytes are the bytes of text() (JSONEncoder, sorted keys) for 3,000 random values")
    func sameBytesAsJSONEncoder() {
        var g = Generator(state: 11)
        for _ in 0..<3_000 {
            let v = g.value(depth: 0)
            let direct = String(decoding: v.canonicalBytes(), as: UTF8.self)
            #expect(direct == v.text(), "\(v)")
            if direct != v.text() { return }
        }
    }

    @Test("every control character and the sort order of mixed keys match JSONEncoder")
    func escapesAndKeyOrder() {
        let controls = JSONValue.string(String((0..<0x20).map { Character(Unicode.Scalar($0)!) }))
        #expect(String(decoding: controls.canonicalBytes(), as: UTF8.self) == controls.text())
        let keys: JSONValue = ["a10": 1, "a2": 2, "B": 3, "a": 4, "_x": 5, "é": 6, "Z": 7, "b": 8, "aB": 9, "ab": 10, "中": 11]
        #expect(String(decoding: keys.canonicalBytes(), as: UTF8.self) == keys.text())
        #expect(String(decoding: JSONValue.number(.infinity).canonicalBytes(), as: UTF8.self) == "null")
    }
}

/// Issue 11: consumed records are parsed by `FastJSONParser`; it must read exactly what
/// JSONDecoder reads, and leave everything else to it.
@Suite struct FastJSONParserTests {
    func decoder(_ text: String) -> JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

    @Test("random values' text (and pretty text) parse to what JSONDecoder gives")
    func sameAsJSONDecoder() throws {
        var g = CanonicalJSONTests.Generator(state: 7)
        for _ in 0..<3_000 {
            let v = g.value(depth: 0)
            for text in [v.text(), v.text(pretty: true)] {
                let fast = try #require(FastJSONParser.parse(Data(text.utf8)), "fast reader gave up on valid text \(text)")
                #expect(fast == decoder(text), "\(text)")
            }
        }
    }

    @Test("escapes, surrogate pairs, numbers and whitespace read as JSONDecoder reads them")
    func edgeCases() throws {
        for text in [#"{"a":"\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\\u0000"}"#, " [1, -0, 0.5, 1e2, 1E-2, -12.5e+3, 12345678901234567890] ",
                     #""plain""#, "true", "null", "[]", "{}", #"{"k": [ {"x": null} , false ]}"#] {
            let fast = try #require(FastJSONParser.parse(Data(text.utf8)), "\(text)")
            #expect(fast == decoder(text), "\(text)")
            #expect(try JSONValue.parse(Data(text.utf8)) == fast)
        }
    }

    @Test("invalid or doubtful text is left to JSONDecoder (which takes trailing commas), and parse gives what it gives")
    func leavesTheRestToJSONDecoder() {
        let invalid = ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "[1 2]", "{\"a\" 1}", "{a:1}",
                       "\"\u{1}\"", #""\x""#, #""\ud800""#, #""\udc00x""#, "1e400", "\"abc", "[1]x", "'a'", "NaN"]
        for text in invalid {
            #expect(FastJSONParser.parse(Data(text.utf8)) == nil, "\(text)")
            #expect((try? JSONValue.parse(Data(text.utf8))) == decoder(text), "\(text)")
        }
        #expect(decoder("[1,]") == [1] && decoder("01") == nil && decoder("[1]x") == nil)
        #expect(FastJSONParser.parse(Data([0x22, 0xFF, 0x22])) == nil, "invalid UTF-8")
        #expect(FastJSONParser.parse(Data(#"{"a":1,"a":2}"#.utf8)) == nil, "duplicate keys are JSONDecoder's to decide")
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(FastJSONParser.parse(Data(deep.utf8)) == nil)
    }
}
