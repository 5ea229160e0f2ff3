import Foundation

/// Terminal columns of `text` as a terminal draws it (Unicode UAX #11): East Asian Wide and
/// Fullwidth characters (CJK ideographs, kana, hangul, fullwidth forms, most emoji) take two
/// columns; combining marks, zero-width spaces/joiners and variation selectors take none;
/// everything else one. Used wherever a table is printed (the CLI's `Table`, the demo's outcome
/// report), so that columns line up with Chinese labels.
public func displayWidth(_ text: String) -> Int {
    text.unicodeScalars.reduce(0) { $0 + columns($1) }
}

/// Columns of one scalar: 0, 1 or 2 (see `displayWidth`).
public func columns(_ s: Unicode.Scalar) -> Int {
    let v = s.value
    if (0x0300...0x036F).contains(v) || (0x200B...0x200F).contains(v) || (0xFE00...0xFE0F).contains(v) || v == 0x2060 { return 0 }
    let wide = (0x1100...0x115F).contains(v) || (0x2E80...0x303E).contains(v) || (0x3041...0x33FF).contains(v)
        || (0x3400...0x4DBF).contains(v) || (0x4E00...0x9FFF).contains(v) || (0xA000...0xA4CF).contains(v)
        || (0xAC00...0xD7A3).contains(v) || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v)
        || (0xFF00...0xFF60).contains(v) || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1F64F).contains(v)
        || (0x1F900...0x1F9FF).contains(v) || (0x20000...0x3FFFD).contains(v)
    return wide ? 2 : 1
}

extension String {
    /// Padded with spaces to `width` terminal columns (never cut; wider text is returned as is).
    public func padded(toWidth width: Int) -> String {
        let w = displayWidth(self)
        return w >= width ? self : self + String(repeating: " ", count: width - w)
    }

    /// Cut to at most `width` terminal columns, ending in `…` when cut (never splits a wide character).
    public func truncated(toWidth width: Int) -> String {
        guard displayWidth(self) > width else { return self }
        guard width > 1 else { return width == 1 ? "…" : "" }
        var out = "", used = 0
        for scalar in unicodeScalars {
            let c = columns(scalar)
            if used + c > width - 1 { break }
            out.unicodeScalars.append(scalar)
            used += c
        }
        return out + "…"
    }
}
