import Foundation

/// Colours for people at a terminal; plain text everywhere else (pipes, files, tests, `NO_COLOR`).
public struct Style: Sendable {
    public var colour: Bool
    public init(colour: Bool) { self.colour = colour }
    public static let plain = Style(colour: false)

    /// Colour on when standard output is a terminal and `NO_COLOR` is unset.
    public static var forStandardOutput: Style {
        Style(colour: isatty(1) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
    }

    public enum Colour: String, Sendable { case red = "31", green = "32", yellow = "33", blue = "34", dim = "2", bold = "1" }

    public func paint(_ text: String, _ colour: Colour?) -> String {
        guard self.colour, let colour, !text.isEmpty else { return text }
        return "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m"
    }
}

/// A cell: text and how to colour it.
public struct Cell: Sendable, ExpressibleByStringLiteral {
    public var text: String
    public var colour: Style.Colour?
    public init(_ text: String, _ colour: Style.Colour? = nil) { self.text = text; self.colour = colour }
    public init(stringLiteral text: String) { self.init(text) }
}

/// An aligned text table; widths count CJK characters as two columns, as terminals draw them.
public struct Table: Sendable {
    public var headers: [String]
    public var rows: [[Cell]]
    public init(_ headers: [String], rows: [[Cell]] = []) { self.headers = headers; self.rows = rows }

    public mutating func add(_ row: [Cell]) { rows.append(row) }

    public func render(_ style: Style) -> String {
        var widths = headers.map(displayWidth)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], displayWidth(cell.text)) }
        }
        func line(_ cells: [Cell]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                let last = i == cells.count - 1
                out += style.paint(cell.text, cell.colour)
                if !last { out += String(repeating: " ", count: widths[i] - displayWidth(cell.text) + 2) }
            }
            while out.last == " " { out.removeLast() }
            return out
        }
        let header = line(headers.map { Cell($0, .bold) })
        return ([header] + rows.map(line)).joined(separator: "\n")
    }
}

/// Terminal columns of `text`: East Asian wide and full-width characters take two.
public func displayWidth(_ text: String) -> Int {
    text.unicodeScalars.reduce(0) { sum, s in
        let v = s.value
        if v == 0x200B || (0x0300...0x036F).contains(v) { return sum }
        let wide = (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
            || (0xFFE0...0xFFE6).contains(v) || (0x20000...0x3FFFD).contains(v)
        return sum + (wide ? 2 : 1)
    }
}
