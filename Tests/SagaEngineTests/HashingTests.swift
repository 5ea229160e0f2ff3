import Foundation
import Testing
@testable import SagaEngine

/// The hub's hash functions reproduce their standards' published test vectors.
@Suite struct HashingTests {
    /// GB/T 32905-2016 《信息安全技术 SM3密码杂凑算法》, Appendix A (示例): example 1, the
    /// 3-byte message "abc" (616263); example 2, the 64-byte message "abcd" repeated 16 times.
    /// (The same two appear in GM/T 0004-2012 and in the IETF draft draft-sca-cfrg-sm3.)
    @Test func sm3ReproducesTheStandardsExamples() {
        #expect(SM3.hex(Data("abc".utf8)) == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
        #expect(SM3.hex(Data(String(repeating: "abcd", count: 16).utf8))
                == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")
        #expect(HashAlgorithm.sm3.hex(Array("abc".utf8)) == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    }

    /// SM3 of the empty message: not in the standard's appendix; the value of the Linux kernel's
    /// generated SM3 test vectors (lib/crypto/tests/sm3-testvecs.h, data_len = 0).
    @Test func sm3OfTheEmptyMessage() {
        #expect(SM3.hex(Data()) == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b")
    }

    /// FIPS 180-4 / NIST CSRC "Examples with intermediate values" (SHA256.pdf) and the NIST CAVP
    /// short/long-message vectors: "abc" (one block), the 448-bit message
    /// "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" (two blocks, padding in the
    /// second), one million "a", and the empty message.
    @Test func sha256ReproducesTheStandardsExamples() {
        #expect(SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(Data(repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(HashAlgorithm.sha256.hex(Array("abc".utf8)) == SHA256.hex(Data("abc".utf8)))
    }

    /// Message lengths around the padding boundary (55, 56, 63, 64 bytes): the two-block cases
    /// agree with each other's structure (different inputs, different digests, never a crash).
    @Test func paddingBoundaries() {
        var seen = Set<String>()
        for n in [55, 56, 63, 64, 65, 119, 120] {
            let data = Data(repeating: 0x61, count: n)
            seen.insert(SM3.hex(data))
            seen.insert(SHA256.hex(data))
            #expect(SM3.digest(data).count == 32)
        }
        #expect(seen.count == 14)
    }

    @Test func hexRoundTrips() {
        let bytes: [UInt8] = [0x00, 0x0f, 0xa0, 0xff]
        #expect(Hex.encode(bytes) == "000fa0ff")
        #expect(Hex.decode("000FA0ff") == bytes)
        #expect(Hex.decode("0g") == nil)
        #expect(Hex.decode("abc") == nil)
    }

    /// The chain: each link is H(previous ‖ type 0x00 key 0x00 value), from the genesis value.
    @Test func chainLinksFollowTheDefinition() {
        for alg in HashAlgorithm.allCases {
            var head = AuditChainHead.start(sagaId: "APP-1", bundleVersion: 3, algorithm: alg)
            #expect(head.link == alg.hex(Array("yishi-chain-genesis\nAPP-1\n3".utf8)))
            #expect(head.length == 0)
            let genesis = head.link
            let first = head.append(type: "cn.gov.yishi.saga.submitted", key: "APP-1", value: Array("{\"seq\":1}".utf8))
            #expect(first.previous == genesis)
            let bytes = Hex.decode(genesis)! + Array("cn.gov.yishi.saga.submitted".utf8) + [0] + Array("APP-1".utf8) + [0] + Array("{\"seq\":1}".utf8)
            #expect(first.link == alg.hex(bytes))
            let second = head.append(type: "cn.gov.yishi.saga.finished", key: "APP-1", value: Array("{}".utf8))
            #expect(second.previous == first.link)
            #expect(head.length == 2 && head.link == second.link)
            // Another saga, another bundle version, another algorithm: another genesis.
            #expect(AuditChainHead.start(sagaId: "APP-2", bundleVersion: 3, algorithm: alg).link != genesis)
            #expect(AuditChainHead.start(sagaId: "APP-1", bundleVersion: 4, algorithm: alg).link != genesis)
        }
        #expect(AuditChainHead.start(sagaId: "APP-1", bundleVersion: 3, algorithm: .sm3).link
                != AuditChainHead.start(sagaId: "APP-1", bundleVersion: 3, algorithm: .sha256).link)
    }

    /// States written before the chain existed still decode (the head is optional).
    @Test func oldStatesDecodeWithoutAChainHead() throws {
        var state = SagaState(sagaId: "APP-1", bundle: bundle("enterprise-opening"))
        state.auditChain = AuditChainHead.start(sagaId: "APP-1", bundleVersion: 1, algorithm: .sm3)
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(state)) as! [String: Any]
        #expect(json["auditChain"] != nil)
        json["auditChain"] = nil
        let old = try JSONDecoder().decode(SagaState.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.auditChain == nil)
        let back = try JSONDecoder().decode(SagaState.self, from: JSONEncoder().encode(state))
        #expect(back.auditChain == state.auditChain)
    }
}
