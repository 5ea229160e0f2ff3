import Foundation
import Messaging

/// Colours for people at a terminal; plain text everywhere else (pipes, files, tests, `NO_COLOR`).
public struct Style: Sendable {
    public var colour: Bool
    /// Terminal width in columns; a table wider than this shrinks its `shrinkable` column. Nil: no limit.
    public var width: Int?
    public init(colour: Bool, width: Int? = nil) { self.colour = colour; self.width = width }
    public static let plain = Style(colour: false)

    /// Colour on when standard output is a terminal and `NO_COLOR` is unset. Width: `COLUMNS`
    /// when set, else the terminal's (TIOCGWINSZ) when standard output is one, else no limit.
    public static var forStandardOutput: Style {
        let env = ProcessInfo.processInfo.environment
        return Style(colour: isatty(1) != 0 && env["NO_COLOR"] == nil, width: terminalWidth(environment: env))
    }

    /// `COLUMNS` (when a positive number), else the terminal's width, else nil.
    public static func terminalWidth(environment: [String: String]) -> Int? {
        if let text = environment["COLUMNS"], let n = Int(text), n > 0 { return n }
        guard isatty(1) != 0 else { return nil }
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
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
    /// The column cut (with `…`) when the table is wider than the style's width (`BLOCKED AT`,
    /// `REASON`): the other columns keep their width; it keeps at least 12 columns.
    public var shrinkable: Int?
    public init(_ headers: [String], rows: [[Cell]] = [], shrinkable: Int? = nil) {
        self.headers = headers; self.rows = rows; self.shrinkable = shrinkable
    }

    public mutating func add(_ row: [Cell]) { rows.append(row) }

    public func render(_ style: Style) -> String {
        var widths = headers.map(displayWidth)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], displayWidth(cell.text)) }
        }
        var cut: Int?
        if let limit = style.width, let k = shrinkable, k < widths.count {
            let total = widths.reduce(0, +) + 2 * (widths.count - 1)
            if total > limit {
                widths[k] = max(12, widths[k] - (total - limit))
                cut = widths[k]
            }
        }
        func line(_ cells: [Cell]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                let last = i == cells.count - 1
                let text = i == shrinkable && cut != nil ? cell.text.truncated(toWidth: cut!) : cell.text
                out += style.paint(text, cell.colour)
                if !last { out += String(repeating: " ", count: max(0, widths[i] - displayWidth(text)) + 2) }
            }
            while out.last == " " { out.removeLast() }
            return out
        }
        let header = line(headers.map { Cell($0, .bold) })
        return ([header] + rows.map(line)).joined(separator: "\n")
    }
}
