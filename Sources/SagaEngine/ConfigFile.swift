import Foundation

/// A configuration problem found at start-up, in one line an operator can act on: the file (or
/// the flag / environment variable that named it), where in it (JSON path, or line and column
/// for a syntax error), and what is wrong. Every `yishi` command and service prints it as is
/// and exits 2 (a configuration error), never Foundation's own `NSCocoaErrorDomain` or
/// `DecodingError` text.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The whole line, e.g. `adapters/tax/catalogue.json: $.actions[1]: missing key "title"`.
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// Reading the hub's configuration files (catalogues, bundles, calendars, mappings, schemas,
/// reference data, state files) so that every failure becomes one `ConfigError` line naming the
/// file, and a JSON problem its JSON path or its line and column.
public enum ConfigFile {
    /// The bytes of `url`. - Throws: `ConfigError` "<path>: no such file" / "cannot read: …".
    public static func data(_ url: URL, setting: String? = nil) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw ConfigError(name(url, setting) + ": " + fileProblem(error, url: url))
        }
    }

    /// `T` decoded from the JSON file `url`. - Throws: `ConfigError` naming the file and either
    /// the line and column of a syntax error or the JSON path of a missing key or wrong type.
    public static func decode<T: Decodable>(_ type: T.Type, from url: URL, setting: String? = nil) throws -> T {
        let bytes = try data(url, setting: setting)
        // Foundation's decoder accepts some non-JSON (trailing commas) and locates no syntax
        // error: the strict scan first.
        if let syntax = syntaxError(in: bytes) { throw ConfigError(name(url, setting) + ": " + syntax) }
        do { return try JSONDecoder().decode(T.self, from: bytes) } catch {
            throw ConfigError(name(url, setting) + ": " + describe(error, data: bytes))
        }
    }

    /// The JSON value in `url` (any top level). - Throws: `ConfigError` as `decode`.
    public static func json(_ url: URL, setting: String? = nil) throws -> JSONValue {
        try decode(JSONValue.self, from: url, setting: setting)
    }

    /// `path` and, when a flag or variable named it, which one: `/x/y.json (--state)`.
    static func name(_ url: URL, _ setting: String?) -> String {
        url.path + (setting.map { " (\($0))" } ?? "")
    }

    /// Why a file could not be read or written, in words (no Foundation error domains).
    public static func fileProblem(_ error: Error, url: URL) -> String {
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        if !fm.fileExists(atPath: parent.path, isDirectory: &isDir) { return "its directory \(parent.path) does not exist" }
        if !isDir.boolValue { return "\(parent.path) is not a directory" }
        if fm.fileExists(atPath: url.path, isDirectory: &isDir) {
            if isDir.boolValue { return "is a directory, not a file" }
            if !fm.isReadableFile(atPath: url.path) { return "not readable by this user" }
        } else {
            return "no such file"
        }
        let ns = error as NSError
        let posix = (ns.userInfo[NSUnderlyingErrorKey] as? NSError).map { String(cString: strerror(Int32($0.code))) }
        return "cannot be read" + (posix.map { " (\($0))" } ?? "")
    }

    /// Checks at start-up that `url` can be written later: its directory exists and is writable,
    /// and the file, when present, is a writable regular file. `setting` names the flag.
    /// - Throws: `ConfigError` naming the file, the setting and the problem.
    public static func checkWritable(_ url: URL, setting: String) throws {
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: parent.path, isDirectory: &isDir) else {
            throw ConfigError("\(setting) \(url.path): its directory \(parent.path) does not exist (create it first)")
        }
        guard isDir.boolValue else { throw ConfigError("\(setting) \(url.path): \(parent.path) is not a directory") }
        guard fm.isWritableFile(atPath: parent.path) else {
            throw ConfigError("\(setting) \(url.path): its directory \(parent.path) is not writable by this user")
        }
        if fm.fileExists(atPath: url.path, isDirectory: &isDir) {
            guard !isDir.boolValue else { throw ConfigError("\(setting) \(url.path): is a directory, not a file") }
            guard fm.isWritableFile(atPath: url.path), fm.isReadableFile(atPath: url.path) else {
                throw ConfigError("\(setting) \(url.path): not readable and writable by this user")
            }
        }
    }

    /// Checks that `url` is an existing directory. - Throws: `ConfigError` naming the setting.
    public static func checkDirectory(_ url: URL, setting: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ConfigError("\(setting) \(url.path): no such directory")
        }
        guard isDir.boolValue else { throw ConfigError("\(setting) \(url.path): not a directory") }
    }

    /// A decoding error in words: the JSON path (`$.actions[1].title`) and what is missing or
    /// wrong, or the line and column of a syntax error in `data`.
    public static func describe(_ error: Error, data: Data) -> String {
        guard let e = error as? DecodingError else {
            if let located = syntaxError(in: data) { return located }
            return "\(error)"
        }
        func path(_ keys: [CodingKey]) -> String {
            keys.reduce("$") { p, k in k.intValue.map { p + "[\($0)]" } ?? p + "." + k.stringValue }
        }
        switch e {
        case .keyNotFound(let key, let c):
            return "\(path(c.codingPath)): missing key \"\(key.stringValue)\""
        case .typeMismatch(let type, let c):
            return "\(path(c.codingPath)): expected \(typeName(type))\(found(c.codingPath, in: data))"
        case .valueNotFound(let type, let c):
            return "\(path(c.codingPath)): expected \(typeName(type)), found null"
        case .dataCorrupted(let c):
            if c.codingPath.isEmpty, let located = syntaxError(in: data) { return located }
            return "\(path(c.codingPath)): \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch "\(type)" {
        case "String": "a string"
        case "Int", "Int64", "Int32", "UInt64", "Double": "a number"
        case "Bool": "true or false"
        case let t where t.hasPrefix("Array"): "an array"
        case let t where t.hasPrefix("Dictionary"): "an object"
        default: "an object (\(type))"
        }
    }

    /// ", found a number" for the value at `path` in `data`, when it parses.
    static func found(_ path: [CodingKey], in data: Data) -> String {
        guard var value = try? JSONValue.parse(data) else { return "" }
        for key in path {
            if let i = key.intValue, case .array(let a) = value, a.indices.contains(i) { value = a[i] }
            else if case .object(let o) = value, let v = o[key.stringValue] { value = v }
            else { return "" }
        }
        switch value {
        case .null: return ", found null"
        case .bool: return ", found true/false"
        case .number: return ", found a number"
        case .string: return ", found a string"
        case .array: return ", found an array"
        case .object: return ", found an object"
        }
    }

    /// "line L, column C: <what is wrong>" for the first JSON syntax error (RFC 8259) in
    /// `data`, nil when it is well-formed. Columns count characters from 1.
    public static func syntaxError(in data: Data) -> String? {
        var scanner = SyntaxScanner(bytes: Array(data))
        do {
            scanner.skipSpace()
            try scanner.value(depth: 0)
            scanner.skipSpace()
            if scanner.i < scanner.bytes.count { throw scanner.fail("unexpected text after the JSON value") }
            return nil
        } catch let e as SyntaxScanner.Failure {
            let (line, column) = scanner.position(of: e.offset)
            return "line \(line), column \(column): \(e.message)"
        } catch { return nil }
    }
}

