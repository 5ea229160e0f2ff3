/// A small argument reader: options are taken out by name wherever they appear, what is left is positional.
struct Arguments {
    private(set) var tokens: [String]

    init(_ tokens: [String]) { self.tokens = tokens }

    var isEmpty: Bool { tokens.isEmpty }

    /// Removes and returns the first token (a command or subcommand name).
    mutating func next() -> String? { tokens.isEmpty ? nil : tokens.removeFirst() }

    /// Removes `--name` (and any alias); true when present.
    mutating func flag(_ names: String...) -> Bool {
        let before = tokens.count
        tokens.removeAll { names.contains($0) }
        return tokens.count != before
    }

    /// Removes `--name VALUE` or `--name=VALUE`; the last occurrence wins.
    mutating func option(_ name: String) throws -> String? {
        var value: String?
        var i = 0
        while i < tokens.count {
            if tokens[i] == name {
                guard i + 1 < tokens.count else { throw UsageError("\(name) needs a value") }
                value = tokens[i + 1]
                tokens.removeSubrange(i...i + 1)
            } else if tokens[i].hasPrefix(name + "=") {
                value = String(tokens[i].dropFirst(name.count + 1))
                tokens.remove(at: i)
            } else { i += 1 }
        }
        return value
    }

    /// Removes every `--name VALUE` / `--name=VALUE`; all values in order (for repeatable options).
    mutating func options(_ name: String) throws -> [String] {
        var values: [String] = []
        var i = 0
        while i < tokens.count {
            if tokens[i] == name {
                guard i + 1 < tokens.count else { throw UsageError("\(name) needs a value") }
                values.append(tokens[i + 1])
                tokens.removeSubrange(i...i + 1)
            } else if tokens[i].hasPrefix(name + "=") {
                values.append(String(tokens[i].dropFirst(name.count + 1)))
                tokens.remove(at: i)
            } else { i += 1 }
        }
        return values
    }

    /// Everything left; an unknown `--option` is a usage error rather than a file name.
    mutating func positionals() throws -> [String] {
        if let bad = tokens.first(where: { $0.hasPrefix("-") && $0 != "-" }) { throw UsageError("unknown option \(bad)") }
        defer { tokens = [] }
        return tokens
    }
}

struct UsageError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
