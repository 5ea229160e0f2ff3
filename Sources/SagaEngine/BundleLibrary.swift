import Foundation

/// Every bundle version under a directory, validated and compiled, plus the catalogues and
/// calendars they were checked against. What the CLI and the orchestrator load at start.
public struct BundleLibrary: Sendable {
    public let catalogues: CatalogueSet
    public let calendars: [String: BusinessCalendar]
    /// Valid bundles, sorted by id then version.
    public let bundles: [CompiledBundle]
    /// Problems of every file that did not load; those files are left out of `bundles`.
    public let problems: [BundleProblem]
    /// JSON Schemas of the hub's event types (CloudEvents type → schema), for `trigger` checks.
    public var eventSchemas: [String: JSONValue] = [:]

    public var validator: BundleValidator { BundleValidator(catalogues: catalogues, calendars: calendars, eventSchemas: eventSchemas) }

    /// Bundles that start from an event (免申即享), newest version of each id.
    public var triggered: [CompiledBundle] {
        Dictionary(grouping: bundles.filter { $0.definition.trigger != nil }, by: \.id).values.compactMap { $0.last }.sorted { $0.id < $1.id }
    }

    /// Event schemas from `<dir>/*.schema.json`, each under every type its `x-cloudevents-types`
    /// lists (the files the hub's schema registry reads); a missing directory gives none.
    public static func eventSchemas(directory: URL) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names.sorted() where name.hasSuffix(".schema.json") {
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)), let json = try? JSONValue.parse(data) else { continue }
            for t in json["x-cloudevents-types"]?.arrayValue ?? [] { if let t = t.stringValue { out[t] = json } }
        }
        return out
    }

    /// Loads catalogues from `<catalogues>/<agency>/catalogue.json`, calendars from `*.json` in
    /// `calendars`, and bundles from `*.json` in `bundles` (a missing bundle directory is empty).
    /// Event schemas come from `schemas` (default: the `schemas` directory beside `catalogues`).
    public static func load(bundles: URL, catalogues: URL, calendars: URL, schemas: URL? = nil) throws -> BundleLibrary {
        let cats = try CatalogueSet.load(directory: catalogues)
        var cals: [String: BusinessCalendar] = [:]
        for file in try jsonFiles(in: calendars) {
            let c = try BusinessCalendar.load(file)
            cals[c.name] = c
        }
        let files = (try? jsonFiles(in: bundles)) ?? []
        let events = eventSchemas(directory: schemas ?? catalogues.deletingLastPathComponent().appendingPathComponent("schemas"))
        return load(files: files, catalogues: cats, calendars: cals, eventSchemas: events)
    }

    /// Validates and compiles the given files; a second file with an already-seen id and version is a problem.
    public static func load(files: [URL], catalogues: CatalogueSet, calendars: [String: BusinessCalendar],
                            eventSchemas: [String: JSONValue] = [:]) -> BundleLibrary {
        let validator = BundleValidator(catalogues: catalogues, calendars: calendars, eventSchemas: eventSchemas)
        var compiled: [CompiledBundle] = []
        var problems: [BundleProblem] = []
        var seen: [String: String] = [:]
        for url in files {
            let name = url.path
            guard let data = try? Data(contentsOf: url) else {
                problems.append(BundleProblem(file: name, path: "$", kind: .syntax, message: "cannot read file"))
                continue
            }
            let (def, ps) = validator.validate(data: data, file: name)
            problems += ps
            guard let def, let calendar = calendars[def.sla.calendar] else { continue }
            let key = "\(def.id) v\(def.version)"
            if let other = seen[key] {
                problems.append(BundleProblem(file: name, path: "$.version", kind: .badValue, message: "\(key) is already defined in \(other); bump the version"))
                continue
            }
            seen[key] = name
            compiled.append(CompiledBundle(def, catalogues: catalogues, calendar: calendar, file: name))
        }
        compiled.sort { ($0.id, $0.version) < ($1.id, $1.version) }
        var library = BundleLibrary(catalogues: catalogues, calendars: calendars, bundles: compiled, problems: problems)
        library.eventSchemas = eventSchemas
        return library
    }

    /// Calendar coverage as of `at`: for each bundle, a saga submitted at `at` gets its deadline
    /// (and its longest step timeout) on the bundle's calendar; a year there that the calendar
    /// does not cover is a problem (`calendarNotCovered`, at `$.sla.calendar`), a provisional one
    /// a warning. `yishi bundles validate` reports both; the engine flags the same on each saga.
    public func calendarCoverage(at: Instant) -> (problems: [BundleProblem], warnings: [String]) {
        var problems: [BundleProblem] = [], warnings: [String] = []
        for b in bundles {
            guard let calendar = calendar(for: b) else { continue }
            let deadline = calendar.addWorkingTime(at, b.slaWorkingMs)
            let longest = b.steps.map(\.timeoutMs).max() ?? 0
            let end = max(deadline, calendar.addWorkingTime(at, longest))
            let gaps = calendar.gaps(from: at, to: end)
            let known = calendar.coveredYears.sorted().map(String.init).joined(separator: ", ")
            let file = b.file ?? "\(b.id) v\(b.version)"
            if !gaps.uncovered.isEmpty {
                problems.append(BundleProblem(
                    file: file, path: "$.sla.calendar", kind: .calendarNotCovered,
                    message: "a saga submitted \(calendar.localText(at)) is due \(calendar.localText(deadline)), in "
                        + "\(gaps.uncovered.map(String.init).joined(separator: ", ")), which calendar \(calendar.name) does not cover "
                        + "(it covers \(known)): add the year's holidays to the calendar file"))
            } else if !gaps.provisional.isEmpty {
                warnings.append("\(file): a saga submitted \(calendar.localText(at)) is due \(calendar.localText(deadline)) in "
                                + "\(gaps.provisional.map(String.init).joined(separator: ", ")), provisional on calendar \(calendar.name)")
            }
        }
        return (problems, warnings)
    }

    /// The version new sagas get.
    public func newest(_ id: String) -> CompiledBundle? { bundles.last { $0.id == id } }

    /// The version a running saga keeps.
    public func bundle(_ id: String, version: Int) -> CompiledBundle? { bundles.first { $0.id == id && $0.version == version } }

    public func calendar(for bundle: CompiledBundle) -> BusinessCalendar? { calendars[bundle.definition.sla.calendar] }

    /// `*.json` files directly in `dir`, sorted by name.
    public static func jsonFiles(in dir: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
            .map { dir.appendingPathComponent($0) }
    }
}