/// A strict RFC 8259 scanner that only locates the first syntax error.
private struct SyntaxScanner {
    struct Failure: Error { var offset: Int; var message: String }
    let bytes: [UInt8]
    var i = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    }

    func fail(_ message: String) -> Failure { Failure(offset: i, message: message) }

    func position(of offset: Int) -> (Int, Int) {
        var line = 1, column = 1, j = 0
        while j < min(offset, bytes.count) {
            if bytes[j] == UInt8(ascii: "\n") { line += 1; column = 1 }
            else if bytes[j] & 0xC0 != 0x80 { column += 1 }
            j += 1
        }
        return (line, column)
    }

    var here: String {
        guard i < bytes.count else { return "the end of the file" }
        let b = bytes[i]
        return b >= 0x20 && b < 0x7F ? "'\(Character(UnicodeScalar(b)))'" : String(format: "byte 0x%02X", b)
    }

    mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
    }

    mutating func expect(_ c: Character, _ what: String) throws {
        skipSpace()
        guard i < bytes.count, bytes[i] == c.asciiValue! else { throw fail("expected \(what), found \(here)") }
        i += 1
    }

    mutating func value(depth: Int) throws {
        guard depth < 512 else { throw fail("nested too deeply") }
        skipSpace()
        guard i < bytes.count else { throw fail("expected a value, found the end of the file") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1; skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                    throw fail(i < bytes.count && bytes[i] == UInt8(ascii: "}") ? "a comma before '}' (trailing commas are not JSON)"
                               : "expected a key in double quotes, found \(here)")
                }
                try string()
                try expect(":", "':' after the key")
                try value(depth: depth + 1)
                skipSpace()
                guard i < bytes.count else { throw fail("expected ',' or '}', found the end of the file") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return }
                throw fail("expected ',' or '}', found \(here)")
            }
        case UInt8(ascii: "["):
            i += 1; skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
            while true {
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { throw fail("a comma before ']' (trailing commas are not JSON)") }
                try value(depth: depth + 1)
                skipSpace()
                guard i < bytes.count else { throw fail("expected ',' or ']', found the end of the file") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return }
                throw fail("expected ',' or ']', found \(here)")
            }
        case UInt8(ascii: "\""):
            try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try number()
        default:
            throw fail("expected a value, found \(here)")
        }
    }

    mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard bytes.count - i >= w.count, Array(bytes[i..<i + w.count]) == w else { throw fail("expected a value, found \(here)") }
        i += w.count
    }

    mutating func number() throws {
        func digits() -> Int { let s = i; while i < bytes.count, (0x30...0x39).contains(bytes[i]) { i += 1 }; return i - s }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard digits() > 0 else { throw fail("a number needs digits, found \(here)") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { throw fail("digits expected after '.'") } }
        if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("digits expected in the exponent") }
        }
    }

    mutating func string() throws {
        let start = i
        i += 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { i += 1; return }
            if b < 0x20 { throw fail(b == 0x0A ? "a line break inside a string (unterminated string?)" : "a control character inside a string") }
            if b == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { break }
                if bytes[i] == UInt8(ascii: "u") {
                    let hex = bytes[(i + 1)..<min(i + 5, bytes.count)]
                    guard hex.count == 4, hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else {
                        throw fail("\\u needs four hex digits")
                    }
                    i += 4
                } else if !"\"\\/bfnrt".utf8.contains(bytes[i]) { throw fail("unknown escape \\\(Character(UnicodeScalar(bytes[i])))") }
            }
            i += 1
        }
        i = start
        throw fail("a string that never ends")
    }
}
