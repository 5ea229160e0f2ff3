import Foundation
import SagaEngine

/// 进度查询 codes: the short code printed on an application's 受理回执 that lets the applicant (or
/// the window clerk on their behalf) read the application's progress.
///
/// The code is derived, not stored: the first 40 bits of HMAC-SHA256 (RFC 2104, FIPS 198-1, with
/// SHA-256 of FIPS 180-4) keyed with the hub's query secret over the application id, written as 8
/// characters of Crockford's base 32 in two groups (`7K3M-Q9XD`). So neither the front desk nor the
/// hub keeps any code in clear text; whoever holds the secret (front desk, `yishi progress`) can
/// check one. Comparison ignores case, `-`/space separators and reads `O`→`0`, `I`/`L`→`1` (Crockford).
///
/// The secret comes from the file named by `YISHI_QUERY_SECRET_FILE` (preferred) or from
/// `YISHI_QUERY_SECRET`; it must be at least 16 bytes. Rotating it invalidates every printed code.
public enum QueryCode {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    /// The code of `applicationId` under `secret`: `XXXX-XXXX` (Crockford base 32, 40 bits).
    public static func code(applicationId: String, secret: Data) -> String {
        let mac = hmacSHA256(key: [UInt8](secret), message: Array(applicationId.utf8))
        var bits: UInt64 = 0
        for b in mac.prefix(5) { bits = bits << 8 | UInt64(b) }
        var out = ""
        for i in (0..<8).reversed() { out.append(alphabet[Int((bits >> (UInt64(i) * 5)) & 31)]) }
        return String(out.prefix(4)) + "-" + String(out.suffix(4))
    }

    /// Whether `code` is `applicationId`'s code (constant time in the code's characters).
    public static func matches(_ code: String, applicationId: String, secret: Data) -> Bool {
        let expected = Array(normalized(self.code(applicationId: applicationId, secret: secret)).utf8)
        let given = Array(normalized(code).utf8)
        guard given.count == expected.count else { return false }
        var diff: UInt8 = 0
        for i in given.indices { diff |= given[i] ^ expected[i] }
        return diff == 0
    }

    static func normalized(_ code: String) -> String {
        var s = ""
        for c in code.uppercased() where c != "-" && c != " " {
            switch c {
            case "O": s.append("0")
            case "I", "L": s.append("1")
            default: s.append(c)
            }
        }
        return s
    }

    public struct SecretError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The query secret from `YISHI_QUERY_SECRET_FILE` (the file's bytes, one trailing newline
    /// dropped) or `YISHI_QUERY_SECRET`; nil when neither is set.
    /// - Throws: `SecretError` naming the file when it cannot be read or the secret is shorter than 16 bytes.
    public static func secret(environment: [String: String]) throws -> Data? {
        var data: Data
        var origin: String
        if let path = environment["YISHI_QUERY_SECRET_FILE"], !path.isEmpty {
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw SecretError(description: "query secret file \(path) (YISHI_QUERY_SECRET_FILE) cannot be read: \(error.localizedDescription)")
            }
            origin = "query secret file \(path) (YISHI_QUERY_SECRET_FILE)"
        } else if let text = environment["YISHI_QUERY_SECRET"], !text.isEmpty {
            data = Data(text.utf8)
            origin = "YISHI_QUERY_SECRET"
        } else { return nil }
        if data.last == 0x0A { data.removeLast() }
        if data.last == 0x0D { data.removeLast() }
        guard data.count >= 16 else { throw SecretError(description: "\(origin) holds \(data.count) bytes; a query secret needs at least 16") }
        return data
    }

    /// HMAC-SHA256 (RFC 2104) of `message` under `key`: 32 bytes.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? sha256(key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = sha256(k.map { $0 ^ 0x36 } + message)
        return sha256(k.map { $0 ^ 0x5c } + inner)
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        let hex = Array(SHA256.hex(Data(bytes)).utf8)
        func nibble(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : c - 48 }
        return stride(from: 0, to: hex.count, by: 2).map { nibble(hex[$0]) << 4 | nibble(hex[$0 + 1]) }
    }
}
