import Foundation

/// JSON Schema `pattern` with ECMA-262 semantics (JSON Schema 2020-12 §6.4, "regular
/// expressions SHOULD be valid according to the ECMA-262 dialect") on top of ICU's
/// `NSRegularExpression`.
///
/// ICU differs from ECMA-262 (with the `u` flag, no other flags) in ways that let bad values
/// through, so the pattern is rewritten before ICU compiles it:
///
/// | ECMA-262                                  | ICU as is                           | rewritten to                      |
/// |-------------------------------------------|-------------------------------------|-----------------------------------|
/// | `$` only at the end of the input          | also before a final line terminator | `\\z`                              |
/// | `\d` = `[0-9]`                            | any Unicode decimal digit (Nd)      | `[0-9]`                           |
/// | `\w` = `[A-Za-z0-9_]`                     | Unicode letters, marks, digits      | `[A-Za-z0-9_]`                    |
/// | `\b` boundary between `\w` and non-`\w`   | Unicode word boundary               | look-arounds on `[A-Za-z0-9_]`    |
/// | `\s` = WhiteSpace + LineTerminator (§12.2, §12.3), incl. U+FEFF | without U+FEFF | the explicit set          |
/// | `.` excludes only LF, CR, U+2028, U+2029  | also VT, FF, NEL                    | `[^\n\r\u2028\u2029]`             |
/// | `[^]` any character, `[]` nothing         | syntax error                        | `[\x{0}-\x{10FFFF}]`, `(?!)`      |
///
/// `\D`, `\W`, `\S` and `\B` are the complements. Inside a character class a literal `[` or
/// `&` is escaped (ICU reads them as set operators) and `\b` is U+0008, as in ECMA-262.
/// Everything else (groups, look-arounds, quantifiers, `\p{…}`, `\uXXXX`, back-references) has
/// the same meaning in both dialects and passes through.
public enum ECMARegex {
    static let word = "A-Za-z0-9_"
    static let space = "\\t\\x{0B}\\f\\x{FEFF}\\p{Zs}\\n\\r\\x{2028}\\x{2029}"
    static let lineTerminators = "\\n\\r\\x{2028}\\x{2029}"

    /// The ICU pattern that matches what the ECMA-262 `pattern` matches.
    public static func icuPattern(_ pattern: String) -> String {
        var out = ""
        let s = Array(pattern.unicodeScalars)
        var i = 0
        var inClass = false
        while i < s.count {
            let c = s[i]
            if c == "\\", i + 1 < s.count {
                let e = s[i + 1]
                i += 2
                switch e {
                case "d": out += inClass ? "0-9" : "[0-9]"
                case "D": out += "[^0-9]"
                case "w": out += inClass ? word : "[\(word)]"
                case "W": out += "[^\(word)]"
                case "s": out += inClass ? space : "[\(space)]"
                case "S": out += "[^\(space)]"
                case "b" where inClass: out += "\\x{08}"
                case "b": out += "(?:(?<=[\(word)])(?![\(word)])|(?<![\(word)])(?=[\(word)]))"
                case "B": out += "(?:(?<=[\(word)])(?=[\(word)])|(?<![\(word)])(?![\(word)]))"
                default: out.unicodeScalars.append(c); out.unicodeScalars.append(e)
                }
                continue
            }
            if inClass {
                switch c {
                case "]": inClass = false; out += "]"
                case "[": out += "\\["
                case "&": out += "\\&"
                default: out.unicodeScalars.append(c)
                }
                i += 1
                continue
            }
            switch c {
            case "[":
                if i + 1 < s.count, s[i + 1] == "]" { out += "(?!)"; i += 2; continue }
                if i + 2 < s.count, s[i + 1] == "^", s[i + 2] == "]" { out += "[\\x{0}-\\x{10FFFF}]"; i += 3; continue }
                inClass = true
                out += "["
                if i + 1 < s.count, s[i + 1] == "^" { out += "^"; i += 1 }
                // A `]` first in an ECMA class closes it (empty class handled above); ICU would read it literally.
            case "$": out += "\\z"
            case ".": out += "[^\(lineTerminators)]"
            default: out.unicodeScalars.append(c)
            }
            i += 1
        }
        return out
    }

    /// Compiles `pattern` (ECMA-262) for unanchored search, like ECMA-262 `RegExp.prototype.test`.
    /// Throws what `NSRegularExpression` throws for a pattern it cannot compile.
    public static func compile(_ pattern: String) throws -> NSRegularExpression {
        try NSRegularExpression(pattern: icuPattern(pattern))
    }
}
