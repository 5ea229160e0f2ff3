/// A bundle's step DAG as text other tools draw: Mermaid (`flowchart`, for Markdown pages and
/// wikis) and Graphviz DOT. Nodes carry the step id, agency and action; edges go from a step to
/// the steps that wait for it. `yishi bundles show ID --format mermaid|dot` prints these.
extension CompiledBundle {
    /// Payload fields of step `index` and where each comes from, sorted by field: the names an
    /// operator may correct with `yishi sagas retry --set NAME=…`. Sources are the mapping texts
    /// (`$.form.company.address`, `$.steps.registration.outputs.uscc`, a coalesce as `a | b`, a
    /// nested object as `{…}`, a literal as its JSON text).
    public func inputFields(of index: Int) -> [(field: String, source: String)] {
        definition.steps[index].input.sorted { $0.key < $1.key }.map { ($0.key, Self.describe($0.value)) }
    }

    private static func describe(_ mapping: JSONValue) -> String {
        switch mapping {
        case .string(let s) where s.hasPrefix("$"): return s
        case .array(let xs) where !xs.isEmpty && xs.allSatisfy({ $0.stringValue?.hasPrefix("$") ?? false }):
            return xs.map(describe).joined(separator: " | ")
        case .object: return "{…}"
        default: return mapping.text()
        }
    }

    /// Mermaid flowchart (left to right). Node ids are `s0`, `s1`, … (step ids may contain `-`,
    /// which Mermaid reads as part of an arrow); labels are quoted with `"` escaped as `#quot;`.
    public var mermaid: String {
        func label(_ s: String) -> String { s.replacingOccurrences(of: "\"", with: "#quot;") }
        var lines = ["flowchart LR"]
        for (i, step) in steps.enumerated() {
            let title = definition.steps[i].title.map { "<br/>" + label($0) } ?? ""
            lines.append("  s\(i)[\"\(label(step.id))\(title)<br/><small>\(label(step.agency)) · \(label(step.action))</small>\"]")
        }
        for (i, step) in steps.enumerated() {
            for p in step.predecessors { lines.append("  s\(p) --> s\(i)") }
        }
        return lines.joined(separator: "\n")
    }

    /// Graphviz DOT digraph (left to right), nodes named by step id.
    public var dot: String {
        func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var lines = ["digraph \(quoted("\(id) v\(version)")) {", "  rankdir=LR;", "  node [shape=box];"]
        for (i, step) in steps.enumerated() {
            let title = definition.steps[i].title.map { "\\n" + $0 } ?? ""
            lines.append("  \(quoted(step.id)) [label=\(quoted(step.id + title + "\\n" + step.agency + " · " + step.action))];")
        }
        for step in steps {
            for p in step.predecessors { lines.append("  \(quoted(steps[p].id)) -> \(quoted(step.id));") }
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}
